"""Running the binary: one diagnosis, or a watch."""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from typing import IO, Iterator, List, Optional, Tuple, Union

from ._binary import find_whystuck_bin
from ._errors import WhystuckError
from ._model import Report, WatchEvent

#: The binary's own budget when --timeout is not given: the interval and 10s more.
DEFAULT_TIMEOUT_BEYOND_INTERVAL = 10.0
#: How much longer than the binary's budget a run may take before it is
#: killed: starting it, printing, and a helper's 2s deadline at the end.
TIMEOUT_MARGIN = 5.0
#: How long a watch gets to exit after SIGTERM before SIGKILL.
WATCH_STOP_GRACE = 2.0

Seconds = Union[float, int]


def _duration(value: Seconds) -> Tuple[str, Optional[float]]:
    """The argument for a duration option (seconds), and its value when it is
    a number; anything else goes to the binary as it is, to be refused there
    with the binary's own message."""
    if isinstance(value, bool):
        return str(value), None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return str(value), None
    if not math.isfinite(seconds):
        return str(value), None
    return repr(seconds), seconds


def _pid_args(pids: Tuple[int, ...]) -> List[str]:
    # After "--", so that a negative number is refused as a pid, not taken for an option.
    return ["--", *(str(pid) for pid in pids)]


def _error_from(exit_code: Optional[int], stderr: bytes, what: str) -> WhystuckError:
    text = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines:
        message = lines[-1]
    elif exit_code is not None and exit_code < 0:
        message = f"{what} was killed by signal {-exit_code}"
    else:
        message = f"{what} failed without a message"
    return WhystuckError(message, exit_code, text)


def _read(file: IO[bytes]) -> bytes:
    file.seek(0)
    return file.read()


def diagnose(
    *pids: int,
    interval: Seconds = 1.0,
    tree: bool = False,
    stacks: bool = False,
    timeout: Optional[Seconds] = None,
) -> Report:
    """Diagnose processes: ``whystuck --json PID...``.

    ``interval`` is the time between the two samples in seconds (0 takes one
    sample and measures no rates); ``tree`` adds every descendant; ``stacks``
    asks for Python stacks (``--stacks``, needs py-spy: ``pip install
    whystuck[stacks]``); ``timeout`` is the binary's time budget in seconds
    (default: the interval and 10s more). The call returns within that budget
    and a few seconds' margin, or kills the run and raises.

    A pid that does not exist is a ``dead`` process in the report, not an
    error. A bad argument or a failure to run raises :class:`WhystuckError`
    with the binary's message and exit code.
    """
    interval_arg, interval_seconds = _duration(interval)
    args = ["--format", "json", "--fail-on", "never", "--color", "never", "--interval", interval_arg]
    if tree:
        args.append("--tree")
    if stacks:
        args.append("--stacks")
    if timeout is None:
        budget = (interval_seconds or 0.0) + DEFAULT_TIMEOUT_BEYOND_INTERVAL
    else:
        timeout_arg, timeout_seconds = _duration(timeout)
        args += ["--timeout", timeout_arg]
        budget = timeout_seconds if timeout_seconds is not None else DEFAULT_TIMEOUT_BEYOND_INTERVAL
    budget = max(budget, 0.0) + TIMEOUT_MARGIN
    binary = find_whystuck_bin()

    # Output goes to files, not pipes: nothing the binary (or a helper it
    # leaves behind) does with them can block this process.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                [binary, *args, *_pid_args(pids)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        except OSError as e:
            raise WhystuckError(f"could not run {binary}: {e.strerror or e}") from e
        try:
            exit_code = proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise WhystuckError(
                f"whystuck did not finish within {budget:g}s and was killed", None, _read(err).decode("utf-8", "replace")
            ) from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        stdout, stderr = _read(out), _read(err)

    # 0 and 1 both mean a report was printed (1: something at or above
    # --fail-on, which "never" rules out, but a report all the same).
    if exit_code not in (0, 1):
        raise _error_from(exit_code, stderr, "whystuck")
    try:
        return Report.from_json(json.loads(stdout))
    except (ValueError, KeyError, TypeError) as e:
        raise WhystuckError(f"could not read whystuck's JSON: {e}", exit_code, stderr.decode("utf-8", "replace")) from e


def watch(
    *pids: int,
    every: Seconds = 5.0,
    stall_after: Seconds = 600.0,
    tree: bool = False,
) -> Iterator[WatchEvent]:
    """Keep watching processes: ``whystuck watch --format ndjson PID...``.

    A generator of :class:`WatchEvent`: one per verdict change, a ``still``
    event repeating a standing warning at a doubling interval, ``stalled``
    (critical) when nothing in a process's family moved for ``stall_after``
    seconds, and an ``ended`` event for each process that goes; it ends when
    every watched process is gone. ``every`` is the tick in seconds.

    The watch process starts at the first ``next()``; closing the generator
    (``close()``, leaving a ``for`` loop with ``break`` inside a ``with
    contextlib.closing(...)``, or garbage collection) stops it. A bad argument
    raises :class:`WhystuckError` from the first ``next()``.
    """
    every_arg, _ = _duration(every)
    stall_arg, _ = _duration(stall_after)
    args = ["watch", "--format", "ndjson", "--color", "never", "--every", every_arg, "--stall-after", stall_arg]
    if tree:
        args.append("--tree")
    binary = find_whystuck_bin()

    # stderr to a file: a pipe nobody reads could fill and block the watch.
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                [binary, *args, *_pid_args(pids)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        except OSError as e:
            raise WhystuckError(f"could not run {binary}: {e.strerror or e}") from e
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if not line.strip():
                    continue
                try:
                    event = WatchEvent.from_json(json.loads(line))
                except (ValueError, KeyError, TypeError) as e:
                    raise WhystuckError(f"could not read a whystuck watch event: {e}") from e
                yield event
            exit_code = proc.wait()
            if exit_code != 0:
                raise _error_from(exit_code, _read(err), "whystuck watch")
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=WATCH_STOP_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc.stdout.close()
