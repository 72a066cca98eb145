#!/usr/bin/env python3
"""Benchmark whystuck against the tools it replaces, on the same load.

    python3 bench/run.py [--runs N] [SCENARIO...]

Builds whystuck in release mode, creates a reproducible load, then runs each
command N times (alternating between the commands, so drift hits them all
alike) and prints the median wall time and the median peak RSS of each, with
the ratio to whystuck. Commands that are not installed are skipped. Needs
GNU time (/usr/bin/time, Debian package `time`) for peak RSS.

Scenarios:
  fds    one process with 10,000 open fds: 5,000 pipe ends, 4,800 unix
         socketpair ends, 200 TCP ends on loopback (100 connections).
  processes  2,000 processes with 20 fds each: `whystuck --all --interval 0`
         beside ps -eLo, ss -xtanp, both back to back, and lsof -nP.
  scaling  peak RSS at 5,000 processes, and the time at 5,000 against 2,000.
  watch  `whystuck watch --every 1s` on 100 idle processes for 30 s: CPU
         time per second, beside `ps` run once a second on the same pids.
  scale  the limits: one process with as many fds as `ulimit -Hn` allows,
         diagnosed by default and with --deep (every fd read in depth); one
         with 10,000 threads parked on a futex, beside `ps -L`. Each run's
         report is checked to be complete (nothing skipped for time).
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


def compare(title, commands, runs):
    commands = [(label, argv) for label, argv in commands if shutil.which(argv[0])]
    results = {label: ([], []) for label, _ in commands}
    for _ in range(runs):
        for label, argv in commands:
            wall, rss = measure(argv)
            results[label][0].append(wall)
            results[label][1].append(rss)
    base = statistics.median(results[commands[0][0]][0])
    print(f"\n{title}  ({os.cpu_count()} cores, median of {runs} runs)")
    print(f"  {'command':<44} {'wall':>10} {'peak RSS':>10} {'time / whystuck':>16}")
    for label, _ in commands:
        walls, rsss = results[label]
        wall = statistics.median(walls)
        print(f"  {label:<44} {wall * 1000:>8.1f}ms {statistics.median(rsss) / 1024:>7.1f}MiB {wall / base:>15.2f}x")


def bench_fds(runs):
    pid = hold_fds(pipes=5000, socketpairs=4800, tcp_connections=100)
    try:
        count = len(os.listdir(f"/proc/{pid}/fd"))
        compare(
            f"one process with {count} fds (pipes, unix socketpairs, loopback TCP)",
            [
                ("whystuck --interval 0 PID", [WHYSTUCK, "--interval", "0", "--fail-on", "never", str(pid)]),
                ("ls -l /proc/PID/fd  (the floor)", ["ls", "-l", f"/proc/{pid}/fd"]),
                ("lsof -nP -p PID", ["lsof", "-nP", "-p", str(pid)]),
                ("ss -xtanp", ["ss", "-xtanp"]),
            ],
            runs,
        )
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


def spawn_many(count, pipes_per_process=5, socketpairs_per_process=5):
    """Fork `count` processes holding 20 fds each (pipes and unix
    socketpairs), parked in pause(). Returns the pid of their parent."""
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
    children = []
    for _ in range(count):
        child = os.fork()
        if child == 0:
            keep = [os.pipe() for _ in range(pipes_per_process)]
            keep += [socket.socketpair() for _ in range(socketpairs_per_process)]
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


def bench_processes(runs, count=2000):
    parent = spawn_many(count)
    try:
        procs = sum(1 for d in os.listdir("/proc") if d.isdigit())
        compare(
            f"{count} processes with 20 fds each ({procs} processes on the host)",
            [
                ("whystuck --all --interval 0", [WHYSTUCK, "--all", "--interval", "0", "--fail-on", "never"]),
                ("ps -eLo pid,tid,stat,wchan", ["ps", "-eLo", "pid,tid,stat,wchan"]),
                ("ss -xtanp", ["ss", "-xtanp"]),
                ("ps -eLo ... ; ss -xtanp", ["sh", "-c", "ps -eLo pid,tid,stat,wchan; ss -xtanp"]),
                ("lsof -nP", ["lsof", "-nP"]),
            ],
            runs,
        )
    finally:
        kill_tree(parent)


def bench_scaling(runs):
    """Peak memory at 5,000 processes, and time at 5,000 against 2,000."""
    times = {}
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
            samples = [measure(argv) for _ in range(runs)]
            times[count] = statistics.median(w for w, _ in samples)
            rss = statistics.median(r for _, r in samples)
            print(f"\nwhystuck --all --interval 0 at {count} processes: {times[count] * 1000:.1f}ms, peak RSS {rss / 1024:.1f}MiB")
        finally:
            kill_tree(parent)
    print(f"  5,000 / 2,000 processes: {times[5000] / times[2000]:.2f}x the time (2.5x would be linear)")


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
    "processes": bench_processes,
    "scaling": bench_scaling,
    "watch": bench_watch,
    "scale": bench_scale,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    args = parser.parse_args()
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r} (choose from {', '.join(SCENARIOS)})")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    for name in args.scenarios or SCENARIOS:
        SCENARIOS[name](args.runs)


if __name__ == "__main__":
    sys.exit(main())
