"""whystuck.diagnose and whystuck.watch against real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from typing import List

import pytest
import whystuck
from whystuck import Severity

from procs import Group, alive, cpu_ticks, wait_until, wchan

INTERVAL = 0.3
# The comm of a process started with sys.executable: "python3", or "python" in a venv.
PY_COMM = os.path.basename(sys.executable)[:15]

# A child that writes a MiB to its stdout at once.
PY_WRITER = [sys.executable, "-c", "import sys; sys.stdout.write('x' * (1 << 20))"]
NODE_WRITER = ["node", "-e", 'process.stdout.write("x".repeat(1 << 20))']


def check_popen_deadlock(report: whystuck.Report, parent: int, child: int, child_comm: str) -> None:
    assert report.tree
    by_pid = {p.pid: p for p in report.processes}
    assert set(by_pid) == {parent, child}, report.processes
    p, c = by_pid[parent], by_pid[child]

    assert (p.verdict, p.severity, p.comm, p.role) == ("deadlock", Severity.CRITICAL, PY_COMM, "target")
    assert (c.verdict, c.severity, c.comm, c.role) == ("deadlock", Severity.CRITICAL, child_comm, "descendant")
    assert c.ppid == parent
    assert p.findings[0].kind == "deadlock"
    assert p.findings[0].cycle == [parent, child]
    assert c.findings[0].cycle == [child, parent]
    assert p.findings[0].evidence and all(isinstance(e, str) for e in p.findings[0].evidence)

    # The child's pipe-full finding names the fd it writes and its only reader.
    full = next(f for f in c.findings if f.kind == "pipe-full")
    assert full.severity == Severity.CRITICAL
    assert full.fd == 1
    assert [peer.pid for peer in full.peers] == [parent]
    assert full.peers[0].comm == PY_COMM

    # The pipe between them, full, from the child's fd 1.
    (link,) = report.links
    assert (link.kind, link.from_.pid, link.from_.fd, link.to.pid, link.full) == ("pipe", child, 1, parent, True)
    assert link.buffered_bytes is not None and link.capacity_bytes is not None
    assert link.capacity_bytes - link.buffered_bytes < 4096

    # How long, and what to do: a deadlock names the process to kill.
    assert p.findings[0].next_step is not None and f"kill {child}" in p.findings[0].next_step
    for q in (p, c):
        assert q.stuck_for_seconds is not None and q.stuck_for_seconds >= 0, q.raw.get("unavailable")
        assert q.threads[0].kernel_stack is None or all(isinstance(f, str) for f in q.threads[0].kernel_stack)
    # raw is the JSON itself.
    assert p.raw["pid"] == parent and p.raw["verdict"] == "deadlock"
    assert report.raw["processes"][0] is p.raw or report.raw["processes"][1] is p.raw
    assert p.threads[0].syscall == "wait4" or p.threads[0].syscall == "waitid"


def test_popen_deadlock_with_a_python_child(group: Group) -> None:
    parent, child = group.popen_deadlock(PY_WRITER)
    report = whystuck.diagnose(parent, interval=INTERVAL, tree=True)
    check_popen_deadlock(report, parent, child, PY_COMM)
    child_process = report.process(child)
    assert child_process is not None and child_process.threads[0].syscall == "write"


def test_popen_deadlock_with_a_node_child(group: Group) -> None:
    if shutil.which("node") is None:
        if os.environ.get("WHYSTUCK_REQUIRE_TOOLS"):
            pytest.fail("node is not installed (WHYSTUCK_REQUIRE_TOOLS is set)")
        pytest.skip("node is not installed")
    parent, child = group.popen_deadlock(NODE_WRITER)
    report = whystuck.diagnose(parent, interval=INTERVAL, tree=True)
    check_popen_deadlock(report, parent, child, "node")

    # Seen from the child alone, the cycle is found through its parent.
    alone = whystuck.diagnose(child, interval=INTERVAL)
    (c,) = alone.processes
    assert (c.pid, c.verdict, c.severity) == (child, "deadlock", Severity.CRITICAL)
    assert c.findings[0].cycle == [child, parent]


def test_a_busy_process_is_busy_not_stuck(group: Group) -> None:
    busy = group.start([sys.executable, "-c", "while True: pass"])
    wait_until(lambda: None if cpu_ticks(busy.pid) >= 10 else "not 10 ticks of CPU yet", what="busy loop running")
    report = whystuck.diagnose(busy.pid, interval=0.5)
    (p,) = report.processes
    assert p.pid == busy.pid
    assert p.severity < Severity.WARN
    # busy is at least half a core over the interval; a machine busy with
    # other work may give the loop less, and then it is just running.
    percent = p.raw["cpu"]["percent"]
    if percent >= 50:
        assert (p.verdict, p.severity) == ("busy", Severity.INFO), p.summary
    else:
        assert (p.verdict, p.severity) == ("running", Severity.OK), p.summary
    assert p.threads[0].state == "R" or p.threads[0].raw["on_cpu"] is not None


def test_a_pid_that_does_not_exist_is_dead_not_an_error() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    report = whystuck.diagnose(gone.pid, interval=0)
    (p,) = report.processes
    assert (p.pid, p.verdict, p.severity) == (gone.pid, "dead", Severity.CRITICAL)
    assert p.comm is None and p.ppid is None and p.stuck_for_seconds is None
    assert p.summary


def test_the_container_reads_the_json_and_none_is_none() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (p,) = whystuck.diagnose(sleeper.pid, interval=0).processes
    finally:
        sleeper.kill()
        sleeper.wait()
    assert p.container == whystuck.Container.from_json(p.raw["container"])
    uid = "5f3c1a2e-7b8d-4e9f-a0b1-c2d3e4f5a6b7"
    c = whystuck.Container.from_json({"runtime": "containerd", "id": "ab" * 32, "pod_uid": uid})
    assert c is not None and (c.runtime, c.id, c.pod_uid) == ("containerd", "ab" * 32, uid)
    assert whystuck.Container.from_json(None) is None


def test_severity_is_ordered_and_reads_the_json_names() -> None:
    assert Severity.OK < Severity.INFO < Severity.WARN < Severity.CRITICAL
    assert [Severity.from_json(n) for n in ("ok", "info", "warn", "critical")] == list(Severity)
    assert str(Severity.CRITICAL) == "critical"
    assert max([Severity.INFO, Severity.CRITICAL, Severity.OK]) is Severity.CRITICAL


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: whystuck.diagnose(-1), "not a process id"),
        (lambda: whystuck.diagnose(), "no process to look at"),
        (lambda: whystuck.diagnose(1, interval=-1), "must not be negative"),
        (lambda: whystuck.diagnose(1, timeout=0.01), "at least 100ms"),
        (lambda: next(whystuck.watch(1, stall_after=0)), "must be more than 0"),
    ],
)
def test_a_bad_argument_raises_with_the_binarys_message_and_exit_code_2(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(whystuck.WhystuckError) as raised:
        call()
    error = raised.value
    assert error.exit_code == 2
    assert message in error.message
    assert error.message.startswith("whystuck: ") and "\n" not in error.message
    assert message in str(error) and "exit code 2" in str(error)


def test_the_binary_is_the_one_installed_beside_the_package() -> None:
    if os.environ.get("WHYSTUCK_BIN"):
        pytest.skip("WHYSTUCK_BIN names the binary (a source-tree run)")
    binary = whystuck.find_whystuck_bin()
    assert binary == os.path.join(sysconfig.get_path("scripts"), "whystuck")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("whystuck ")
    # python -m whystuck runs it too.
    via_module = subprocess.run([sys.executable, "-m", "whystuck", "--version"], capture_output=True, text=True)
    assert via_module.stdout == version


def test_a_run_never_outlasts_its_timeout(group: Group, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    sleeper = group.start(["sleep", "60"])
    # The binary keeps its own budget.
    start = time.monotonic()
    report = whystuck.diagnose(sleeper.pid, interval=0.2, timeout=0.5)
    assert time.monotonic() - start < 3
    assert report.processes[0].pid == sleeper.pid

    # A binary that never answers is killed at its budget and the margin.
    hang = tmp_path / "whystuck"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    monkeypatch.setenv("WHYSTUCK_BIN", str(hang))
    monkeypatch.setattr("whystuck._run.TIMEOUT_MARGIN", 0.5)
    start = time.monotonic()
    with pytest.raises(whystuck.WhystuckError) as raised:
        whystuck.diagnose(sleeper.pid, timeout=0.2)
    assert time.monotonic() - start < 3
    assert raised.value.exit_code is None
    assert "did not finish" in raised.value.message


def reap_in_background(proc: "subprocess.Popen[bytes]") -> None:
    threading.Thread(target=proc.wait, daemon=True).start()


def test_watch_follows_a_process_until_it_ends(deadline) -> None:  # type: ignore[no-untyped-def]
    deadline(20)
    short = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"])
    reap_in_background(short)  # its parent reaps it, so watch sees a clean exit
    events: List[whystuck.WatchEvent] = list(whystuck.watch(short.pid, every=0.3))
    assert events, "watch printed nothing"
    assert all(e.pid == short.pid for e in events)
    first, last = events[0], events[-1]
    assert first.event == "change" and first.previous_verdict is None
    assert last.event == "ended", events
    assert last.verdict == "dead"
    assert last.severity in (Severity.OK, Severity.INFO), last  # a clean exit, or reaped before watch saw how
    assert last.raw["event"] == "ended" and last.timestamp


def whystuck_descendants(pid: int) -> List[int]:
    """``pid`` and every descendant, from /proc/PID/task/*/children."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


def my_whystuck_children() -> List[int]:
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        comm = data[data.index(b"(") + 1 : data.rindex(b")")]
        ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        if ppid == me and comm.startswith(b"whystuck"):
            out.append(int(entry))
    return out


def test_closing_a_watch_leaves_no_whystuck_process_behind(group: Group, deadline) -> None:  # type: ignore[no-untyped-def]
    deadline(20)
    sleeper = group.start(["sleep", "60"])
    assert my_whystuck_children() == []
    events = whystuck.watch(sleeper.pid, every=0.3)
    first = next(events)
    assert (first.event, first.pid, first.verdict) == ("change", sleeper.pid, "sleeping")
    (watcher,) = my_whystuck_children()
    family = whystuck_descendants(watcher)
    assert watcher in family

    events.close()
    assert my_whystuck_children() == []
    wait_until(
        lambda: next((f"{p} still alive" for p in family if alive(p)), None),
        timeout=5,
        what="the watch and its helpers gone",
    )
    assert alive(sleeper.pid)  # the watched process is never touched
    assert "nanosleep" in wchan(sleeper.pid)
