#!/usr/bin/env python3
"""Regenerate fixtures/: snapshots of real hung processes, and edits of them
that stand for other kernels and architectures.

    cargo build && python3 tools/fixtures.py [NAME...]

Each fixture is a directory holding
  snapshot.json  what `whystuck capture` wrote (or an edit of a capture),
  expected.json  the verdict, severity and findings it must keep producing,
  NOTE.md        how it was made.
tests/it/fixtures.rs replays every fixture with `whystuck --from` and checks it;
tests/it/golden.rs compares what it prints with the fixture's human.txt (and
json.txt, ndjson.txt, prometheus.txt for a few): after regenerating, write
those again with `WHYSTUCK_BLESS=1 cargo test --test it golden::`.

Captured fixtures come from tests/hangs/hang.py scenarios on the machine that
runs this script; their expected.json is what whystuck said at capture time
(review the diff before committing). Edited fixtures keep the expected
verdict, severity and finding kinds of the capture they were edited from:
the classifier must reach the same conclusion from the other spelling.
"""
import copy
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHYSTUCK = os.path.join(ROOT, "target", "debug", "whystuck")
HANG = os.path.join(ROOT, "tests", "hangs", "hang.py")
FIXTURES = os.path.join(ROOT, "fixtures")
sys.path.insert(0, os.path.join(ROOT, "tests", "hangs"))

# name: (scenario, key of the pid to capture, extra capture arguments)
CAPTURES = {
    "pipe-full": ("pipe-full", "target", []),
    "popen-deadlock": ("parent-waits-undrained", "parent", ["--tree"]),
    "two-pipes-deadlock": ("two-pipes", "a", []),
    "futex-abba": ("abba", "target", []),
    "idle-in-epoll": ("epoll-idle", "target", []),
    "supervisor-idle-child": ("supervisor-idle-child", "supervisor", ["--tree"]),
    "wakeup-socketpair-full": ("wakeup-socketpair-full", "target", []),
    "wakeup-pipe-full": ("wakeup-pipe-full", "target", []),
    "blocked-read-pipe": ("blocked-read-pipe", "target", []),
    "blocked-read-tcp": ("blocked-read-tcp", "target", []),
    "tcp-listen": ("tcp-listen", "target", []),
    "unix-full": ("unix-full", "target", []),
    "wait-child-busy": ("wait-child-busy", "parent", []),
    "zombie": ("zombie", "zombie", []),
    "stopped": ("stopped", "target", []),
    "traced": ("traced", "target", []),
    "sleeping": ("sleeping", "target", []),
    "busy": ("busy", "target", []),
    "running": ("running", "target", ["--interval", "1s"]),
    # Cgroups (root; tests/hangs/cgroups.py): the v1 freezer, the v2 freezer,
    # a loop at 5% of a CPU (v1 cpu quota), a v1 memory cgroup out of memory.
    "frozen": ("frozen-v1", "target", []),
    "frozen-v2": ("frozen-v2", "target", []),
    "throttled": ("throttled", "target", ["--interval", "1s"]),
    "memcg-oom": ("memcg-oom", "target", []),
    # No scenario: a pid that cannot exist (above the kernel's pid_max).
    "no-such-process": (None, "2147483647", []),
}


# What a capture needs said about the machine it was made on.
CAPTURE_NOTES = {
    "frozen": "The sleep's cgroup is frozen by the cgroup v1 freezer (`freezer.state` FROZEN): "
              "the thread shows D and the wchan it had before it froze.",
    "frozen-v2": "The sleep's cgroup is frozen by the cgroup v2 freezer (`cgroup.freeze` 1, `cgroup.events` "
                 "frozen 1; the machine mounts v2 at /sys/fs/cgroup/unified beside v1): the thread shows S in "
                 "`get_signal`, and `cgroup.stat.local` has `frozen_usec` (Linux 6.17+).",
    "throttled": "The loop's cgroup has a cgroup v1 CPU quota (`cpu.cfs_quota_us` 5000 / `cpu.cfs_period_us` "
                 "100000: this machine's cpu controller is on v1).",
    "memcg-oom": "The loop's cgroup v1 memory cgroup (this machine's memory controller is on v1) is limited to "
                 "32 MiB with its OOM killer disabled (`memory.oom_control` 1): the thread waits in "
                 "`mem_cgroup_oom_synchronize`, `under_oom` 1. The pressure files are the v2 root's, the whole "
                 "host's (v2 has no controllers here).",
}


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, **kw)


def expectation(snapshot_path, with_summaries):
    report = json.loads(subprocess.run([WHYSTUCK, "--from", snapshot_path, "--json", "--fail-on", "never"],
                                       check=True, capture_output=True).stdout)
    processes = []
    for p in report["processes"]:
        entry = {"pid": p["pid"], "verdict": p["verdict"], "severity": p["severity"],
                 "findings": [{"kind": f["kind"], "severity": f["severity"]} for f in p["findings"]]}
        if with_summaries:
            entry["summary"] = p["summary"]
            for e, f in zip(entry["findings"], p["findings"]):
                e["summary"] = f["summary"]
                if "cycle" in f:
                    e["cycle"] = f["cycle"]
        processes.append(entry)
    return {"processes": processes}


def write(name, snapshot, expected, note):
    directory = os.path.join(FIXTURES, name)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "snapshot.json"), "w") as f:
        json.dump(snapshot, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(directory, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    with open(os.path.join(directory, "NOTE.md"), "w") as f:
        f.write(note.strip() + "\n")


def capture(name):
    scenario, key, extra = CAPTURES[name]
    interval = [] if "--interval" in extra else ["--interval", "300ms"]
    if scenario is None:
        snapshot = json.loads(run([WHYSTUCK, "capture", *interval, *extra, key, "-o", "-"]).stdout)
    else:
        controller = subprocess.Popen([sys.executable, HANG, scenario], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True)
        try:
            info = json.loads(controller.stdout.readline())
            snapshot = json.loads(run([WHYSTUCK, "capture", *interval, *extra, str(info[key]), "-o", "-"]).stdout)
        finally:
            controller.stdin.close()
            controller.wait()
    path = os.path.join(FIXTURES, name, "snapshot.json")
    write(name, snapshot, {"processes": []}, "")
    expected = expectation(path, with_summaries=True)
    kernel = snapshot["host"]["kernel_release"].get("ok", "unknown")
    source = (f"of pid {key}, which does not exist" if scenario is None else
              f"from the real hung process that `tests/hangs/hang.py {scenario}` creates (the `{key}`)")
    write(name, snapshot, expected, f"""
# {name}

Captured with `whystuck capture {' '.join(interval + extra)} PID` {source}, on
Linux {kernel}, {snapshot['host']['arch']}. {CAPTURE_NOTES.get(name, "")}
Regenerate with `python3 tools/fixtures.py {name}`.

expected.json is what whystuck said of it at capture time: verdicts,
severities, findings and their summaries.
""")


def load(name):
    with open(os.path.join(FIXTURES, name, "snapshot.json")) as f:
        return json.load(f)


def threads(snapshot):
    for process in snapshot["processes"]:
        for sample in process["samples"]:
            for thread in sample["threads"].get("ok", []):
                yield thread


def rename_wchans(snapshot, renames):
    for thread in threads(snapshot):
        wchan = thread["wchan"].get("ok")
        if wchan in renames:
            thread["wchan"]["ok"] = renames[wchan]


def syscall_tables():
    """name -> number, per arch, from the table whystuck itself uses."""
    text = open(os.path.join(ROOT, "src", "linux", "syscall_names.rs")).read()
    tables, current = {}, None
    for line in text.splitlines():
        if line.startswith("pub const "):
            current = tables.setdefault(line.split()[2].rstrip(":"), {})
        elif current is not None and (m := re.match(r'\s*"(\w*)",\s*// (\d+)$', line)):
            if m.group(1):
                current.setdefault(m.group(1), int(m.group(2)))
    return tables


def to_aarch64(snapshot):
    tables = syscall_tables()
    x86 = {number: name for name, number in tables["X86_64"].items()}
    arm = tables["AARCH64"]
    # x86_64-only calls and their generic equivalents (same arguments first).
    equivalents = {"epoll_wait": "epoll_pwait", "poll": "ppoll", "select": "pselect6", "pause": "rt_sigsuspend"}
    snapshot["host"]["arch"] = "aarch64"
    for thread in threads(snapshot):
        call = thread["syscall"].get("ok")
        if isinstance(call, dict) and "blocked" in call and call["blocked"]["nr"] >= 0:
            name = x86[call["blocked"]["nr"]]
            call["blocked"]["nr"] = arm[equivalents.get(name, name)]


def without_ptrace(snapshot):
    """As another user sees it: no syscall file, and wchan reads 0."""
    without_syscalls(snapshot)
    for thread in threads(snapshot):
        thread["wchan"] = {"unavailable": {"kind": "permission", "detail": "reads 0 without ptrace access"}}
    for process in snapshot["processes"]:
        for sample in process["samples"]:
            for fact in ("fds", "io", "sockets"):
                sample[fact] = {"unavailable": {"kind": "permission", "detail": "permission denied"}}


def without_syscalls(snapshot):
    """As another user sees it: no syscall file, wchan still readable."""
    for thread in threads(snapshot):
        thread["syscall"] = {"unavailable": {"kind": "permission", "detail": "permission denied"}}


POD_UID = "5f3c1a2e_7b8d_4e9f_a0b1_c2d3e4f5a6b7"
CONTAINER_ID = "4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8"


def samples(snapshot):
    for process in snapshot["processes"]:
        yield from enumerate(process["samples"])


def move_to_v2(snapshot, path):
    """Every sample's cgroups as a v2-only host with every controller sees
    them, in the cgroup `path`: the facts kept, read there instead."""
    at = {"version": 2, "path": path, "dir": "/sys/fs/cgroup" + path}
    for _, sample in samples(snapshot):
        cgroups = sample.get("cgroups")
        if not cgroups:
            continue
        cgroups["membership"] = {"ok": f"0::{path}\n"}
        for part in ("freezer", "cpu", "memory", "pressure"):
            if "ok" in cgroups.get(part, {}):
                cgroups[part]["ok"]["at"] = at


def frozen_shows_running(snapshot):
    """A kernel whose frozen tasks show R: no wchan, the syscall file says
    running, and nothing of a waiting thread is read."""
    for _, sample in samples(snapshot):
        sample["stat"]["ok"]["state"] = "R"
        sample.pop("sched_now_ms", None)
        for thread in sample["threads"]["ok"]:
            thread["stat"]["ok"]["state"] = "R"
            thread["wchan"] = {"ok": ""}
            thread["syscall"] = {"ok": "running"}
            thread.pop("last_ran_at_ms", None)
            thread.pop("kernel_stack", None)


def to_memory_high(snapshot):
    """The allocation loop throttled above memory.high of a v2 cgroup, not
    waiting out a v1 cgroup's OOM."""
    move_to_v2(snapshot, "/system.slice/batch.service")
    for i, sample in samples(snapshot):
        cgroups = sample["cgroups"]
        memory = cgroups["memory"]["ok"]
        memory.update(current_bytes=541065216, max="unlimited", high={"bytes": 536870912},
                      events={"high": 4674 + 37 * i, "max": 0, "oom": 0, "oom_kill": 0})
        memory.pop("under_oom", None)
        psi = cgroups["pressure"]["ok"]["memory"]["ok"]
        psi["some"].update(avg10=45.12, avg60=20.0, avg300=5.5)
        psi["full"].update(avg10=30.0, avg60=10.0, avg300=2.0)
        for thread in sample["threads"]["ok"]:
            thread["wchan"] = {"ok": "mem_cgroup_handle_over_high"}
            if "kernel_stack" in thread:
                thread["kernel_stack"] = {"ok": ["mem_cgroup_handle_over_high+0x1d2/0x2b0",
                                                 "exit_to_user_mode_loop+0xb6/0xe0",
                                                 "irqentry_exit_to_user_mode+0x2c/0x1a0",
                                                 "asm_exc_page_fault+0x26/0x30"]}


EDITS = {
    "old-kernel-futex-abba": ("futex-abba", "Linux 5.15 spells the futex wait `futex_wait_queue_me`.",
                              lambda s: rename_wchans(s, {"futex_do_wait": "futex_wait_queue_me"}), "5.15.0"),
    "old-kernel-pipe-full": ("pipe-full", "Before 6.x pipes wait in `pipe_write`, not `anon_pipe_write`.",
                             lambda s: rename_wchans(s, {"anon_pipe_write": "pipe_write"}), "5.10.0"),
    "old-kernel-idle-in-epoll": ("idle-in-epoll", "Older kernels wait in `ep_poll` and `futex_wait_queue`.",
                                 lambda s: rename_wchans(s, {"do_epoll_wait": "ep_poll", "futex_do_wait": "futex_wait_queue"}),
                                 "6.1.0"),
    "no-ptrace-idle-in-epoll": ("old-kernel-idle-in-epoll",
                                "Seen without ptrace access on an old kernel: no syscall file, only `ep_poll` wchans.",
                                without_syscalls, None),
    "no-ptrace-futex-abba": ("old-kernel-futex-abba",
                             "Seen without ptrace access on 5.15: only `futex_wait_queue_me` wchans.",
                             without_syscalls, None),
    "no-ptrace-sleeping": ("sleeping",
                           "Another user's sleeping process without ptrace access: no syscall, wchan reads 0, no fds.",
                           without_ptrace, None,
                           {"verdict": "unknown", "severity": "info", "findings": [{"kind": "unknown", "severity": "info"}]}),
    "aarch64-pipe-full": ("pipe-full", "The same hang on aarch64: syscall numbers renumbered (write is 64).",
                          to_aarch64, None),
    "aarch64-idle-in-epoll": ("idle-in-epoll",
                              "On aarch64 there is no epoll_wait: epoll_pwait (22), futex (98).", to_aarch64, None),
    "aarch64-popen-deadlock": ("popen-deadlock",
                               "The Popen deadlock on aarch64: wait4 is 260, write is 64.", to_aarch64, None),
    "old-kernel-frozen": ("frozen", "Older kernels show a frozen task running (R): no wchan, "
                          "the syscall file says `running`.", frozen_shows_running, "4.19.0"),
    "memory-high": ("memcg-oom",
                    "cgroup v2 with its memory controller (this machine's memory controller is on cgroup v1, "
                    "and its v2 hierarchy has no controllers, only the pressure files): the allocation loop is "
                    "throttled above `memory.high` (in `mem_cgroup_handle_over_high`, on its kernel stack too), "
                    "`memory.events` `high` grows by 37 between the samples, and `memory.pressure` shows the "
                    "stall. The thread, the cgroup paths, and the memory and pressure figures are edited; "
                    "the rest is the capture's.", to_memory_high, None),
    "in-a-pod": ("throttled",
                 "A Kubernetes pod's container (containerd, systemd cgroup driver, cgroup v2): the same loop "
                 "at 5% of a CPU, its cgroups moved to the pod's paths, so the report names the container "
                 "and the pod.",
                 lambda s: move_to_v2(s, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
                                      f"{POD_UID}.slice/cri-containerd-{CONTAINER_ID}.scope"), None),
}


def edit(name):
    source, why, change, release, *override = EDITS[name]
    snapshot = copy.deepcopy(load(source))
    change(snapshot)
    if release:
        snapshot["host"]["kernel_release"] = {"ok": f"{release} (edited)"}
    with open(os.path.join(FIXTURES, source, "expected.json")) as f:
        source_expected = json.load(f)
    expected = {"processes": [
        {"pid": p["pid"], "verdict": p["verdict"], "severity": p["severity"],
         "findings": [{"kind": f["kind"], "severity": f["severity"]} for f in p["findings"]]}
        for p in source_expected["processes"]]}
    for process in expected["processes"]:
        process.update(*override)  # an edit that changes what can be known
    kept = (f"expected.json is what can still be concluded once the facts are gone: "
            f"{override[0]['verdict']} ({override[0]['severity']}), never a guess." if override else
            f"expected.json keeps the verdict, severity and finding kinds of `{source}` "
            f"(summaries may name other syscalls or wchans): the classifier must reach the same conclusion.")
    write(name, snapshot, expected, f"""
# {name}

An edit of the captured fixture `{source}`, standing for a kernel or
architecture this project's machines do not run: {why}

Made by `python3 tools/fixtures.py {name}`. {kept}
""")


def main():
    names = sys.argv[1:] or list(CAPTURES) + list(EDITS)
    for name in names:
        if name in CAPTURES:
            capture(name)
        elif name in EDITS:
            edit(name)
        else:
            sys.exit(f"unknown fixture {name!r}")
        print("wrote", name)


if __name__ == "__main__":
    main()
