"""Fixtures for the Python API's tests, which run real processes.

Run them against an installed package (tests/python/run.sh builds the wheel
and installs it in a fresh virtual environment), or against the source tree
and a built binary:

    PYTHONPATH=python WHYSTUCK_BIN=target/debug/whystuck python3 -m pytest tests/python
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Iterator, List

import pytest
import whystuck

from procs import Group


def pytest_report_header(config: pytest.Config) -> List[str]:
    try:
        binary = whystuck.find_whystuck_bin()
    except whystuck.WhystuckError as e:
        binary = f"not found: {e}"
    return [f"whystuck package: {os.path.dirname(whystuck.__file__)}", f"whystuck binary: {binary}"]


@pytest.fixture
def group() -> Iterator[Group]:
    g = Group()
    try:
        yield g
    finally:
        g.stop()


class Alarm(Exception):
    pass


@pytest.fixture
def deadline() -> Iterator[Callable[[float], None]]:
    """``deadline(seconds)``: the test fails with Alarm instead of hanging
    past it (SIGALRM interrupts a blocking read in the main thread)."""

    def ring(signum: int, frame: object) -> None:
        raise Alarm("the test ran past its deadline")

    previous = signal.signal(signal.SIGALRM, ring)

    def arm(seconds: float) -> None:
        signal.setitimer(signal.ITIMER_REAL, seconds)

    try:
        yield arm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
