"""The diagnosis as Python objects, read from whystuck's JSON.

Attribute names follow the JSON schema (README, "JSON conventions"). Every
object keeps its JSON object in ``raw``, so a field added to the JSON is
there without a new release of this package. Fields the binary may not
print yet (``next_step``, ``stuck_for_seconds``, the threads' stacks) are
``None`` when absent, as are facts the JSON reports as unavailable (null).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

#: The JSON schema version this package reads (``schema_version``).
SCHEMA_VERSION = 1

JsonObject = Dict[str, Any]


class Severity(enum.IntEnum):
    """How bad a verdict is, ordered: ``OK < INFO < WARN < CRITICAL``."""

    OK = 0
    INFO = 1
    WARN = 2
    CRITICAL = 3

    @classmethod
    def from_json(cls, name: str) -> "Severity":
        """``"critical"`` -> ``Severity.CRITICAL``; ValueError for anything else."""
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise ValueError(f"unknown severity {name!r}") from None

    def __str__(self) -> str:
        return self.name.lower()


def text(value: Any) -> Optional[str]:
    """A target-controlled string: a JSON string, or ``{"text", "hex"}`` when
    the bytes were not valid UTF-8 (``text`` is the lossy reading; ``raw``
    keeps the exact bytes as hex)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return str(value.get("text", ""))
    return str(value)


def _int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def _float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Peer:
    """Who holds the other end of the fd a finding is about."""

    pid: int
    fd: int
    comm: Optional[str]
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JsonObject) -> "Peer":
        return cls(pid=int(obj["pid"]), fd=int(obj["fd"]), comm=text(obj.get("comm")), raw=obj)


@dataclass(frozen=True)
class Finding:
    """One thing that holds about a process; the most severe is its verdict."""

    #: A verdict name: ``deadlock``, ``pipe-full``, ``waiting-on-child``, ...
    kind: str
    severity: Severity
    summary: str
    evidence: List[str]
    #: For a deadlock: the pids of the cycle in wait-for order, this process first.
    cycle: Optional[List[int]]
    #: The fd the finding is about (the pipe written, the socket read).
    fd: Optional[int]
    #: Who holds the other end of that fd (empty when none or not about an
    #: fd); for a ``lock-wait``, who holds the lock, and through which fd.
    peers: List[Peer]
    #: One line a person can act on, when the binary gives one.
    next_step: Optional[str]
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JsonObject) -> "Finding":
        cycle = obj.get("cycle")
        return cls(
            kind=str(obj["kind"]),
            severity=Severity.from_json(obj["severity"]),
            summary=str(obj.get("summary", "")),
            evidence=[str(e) for e in obj.get("evidence") or []],
            cycle=None if cycle is None else [int(p) for p in cycle],
            fd=_int(obj.get("fd")),
            peers=[Peer.from_json(p) for p in obj.get("peers") or []],
            next_step=obj.get("next_step"),
            raw=obj,
        )


@dataclass(frozen=True)
class Frame:
    """One frame of a Python stack (``--stacks``), innermost first."""

    function: Optional[str]
    file: Optional[str]
    line: Optional[int]
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JsonObject) -> "Frame":
        return cls(
            function=text(obj.get("function")),
            file=text(obj.get("file")),
            line=_int(obj.get("line")),
            raw=obj,
        )


@dataclass(frozen=True)
class Thread:
    """A thread of a process as the diagnosis saw it."""

    tid: int
    comm: Optional[str]
    state: Optional[str]
    wchan: Optional[str]
    #: The name of the syscall it is in (``write``, ``wait4``), None when running or unknown.
    syscall: Optional[str]
    #: Kernel frames, innermost first, where the binary could read them.
    kernel_stack: Optional[List[str]]
    #: Python frames, innermost first, with ``stacks=True`` and py-spy installed.
    python_stack: Optional[List[Frame]]
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JsonObject) -> "Thread":
        syscall = obj.get("syscall")
        kernel_stack = obj.get("kernel_stack")
        python_stack = obj.get("python_stack")
        return cls(
            tid=int(obj["tid"]),
            comm=text(obj.get("comm")),
            state=obj.get("state"),
            wchan=obj.get("wchan"),
            syscall=syscall.get("name") if isinstance(syscall, Mapping) else None,
            kernel_stack=None if kernel_stack is None else [str(f) for f in kernel_stack],
            python_stack=None if python_stack is None else [Frame.from_json(f) for f in python_stack],
            raw=obj,
        )


@dataclass(frozen=True)
class Container:
    """The container (and Kubernetes pod) a process's cgroups name."""

    #: ``docker``, ``containerd``, ``cri-o`` or ``podman``; None for a
    #: container id its path names without a runtime (the cgroupfs driver).
    runtime: Optional[str]
    #: The full container id (64 hex digits); None in a pod's own cgroup.
    id: Optional[str]
    pod_uid: Optional[str]

    @classmethod
    def from_json(cls, obj: Optional[JsonObject]) -> Optional["Container"]:
        if not obj:
            return None
        return cls(runtime=obj.get("runtime"), id=obj.get("id"), pod_uid=obj.get("pod_uid"))


@dataclass(frozen=True)
class Process:
    """The diagnosis of one process: its verdict, findings and facts.

    A pid that does not exist is a process with verdict ``dead`` (and most
    facts None), not an error.
    """

    pid: int
    #: ``target`` (named) or ``descendant`` (found with ``tree=True``).
    role: str
    ppid: Optional[int]
    comm: Optional[str]
    cmdline: Optional[List[str]]
    #: The state letter of /proc/PID/stat (R, S, D, T, t, Z, ...).
    state: Optional[str]
    #: A verdict name: ``running``, ``busy``, ``deadlock``, ``pipe-full``, ...
    verdict: str
    severity: Severity
    summary: str
    findings: List[Finding]
    rss_bytes: Optional[int]
    #: How long it has been stuck, when the binary can tell; None where unknown.
    stuck_for_seconds: Optional[float]
    #: The container and pod it is in; None outside one (or from an older binary).
    container: Optional[Container]
    threads: List[Thread]
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JsonObject) -> "Process":
        cmdline = obj.get("cmdline")
        return cls(
            pid=int(obj["pid"]),
            role=str(obj.get("role", "target")),
            ppid=_int(obj.get("ppid")),
            comm=text(obj.get("comm")),
            cmdline=None if cmdline is None else [text(a) or "" for a in cmdline],
            state=obj.get("state"),
            verdict=str(obj["verdict"]),
            severity=Severity.from_json(obj["severity"]),
            summary=str(obj.get("summary", "")),
            findings=[Finding.from_json(f) for f in obj.get("findings") or []],
            rss_bytes=_int(obj.get("rss_bytes")),
            stuck_for_seconds=_float(obj.get("stuck_for_seconds")),
            container=Container.from_json(obj.get("container")),
            threads=[Thread.from_json(t) for t in obj.get("threads") or []],
            raw=obj,
        )


@dataclass(frozen=True)
class LinkEnd:
    pid: int
    fd: int

    @classmethod
    def from_json(cls, obj: JsonObject) -> "LinkEnd":
        return cls(pid=int(obj["pid"]), fd=int(obj["fd"]))


@dataclass(frozen=True)
class Link:
    """A pipe or socket between two reported processes.

    The JSON's ``from`` is ``from_`` here (``from`` is a Python keyword).
    """

    #: ``pipe``, ``unix`` or ``tcp``.
    kind: str
    inode: int
    #: The writer of a pipe; for a socket, the lower pid.
    from_: LinkEnd
    to: LinkEnd
    buffered_bytes: Optional[int]
    capacity_bytes: Optional[int]
    full: Optional[bool]
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JsonObject) -> "Link":
        return cls(
            kind=str(obj["kind"]),
            inode=int(obj["inode"]),
            from_=LinkEnd.from_json(obj["from"]),
            to=LinkEnd.from_json(obj["to"]),
            buffered_bytes=_int(obj.get("buffered_bytes")),
            capacity_bytes=_int(obj.get("capacity_bytes")),
            full=obj.get("full"),
            raw=obj,
        )


@dataclass(frozen=True)
class Report:
    """One run of ``whystuck --json``: every process diagnosed, and the links
    between them."""

    schema_version: int
    #: Whether descendants were followed (``tree=True``).
    tree: bool
    processes: List[Process]
    links: List[Link]
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JsonObject) -> "Report":
        version = int(obj.get("schema_version", SCHEMA_VERSION))
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"the binary printed JSON schema version {version}; this package reads "
                f"version {SCHEMA_VERSION} (install matching versions of both)"
            )
        return cls(
            schema_version=version,
            tree=bool(obj.get("tree", False)),
            processes=[Process.from_json(p) for p in obj.get("processes") or []],
            links=[Link.from_json(link) for link in obj.get("links") or []],
            raw=obj,
        )

    def process(self, pid: int) -> Optional[Process]:
        """The diagnosis of ``pid``, if the report has it."""
        return next((p for p in self.processes if p.pid == pid), None)


@dataclass(frozen=True)
class WatchEvent:
    """One line of ``whystuck watch --format ndjson``."""

    #: ``change`` (a new verdict), ``still`` (the same warning with fresh
    #: evidence) or ``ended`` (the process is gone; ``severity`` says how it ended).
    event: str
    pid: int
    comm: Optional[str]
    verdict: str
    severity: Severity
    summary: str
    previous_verdict: Optional[str]
    #: Seconds since its pulse (or a descendant's) last moved.
    still_for_seconds: float
    evidence: List[str]
    #: RFC 3339, to the second, UTC.
    timestamp: str
    raw: JsonObject = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JsonObject) -> "WatchEvent":
        return cls(
            event=str(obj["event"]),
            pid=int(obj["pid"]),
            comm=text(obj.get("comm")),
            verdict=str(obj["verdict"]),
            severity=Severity.from_json(obj["severity"]),
            summary=str(obj.get("summary", "")),
            previous_verdict=obj.get("previous_verdict"),
            still_for_seconds=float(obj.get("still_for_seconds") or 0),
            evidence=[str(e) for e in obj.get("evidence") or []],
            timestamp=str(obj.get("timestamp", "")),
            raw=obj,
        )
