"""Scenarios on the runtimes agent CLIs really run on: Node (libuv) and
the JVM make their fds non-blocking and park in epoll or futex waits; a
shell under a real pty; TCP connects and non-blocking writes. Registered into
hang.py's SCENARIOS by `scenarios()`, which is given hang.py's own module
(it runs as __main__), so that these use its helpers and its deadline.

Each scenario returns the JSON keys the tests read; see README.md.
"""

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

h = None  # hang.py, set by scenarios()


def need(tool):
    """The path of a tool a scenario needs; Skip (exit 77) without it."""
    path = shutil.which(tool)
    if path is None:
        raise h.Skip(f"{tool} is not installed")
    return path


def io_field(pid, key):
    for line in h.read_bytes(f"/proc/{pid}/io").decode().splitlines():
        k, _, v = line.partition(":")
        if k == key:
            return int(v)
    return None


def wrote_at_least(pid, n):
    def check():
        have = io_field(pid, "wchar")
        return None if have is not None and have >= n else f"want {pid} to have written {n} bytes; have {have}"
    return check


def node_parent_waits_undrained():
    """Seed 000 with a Node agent CLI: a Python parent waits for a Node child
    whose stdout it never reads; the child's write is pending in epoll."""
    node = need("node")
    P = h.Py("""
        import subprocess, sys
        p = subprocess.Popen([sys.argv[1], "-e", 'process.stdout.write("x".repeat(1 << 20))'],
                             stdout=subprocess.PIPE)
        report(child=p.pid)
        p.wait()  # never reads p.stdout
    """, node, report=True)
    C = P.report()["child"]
    h.wait_for(h.blocked_in(C, h.EPOLL), wrote_at_least(C, 65536), h.blocked_in(P.pid, h.WAIT))
    return {"parent": P.pid, "child": C}


def parent_polls_undrained():
    """Seed 000 as subprocess runs it with a timeout: the parent polls
    (Popen.wait(timeout=...) sleeps between waitpid calls) and never reads
    the child's stdout, which the child has filled."""
    child = """
        import sys
        sys.stdout.write("x" * (1 << 20))
        sys.stdout.flush()
    """
    P = h.Py("""
        import subprocess, sys
        p = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE)
        report(child=p.pid)
        p.wait(timeout=3600)   # polls; never reads p.stdout
    """, h.pycode(child), report=True)
    C = P.report()["child"]
    h.wait_for(h.blocked_in(C, h.WRITE, fd=1))
    return {"parent": P.pid, "child": C}


def node_child_awaits_input():
    """Seed 002's shape: a Python parent sends a Node child half a line and
    blocks reading its reply; the child's event loop waits on stdin for the
    rest of the line."""
    node = need("node")
    code = """
        const rl = require("readline").createInterface({input: process.stdin});
        rl.on("line", (line) => console.log("ok " + line.length));
    """
    P = h.Py("""
        import subprocess, sys
        p = subprocess.Popen([sys.argv[1], "-e", sys.argv[2]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        report(child=p.pid)
        p.stdin.write(b'{"type": "user", "message": "no newline')
        p.stdin.flush()
        p.stdout.readline()   # the reply comes after a whole line
    """, node, textwrap.dedent(code), report=True)
    C = P.report()["child"]
    h.wait_for(h.blocked_in(C, h.EPOLL), h.blocked_in(P.pid, h.READ))
    return {"parent": P.pid, "child": C}

def node_writes_child_stdin():
    """A Node parent writes 1 MiB into its child's stdin (a unix socketpair,
    as Node's stdio 'pipe' is) and the child never reads it."""
    node = need("node")
    r, w = os.pipe()
    env = dict(os.environ, WHYSTUCK_REPORT_FD=str(w))
    code = """
        const fs = require("fs");
        const c = require("child_process").spawn(process.argv[1], ["-c", "import time; time.sleep(100000)"],
                                                  {stdio: ["pipe", "ignore", "inherit"]});
        const fd = Number(process.env.WHYSTUCK_REPORT_FD);
        fs.writeSync(fd, JSON.stringify({child: c.pid}));
        fs.closeSync(fd);
        c.stdin.write(Buffer.alloc(1 << 20));
    """
    parent = subprocess.Popen([node, "-e", textwrap.dedent(code), sys.executable],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              pass_fds=(w,), env=env)
    os.close(w)
    data = b""
    while True:
        ready, _, _ = select.select([r], [], [], h.remaining())
        if not ready:
            h.fail(f"no report from node {parent.pid}; {h.describe(parent.pid)}")
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    C = json.loads(data)["child"]
    h.wait_for(h.blocked_in(parent.pid, h.EPOLL), wrote_at_least(parent.pid, 65536), h.blocked_in(C, h.SLEEP))
    return {"parent": parent.pid, "child": C}


def timed_futex():
    T = h.Py("""
        import threading
        threading.Event().wait(3600)
    """)
    h.wait_for(h.blocked_in(T.pid, h.FUTEX))
    return {"target": T.pid}


JAVA_IDLE = """
public class Idle {
    public static void main(String[] args) throws Exception {
        Object lock = new Object();
        synchronized (lock) {
            lock.wait();   // untimed: only another thread could notify it
        }
    }
}
"""


def jvm_idle():
    """A JVM whose main thread waits untimed in Object.wait()."""
    java = need("java")
    src_dir = tempfile.mkdtemp(prefix="whystuck-java-")
    h.POST_REAP.append(lambda: shutil.rmtree(src_dir, ignore_errors=True))
    src = os.path.join(src_dir, "Idle.java")
    with open(src, "w") as f:
        f.write(JAVA_IDLE)
    J = subprocess.Popen([java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", src],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    base = []

    def settled():
        # The source launcher compiles first: wait until the JVM has many
        # threads and has burnt no CPU for half a second.
        if len(h.tids(J.pid)) < 8:
            return f"want a started JVM; have {len(h.tids(J.pid))} threads"
        now = time.monotonic()
        ticks = h.cpu_ticks(J.pid)
        if not base or base[0][1] != ticks:
            base[:] = [(now, ticks)]
            return "JVM still busy starting"
        return None if now - base[0][0] >= 0.5 else "JVM settling"
    h.DEADLINE += 20  # the JVM compiles the source first
    h.wait_for(settled)
    return {"target": J.pid}


def interactive_shell_stopped_job():
    """An interactive bash under a real pty (script(1)): `cat &` stops on
    SIGTTIN in the background while `sleep` runs in the foreground."""
    script = need("script")
    bash = need("bash")
    S = subprocess.Popen([script, "-qfc", f"{bash} --norc --noprofile -i", "/dev/null"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    S.stdin.write(b"cat &\n")
    S.stdin.flush()
    time.sleep(0.3)
    S.stdin.write(b"sleep 100000\n")
    S.stdin.flush()
    h.HELD.append(S.stdin)
    found = {}

    def jobs_in_place():
        shells = [p for p in h.descendants(S.pid) if h.read_bytes(f"/proc/{p}/comm").strip() == b"bash"]
        if not shells:
            return "no bash under script yet"
        kids = {h.read_bytes(f"/proc/{p}/comm").strip(): p for p in h.descendants(shells[0])}
        if b"cat" not in kids or b"sleep" not in kids:
            return f"want cat and sleep under bash; have {kids}"
        if h.state(kids[b"cat"]) != "T":
            return f"want cat stopped; have {h.describe(kids[b'cat'])}"
        found.update(shell=shells[0], cat=kids[b"cat"], sleep=kids[b"sleep"])
        return h.blocked_in(shells[0], h.WAIT)() or h.blocked_in(kids[b"sleep"], h.SLEEP)()
    h.wait_for(jobs_in_place)
    return dict(found)


def pipeline():
    """A 7-stage shell pipeline, all blocked reading (but the first)."""
    sh = subprocess.Popen(["sh", "-c", "sleep 100000 | cat | cat | cat | cat | cat | cat; :"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def seven():
        kids = h.descendants(sh.pid)
        if len(kids) != 7:
            return f"want 7 processes under sh; have {len(kids)}"
        cats = [p for p in kids if h.read_bytes(f"/proc/{p}/comm").strip() == b"cat"]
        return next((why for why in (h.blocked_in(c, h.READ)() for c in cats) if why), None)
    h.wait_for(seven, h.blocked_in(sh.pid, h.WAIT))
    return {"shell": sh.pid, "stages": sorted(h.descendants(sh.pid))}


def connect_to_full_listener():
    """A listener that never accepts, its accept queue full; a client whose
    SYN is dropped waits in connect (SYN_SENT, retransmitting)."""
    L = h.Py("""
        import socket, time
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        report(port=ls.getsockname()[1])
        time.sleep(100000)   # never accepts
    """, report=True)
    port = L.report()["port"]
    # Fill the accept queue (a backlog of 0 takes one; a second may wait in
    # SYN_RECV): these connects complete, and are never accepted.
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        h.HELD.append(c)
    time.sleep(0.2)
    T = h.Py("""
        import socket, sys
        s = socket.socket()
        report(fd=s.fileno())
        s.connect(("127.0.0.1", int(sys.argv[1])))   # the SYN is dropped: waits
    """, str(port), report=True)
    fd = T.report()["fd"]
    h.wait_for(h.blocked_in(T.pid, ("connect",), fd=fd), h.blocked_in(L.pid, h.SLEEP))
    return {"target": T.pid, "fd": fd, "listener": L.pid, "port": port}


def tcp_pending_write():
    """A non-blocking writer (as an event loop is) whose TCP peer never
    reads: its send buffer is full and it waits in epoll for EPOLLOUT."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    h.HELD.append(ls)
    port = ls.getsockname()[1]
    T = h.Py("""
        import select, socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        s.setblocking(False)
        report(fd=s.fileno())
        chunk = b"x" * 65536
        while True:
            try:
                s.send(chunk)
            except BlockingIOError:
                break
        ep = select.epoll()
        ep.register(s.fileno(), select.EPOLLOUT)
        while True:
            ep.poll()
    """, str(port), report=True)
    fd = T.report()["fd"]
    ls.settimeout(h.remaining())
    conn, _ = ls.accept()
    h.HELD.append(conn)  # accepted, never read
    h.wait_for(h.blocked_in(T.pid, h.EPOLL))
    return {"target": T.pid, "fd": fd, "port": port, "reader": h.ME}


def scenarios(hang):
    """The scenarios of this file, by name, for hang.py's SCENARIOS."""
    global h
    h = hang
    return {
        "node-parent-waits-undrained": node_parent_waits_undrained,
        "node-writes-child-stdin": node_writes_child_stdin,
        "timed-futex": timed_futex,
        "jvm-idle": jvm_idle,
        "interactive-shell-stopped-job": interactive_shell_stopped_job,
        "pipeline": pipeline,
        "connect-to-full-listener": connect_to_full_listener,
        "tcp-pending-write": tcp_pending_write,
        "parent-polls-undrained": parent_polls_undrained,
        "node-child-awaits-input": node_child_awaits_input,
    }
