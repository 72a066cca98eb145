#!/usr/bin/env python3
"""Benchmark whystuck against the physical floor and the tools it replaces.

    python3 bench/run.py [--runs N] [SCENARIO...]

Builds whystuck in release mode and the floor (`../shared/bench/floor.c`, a C
program doing the minimal /proc and sock_diag reads, built into target/
with `gcc -O2 -pthread`), creates a reproducible load, then runs each
command N times (alternating between the commands, so drift hits them all
alike) and prints the median wall time, the spread (fastest to slowest run),
the median peak RSS of each, and each command's time relative to whystuck.
Commands that are not installed are skipped. Needs GNU time (/usr/bin/time,
Debian package `time`) for peak RSS.

The floor is run in its matched mode: `-P none -p PID` for one process, `-P
first` for a scan (the pipe probes whystuck also does), with `-x
io,cmdline,netns` (the io, cmdline and ns/net reads whystuck also does);
single-threaded (the target) and with `-t 2` (for reference).

Scenarios:
  fds    one process with 10,000 open fds: 5,000 pipe ends, 4,800 unix
         socketpair ends, 200 TCP ends on loopback (100 connections).
  shared     2,000 processes sharing the same 20 fds (5 pipes and 5 unix
         socketpairs, both ends, inherited from their parent).
  processes  2,000 processes each with its own 20 fds (5 pipes, 5 unix
         socketpairs), and `whystuck PID` (two samples 1 s apart) on one of
         them.
  scaling  peak RSS at 5,000 processes, and the time at 5,000 against 2,000,
         beside the floor's (the kernel's cost per process grows too).
  watch  `whystuck watch --every 1s` on 100 idle processes for 30 s: CPU
         time per second, beside `ps` run once a second on the same pids.
  scale  the limits: one process with as many fds as `ulimit -Hn` allows,
         diagnosed by default and with --deep (every fd read in depth); one
         with 10,000 threads parked on a futex, beside `ps -L`. Each run's
         report is checked to be complete (nothing skipped for time).

Each of fds, shared and processes compares `whystuck --interval 0` with the
floor, `ps -eLo pid,tid,stat,wchan; ss -xtanp` back to back and `lsof -nP`
(`-p PID` for one process).
"""
import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHYSTUCK = os.path.join(ROOT, "target", "release", "whystuck")
FLOOR_SOURCE = os.path.join(ROOT, "..", "shared", "bench", "floor.c")
FLOOR = os.path.join(ROOT, "target", "bench", "floor")
# The reads whystuck does beyond the floor's defaults (see floor.c's header).
FLOOR_EXTRA = ["-x", "io,cmdline,netns"]
PS_SS = ["sh", "-c", "ps -eLo pid,tid,stat,wchan; ss -xtanp"]


def build_floor():
    """Build the floor into target/bench; False when it cannot be."""
    if not (os.path.exists(FLOOR_SOURCE) and shutil.which("gcc")):
        print(f"(no floor: {FLOOR_SOURCE} or gcc missing)")
        return False
    os.makedirs(os.path.dirname(FLOOR), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-pthread", "-o", FLOOR, FLOOR_SOURCE], check=True)
    return True


def hold_fds(pipes, socketpairs, tcp_connections):
    """Fork a process that opens the fds, then sleeps. Returns its pid."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        os.read(ready_r, 1)
        os.close(ready_r)
        return pid
    os.close(ready_r)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    keep = []
    for _ in range(pipes // 2):
        keep.extend(os.pipe())
    for _ in range(socketpairs // 2):
        keep.extend(socket.socketpair())
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(tcp_connections)
    for _ in range(tcp_connections):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        keep.extend([client, server])
    os.write(ready_w, b"!")
    os.close(ready_w)
    while True:
        time.sleep(3600)


def measure(argv):
    """Wall seconds and peak RSS (KiB) of one run, output discarded.

    Peak RSS comes from GNU time: the kernel's maxrss of a process forked
    from this (large) Python process would include Python's own pages.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M", *argv],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        return wall, int(report.read().split()[-1])


# The targets, as each scenario measures them: (what, figure, met).
TARGETS = []
# A second whystuck to run beside the first (--baseline), or None.
BASELINE = None


def target(what, figure, met):
    TARGETS.append((what, figure, met))


def compare(title, commands, runs):
    """Run the commands alternately, `runs` times each; print the table and
    return {label: (median wall s, median peak RSS KiB)}. The first command
    is whystuck, the base of the ratios."""
    commands = [(label, argv) for label, argv in commands if shutil.which(argv[0])]
    results = {label: ([], []) for label, _ in commands}
    for _ in range(runs):
        for label, argv in commands:
            wall, rss = measure(argv)
            results[label][0].append(wall)
            results[label][1].append(rss)
    base = statistics.median(results[commands[0][0]][0])
    print(f"\n{title}  ({os.cpu_count()} cores, median of {runs} runs, alternated)")
    print(f"  {'command':<52} {'wall':>9} {'spread':>17} {'peak RSS':>9} {'time / whystuck':>16}")
    medians = {}
    for label, _ in commands:
        walls, rsss = results[label]
        wall, rss = statistics.median(walls), statistics.median(rsss)
        medians[label] = (wall, rss)
        spread = f"{min(walls) * 1000:.1f}-{max(walls) * 1000:.1f}"
        print(f"  {label:<52} {wall * 1000:>7.1f}ms {spread:>15}ms {rss / 1024:>6.1f}MiB {wall / base:>15.2f}x")
    return medians


def against_floor(label, target, pid=None):
    """The usual commands on a load: whystuck, the floor (matched, one and
    two threads), ps and ss back to back, lsof."""
    one = ["-p", str(pid)] if pid else []
    pipes = ["-P", "none"] if pid else ["-P", "first"]
    argv = ["--interval", "0", "--fail-on", "never", *target]
    commands = [(f"whystuck --interval 0 {label}", [WHYSTUCK, *argv])]
    if BASELINE:
        commands.append((f"baseline --interval 0 {label}", [BASELINE, *argv]))
    if os.path.exists(FLOOR):
        matched = " ".join(pipes + FLOOR_EXTRA + (["-p", "PID"] if pid else []))
        commands.append((f"floor {matched}", [FLOOR, *pipes, *FLOOR_EXTRA, *one]))
        commands.append((f"floor -t 2 {matched}", [FLOOR, "-t", "2", *pipes, *FLOOR_EXTRA, *one]))
    commands.append(("ps -eLo pid,tid,stat,wchan; ss -xtanp", PS_SS))
    commands.append(("lsof -nP" + (" -p PID" if pid else ""), ["lsof", "-nP", *one]))
    return commands


def check_targets(load, medians, floor_ratio):
    """Record the targets of a load measured by `against_floor`."""
    (_, (wall, rss)), *others = medians.items()
    beside = dict(others)
    floor = next((m for label, m in beside.items() if label.startswith("floor -P")), None)
    if floor:
        ratio = wall / floor[0]
        target(f"{load}: at most {floor_ratio}x the matched single-threaded floor", f"{ratio:.2f}x", ratio <= floor_ratio)
    ps_ss = beside.get("ps -eLo pid,tid,stat,wchan; ss -xtanp")
    if ps_ss:
        target(f"{load}: faster than ps and ss back to back", f"they take {ps_ss[0] / wall:.2f}x its time", wall < ps_ss[0])
    lsof = next((m for label, m in beside.items() if label.startswith("lsof")), None)
    if lsof:
        target(f"{load}: at least 3x faster than lsof", f"lsof takes {lsof[0] / wall:.2f}x its time", lsof[0] >= 3 * wall)
    return wall, rss


def bench_fds(runs):
    pid = hold_fds(pipes=5000, socketpairs=4800, tcp_connections=100)
    try:
        count = len(os.listdir(f"/proc/{pid}/fd"))
        medians = compare(
            f"one process with {count} fds (pipes, unix socketpairs, loopback TCP)",
            against_floor("PID", [str(pid)], pid=pid),
            runs,
        )
        check_targets(f"one process, {count} fds", medians, 1.3)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def bench_scale(runs):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # Room for stdio and the listener; the rest pipes and socketpairs.
    tcp, socketpairs = 100, 4800
    pipes = (hard - 16 - 2 * tcp - socketpairs) // 2 * 2
    pid = hold_fds(pipes=pipes, socketpairs=socketpairs, tcp_connections=tcp)
    try:
        count = len(os.listdir(f"/proc/{pid}/fd"))
        default = [WHYSTUCK, "--fail-on", "never", str(pid)]
        deep = [WHYSTUCK, "--deep", "--fail-on", "never", str(pid)]
        check_complete("whystuck PID", default + ["--json"], "fds", count)
        check_complete("whystuck --deep PID", deep + ["--json"], "fds", count)
        compare(
            f"one process with {count} fds, the hard limit ({hard})",
            [
                ("whystuck --interval 0 PID", [WHYSTUCK, "--interval", "0", *default[1:]]),
                ("whystuck --interval 0 --deep PID", [WHYSTUCK, "--interval", "0", *deep[1:]]),
                ("whystuck PID (two samples 1s apart)", default),
                ("ls -l /proc/PID/fd", ["ls", "-l", f"/proc/{pid}/fd"]),
                ("lsof -nP -p PID", ["lsof", "-nP", "-p", str(pid)]),
            ],
            runs,
        )
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)

    threads = subprocess.Popen([sys.executable, "-c", THREADS, "10000"], stdout=subprocess.PIPE, text=True)
    try:
        pid = threads.stdout.readline().strip()
        with open(f"/proc/{pid}/status") as f:
            count = next(int(l.split()[1]) for l in f if l.startswith("Threads:"))
        argv = [WHYSTUCK, "--fail-on", "never", pid]
        check_complete("whystuck PID", argv + ["--json"], "threads", count)
        compare(
            f"one process with {count} threads",
            [
                ("whystuck --interval 0 PID", [WHYSTUCK, "--interval", "0", *argv[1:]]),
                ("whystuck PID (two samples 1s apart)", argv),
                ("ps -Lo pid,tid,stat,wchan -p PID", ["ps", "-Lo", "pid,tid,stat,wchan", "-p", pid]),
            ],
            runs,
        )
    finally:
        threads.kill()
        threads.wait()


# 10,000 threads waiting on one Event (a futex), small stacks.
THREADS = """
import os, sys, threading, time
threading.stack_size(64 * 1024)
event = threading.Event()
for _ in range(int(sys.argv[1])):
    threading.Thread(target=event.wait, daemon=True).start()
print(os.getpid(), flush=True)
time.sleep(3600)
"""


def check_complete(label, argv, what, expected):
    """Run once and check the report is whole: all `expected` fds or threads
    (`what`) reported, and no read given up for lack of time."""
    report = json.loads(subprocess.run(argv, capture_output=True, text=True).stdout)
    process = report["processes"][0]
    got = len(process["threads"]) if what == "threads" else process["fds"]["count"]
    timed_out = [u for u in process["unavailable"] if u["kind"] == "timed_out"]
    print(f"  {label}: {process['verdict']}, "
          f"{got} of {expected} {what} reported, {len(timed_out)} reads timed out")
    if got != expected or timed_out:
        sys.exit(f"{label}: the report is incomplete; its timing would mean nothing")


def spawn_many(count, shared=False, pipes_per_process=5, socketpairs_per_process=5):
    """Fork `count` processes holding 20 fds each (pipes and unix
    socketpairs, both ends), parked in pause(): each its own, or with
    `shared` the same 20, opened once by their parent. Returns the pid of
    their parent."""
    ready_r, ready_w = os.pipe()
    parent = os.fork()
    if parent:
        os.close(ready_w)
        for _ in range(count):
            os.read(ready_r, 1)
        os.close(ready_r)
        return parent
    os.close(ready_r)
    import signal
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])

    def open_fds():
        keep = [os.pipe() for _ in range(pipes_per_process)]
        return keep + [socket.socketpair() for _ in range(socketpairs_per_process)]

    inherited = open_fds() if shared else []
    children = []
    for _ in range(count):
        child = os.fork()
        if child == 0:
            keep = inherited or open_fds()
            os.write(ready_w, b"!")
            os.close(ready_w)
            while True:
                signal.pause()
        children.append(child)
    # On SIGTERM, kill and reap every child, so the next load starts on a
    # host without this one's zombies.
    signal.sigwait([signal.SIGTERM])
    for child in children:
        os.kill(child, signal.SIGKILL)
    for child in children:
        os.waitpid(child, 0)
    os._exit(0)


def kill_tree(parent):
    os.kill(parent, 15)
    os.waitpid(parent, 0)


def first_child(parent):
    with open(f"/proc/{parent}/task/{parent}/children") as f:
        return int(f.read().split()[0])


def bench_many(runs, shared, count=2000):
    parent = spawn_many(count, shared=shared)
    try:
        procs = sum(1 for d in os.listdir("/proc") if d.isdigit())
        what = "sharing the same 20 fds" if shared else "with 20 fds each, its own"
        medians = compare(
            f"{count} processes {what} ({procs} processes on the host)",
            against_floor("--all", ["--all"]),
            runs,
        )
        load = f"{count} processes {'sharing 20 fds' if shared else 'with their own 20 fds'}"
        _, rss = check_targets(load, medians, 1.0)
        target(f"{load}: peak RSS under 16 MiB", f"{rss / 1024:.1f} MiB", rss < 16 * 1024)
        if not shared:
            # One of them, with the default interval: two samples 1 s apart.
            pid = str(first_child(parent))
            argv = ["--fail-on", "never", pid]
            commands = [("whystuck PID", [WHYSTUCK, *argv])]
            if BASELINE:
                commands.append(("baseline PID", [BASELINE, *argv]))
            single = compare(
                f"one of the {count} processes, two samples 1 s apart (target: at most 1,025 ms)",
                commands,
                runs,
            )
            wall = single["whystuck PID"][0]
            target(f"whystuck PID (1 s interval) beside {count} processes: at most 1,025 ms",
                   f"{wall * 1000:.1f} ms", wall <= 1.025)
    finally:
        kill_tree(parent)


def bench_shared(runs):
    bench_many(runs, shared=True)


def bench_processes(runs):
    bench_many(runs, shared=False)


def bench_scaling(runs):
    """Peak memory at 5,000 processes, and time at 5,000 against 2,000,
    beside the single-threaded floor's: the kernel's own cost per process
    grows with the number of processes, so whystuck's time is linear when it
    grows as the floor's does."""
    times, peaks, floor = {}, {}, {}
    for count in (2000, 5000):
        parent = spawn_many(count)
        try:
            argv = [WHYSTUCK, "--all", "--interval", "0", "--fail-on", "never"]
            report = json.loads(subprocess.run(argv + ["--json"], capture_output=True, text=True).stdout)
            diagnosed = [p for p in report["processes"] if not p["summary"].startswith("not looked at")]
            print(f"\n  whystuck --all: {len(diagnosed)} of {len(report['processes'])} processes diagnosed "
                  f"(the {count} of the load among them)")
            if not len(diagnosed) == len(report["processes"]) > count:
                sys.exit(f"whystuck --all at {count}: the report is incomplete; its timing would mean nothing")
            commands = [("whystuck --interval 0 --all", argv)]
            if os.path.exists(FLOOR):
                commands.append(("floor -P first " + " ".join(FLOOR_EXTRA), [FLOOR, "-P", "first", *FLOOR_EXTRA]))
            medians = compare(f"{count} processes with 20 fds each, its own", commands, runs)
            (times[count], peaks[count]), *rest = medians.values()
            floor[count] = rest[0][0] if rest else None
        finally:
            kill_tree(parent)
    growth = times[5000] / times[2000]
    print(f"\n  5,000 / 2,000 processes: {growth:.2f}x the time (2.5x would be linear)")
    if floor[2000] and floor[5000]:
        floor_growth = floor[5000] / floor[2000]
        print(f"  the floor's: {floor_growth:.2f}x")
        target("5,000 against 2,000 processes: time grows as the floor's (at most 1.1x its growth)",
               f"{growth:.2f}x against the floor's {floor_growth:.2f}x", growth <= 1.1 * floor_growth)
    else:
        target("5,000 against 2,000 processes: time linear (at most 2.7x)", f"{growth:.2f}x", growth <= 2.7)
    rss_growth = peaks[5000] / peaks[2000]
    target("5,000 against 2,000 processes: peak RSS linear (at most 2.5x)", f"{rss_growth:.2f}x", rss_growth <= 2.5)


def cpu_seconds(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_watch(runs, processes=100, seconds=30):
    """The cost of `whystuck watch` on 100 idle processes, every second."""
    sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(processes)]
    try:
        pids = [str(p.pid) for p in sleepers]
        watch = subprocess.Popen([WHYSTUCK, "watch", "--every", "1s", "--format", "ndjson", *pids],
                                 stdout=subprocess.DEVNULL)
        time.sleep(2)  # past the first full diagnosis
        start_cpu, start = cpu_seconds(watch.pid), time.monotonic()
        time.sleep(seconds)
        used, wall = cpu_seconds(watch.pid) - start_cpu, time.monotonic() - start
        watch.kill()
        watch.wait()
        # The same load watched the old way: ps once a second.
        ps_cpu = 0.0
        for _ in range(5):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(["ps", "-o", "pid,stat,wchan", "-p", ",".join(pids)], stdout=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            ps_cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"\nwhystuck watch --every 1s on {processes} idle processes, measured over {wall:.0f}s ({os.cpu_count()} cores)")
        print(f"  whystuck watch             {used * 1000 / wall:6.2f} ms CPU per second = {used / wall * 100:.2f}% of one core")
        print(f"  ps -o pid,stat,wchan -p .. {ps_cpu / 5 * 1000:6.2f} ms CPU per run     = {ps_cpu / 5 * 100:.2f}% of one core if run every second")
    finally:
        for p in sleepers:
            p.kill()
            p.wait()


SCENARIOS = {
    "fds": bench_fds,
    "shared": bench_shared,
    "processes": bench_processes,
    "scaling": bench_scaling,
    "watch": bench_watch,
    "scale": bench_scale,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", metavar="BINARY",
                        help="another whystuck binary, run beside this one (an earlier build)")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    args = parser.parse_args()
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r} (choose from {', '.join(SCENARIOS)})")
    global BASELINE
    BASELINE = args.baseline and os.path.abspath(args.baseline)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    build_floor()
    for name in args.scenarios or SCENARIOS:
        SCENARIOS[name](args.runs)
    if TARGETS:
        print("\nTargets")
        for what, figure, met in TARGETS:
            print(f"  {'met    ' if met else 'NOT MET'}  {what}: {figure}")


if __name__ == "__main__":
    sys.exit(main())
