"""Real processes for the tests, and ways to tell they are in place: a
Popen deadlock, a busy loop, a process that ends. Standard library only,
besides pytest."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import termios
import time
from typing import Any, Callable, List, Optional, Tuple

import pytest

F_GETPIPE_SZ = 1032

# A parent that starts the command given in argv with stdout=PIPE, says the
# child's pid, and then only waits: the Popen deadlock of seed 000 once the
# child has written more than a pipe holds.
POPEN_WAIT = """
import subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
print(p.pid, flush=True)
p.wait()
"""


def wait_until(condition: Callable[[], Optional[str]], timeout: float = 10.0, what: str = "") -> None:
    """Poll until ``condition()`` returns None twice in a row, 20 ms apart;
    it returns a string saying what it sees otherwise."""
    deadline = time.monotonic() + timeout
    streak = 0
    seen: Optional[str] = "not checked"
    while True:
        try:
            seen = condition()
        except OSError as e:
            seen = f"/proc read failed: {e}"
        streak = streak + 1 if seen is None else 0
        if streak >= 2:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not ready after {timeout}s: {what}: {seen}")
        time.sleep(0.02)


def wchan(pid: int) -> str:
    with open(f"/proc/{pid}/wchan") as f:
        return f.read()


def pipe_fill(pid: int, fd: int) -> Tuple[int, int]:
    """(bytes buffered, capacity) of the pipe at ``pid``'s ``fd``: opened
    through /proc for reading, non-blocking, and never read."""
    probe = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        buffered = bytearray(4)
        fcntl.ioctl(probe, termios.FIONREAD, buffered)
        return int.from_bytes(buffered, sys.byteorder), fcntl.fcntl(probe, F_GETPIPE_SZ)
    finally:
        os.close(probe)


def cpu_ticks(pid: int) -> int:
    """utime + stime of /proc/PID/stat, in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    return data[data.rindex(b")") + 2 :].split()[0] != b"Z"


class Group:
    """Processes started in a process group of their own, all SIGKILLed at
    the end of the test."""

    def __init__(self) -> None:
        self.leaders: "List[subprocess.Popen[bytes]]" = []

    def start(self, argv: List[str], **kwargs: Any) -> "subprocess.Popen[bytes]":
        proc: "subprocess.Popen[bytes]" = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.leaders.append(proc)
        return proc

    def popen_deadlock(self, child: List[str]) -> Tuple[int, int]:
        """A parent that waits for ``child`` without reading its stdout, once
        the child has filled the pipe: (parent pid, child pid)."""
        parent = self.start(
            [sys.executable, "-c", POPEN_WAIT, *child], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())

        def in_place() -> Optional[str]:
            buffered, capacity = pipe_fill(child_pid, 1)
            if buffered < capacity - 4096:
                return f"child's stdout pipe holds {buffered}/{capacity} bytes"
            if "wait" not in wchan(parent.pid):
                return f"parent in {wchan(parent.pid)!r}, not a wait"
            return None

        wait_until(in_place, what=f"Popen deadlock {parent.pid} -> {child_pid}")
        return parent.pid, child_pid

    def stop(self) -> None:
        for proc in self.leaders:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


