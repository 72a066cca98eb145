"""Scenarios of waits held by someone else: file locks, a terminal, named
FIFOs, a DNS server. Registered into hang.py's SCENARIOS by `scenarios()`,
which is given hang.py's own module (it runs as __main__), so that these use
its helpers (Py, wait_for, blocked_in, report...) and its deadline.

Each scenario returns the JSON keys the tests read; see README.md.
"""

import os
import random
import socket
import tempfile
import time

h = None  # hang.py, set by scenarios()

LOCKS = ("flock", "fcntl")
OPEN = ("open", "openat")
POLL = ("poll", "ppoll")


def scratch_dir():
    """A directory for the scenario's files, removed after the reaping."""
    d = tempfile.mkdtemp(prefix="whystuck-holders-")
    h.POST_REAP.append(lambda: remove_tree(d))
    return d


def remove_tree(d):
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def lock_holder(path, how, *, fork_away=False):
    """A child taking a lock on `path` and keeping it; with `fork_away`, it
    forks a child that inherits the open file (and so the lock) and exits,
    leaving its own pid in /proc/locks."""
    return h.Py("""
        import fcntl, os, struct, sys, time
        path, how, fork_away = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
        fd = os.open(path, os.O_RDWR)
        if how == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX)
        elif how == "posix":
            fcntl.lockf(fd, fcntl.LOCK_EX)
        else:  # ofd: F_OFD_SETLK, a write lock on the whole file
            fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
        if fork_away:
            child = os.fork()
            if child == 0:
                # No PR_SET_PDEATHSIG here: the parent is about to exit. The
                # report pipe is the parent's to close.
                os.close(int(_REPORT_FD))
                time.sleep(100000)
                os._exit(0)
            report(fd=fd, holder=child)
            os._exit(0)
        report(fd=fd, holder=os.getpid())
        time.sleep(100000)
    """, path, how, "1" if fork_away else "0", report=True)


def lock_waiter(path, how):
    """A child waiting for a lock on `path` (its fd reported first)."""
    return h.Py("""
        import fcntl, os, struct, sys
        path, how = sys.argv[1], sys.argv[2]
        fd = os.open(path, os.O_RDWR)
        report(fd=fd)
        if how == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX)
        elif how == "posix":
            fcntl.lockf(fd, fcntl.LOCK_EX)
        else:  # ofd: F_OFD_SETLKW
            fcntl.fcntl(fd, 38, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
    """, path, how, report=True)


def lock_wait(how, fork_away=False):
    """A waiter blocked on a lock another process holds (flock, POSIX or
    OFD); with `fork_away`, a flock whose taker forked and exited."""
    path = os.path.join(scratch_dir(), "db.lock")
    open(path, "w").close()
    H = lock_holder(path, how, fork_away=fork_away)
    held = H.report()
    if fork_away:
        H.popen.wait()  # reaped: its pid stays in /proc/locks, nothing else
    W = lock_waiter(path, how)
    fd = W.report()["fd"]
    h.wait_for(h.blocked_in(W.pid, LOCKS, fd=fd))
    info = {"target": W.pid, "fd": fd, "path": path, "holder": held["holder"], "holder_fd": held["fd"]}
    if fork_away:
        info["stale"] = H.pid
    return info


def flock_abba():
    """Two processes each holding one flock and waiting for the other's:
    the kernel detects this for POSIX locks (EDEADLK), never for flock."""
    d = scratch_dir()
    paths = [os.path.join(d, name) for name in ("a.lock", "b.lock")]
    for p in paths:
        open(p, "w").close()
    kids = []
    for first, second in (paths, paths[::-1]):
        r, w = os.pipe()
        P = h.Py("""
            import fcntl, os, sys
            first = os.open(sys.argv[1], os.O_RDWR)
            fcntl.flock(first, fcntl.LOCK_EX)
            second = os.open(sys.argv[2], os.O_RDWR)
            report(holds=first, wants=second)
            os.read(0, 1)  # go
            fcntl.flock(second, fcntl.LOCK_EX)
        """, first, second, stdin=r, report=True)
        os.close(r)
        kids.append((P, P.report(), w))
    for _, _, w in kids:
        os.write(w, b"g")
        h.HELD.append(w)
    (a, ia, _), (b, ib, _) = kids
    h.wait_for(h.blocked_in(a.pid, LOCKS, fd=ia["wants"]), h.blocked_in(b.pid, LOCKS, fd=ib["wants"]))
    return {"a": a.pid, "b": b.pid, "a_holds": ia["holds"], "a_wants": ia["wants"],
            "b_holds": ib["holds"], "b_wants": ib["wants"], "paths": paths}


def input_under_pty():
    """input() on a pseudo-terminal nobody types on."""
    master, slave = os.openpty()
    tty = os.ttyname(slave)
    T = h.Py("""
        input()  # no prompt: it would go to stderr, the controller's
    """, stdin=slave, stdout=slave)
    os.close(slave)
    h.HELD.append(master)  # the terminal stays open; nobody types
    h.wait_for(h.blocked_in(T.pid, h.READ, fd=0))
    return {"target": T.pid, "fd": 0, "tty": tty}


def background_read_under_pty():
    """A job in a background process group of its controlling terminal
    that reads from it: SIGTTIN stops it. Its session leader does not wait
    for it, so the stop signal stays in its stat (a shell would collect it:
    see interactive-shell-stopped-job)."""
    master, slave = os.openpty()
    tty = os.ttyname(slave)
    S = h.Py("""
        import fcntl, os, termios, time, ctypes
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        job = os.fork()
        if job == 0:
            ctypes.CDLL(None).prctl(1, 9)
            os.close(int(_REPORT_FD))  # the leader's to close
            os.setpgid(0, 0)  # a background group of the terminal
            os.read(0, 1)     # SIGTTIN: stopped
            os._exit(0)
        report(job=job)
        time.sleep(100000)
    """, stdin=slave, stdout=slave, report=True)
    os.close(slave)
    h.HELD.append(master)
    job = S.report()["job"]
    h.wait_for(h.state_is(job, "T"), h.blocked_in(S.pid, h.SLEEP))
    return {"target": job, "leader": S.pid, "tty": tty}


def fifo_silent_writer():
    """A reader blocked on a FIFO whose writer holds it open and writes
    nothing."""
    path = os.path.join(scratch_dir(), "queue")
    os.mkfifo(path)
    W = h.Py("""
        import os, sys, time
        fd = os.open(sys.argv[1], os.O_WRONLY)  # waits for the reader
        report(fd=fd)
        time.sleep(100000)
    """, path, report=True)
    R = h.Py("""
        import os, sys
        fd = os.open(sys.argv[1], os.O_RDONLY)
        report(fd=fd)
        os.read(fd, 4096)
    """, path, report=True)
    writer_fd, fd = W.report()["fd"], R.report()["fd"]
    h.wait_for(h.blocked_in(R.pid, h.READ, fd=fd), h.blocked_in(W.pid, h.SLEEP))
    return {"target": R.pid, "fd": fd, "path": path, "writer": W.pid, "writer_fd": writer_fd}


def fifo_open_wait():
    """A reader blocked opening a FIFO that nobody opens for writing."""
    path = os.path.join(scratch_dir(), "lonely")
    os.mkfifo(path)
    T = h.Py("""
        import os, sys
        fd = os.open(sys.argv[1], os.O_RDONLY)  # no writer: waits for one
        os.read(fd, 1)
    """, path)

    def in_open():
        why = h.blocked_in(T.pid, OPEN)()
        if why:
            return why
        wchan = h.read_bytes(f"/proc/{T.pid}/wchan").decode()
        return None if wchan == "wait_for_partner" else f"want wchan wait_for_partner; have {wchan}"
    h.wait_for(in_open)
    return {"target": T.pid, "path": path}


def unix_silent_server():
    """A client reading a unix stream socket from a server (listening on a
    path) that accepted and never sends: the client's peer, the server's
    accepted socket, carries the listener's path, as systemd-resolved's
    does for its clients."""
    path = os.path.join(scratch_dir(), "server.sock")
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(1)
    h.HELD.append(ls)
    T = h.Py("""
        import socket, sys
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sys.argv[1])
        report(fd=s.fileno())
        s.recv(512)
    """, path, report=True)
    fd = T.report()["fd"]
    ls.settimeout(h.remaining())
    conn, _ = ls.accept()
    h.HELD.append(conn)  # accepted, never sends
    h.wait_for(h.blocked_in(T.pid, h.RECV, fd=fd))
    return {"target": T.pid, "fd": fd, "path": path, "server": h.ME, "server_fd": conn.fileno()}


def udp_poll_no_answer(port):
    """A resolver-like client (a connected UDP socket, a query sent, poll
    with a 5 s timeout, again and again, as glibc's resolver does) to a
    local server that never answers: on `port` 53, a DNS server (binding
    it needs root); on port 0 (any), the control."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(20):
        addr = f"127.53.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
        try:
            server.bind((addr, port))
            break
        except PermissionError as e:
            raise h.Skip(f"binding UDP port {port} needs root: {e}")
        except OSError:
            continue
    else:
        h.fail(f"no free 127.53.x.y address for UDP port {port}")
    h.HELD.append(server)  # bound, never reads or answers
    addr, port = server.getsockname()
    T = h.Py("""
        import select, socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((sys.argv[1], int(sys.argv[2])))
        s.send(b"query")
        report(fd=s.fileno(), local_port=s.getsockname()[1])
        p = select.poll()
        p.register(s.fileno(), select.POLLIN)
        while not p.poll(5000):
            pass
    """, addr, str(port), report=True)
    info = T.report()
    h.wait_for(h.blocked_in(T.pid, POLL))
    return {"target": T.pid, "fd": info["fd"], "local_port": info["local_port"],
            "server_addr": addr, "server_port": port}


def scenarios(hang):
    """The scenarios of this file, by name, for hang.py's SCENARIOS."""
    global h
    h = hang
    for arch, extra in {"x86_64": dict(fcntl=72, flock=73, open=2, openat=257),
                        "aarch64": dict(fcntl=25, flock=32, openat=56)}.items():
        hang.SYSCALLS[arch].update(extra)
    return {
        "flock-wait": lambda: lock_wait("flock"),
        "posix-lock-wait": lambda: lock_wait("posix"),
        "ofd-lock-wait": lambda: lock_wait("ofd"),
        "flock-forked-holder": lambda: lock_wait("flock", fork_away=True),
        "flock-abba": flock_abba,
        "input-under-pty": input_under_pty,
        "background-read-under-pty": background_read_under_pty,
        "fifo-silent-writer": fifo_silent_writer,
        "fifo-open-wait": fifo_open_wait,
        "unix-silent-server": unix_silent_server,
        "dns-no-answer": lambda: udp_poll_no_answer(53),
        "udp-poll-no-answer": lambda: udp_poll_no_answer(0),
    }
