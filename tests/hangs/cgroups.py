"""Hangs a process's cgroup causes, for hang.py (root only, exit 77
otherwise): a sleep frozen by the v1 or the v2 freezer, a busy loop held
to 5% of a CPU by a quota (and the same loop with none), a v1 memory cgroup
out of memory with its OOM killer disabled, and (where the v2 memory
controller is enabled) an allocation loop throttled above memory.high.

Each scenario makes its own cgroup, `whystuck-test-<controller pid>-<name>`,
right under the hierarchy's root, and removes it on teardown (thawed, its
OOM killer enabled and its processes reaped first). Cgroups a killed
controller left behind are removed by the next run that makes one there.

hang.py passes itself in (`scenarios(hang)`): Py, wait_for, Skip and the
teardown hooks are its own.
"""

import errno
import os
import sys
import time

PREFIX = "whystuck-test-"
SLEEP_CODE = "import time\ntime.sleep(100000)\n"


def mounts():
    """[(version, mountpoint, v1 controllers)] of the cgroup mounts of this
    mount namespace that show their hierarchy's root."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f.read().decode("utf-8", "surrogateescape").splitlines():
            left, _, right = line.partition(" - ")
            fields, rest = left.split(" "), right.split(" ")
            if len(fields) < 5 or len(rest) < 3 or fields[3] != "/":
                continue
            point = fields[4].replace("\\040", " ")
            if rest[0] == "cgroup":
                out.append((1, point, rest[2].split(",")))
            elif rest[0] == "cgroup2":
                out.append((2, point, []))
    return out


def v1(controller):
    return next((p for v, p, c in mounts() if v == 1 and controller in c), None)


def v2(controller=None):
    """The v2 mount; with `controller`, only if its root lets children use it."""
    point = next((p for v, p, _ in mounts() if v == 2), None)
    if point is None or controller is None:
        return point
    try:
        with open(os.path.join(point, "cgroup.subtree_control")) as f:
            return point if controller in f.read().split() else None
    except OSError:
        return None


class Cgroup:
    def __init__(self, hang, root, name):
        if os.geteuid() != 0:
            raise hang.Skip("needs root (it makes cgroups)")
        self.hang = hang
        clean_stale(hang, root)
        self.dir = os.path.join(root, f"{PREFIX}{hang.ME}-{name}")
        try:
            os.mkdir(self.dir)
        except OSError as e:
            raise hang.Skip(f"cannot make a cgroup in {root}: {e.strerror}")
        self.path = "/" + os.path.basename(self.dir)
        hang.POST_REAP.append(lambda: remove(self.dir))

    def file(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, value):
        with open(self.file(name), "w") as f:
            f.write(value)

    def read(self, name):
        with open(self.file(name)) as f:
            return f.read()

    def add(self, pid):
        self.write("cgroup.procs", str(pid))

    def keyed(self, name, key):
        for line in self.read(name).splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v)
        return None


def unstick(directory):
    """Thaw it and let its OOM killer act, whichever applies."""
    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0"), ("memory.oom_control", "0")):
        try:
            with open(os.path.join(directory, name), "w") as f:
                f.write(value)
        except OSError:
            pass


def remove(directory):
    unstick(directory)
    for attempt in range(50):
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == 49:
                raise
            time.sleep(0.02)  # its last process is still exiting


def clean_stale(hang, root):
    for name in os.listdir(root):
        owner = name[len(PREFIX):].split("-")[0] if name.startswith(PREFIX) else ""
        if not owner.isdigit() or hang.ours_alive(int(owner)):
            continue
        directory = os.path.join(root, name)
        unstick(directory)
        try:
            with open(os.path.join(directory, "cgroup.procs")) as f:
                for pid in f.read().split():
                    try:
                        os.kill(int(pid), 9)
                    except ProcessLookupError:
                        pass
            remove(directory)
        except OSError as e:
            sys.stderr.write(f"hang.py: stale cgroup {directory}: {e}\n")


def frozen(hang, version):
    root = {1: v1("freezer"), 2: v2()}[version]
    if root is None:
        raise hang.Skip(f"no v{version} freezer is mounted")
    cg = Cgroup(hang, root, f"frozen-v{version}")
    T = hang.Py(SLEEP_CODE)
    cg.add(T.pid)
    hang.wait_for(hang.blocked_in(T.pid, hang.SLEEP))
    if version == 1:
        hang.PRE_KILL.append(lambda: cg.write("freezer.state", "THAWED"))
        cg.write("freezer.state", "FROZEN")
        ready = lambda: None if cg.read("freezer.state").strip() == "FROZEN" else "not FROZEN yet"
    else:
        hang.PRE_KILL.append(lambda: cg.write("cgroup.freeze", "0"))
        cg.write("cgroup.freeze", "1")
        ready = lambda: None if cg.keyed("cgroup.events", "frozen") == 1 else "not frozen yet"
    hang.wait_for(ready)
    return {"target": T.pid, "cgroup": cg.path, "dir": cg.dir, "version": version}


def busy_loop(hang, quota_us):
    """The busy loop in a cgroup of its own, with a quota of `quota_us`
    per 100 ms period (None: no quota)."""
    name = "throttled" if quota_us else "unthrottled"
    if v1("cpu"):
        cg = Cgroup(hang, v1("cpu"), name)
        cg.write("cpu.cfs_period_us", "100000")
        cg.write("cpu.cfs_quota_us", str(quota_us or -1))
        version = 1
    elif v2("cpu"):
        cg = Cgroup(hang, v2("cpu"), name)
        cg.write("cpu.max", f"{quota_us or 'max'} 100000")
        version = 2
    else:
        raise hang.Skip("no cpu controller: neither a v1 cpu hierarchy nor cpu enabled in v2")
    T = hang.Py(hang.BUSY)
    cg.add(T.pid)
    if quota_us:
        def throttled():
            n = cg.keyed("cpu.stat", "nr_throttled") or 0
            return None if n >= 3 else f"throttled {n} times"
        hang.wait_for(throttled)
    else:
        hang.wait_for(hang.cpu_at_least(T.pid, hang.cpu_ticks(T.pid) + 10))
    return {"target": T.pid, "cgroup": cg.path, "dir": cg.dir, "version": version}


HOG = """
    import os
    os.read(0, 1)                    # in its cgroup first
    hog = []
    while True:
        hog.append(bytearray(1 << 20))
"""


def wchan_is(hang, pid, name):
    def check():
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        return None if wchan == name else f"want wchan {name}; have {hang.describe(pid)}"
    return check


def memcg_oom(hang):
    root = v1("memory")
    if root is None:
        raise hang.Skip("no v1 memory hierarchy is mounted")
    cg = Cgroup(hang, root, "memcg-oom")
    cg.write("memory.limit_in_bytes", str(32 << 20))
    cg.write("memory.oom_control", "1")    # no OOM killer: the task waits
    hang.PRE_KILL.append(lambda: unstick(cg.dir))
    T = hang.stdin_pipe_child(HOG)
    cg.add(T.pid)
    os.write(hang.HELD[-1], b"g")
    hang.wait_for(wchan_is(hang, T.pid, "mem_cgroup_oom_synchronize"),
                  lambda: None if cg.keyed("memory.oom_control", "under_oom") == 1 else "not under_oom")
    return {"target": T.pid, "cgroup": cg.path, "dir": cg.dir, "version": 1}


def memory_high(hang):
    root = v2("memory")
    if root is None:
        raise hang.Skip("the v2 memory controller is not enabled for the root's children")
    cg = Cgroup(hang, root, "memory-high")
    cg.write("memory.high", str(16 << 20))
    T = hang.stdin_pipe_child(HOG)
    cg.add(T.pid)
    os.write(hang.HELD[-1], b"g")
    hang.wait_for(wchan_is(hang, T.pid, "mem_cgroup_handle_over_high"))
    return {"target": T.pid, "cgroup": cg.path, "dir": cg.dir, "version": 2}


def scenarios(hang):
    return {
        "frozen": lambda: frozen(hang, 1 if v1("freezer") else 2),
        "frozen-v1": lambda: frozen(hang, 1),
        "frozen-v2": lambda: frozen(hang, 2),
        "throttled": lambda: busy_loop(hang, 5000),
        "unthrottled": lambda: busy_loop(hang, None),
        "memcg-oom": lambda: memcg_oom(hang),
        "memory-high": lambda: memory_high(hang),
    }
