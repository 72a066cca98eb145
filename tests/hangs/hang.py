#!/usr/bin/env python3
"""Create real hung processes for whystuck's integration tests.

Usage:
    python3 tests/hangs/hang.py SCENARIO     # set up, print one JSON line, hold
    python3 tests/hangs/hang.py --list       # print the scenario names

The controller (this process) starts the scenario's processes in its own
process group, polls /proc until the hang is really in place (10 s limit,
exit 1 with a message on stderr otherwise), prints exactly one line of JSON on
stdout, then holds everything until its stdin reaches EOF (or forever if stdin
is /dev/null or closed). On EOF, SIGTERM, SIGINT or SIGHUP it SIGKILLs every
descendant, reaps them and exits 0. See README.md in this directory.

Standard library only. Works on x86_64 and aarch64: syscall numbers are only
ever looked up by name in SYSCALLS.
"""

import errno
import json
import os
import platform
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import ctypes

TIMEOUT = 10.0  # seconds for the whole setup, readiness included
POLL = 0.005    # seconds between /proc polls

# --------------------------------------------------------------------------
# syscall numbers, by arch (only for recognising what a thread is blocked in)
# --------------------------------------------------------------------------

SYSCALLS = {
    "x86_64": dict(
        read=0, write=1, poll=7, readv=19, writev=20, select=23, pause=34,
        nanosleep=35, accept=43, sendto=44, recvfrom=45, sendmsg=46,
        recvmsg=47, wait4=61, rt_sigsuspend=130, futex=202,
        restart_syscall=219, clock_nanosleep=230, epoll_wait=232,
        waitid=247, pselect6=270, ppoll=271, epoll_pwait=281, accept4=288,
        epoll_pwait2=441, futex_waitv=449, connect=42,
        stat=4, lstat=6, newfstatat=262, statx=332,
    ),
    "aarch64": dict(
        epoll_pwait=22, read=63, write=64, readv=65, writev=66, pselect6=72,
        ppoll=73, waitid=95, futex=98, nanosleep=101, clock_nanosleep=115,
        restart_syscall=128, rt_sigsuspend=133, accept=202, sendto=206,
        recvfrom=207, sendmsg=211, recvmsg=212, accept4=242, wait4=260,
        epoll_pwait2=441, futex_waitv=449, connect=203,
        newfstatat=79, statx=291,
    ),
}
ARCH = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine(), platform.machine())

# Families of syscalls a thread may legitimately be parked in (names missing
# on this arch, e.g. epoll_wait on aarch64, are simply skipped).
READ = ("read", "readv")
WRITE = ("write", "writev")
SEND = ("sendto", "sendmsg", "write", "writev")
RECV = ("recvfrom", "recvmsg", "read", "readv")
ACCEPT = ("accept", "accept4")
EPOLL = ("epoll_wait", "epoll_pwait", "epoll_pwait2")
FUTEX = ("futex", "futex_waitv")
WAIT = ("wait4", "waitid")
SLEEP = ("clock_nanosleep", "nanosleep")
STAT = ("stat", "lstat", "newfstatat", "statx")


def syscall_nrs(names):
    """Numbers of the named syscalls that exist on this arch."""
    table = SYSCALLS.get(ARCH)
    if table is None:
        fail(f"unsupported architecture {ARCH!r} (known: {', '.join(SYSCALLS)})")
    nrs = {table[n] for n in names if n in table}
    if not nrs:
        fail(f"none of {names} exists on {ARCH}")
    return nrs


def syscall_name(nr):
    for name, n in SYSCALLS.get(ARCH, {}).items():
        if n == nr:
            return name
    return str(nr)


# --------------------------------------------------------------------------
# /proc readers
# --------------------------------------------------------------------------

def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def stat_fields(pid, tid=None):
    """Fields of /proc/PID[/task/TID]/stat after the comm, [0] is the state."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    data = read_bytes(path)
    return data[data.rindex(b")") + 2:].split()


def state(pid, tid=None):
    return stat_fields(pid, tid)[0].decode()


def cpu_ticks(pid):
    f = stat_fields(pid)
    return int(f[11]) + int(f[12])  # utime + stime


def task_syscall(pid, tid):
    """(nr, args) from /proc/PID/task/TID/syscall; nr is None when running."""
    parts = read_bytes(f"/proc/{pid}/task/{tid}/syscall").split()
    if parts[0] == b"running":
        return None, []
    return int(parts[0]), [int(a, 16) for a in parts[1:7]]


def tids(pid):
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))


def status_field(pid, key):
    for line in read_bytes(f"/proc/{pid}/status").decode("utf-8", "replace").splitlines():
        k, _, v = line.partition(":")
        if k == key:
            return v.strip()
    return None


def describe(pid, tid=None):
    """Short human description of a thread, for error messages."""
    tid = pid if tid is None else tid
    try:
        nr, args = task_syscall(pid, tid)
        sc = "running" if nr is None else f"{syscall_name(nr)}({', '.join(hex(a) for a in args[:3])})"
        wchan = read_bytes(f"/proc/{pid}/task/{tid}/wchan").decode(errors="replace")
        return f"{pid}/{tid}: state={state(pid, tid)} syscall={sc} wchan={wchan or '-'}"
    except OSError as e:
        return f"{pid}/{tid}: gone ({e.strerror})"


def descendants(root):
    """All live or zombie descendants of root (scan of /proc/*/stat)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(stat_fields(d)[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


# --------------------------------------------------------------------------
# readiness conditions: callables returning None when satisfied, else a
# string saying what is observed instead
# --------------------------------------------------------------------------

def blocked_in(pid, names, tid=None, fd=None, states="S"):
    """Thread tid (default: main thread) is in one of the syscalls `names`,
    optionally with first argument == fd, and its state is in `states`."""
    nrs = syscall_nrs(names)
    tid = pid if tid is None else tid

    def check():
        nr, args = task_syscall(pid, tid)
        st = state(pid, tid)
        if st in states and nr in nrs and (fd is None or args[0] == fd):
            return None
        want = "/".join(n for n in names if n in SYSCALLS[ARCH])
        return f"want {want}{'' if fd is None else f' on fd {fd}'} in state {states}; have {describe(pid, tid)}"
    return check


def all_threads_blocked(pid, count, main_names, other_names):
    """Process has exactly `count` threads; main thread is blocked in
    main_names, every other thread in other_names."""
    def check():
        ts = tids(pid)
        if len(ts) != count:
            return f"want {count} threads in {pid}, have {len(ts)}"
        for t in ts:
            why = blocked_in(pid, main_names if t == pid else other_names, tid=t)()
            if why:
                return why
        return None
    return check


def state_is(pid, letters):
    def check():
        st = state(pid)
        return None if st in letters else f"want state {letters}; have {describe(pid)}"
    return check


def cpu_at_least(pid, ticks):
    def check():
        have = cpu_ticks(pid)
        return None if have >= ticks else f"want >= {ticks} ticks of CPU for {pid}; have {have} ({describe(pid)})"
    return check


class NotReady(Exception):
    pass


DEADLINE = None


def remaining():
    return max(0.0, DEADLINE - time.monotonic())


def wait_for(*conds):
    """Poll until every condition holds on two consecutive polls (so that a
    transient sleep is not mistaken for the hang), or fail at the deadline."""
    streak, last = 0, "not checked"
    while True:
        try:
            last = next((why for why in (c() for c in conds) if why), None)
        except (OSError, ValueError, IndexError) as e:
            last = f"/proc read failed: {e}"
        if last is None:
            streak += 1
            if streak >= 2:
                return
        else:
            streak = 0
        if time.monotonic() >= DEADLINE:
            raise NotReady(last)
        time.sleep(POLL)


def fail(msg):
    raise NotReady(msg)


# --------------------------------------------------------------------------
# starting python children
# --------------------------------------------------------------------------

# Prepended to every child's code. PR_SET_PDEATHSIG makes a child die if its
# parent dies even when nobody kills the process group; report() sends one
# JSON object to the controller over a private pipe, then closes it so the
# target keeps no extra fd.
PRELUDE = """\
import ctypes as _ct, os as _os
_ct.CDLL(None).prctl(1, 9)
_REPORT_FD = _os.environ.pop("WHYSTUCK_REPORT_FD", None)
def report(**kw):
    import json
    _os.write(int(_REPORT_FD), json.dumps(kw).encode())
    _os.close(int(_REPORT_FD))
"""


def pycode(body):
    return PRELUDE + textwrap.dedent(body)


class Py:
    """A python child: [sys.executable, "-c", PRELUDE + code, *args].
    stdout defaults to /dev/null (never the controller's stdout), stdin too;
    stderr is inherited so failures are visible."""

    def __init__(self, code, *args, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, pass_fds=(), report=False):
        env = dict(os.environ)
        self._report_r = None
        pass_fds = tuple(pass_fds)
        if report:
            self._report_r, w = os.pipe()
            env["WHYSTUCK_REPORT_FD"] = str(w)
            pass_fds += (w,)
        self.popen = subprocess.Popen(
            [sys.executable, "-c", pycode(code), *args],
            stdin=stdin, stdout=stdout, pass_fds=pass_fds, env=env)
        self.pid = self.popen.pid
        if report:
            os.close(w)

    def report(self):
        """Block (until the deadline) for the child's report() object."""
        data = b""
        while True:
            r, _, _ = select.select([self._report_r], [], [], remaining())
            if not r:
                fail(f"no report from pid {self.pid} before the deadline; {describe(self.pid)}")
            chunk = os.read(self._report_r, 4096)
            if not chunk:
                break
            data += chunk
        os.close(self._report_r)
        if not data:
            fail(f"pid {self.pid} exited or closed its report pipe without reporting")
        return json.loads(data)


HELD = []  # objects (fds, sockets) the controller must keep open


def close(*fds):
    for fd in fds:
        os.close(fd)


# --------------------------------------------------------------------------
# scenarios: each sets everything up, waits for readiness, returns the JSON
# --------------------------------------------------------------------------

ME = os.getpid()


def stdin_pipe_child(code, *args, report=False):
    """Child whose stdin is an empty pipe; the controller keeps the write end."""
    r, w = os.pipe()
    child = Py(code, *args, stdin=r, report=report)
    os.close(r)
    HELD.append(w)
    return child


def pipe_full():
    r, w = os.pipe()
    W = Py("""
        import os
        chunk = b"x" * 4096
        while True:
            os.write(1, chunk)
    """, stdout=w)
    os.close(w)
    HELD.append(r)  # read end: only the controller has it, and never reads
    wait_for(blocked_in(W.pid, WRITE, fd=1))
    return {"target": W.pid, "fd": 1, "reader": ME, "reader_fd": r}


def parent_waits_undrained():
    child = """
        for i in range(10**9):
            print(f"line {i}: output that nobody is reading")
    """
    P = Py("""
        import subprocess, sys
        p = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE)
        report(child=p.pid)
        p.wait()  # never reads p.stdout: the classic Popen deadlock
    """, pycode(child), report=True)
    C = P.report()["child"]
    wait_for(blocked_in(C, WRITE, fd=1), blocked_in(P.pid, WAIT))
    return {"parent": P.pid, "child": C}


def abba():
    T = Py("""
        import threading
        a, b = threading.Lock(), threading.Lock()
        both = threading.Barrier(2)
        def take(first, second):
            with first:
                both.wait()
                with second:
                    pass
        ts = [threading.Thread(target=take, args=(a, b), name="ab"),
              threading.Thread(target=take, args=(b, a), name="ba")]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    """)
    wait_for(all_threads_blocked(T.pid, 3, FUTEX, FUTEX))
    return {"target": T.pid, "tids": tids(T.pid)}


def reads_own_pipe():
    """A process reading a pipe whose only write end it holds itself."""
    T = Py("""
        import os
        r, w = os.pipe()
        report(read_fd=r)
        os.read(r, 1)
    """, report=True)
    fd = T.report()["read_fd"]
    wait_for(blocked_in(T.pid, READ, fd=fd))
    return {"target": T.pid, "read_fd": fd}


def threads_parked(count):
    """A process whose `count` threads (the main one among them) all wait on
    one Event: a futex each, a thread pool at rest."""
    T = Py(f"""
        import threading
        threading.stack_size(64 * 1024)
        ready = threading.Event()
        for _ in range({count} - 1):
            threading.Thread(target=ready.wait, daemon=True).start()
        ready.wait()
    """)
    wait_for(all_threads_blocked(T.pid, count, FUTEX, FUTEX))
    return {"target": T.pid}


def epoll_idle():
    T = stdin_pipe_child("""
        import select, threading
        for i in range(2):
            threading.Thread(target=threading.Event().wait, name=f"helper{i}", daemon=True).start()
        ep = select.epoll()
        ep.register(0, select.EPOLLIN)
        while True:
            ep.poll()
    """)
    wait_for(all_threads_blocked(T.pid, 3, EPOLL, FUTEX))
    ts = tids(T.pid)
    return {"target": T.pid, "stdin_writer": ME, "helper_tids": [t for t in ts if t != T.pid], "tids": ts}


def asyncio_idle():
    T = stdin_pipe_child("""
        import asyncio, sys
        loop = asyncio.new_event_loop()
        loop.run_until_complete(loop.connect_read_pipe(asyncio.Protocol, sys.stdin))
        loop.run_forever()
    """)
    wait_for(all_threads_blocked(T.pid, 1, EPOLL, ()))
    return {"target": T.pid, "stdin_writer": ME}


def wakeup_full(kind):
    T = stdin_pipe_child("""
        import os, select, signal, socket, sys
        if sys.argv[1] == "socketpair-many-fds":
            # past whystuck's LAZY_FDS (256): only the fds that matter are
            # read in depth; past its SPLIT_LINKS (2,048): links read on
            # its threads
            import resource
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
            spare = [os.open("/dev/null", os.O_RDONLY) for _ in range(2500)]
        if sys.argv[1].startswith("socketpair"):
            r, w = socket.socketpair()
            r.setblocking(False)
            w.setblocking(False)
            rfd, wfd = r.fileno(), w.fileno()
            put, chunks = w.send, [b"\\0"]
        else:
            rfd, wfd = os.pipe()
            os.set_blocking(rfd, False)
            os.set_blocking(wfd, False)
            put, chunks = (lambda b: os.write(wfd, b)), [b"\\0" * 4096, b"\\0"]
        signal.set_wakeup_fd(wfd)
        signal.signal(signal.SIGINT, lambda *a: None)
        filled = 0
        for chunk in chunks:
            try:
                while True:
                    filled += put(chunk)
            except BlockingIOError:
                pass
        report(wakeup_fd=wfd, read_fd=rfd, filled_bytes=filled)
        # an "event loop" that no longer drains the wakeup fd
        ep = select.epoll()
        ep.register(0, select.EPOLLIN)
        while True:
            ep.poll()
    """, kind, report=True)
    info = T.report()
    wait_for(all_threads_blocked(T.pid, 1, EPOLL, ()))
    return {"target": T.pid, **info, "stdin_writer": ME}


def blocked_read_pipe():
    T = stdin_pipe_child("""
        import os
        while os.read(0, 4096):
            pass
    """)
    wait_for(blocked_in(T.pid, READ, fd=0))
    return {"target": T.pid, "fd": 0, "writer": ME}


def blocked_read_tcp():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    HELD.append(ls)
    port = ls.getsockname()[1]
    T = Py("""
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        report(fd=s.fileno(), local_port=s.getsockname()[1])
        while s.recv(4096):
            pass
    """, str(port), report=True)
    info = T.report()
    ls.settimeout(remaining())
    conn, addr = ls.accept()
    HELD.append(conn)  # accepted, never sends
    if addr[1] != info["local_port"]:
        fail(f"accepted {addr}, but the target said its port is {info['local_port']}")
    wait_for(blocked_in(T.pid, RECV, fd=info["fd"]))
    return {"target": T.pid, "fd": info["fd"], "local_port": info["local_port"],
            "remote_port": port, "server": ME}


def udp_no_answer():
    """A client waiting for the answer to a UDP query (as a resolver waits
    on port 53) from a local server that never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    HELD.append(server)  # bound, never reads or answers
    port = server.getsockname()[1]
    T = Py("""
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", int(sys.argv[1])))
        s.send(b"query")
        report(fd=s.fileno(), local_port=s.getsockname()[1])
        s.recv(512)
    """, str(port), report=True)
    info = T.report()
    wait_for(blocked_in(T.pid, RECV, fd=info["fd"]))
    return {"target": T.pid, "fd": info["fd"], "local_port": info["local_port"],
            "server_port": port, "server": ME, "server_fd": server.fileno()}


def tcp_listen():
    T = Py("""
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        report(fd=s.fileno(), port=s.getsockname()[1])
        conns = []
        while True:
            conns.append(s.accept())
    """, report=True)
    info = T.report()
    wait_for(blocked_in(T.pid, ACCEPT, fd=info["fd"]))
    return {"target": T.pid, **info}


def unix_full():
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = theirs.fileno()
    T = Py("""
        import socket, sys
        s = socket.socket(fileno=int(sys.argv[1]))
        chunk = b"x" * 65536
        while True:
            s.sendall(chunk)
    """, str(fd), pass_fds=[fd])
    theirs.close()
    HELD.append(mine)  # peer: held open, never read
    wait_for(blocked_in(T.pid, SEND, fd=fd))
    return {"target": T.pid, "fd": fd, "peer": ME, "peer_fd": mine.fileno()}


def wait_child(child_code, child_cond):
    P = Py("""
        import os, subprocess, sys
        c = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
        report(child=c.pid)
        os.waitpid(c.pid, 0)
    """, pycode(child_code), report=True)
    C = P.report()["child"]
    wait_for(blocked_in(P.pid, WAIT), child_cond(C))
    return {"parent": P.pid, "child": C}


def two_pipes():
    p1r, p1w = os.pipe()
    p2r, p2w = os.pipe()
    relay = """
        import os
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            os.write(1, data)
    """
    A = Py(relay, stdin=p1r, stdout=p2w)  # reads pipe1, holds pipe2's write end
    B = Py(relay, stdin=p2r, stdout=p1w)  # reads pipe2, holds pipe1's write end
    close(p1r, p1w, p2r, p2w)
    wait_for(blocked_in(A.pid, READ, fd=0), blocked_in(B.pid, READ, fd=0))
    return {"a": A.pid, "b": B.pid, "fd": 0}


def supervisor_idle_child():
    child = """
        import json, os, select
        ep = select.epoll()
        ep.register(0, select.EPOLLIN)
        buf = b""
        while True:
            ep.poll()
            data = os.read(0, 65536)
            if not data:
                break
            buf += data
            while b"\\n" in buf:
                line, buf = buf.split(b"\\n", 1)
                req = json.loads(line)
                os.write(1, json.dumps({"id": req["id"], "result": "pong"}).encode() + b"\\n")
    """
    S = Py("""
        import json, subprocess, sys, threading
        c = subprocess.Popen([sys.executable, "-c", sys.argv[1]],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        c.stdin.write(json.dumps({"id": 1, "method": "ping"}).encode() + b"\\n")
        c.stdin.flush()
        c.stdout.readline()          # one request/response round trip
        report(child=c.pid)
        threading.Event().wait()     # keeps c.stdin open, never writes again
    """, pycode(child), report=True)
    C = S.report()["child"]
    wait_for(blocked_in(S.pid, FUTEX), all_threads_blocked(C, 1, EPOLL, ()))
    return {"supervisor": S.pid, "child": C}


def zombie():
    P = Py("""
        import os, time
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        report(zombie=pid)
        while True:
            time.sleep(100000)
    """, report=True)
    C = P.report()["zombie"]
    wait_for(state_is(C, "Z"), blocked_in(P.pid, SLEEP))
    return {"zombie": C, "parent": P.pid}


def stopped():
    T = Py("""
        import os, signal, time
        os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(100000)
    """)
    wait_for(state_is(T.pid, "T"))
    return {"target": T.pid}


def traced():
    # PR_SET_PTRACER(ANY) so that Yama ptrace_scope=1 lets a sibling attach;
    # it fails harmlessly (EINVAL) when Yama is absent.
    T = Py("""
        import ctypes, time
        ctypes.CDLL(None).prctl(0x59616d61, ctypes.c_ulong(-1))
        time.sleep(100000)
    """)
    wait_for(blocked_in(T.pid, SLEEP))
    tracer = Py("""
        import ctypes, os, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.restype = ctypes.c_long
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        PTRACE_ATTACH = 16
        if libc.ptrace(PTRACE_ATTACH, int(sys.argv[1]), None, None) != 0:
            sys.stderr.write(f"hang.py tracer: PTRACE_ATTACH failed: {os.strerror(ctypes.get_errno())}\\n")
            sys.exit(1)
        while True:
            time.sleep(100000)   # never waitpid()s, never PTRACE_CONTs
    """, str(T.pid))

    def traced_by_tracer():
        if tracer.popen.poll() is not None:
            fail(f"tracer exited with status {tracer.popen.returncode}")
        tp = status_field(T.pid, "TracerPid")
        return None if tp == str(tracer.pid) else f"want TracerPid {tracer.pid}; have {tp}"
    wait_for(state_is(T.pid, "t"), traced_by_tracer, blocked_in(tracer.pid, SLEEP))
    return {"target": T.pid, "tracer": tracer.pid}


def sleeping():
    T = Py("""
        import time
        time.sleep(100000)
    """)
    wait_for(blocked_in(T.pid, SLEEP))
    return {"target": T.pid}


BUSY = """
    while True:
        pass
"""


def busy():
    T = Py(BUSY)
    wait_for(cpu_at_least(T.pid, 10))
    return {"target": T.pid}


def running():
    T = Py("""
        import time
        while True:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.020:
                pass
            time.sleep(0.080)
    """)
    # In the loop (seen asleep once), then >= 2 more ticks of CPU since then.
    asleep, base = blocked_in(T.pid, SLEEP), []

    def progressing():
        if not base:
            if asleep():
                return f"want {T.pid} asleep once; have {describe(T.pid)}"
            base.append(cpu_ticks(T.pid))
        return cpu_at_least(T.pid, base[0] + 2)()
    wait_for(progressing)
    return {"target": T.pid}


HOSTILE_COMM = b"\x1b[31mX) (\n\xff"   # ESC sequence, ") (", newline, invalid UTF-8
HOSTILE_ARGS = ["\x1b]0;pwned\x07", b"\xff\xfe", "a) (b", ""]


def hostile_names():
    assert len(HOSTILE_COMM) <= 15
    T = Py(f"""
        import ctypes, time
        ctypes.CDLL(None).prctl(15, {HOSTILE_COMM!r})  # PR_SET_NAME
        time.sleep(100000)
    """, *HOSTILE_ARGS)

    def comm_set():
        comm = read_bytes(f"/proc/{T.pid}/comm")[:-1]  # strip the one added "\n"
        return None if comm == HOSTILE_COMM else f"want comm {HOSTILE_COMM!r}; have {comm!r}"
    wait_for(comm_set, blocked_in(T.pid, SLEEP))
    argv = read_bytes(f"/proc/{T.pid}/cmdline")[:-1].split(b"\0")
    want = [os.fsencode(a) for a in HOSTILE_ARGS]
    if argv[-len(want):] != want:
        fail(f"cmdline tail {argv[-len(want):]!r} != {want!r}")
    return {"target": T.pid, "comm_hex": HOSTILE_COMM.hex(), "argv_hex": [a.hex() for a in argv]}


# --------------------------------------------------------------------------
# fuse-stuck: a FUSE server (pure Python, speaking the kernel protocol on
# /dev/fuse) that stops answering while a victim thread waits in the kernel
# --------------------------------------------------------------------------

class Skip(Exception):
    """The scenario cannot run on this host (exit status 77)."""


FUSE_SOURCE = "whystuck-fuse"   # mount source ("device") in /proc/mounts
FUSE_PREFIX = "whystuck-fuse-"  # run dir: $TMPDIR/whystuck-fuse-<controller pid>-XXXXXXXX
# The mountpoint is RUN_DIR/mnt, not RUN_DIR: stat() on the mountpoint itself
# hangs too (GETATTR on the root), and `ls -l /tmp` must not.

# The server. Structures from include/uapi/linux/fuse.h; it announces protocol
# 7.31 and every timeout it returns is 0, so the kernel asks again each time.
# Until a line arrives on its stdin it answers INIT, LOOKUP, GETATTR, OPEN,
# READ, FLUSH, RELEASE and STATFS (ENOSYS for the rest; FORGET and INTERRUPT
# get no reply). After that it keeps reading requests and never answers one.
# It must stay alive and keep /dev/fuse open: when its last /dev/fuse fd is
# closed, the kernel aborts the connection and every waiter gets ENOTCONN.
FUSE_SERVER = """
    import ctypes, errno, os, select, stat, struct, sys, time
    mp = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)   # O_CLOEXEC: nobody else gets it
    except OSError as e:
        report(error=f"open /dev/fuse: {e.strerror}", errno=e.errno)
        raise SystemExit(1)
    opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
    MS_NOSUID, MS_NODEV = 2, 4
    if libc.mount(sys.argv[2].encode(), os.fsencode(mp), b"fuse", MS_NOSUID | MS_NODEV, opts):
        e = ctypes.get_errno()
        report(error=f"mount -t fuse on {mp}: {os.strerror(e)}", errno=e)
        raise SystemExit(1)

    IN_HDR = struct.Struct("<IIQQIIIHH")      # fuse_in_header, 40 bytes
    OUT_HDR = struct.Struct("<IiQ")           # fuse_out_header, 16 bytes
    ATTR = struct.Struct("<6Q4I6I")           # fuse_attr, 88 bytes (last I: flags)
    INIT_OUT = struct.Struct("<4I2H2I2HI7I")  # fuse_init_out, 64 bytes
    LOOKUP, FORGET, GETATTR, OPEN, READ, STATFS, RELEASE = 1, 2, 3, 14, 15, 17, 18
    FLUSH, INIT, INTERRUPT, BATCH_FORGET = 25, 26, 36, 42
    ROOT, FILE = 1, 2                         # node ids (1 is FUSE_ROOT_ID)
    CONTENT = b"whystuck: this file lives on a FUSE server that stops answering\\n"
    NOW = int(time.time())

    def attr(node):
        if node == ROOT:
            mode, nlink, size = stat.S_IFDIR | 0o755, 2, 0
        else:
            mode, nlink, size = stat.S_IFREG | 0o444, 1, len(CONTENT)
        return ATTR.pack(node, size, (size + 511) // 512, NOW, NOW, NOW, 0, 0, 0,
                         mode, nlink, 0, 0, 0, 4096, 0)

    def reply(unique, err=0, body=b""):
        try:
            os.write(fd, OUT_HDR.pack(OUT_HDR.size + len(body), -err, unique) + body)
        except OSError as e:
            if e.errno != errno.ENOENT:       # ENOENT: the request was interrupted
                raise

    def handle(op, unique, node, arg):
        if op in (FORGET, BATCH_FORGET, INTERRUPT):
            return                            # no reply expected (or needed)
        if op == INIT:
            major, minor, readahead, flags = struct.unpack_from("<4I", arg)
            if major != 7:
                return reply(unique, errno.EPROTO)
            # minor 31, no flags, max_background 16, congestion 12,
            # max_write 4096, time_gran 1
            return reply(unique, 0, INIT_OUT.pack(7, 31, readahead, 0, 16, 12, 4096, 1,
                                                  0, 0, 0, *[0] * 7))
        if op == LOOKUP:
            if node == ROOT and arg.split(b"\\0")[0] == b"stuck":
                # fuse_entry_out: nodeid, generation, entry_valid, attr_valid
                # (0 s: never cached), their nsecs, then the attributes
                return reply(unique, 0, struct.pack("<4Q2I", FILE, 1, 0, 0, 0, 0) + attr(FILE))
            return reply(unique, errno.ENOENT)
        if op == GETATTR:                     # fuse_attr_out: attr_valid 0
            return reply(unique, 0, struct.pack("<Q2I", 0, 0, 0) + attr(node))
        if op == OPEN:                        # fuse_open_out: fh, open_flags, backing_id
            return reply(unique, 0, struct.pack("<QIi", 1, 0, 0))
        if op == READ:
            _fh, offset, size = struct.unpack_from("<QQI", arg)
            return reply(unique, 0, CONTENT[offset:offset + size])
        if op in (FLUSH, RELEASE):
            return reply(unique)
        if op == STATFS:                      # fuse_kstatfs
            return reply(unique, 0, struct.pack("<5Q4I6I", 1, 0, 0, 2, 0, 4096, 255, 4096,
                                                0, *[0] * 6))
        return reply(unique, errno.ENOSYS)

    # Non-blocking while answering, so that only the silent server ever
    # sleeps in read() (the controller's sign that it has stopped answering).
    os.set_blocking(fd, False)
    answering = True
    while True:
        if answering:
            ready, _, _ = select.select([fd, 0], [], [])
            if 0 in ready:
                if not os.read(0, 64):
                    raise SystemExit(0)       # controller gone
                answering = False             # "stop": from now on, never reply
                os.set_blocking(fd, True)
                continue
        try:
            req = os.read(fd, 65536)          # >= FUSE_MIN_READ_BUFFER (8192)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EINTR, errno.EAGAIN):
                continue                      # request vanished before we read it
            if e.errno == errno.ENODEV:
                raise SystemExit(0)           # unmounted or aborted
            raise
        if not answering:
            continue
        _len, op, unique, node, _uid, _gid, _pid, _ext, _pad = IN_HDR.unpack_from(req)
        handle(op, unique, node, req[IN_HDR.size:])
        if op == INIT:
            report(fuse_fd=fd)
"""

# The victim: opens MOUNTDIR/stuck (that fd stays open), then, on a line from
# the controller, stats the same path again in a second thread (comm
# "stat-fuse"); the main thread joins it. SIGUSR1 has a no-op handler: the
# controller sends it to the stat thread, like a Ctrl-C that does not help.
FUSE_VICTIM = """
    import ctypes, os, signal, sys, threading
    path = os.path.join(sys.argv[1], "stuck")
    fd = os.open(path, os.O_RDONLY)
    signal.signal(signal.SIGUSR1, lambda *a: None)
    started, go, me = threading.Event(), threading.Event(), []

    def stat_again():
        ctypes.CDLL(None).prctl(15, b"stat-fuse")   # PR_SET_NAME (this thread's comm)
        me.append(threading.get_native_id())
        started.set()
        go.wait()
        try:
            os.stat(path)            # attr and entry timeouts are 0: asks the server
        except OSError:
            pass                     # ENOTCONN once the controller aborts the mount

    t = threading.Thread(target=stat_again, name="stat-fuse", daemon=True)
    t.start()
    started.wait()
    report(fuse_fd=fd, stuck_tid=me[0])
    os.read(0, 64)                   # the server has stopped answering
    go.set()
    t.join()
"""

MNT_FORCE, MNT_DETACH = 1, 2


def fuse_mounts():
    """[(mountpoint, major, minor, fstype, source)] from /proc/self/mountinfo.
    Reading it never talks to a FUSE server (stat() on a mountpoint would)."""
    out = []
    for line in read_bytes("/proc/self/mountinfo").decode("utf-8", "surrogateescape").splitlines():
        left, _, right = line.partition(" - ")
        f, r = left.split(" "), right.split(" ")
        major, minor = f[2].split(":")
        mp = f[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
        out.append((mp, int(major), int(minor), r[0], r[1] if len(r) > 1 else ""))
    return out


def umount_detach(mp, force=True):
    """umount2(mp, MNT_FORCE|MNT_DETACH): MNT_FORCE makes FUSE abort the
    connection (fuse_umount_begin), so every waiter gets ENOTCONN; MNT_DETACH
    takes the mount away now even though the victim still holds a file open.
    Returns 0 or an errno; EINVAL means that mp is not a mountpoint."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    if libc.umount2(os.fsencode(mp), (MNT_FORCE if force else 0) | MNT_DETACH) == 0:
        return 0
    return ctypes.get_errno()


def ours_alive(pid):
    """Is pid a live hang.py controller (so its FUSE mount is not stale)?"""
    try:
        return b"hang.py" in read_bytes(f"/proc/{pid}/cmdline") and state(pid) not in "ZX"
    except OSError:
        return False


def fuse_run_owner(run_dir):
    """Controller pid in a run directory's name, or None if not one of ours."""
    name = os.path.basename(run_dir)
    pid = name[len(FUSE_PREFIX):].split("-")[0]
    return int(pid) if name.startswith(FUSE_PREFIX) and pid.isdigit() else None


def clean_stale_fuse():
    """Remove what a SIGKILLed fuse-stuck run left behind: its mount (whose
    connection is already aborted, because its server died) and its
    directories. Runs of a live controller (a parallel test) are left alone.
    Never stat()s anything: a live mount would hang the caller."""
    mounted = set()
    for mp, _maj, _min, fstype, source in fuse_mounts():
        if source != FUSE_SOURCE or not fstype.startswith("fuse"):
            continue
        owner = fuse_run_owner(os.path.dirname(mp))
        if owner is None or ours_alive(owner):
            mounted.add(mp)
            continue
        err = umount_detach(mp)
        if err and err != errno.EINVAL:
            sys.stderr.write(f"hang.py fuse-stuck: stale mount {mp}: umount2: {os.strerror(err)}\n")
            mounted.add(mp)
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        run_dir = os.path.join(tmp, name)
        owner = fuse_run_owner(run_dir)
        if owner is None or ours_alive(owner) or os.path.join(run_dir, "mnt") in mounted:
            continue
        for d in (os.path.join(run_dir, "mnt"), run_dir):
            try:
                os.rmdir(d)
            except OSError:
                pass


def fuse_teardown_before_kill(mp, conn):
    """Runs before the processes are killed: abort and detach the mount, so
    that the stuck thread wakes up (ENOTCONN) and the victim's exit (close ->
    FUSE_FLUSH, an uninterruptible request) cannot hang."""
    err = umount_detach(mp)
    if err and err != errno.EINVAL:
        sys.stderr.write(f"hang.py fuse-stuck: umount2({mp}, MNT_FORCE|MNT_DETACH): {os.strerror(err)}\n")
        umount_detach(mp, force=False)
    if conn:
        # Also abort through fusectl, where it is mounted (it usually is not
        # needed: MNT_FORCE already aborted, and the server's death would too).
        try:
            with open(f"/sys/fs/fuse/connections/{conn[0]}/abort", "w") as f:
                f.write("1")
        except OSError:
            pass


def fuse_teardown_after_reap(run_dir, mp):
    for d in (mp, run_dir):
        for attempt in range(3):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if attempt == 2:
                    sys.stderr.write(f"hang.py fuse-stuck: rmdir {d}: {e.strerror}\n")
                    return
                umount_detach(mp, force=False)   # still mounted? (EBUSY)
                time.sleep(0.05)


def in_fuse_wait(pid, tid):
    """The thread is in a stat-family syscall and its wchan is FUSE's."""
    stat_nrs = syscall_nrs(STAT)

    def check():
        nr, _ = task_syscall(pid, tid)
        wchan = read_bytes(f"/proc/{pid}/task/{tid}/wchan").decode(errors="replace")
        if nr in stat_nrs and (wchan.startswith(("fuse", "__fuse")) or wchan == "request_wait_answer"):
            return None
        return f"want a stat syscall waiting on FUSE; have {describe(pid, tid)}"
    return check


def fuse_stuck():
    if os.geteuid() != 0:
        raise Skip("needs root (it mounts a FUSE file system)")
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        raise Skip(f"cannot open /dev/fuse: {e.strerror}")
    capeff = int(status_field(ME, "CapEff") or "0", 16)
    if not capeff & (1 << 21):
        raise Skip("needs CAP_SYS_ADMIN (mount)")
    clean_stale_fuse()
    run_dir = tempfile.mkdtemp(prefix=f"{FUSE_PREFIX}{ME}-")
    mp = os.path.join(run_dir, "mnt")
    POST_REAP.append(lambda: fuse_teardown_after_reap(run_dir, mp))
    os.mkdir(mp)
    conn = []  # fusectl connection number, once known
    PRE_KILL.append(lambda: fuse_teardown_before_kill(mp, conn))

    S = stdin_pipe_child(FUSE_SERVER, mp, FUSE_SOURCE, report=True)
    stop_server = HELD[-1]
    info = S.report()
    if "error" in info:
        if info.get("errno") in (errno.EPERM, errno.EACCES):
            raise Skip(info["error"])
        fail(f"FUSE server: {info['error']}")
    fusefd = info["fuse_fd"]
    mine = [m for m in fuse_mounts() if m[0] == mp]
    if not mine or mine[-1][3] != "fuse" or mine[-1][4] != FUSE_SOURCE:
        fail(f"no fuse mount {FUSE_SOURCE} on {mp} in /proc/self/mountinfo: {mine}")
    conn.append((mine[-1][1] << 20) | mine[-1][2])  # the kernel's dev_t, as fusectl names it

    V = stdin_pipe_child(FUSE_VICTIM, mp, report=True)
    go = HELD[-1]
    vinfo = V.report()           # it has opened MOUNTDIR/stuck
    tid = vinfo["stuck_tid"]
    os.write(stop_server, b"stop\n")
    wait_for(blocked_in(S.pid, READ, fd=fusefd))  # reads only: no longer answering
    os.write(go, b"go\n")
    # The server asleep in read() again means that it has read the request.
    wait_for(in_fuse_wait(V.pid, tid), blocked_in(S.pid, READ, fd=fusefd))
    if state(V.pid, tid) != "D":
        # request_wait_answer() first waits interruptibly (S). A signal moves
        # it on to the killable wait (D) that lasts until the server answers;
        # the kernel also queues a FUSE_INTERRUPT, which the server reads and
        # ignores. (Once the server has read the request, even SIGKILL only
        # moves the thread into an uninterruptible wait: it stays D.)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.tgkill(V.pid, tid, signal.SIGUSR1):
            fail(f"tgkill({V.pid}, {tid}, SIGUSR1): {os.strerror(ctypes.get_errno())}")
    wait_for(in_fuse_wait(V.pid, tid), blocked_in(V.pid, STAT, tid=tid, states="D"),
             blocked_in(S.pid, READ, fd=fusefd))
    return {"target": V.pid, "stuck_tid": tid, "fuse_fd": vinfo["fuse_fd"],
            "mountpoint": mp, "server": S.pid}


SCENARIOS = {
    "pipe-full": pipe_full,
    "parent-waits-undrained": parent_waits_undrained,
    "abba": abba,
    "reads-own-pipe": reads_own_pipe,
    "threads-parked-8": lambda: threads_parked(8),
    "threads-parked-300": lambda: threads_parked(300),
    "epoll-idle": epoll_idle,
    "asyncio-idle": asyncio_idle,
    "wakeup-socketpair-full": lambda: wakeup_full("socketpair"),
    "wakeup-socketpair-full-many-fds": lambda: wakeup_full("socketpair-many-fds"),
    "wakeup-pipe-full": lambda: wakeup_full("pipe"),
    "blocked-read-pipe": blocked_read_pipe,
    "blocked-read-tcp": blocked_read_tcp,
    "tcp-listen": tcp_listen,
    "udp-no-answer": udp_no_answer,
    "unix-full": unix_full,
    "wait-child-busy": lambda: wait_child(BUSY, lambda c: cpu_at_least(c, 10)),
    "wait-child-sleeping": lambda: wait_child("import time\ntime.sleep(10000)\n",
                                              lambda c: blocked_in(c, SLEEP)),
    "two-pipes": two_pipes,
    "supervisor-idle-child": supervisor_idle_child,
    "zombie": zombie,
    "stopped": stopped,
    "traced": traced,
    "sleeping": sleeping,
    "busy": busy,
    "running": running,
    "hostile-names": hostile_names,
    "fuse-stuck": fuse_stuck,
}

# Waits held by someone else (locks, terminals, FIFOs, DNS): holders.py,
# beside this file, with this module's helpers.
import holders  # noqa: E402
SCENARIOS.update(holders.scenarios(sys.modules[__name__]))
# Hangs a cgroup causes (frozen, throttled, out of memory): tests/hangs/cgroups.py.
import cgroups as _cgroups  # noqa: E402 (it needs the helpers above)
SCENARIOS.update(_cgroups.scenarios(sys.modules[__name__]))
# The runtimes agents run on (Node, the JVM, a shell under a pty, TCP):
# tests/hangs/runtimes.py.
import runtimes as _runtimes  # noqa: E402
SCENARIOS.update(_runtimes.scenarios(sys.modules[__name__]))


# --------------------------------------------------------------------------
# controller lifecycle
# --------------------------------------------------------------------------

PRE_KILL = []   # scenario teardown run before the kill (e.g. unmount)
POST_REAP = []  # and after every descendant is reaped (e.g. rmdir)


def run_hooks(hooks):
    while hooks:
        try:
            hooks.pop(0)()
        except Exception as e:  # keep tearing down
            sys.stderr.write(f"hang.py: teardown: {e!r}\n")


def cleanup():
    """SIGKILL every descendant (repeatedly, in case one was mid-fork) and
    reap. As a child subreaper the controller inherits orphaned grandchildren,
    so it reaps those too and leaves no zombies behind. The scenario's own
    teardown hooks run before the kill and after the reaping."""
    run_hooks(PRE_KILL)
    for _ in range(200):
        alive = [p for p in descendants(ME) if not _is_zombie(p)]
        if not alive:
            break
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(block=False)
        time.sleep(0.005)
    _reap(block=True)
    run_hooks(POST_REAP)


def _is_zombie(pid):
    try:
        return state(pid) in "ZX"
    except OSError:
        return True


def _reap(block):
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def hold():
    """Stay alive until stdin reaches EOF; forever if stdin is /dev/null or closed."""
    try:
        st = os.fstat(0)
        null = stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat("/dev/null").st_rdev
    except OSError:
        null = True
    if null:
        while True:
            signal.pause()
    while os.read(0, 65536):
        pass


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main(argv):
    global DEADLINE
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(SCENARIOS))
        return 0
    if len(argv) != 2 or argv[1] not in SCENARIOS:
        sys.stderr.write(f"usage: {argv[0]} SCENARIO|--list\nscenarios: {' '.join(SCENARIOS)}\n")
        return 2
    name = argv[1]
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    start = time.monotonic()
    DEADLINE = start + TIMEOUT
    try:
        try:
            info = SCENARIOS[name]()
        except NotReady as e:
            sys.stderr.write(f"hang.py {name}: not ready after {time.monotonic() - start:.2f}s: {e}\n")
            return 1
        except Skip as e:
            sys.stderr.write(f"hang.py {name}: cannot run here (exit 77): {e}\n")
            return 77
        info.update(scenario=name, controller=ME, arch=ARCH,
                    ready_ms=round((time.monotonic() - start) * 1000))
        try:
            sys.stdout.write(json.dumps(info) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            return 1
        hold()
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
