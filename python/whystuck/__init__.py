"""Say why a Linux process is stuck, from Python.

::

    import whystuck

    report = whystuck.diagnose(1201, interval=1.0)
    p = report.processes[0]
    if p.severity >= whystuck.Severity.CRITICAL:
        print(p.pid, p.comm, p.verdict, p.summary, p.findings[0].evidence)

    for event in whystuck.watch(1201, every=5.0, stall_after=600.0):
        print(event.event, event.verdict, event.summary)

The package runs the ``whystuck`` binary installed beside it (see
:func:`find_whystuck_bin`) and reads its JSON; it has no dependencies
beyond the standard library. Every object keeps its JSON in ``raw``.
"""

from __future__ import annotations

from ._binary import find_whystuck_bin
from ._errors import WhystuckError
from ._model import (
    SCHEMA_VERSION,
    Container,
    Finding,
    Frame,
    Link,
    LinkEnd,
    Peer,
    Process,
    Report,
    Severity,
    Thread,
    WatchEvent,
)
from ._run import diagnose, watch

__all__ = [
    "SCHEMA_VERSION",
    "Container",
    "Finding",
    "Frame",
    "Link",
    "LinkEnd",
    "Peer",
    "Process",
    "Report",
    "Severity",
    "Thread",
    "WatchEvent",
    "WhystuckError",
    "diagnose",
    "find_whystuck_bin",
    "watch",
]
