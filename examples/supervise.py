#!/usr/bin/env python3
"""Run a command and kill it only when it is stuck, saying why.

    python3 examples/supervise.py [--silence 60] [--stall-after 600] -- COMMAND [ARG...]

A recipe for supervisors of agent CLIs and other children that talk over
pipes, built on the ``whystuck`` package (``pip install whystuck``):

* The child's stdout and stderr are drained by threads of their own and
  copied to this process's stdout and stderr, so the child can never block
  on a full pipe to its supervisor (the Popen deadlock: a parent that
  waits for a child it does not read). Its stdin is /dev/null.
* When the child has printed nothing for ``--silence`` seconds, the
  supervisor diagnoses it and its descendants (``whystuck --tree``) and logs
  one line: the verdict, how long nothing has moved, the evidence. While the
  silence lasts it diagnoses again, with fresh evidence, at a doubling
  interval (``--silence``, then 2x, 4x, ... up to an hour); when output
  resumes it says so and starts over.
* It kills the child (SIGTERM to its process group, SIGKILL after
  ``--grace`` seconds) only when the diagnosis is critical: a deadlock, a
  full pipe nobody drains, a lost-signals wakeup fd, a stuck grandchild it
  waits for; or when nothing in the family (CPU, syscalls, I/O, times
  scheduled) has moved for ``--stall-after`` seconds (stalled). It never
  kills a child that waits on a working child, however long the silence
  (a quiet tool call is not a hang), nor one that is only blocked writing to
  this supervisor. Every decision is logged with its reason.

Log lines go to stderr, prefixed ``supervise:``. The exit status is the
child's (128+N when a signal N ended it), or 124 when the supervisor killed
it, as timeout(1) does. A supervisor stopped by Ctrl-C, SIGTERM or SIGHUP
kills the child's process group first (the child, in a session of its own,
would not get the signal) and exits 128+N.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, List, Optional, Tuple

import whystuck
from whystuck import Process, Report, Severity

KILLED_EXIT = 124
MAX_GAP = 3600.0


def log(message: str) -> None:
    """One line on stderr; control characters (a comm, a command line) escaped."""
    message = "".join(c if c >= " " and c != "\x7f" else f"\\x{ord(c):02x}" for c in message)
    stamp = time.strftime("%H:%M:%S")
    sys.stderr.write(f"{stamp} supervise: {message}\n")
    sys.stderr.flush()


def seconds(value: Optional[float]) -> str:
    if value is None:
        return "?"
    if value < 10:
        return f"{value:.1f}s"
    whole = int(round(value))
    if whole < 120:
        return f"{whole}s"
    if whole < 7200:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole // 60 % 60:02d}m"


class Output:
    """When the child last said anything, on either pipe."""

    def __init__(self) -> None:
        self.last = time.monotonic()


class Drain(threading.Thread):
    """Copies one of the child's pipes to ours as fast as it comes."""

    def __init__(self, source: IO[bytes], sink: IO[bytes], output: Output, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.source = source
        self.sink: Optional[IO[bytes]] = sink
        self.output = output

    def run(self) -> None:
        fd = self.source.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.output.last = time.monotonic()
            if self.sink is not None:
                try:
                    self.sink.write(chunk)
                    self.sink.flush()
                except (OSError, ValueError):
                    self.sink = None  # our own output is gone: keep draining, drop it


class Stillness:
    """How long nothing in the child's family has moved, as far as can be
    told: the binary's ``stuck_for_seconds`` where it gives one for every
    process, and otherwise what this supervisor saw over its diagnoses
    (nothing moved within a diagnosis's interval, and the counters equal to
    the previous diagnosis's)."""

    def __init__(self) -> None:
        self.counters: Optional[Tuple[Tuple[Any, ...], ...]] = None
        self.still_since: Optional[float] = None

    def reset(self) -> None:
        self.counters, self.still_since = None, None

    def update(self, report: Report, now: float, interval: float) -> Optional[float]:
        """Seconds the family has been still; None while it moves."""
        alive = [p for p in report.processes if p.verdict != "dead"]
        counters = tuple(sorted(_counters(p) for p in alive))
        if any(_moved(p) for p in alive):
            self.counters, self.still_since = counters, None
            return None
        if self.still_since is None or counters != self.counters:
            self.still_since = now - interval  # it moved before this interval, or we do not know
        self.counters = counters
        seen = now - self.still_since
        told = [p.stuck_for_seconds for p in alive]
        if told and all(t is not None for t in told):
            return max(seen, min(t for t in told if t is not None))
        return seen


def _counters(p: Process) -> Tuple[Any, ...]:
    cpu, io = p.raw.get("cpu") or {}, p.raw.get("io") or {}
    return (
        p.pid,
        p.raw.get("start_time_ticks"),
        (cpu.get("utime_ticks") or 0) + (cpu.get("stime_ticks") or 0),
        (io.get("syscr") or 0) + (io.get("syscw") or 0),
        (io.get("rchar") or 0) + (io.get("wchar") or 0),
    )


def _moved(p: Process) -> bool:
    """Did it move within the diagnosis's interval (CPU, I/O, syscalls, or a
    thread scheduled)?"""
    if p.verdict in ("running", "busy"):
        return True
    cpu, io = p.raw.get("cpu") or {}, p.raw.get("io") or {}
    if (cpu.get("percent") or 0) > 0 or (io.get("bytes_delta") or 0) > 0 or (io.get("syscalls_delta") or 0) > 0:
        return True
    return any((t.raw.get("ctxt_switches_delta") or 0) > 0 for t in p.threads)


def deciding_finding(p: Process) -> Optional[whystuck.Finding]:
    return next((f for f in p.findings if f.kind == p.verdict), p.findings[0] if p.findings else None)


def describe(child: Process, report: Report, silent: float, still: Optional[float]) -> str:
    moving = "moving" if still is None else f"nothing moved for {seconds(still)}"
    line = (
        f"silent for {seconds(silent)}: child {child.pid} ({child.comm}) {child.verdict} [{child.severity}], "
        f"{moving}: {child.summary}"
    )
    finding = deciding_finding(child)
    if finding is not None and finding.evidence:
        line += "; evidence: " + "; ".join(finding.evidence[:3])
    if finding is not None and finding.next_step:
        line += f"; next: {finding.next_step}"
    others = [p for p in report.processes if p.pid != child.pid]
    if others:
        line += "; descendants: " + ", ".join(f"{p.pid} {p.comm} {p.verdict} [{p.severity}]" for p in others)
    return line


def decide(child: Process, report: Report, still: Optional[float], stall_after: float) -> Tuple[bool, str]:
    """Kill or not, and why."""
    finding = deciding_finding(child)
    if child.verdict == "waiting-on-child" and child.severity == Severity.OK:
        return False, f"leaving it running: it waits on a working child ({child.summary})"
    if child.severity >= Severity.CRITICAL:
        if (
            finding is not None
            and finding.kind == "pipe-full"
            and finding.peers
            and all(peer.pid == os.getpid() for peer in finding.peers)
        ):
            return False, "leaving it running: it is only blocked writing to this supervisor, which drains it"
        return True, f"killing it: {child.verdict} is critical: {child.summary}"
    if still is not None and still >= stall_after:
        return True, (
            f"killing it: stalled, nothing in its family moved for {seconds(still)} "
            f"(--stall-after {seconds(stall_after)}); it was {child.verdict}: {child.summary}"
        )
    why = f"leaving it running: {child.verdict} [{child.severity}] is not critical"
    if still is not None:
        why += f", and it has been still for {seconds(still)} of the {seconds(stall_after)} --stall-after"
    return False, why


def kill_group(child: "subprocess.Popen[bytes]", grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            log(f"child {child.pid} still there {seconds(grace)} after SIGTERM: SIGKILL")


def supervise(command: List[str], silence: float, stall_after: float, interval: float, grace: float) -> int:
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a kill reaches its descendants
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        output = Output()
        drains = [
            Drain(child.stdout, sys.stdout.buffer, output, "drain-stdout"),
            Drain(child.stderr, sys.stderr.buffer, output, "drain-stderr"),
        ]
        for drain in drains:
            drain.start()
        log(f"started child {child.pid}: {shlex.join(command)}")
        killed = watch_silence(child, output, silence, stall_after, interval, grace)
    finally:
        # Interrupted (Ctrl-C, SIGTERM) or failed: the child, in a session of
        # its own, would not get our signal; it goes with us.
        if child.poll() is None:
            log(f"supervisor stopping: killing child {child.pid}")
            kill_group(child, grace)

    status = child.wait()
    for drain in drains:
        drain.join(timeout=2.0)  # a descendant may still hold the pipes
    if killed:
        log(f"child {child.pid} killed (exit status {status})")
        return KILLED_EXIT
    code = status if status >= 0 else 128 - status
    log(f"child {child.pid} exited with status {code}")
    return code


def watch_silence(
    child: "subprocess.Popen[bytes]", output: Output, silence: float, stall_after: float, interval: float, grace: float
) -> bool:
    """Until the child exits: diagnose it while its output is silent, and
    kill it when it is stuck. True when it was killed."""
    stillness = Stillness()
    next_look = silence  # seconds of silence at which to diagnose next
    gap = silence
    quiet_since: Optional[float] = None  # when the output went quiet, once a diagnosis was logged
    while True:
        last_output = output.last
        silent = time.monotonic() - last_output
        if quiet_since is not None and last_output != quiet_since:
            log(f"child {child.pid} printed again after {seconds(last_output - quiet_since)} of silence")
            quiet_since, next_look, gap = None, silence, silence
            stillness.reset()
        if silent < next_look:
            try:
                child.wait(timeout=min(next_look - silent, 1.0))
                return False
            except subprocess.TimeoutExpired:
                continue

        quiet_since = last_output
        next_look, gap = silent + gap, min(gap * 2, MAX_GAP)
        try:
            report: Optional[Report] = whystuck.diagnose(child.pid, tree=True, interval=interval)
        except whystuck.WhystuckError as e:
            log(f"could not diagnose child {child.pid} ({e}); leaving it running")
            report = None
        if child.poll() is not None:
            return False
        child_report = report.process(child.pid) if report is not None else None
        if report is None or child_report is None:
            continue
        still = stillness.update(report, time.monotonic(), interval)
        log(describe(child_report, report, silent, still))
        if output.last != last_output:
            log(f"child {child.pid}: leaving it running: it printed while being diagnosed")
            continue
        kill, why = decide(child_report, report, still, stall_after)
        log(f"child {child.pid}: {why}")
        if kill:
            kill_group(child, grace)
            return True


def stop_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run COMMAND; when its output goes silent, diagnose it with whystuck, and kill it only when it is stuck.",
    )
    parser.add_argument("--silence", type=float, default=60.0, help="seconds without output before the first diagnosis (default 60)")
    parser.add_argument("--stall-after", type=float, default=600.0, help="kill when nothing in its family moved for this long (default 600)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a diagnosis's two samples (default 1)")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL (default 5)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (supervise.py [OPTIONS] -- COMMAND [ARG...])")
    if args.silence <= 0 or args.stall_after <= 0 or args.interval < 0 or args.grace < 0:
        parser.error("--silence and --stall-after must be positive, --interval and --grace not negative")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_on_signal)
    try:
        return supervise(command, args.silence, args.stall_after, args.interval, args.grace)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
