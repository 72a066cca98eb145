"""examples/supervise.py on real children: it kills what is stuck, and only that."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List, Tuple

from procs import alive, wait_until

# The comm of a process started with sys.executable: "python3", or "python" in a venv.
PY_COMM = os.path.basename(sys.executable)[:15]
SUPERVISE = Path(__file__).resolve().parents[2] / "examples" / "supervise.py"


def supervise(options: List[str], child_code: str, timeout: float = 60) -> Tuple[int, str, str, float]:
    """Run the recipe on ``python3 -c child_code``: (exit status, its stdout,
    its stderr, seconds taken)."""
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(SUPERVISE), *options, "--", sys.executable, "-c", textwrap.dedent(child_code)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    return (
        run.returncode,
        run.stdout.decode("utf-8", "replace"),
        run.stderr.decode("utf-8", "replace"),
        time.monotonic() - start,
    )


def child_pid(log: str) -> int:
    match = re.search(r"supervise: started child (\d+)", log)
    assert match, log
    return int(match.group(1))


def diagnoses(log: str) -> List[str]:
    return [line for line in log.splitlines() if "supervise: silent for" in line]


def test_it_kills_a_deadlocked_child_and_says_why() -> None:
    # The child is the Popen deadlock: it waits for a grandchild that has
    # filled the stdout pipe the child never reads.
    status, out, log, took = supervise(
        ["--silence", "0.5", "--interval", "0.3", "--grace", "2"],
        """
        import subprocess, sys
        p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.write('x' * (1 << 20))"],
                             stdout=subprocess.PIPE)
        print("grandchild", p.pid, file=sys.stderr, flush=True)
        p.wait()
        """,
    )
    child = child_pid(log)
    grandchild = int(re.search(r"grandchild (\d+)", log).group(1))  # type: ignore[union-attr]
    assert status == 124, log
    (diagnosis,) = diagnoses(log)
    assert f"child {child} ({PY_COMM}) deadlock [critical]" in diagnosis, log
    assert f"{child} waits in wait4 for {grandchild}" in diagnosis
    assert "evidence: " in diagnosis
    assert f"descendants: {grandchild} {PY_COMM} deadlock [critical]" in diagnosis
    assert f"child {child}: killing it: deadlock is critical" in log
    assert f"child {child} killed" in log
    assert took < 15, log
    # The child and its grandchild are gone.
    assert not alive(child)
    wait_until(lambda: f"{grandchild} alive" if alive(grandchild) else None, timeout=5, what="grandchild gone")


def test_it_leaves_alone_a_child_waiting_on_a_busy_grandchild() -> None:
    # Seed 004: a quiet session waiting on a working tool is not stuck.
    status, out, log, took = supervise(
        ["--silence", "0.4", "--interval", "0.3", "--stall-after", "1"],
        """
        import subprocess, sys
        subprocess.run([sys.executable, "-c", "import time\\nt = time.time()\\nwhile time.time() - t < 3: pass"])
        print("tool done", flush=True)
        """,
    )
    child = child_pid(log)
    assert status == 0, log
    assert out == "tool done\n"
    assert "killing" not in log, log
    seen = diagnoses(log)
    assert len(seen) >= 2, log  # repeated while the silence lasted, and longer than --stall-after
    for line in seen:
        assert f"child {child} ({PY_COMM}) waiting-on-child [ok]" in line, log
    assert log.count(f"child {child}: leaving it running: it waits on a working child") == len(seen)
    assert f"child {child} exited with status 0" in log
    assert took < 15, log


def test_it_kills_a_child_that_stalls_and_repeats_the_diagnosis_meanwhile() -> None:
    # Seed 001: alive, silent, and not moving at all, past --stall-after.
    status, out, log, took = supervise(
        ["--silence", "0.3", "--interval", "0.2", "--stall-after", "1.2", "--grace", "2"],
        """
        import time
        print("started", flush=True)
        time.sleep(60)
        """,
    )
    child = child_pid(log)
    assert status == 124, log
    assert out == "started\n"
    seen = diagnoses(log)
    assert len(seen) >= 2, log
    # time.sleep is clock_nanosleep (sleeping), or select() without fds before
    # Python 3.11 (idle-in-epoll): info either way, and never moving.
    parked = rf"child {child} \({PY_COMM}\) (sleeping|idle-in-epoll) \[info\], nothing moved for"
    assert all(re.search(parked, line) for line in seen), log
    assert re.search(rf"child {child}: leaving it running: \S+ \[info\] is not critical", log), log
    assert re.search(rf"child {child}: killing it: stalled, nothing in its family moved for \S+ \(--stall-after 1\.2s\)", log), log
    # The silences between diagnoses grow.
    silences = [float(re.search(r"silent for ([\d.]+)s", line).group(1)) for line in seen]  # type: ignore[union-attr]
    gaps = [b - a for a, b in zip(silences, silences[1:])]
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:])), silences
    assert took < 15, log


def test_it_says_when_output_resumes() -> None:
    status, out, log, _ = supervise(
        ["--silence", "0.3", "--interval", "0.2"],
        """
        import time
        print("a", flush=True)
        time.sleep(1.2)
        print("b", flush=True)
        time.sleep(0.6)
        """,
    )
    child = child_pid(log)
    assert status == 0, log
    assert out == "a\nb\n"
    assert diagnoses(log), log
    assert re.search(rf"child {child} printed again after [\d.]+s of silence", log), log
    assert "killing" not in log


def test_it_drains_whatever_the_child_writes() -> None:
    # Far more than a pipe holds, on both pipes at once, then exit: a
    # supervisor that only waited would deadlock here.
    status, out, log, took = supervise(
        ["--silence", "5"],
        """
        import sys
        sys.stdout.write("o" * (1 << 20))
        sys.stderr.write("e" * (1 << 20))
        """,
    )
    assert status == 0, log[-2000:]
    assert out == "o" * (1 << 20)
    assert log.count("e" * 1024) >= 1  # the child's stderr came through
    assert log.count("e") >= 1 << 20
    assert took < 10


def test_stopping_the_supervisor_stops_the_child() -> None:
    # The child runs in a session of its own, out of reach of a Ctrl-C or a
    # SIGTERM meant for the supervisor: the supervisor takes it along.
    supervisor = subprocess.Popen(
        [sys.executable, str(SUPERVISE), "--silence", "30", "--", sys.executable, "-c", "import time; time.sleep(60)"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    child = None
    try:
        assert supervisor.stderr is not None
        first = supervisor.stderr.readline().decode()
        child = child_pid(first)
        assert alive(child)
        supervisor.send_signal(signal.SIGTERM)
        log = first + supervisor.communicate(timeout=20)[1].decode()
        assert supervisor.returncode == 128 + signal.SIGTERM, log
        assert f"supervisor stopping: killing child {child}" in log
        assert not alive(child)
    finally:
        supervisor.kill()
        supervisor.wait()
        if child is not None and alive(child):
            os.killpg(child, signal.SIGKILL)
