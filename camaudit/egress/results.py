"""The egress evidence model: path results, check runs, passive flows and verdicts.

Plain dataclasses shared by the prober, the listener, the passive reader, the verdict logic and
the store (reference/egress.md sections 1.5 and 7.2). Every verdict carries the evidence it was
decided on, so a report can show why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import utc_now

ALLOWED = "allowed"
BLOCKED = "blocked"
UNKNOWN = "unknown"
PATH_RESULTS = (ALLOWED, BLOCKED, UNKNOWN)

OPEN = "OPEN"
EXPOSED = "EXPOSED"
CLOSED = "CLOSED"
INCONCLUSIVE = "INCONCLUSIVE"
VERDICTS = (OPEN, EXPOSED, CLOSED, INCONCLUSIVE)

#: Why a path ended as it did. Only ``echo`` and ``listener-log`` make a path allowed (an
#: application answer or log line carrying the probe's nonce: reference/lab.md section 9).
BASES = (
    "echo",  # an answer carrying our nonce came back
    "listener-log",  # the listener logged our nonce (one-way egress proven)
    "timeout",  # silence: blocked, or the listener was down (needs a positive control)
    "reset",  # TCP RST / port unreachable: a firewall's reject, or the listener not serving (needs a control)
    "unreachable",  # an ICMP unreachable from a router inside the organisation: conclusive
    "admin-prohibited",  # ICMP type 3 code 9/10/13: a filter said no, conclusive
    "no-route",  # this host has no route: conclusive
    "absent",  # the path does not exist from here (no proxy, no router advertisement, no IGD)
    "refused",  # a proxy answered 403/407 or the like: conclusive
    "negative",  # a resolver or proxy answered "no" (NXDOMAIN, SERVFAIL, 502): needs a control
    "no-nonce",  # something answered, but not with our nonce: proves nothing
    "error",  # a local error; nothing was learnt
    "not-tested",
)
#: Paths towards the segment from outside (inbound exposure), not egress.
INBOUND_PATHS = ("upnp", "natpmp")


def is_inbound(path: str) -> bool:
    return path in INBOUND_PATHS


@dataclass(slots=True)
class PathResult:
    """One tested path and its evidence: what was sent, what came back, when."""

    path: str
    result: str
    basis: str
    #: True when the result stands without a positive control (an answer, a local refusal).
    conclusive: bool = False
    nonce: str | None = None
    proto: str = ""
    dst: str = ""
    port: int | None = None
    sent: str = ""
    received: str | None = None
    started_at: str = field(default_factory=utc_now)
    ended_at: str = ""
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.result not in PATH_RESULTS:
            raise ValueError(f"unknown path result {self.result!r}")
        if self.basis not in BASES:
            raise ValueError(f"unknown basis {self.basis!r}")
        if self.result == ALLOWED:
            self.conclusive = True
        if not self.ended_at:
            self.ended_at = self.started_at

    def evidence(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "basis": self.basis,
            "conclusive": self.conclusive,
            "nonce": self.nonce,
            "proto": self.proto,
            "dst": self.dst,
            "port": self.port,
            "sent": self.sent,
            "received": self.received,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "detail": self.detail,
        }
        if self.extra:
            doc["extra"] = self.extra
        return doc

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "result": self.result, "evidence": self.evidence()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PathResult:
        ev = doc.get("evidence") or {}
        return cls(
            path=str(doc["path"]), result=str(doc["result"]), basis=str(ev.get("basis", "not-tested")),
            conclusive=bool(ev.get("conclusive", False)), nonce=ev.get("nonce"), proto=str(ev.get("proto", "")),
            dst=str(ev.get("dst", "")), port=ev.get("port"), sent=str(ev.get("sent", "")),
            received=ev.get("received"), started_at=str(ev.get("started_at") or utc_now()),
            ended_at=str(ev.get("ended_at") or ""), detail=str(ev.get("detail", "")),
            extra=dict(ev.get("extra") or {}),
        )


@dataclass(slots=True)
class ActiveResult:
    """One ``egress check`` run: from the camera segment, or a control from a vantage with egress."""

    run_id: str
    control: bool
    listeners: list[str]
    vantage: dict[str, Any]
    started_at: str
    finished_at: str
    planned: list[str]
    paths: list[PathResult]
    route: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    segment: str | None = None

    def path(self, name: str) -> PathResult | None:
        return next((p for p in self.paths if p.path == name), None)


@dataclass(frozen=True, slots=True)
class ListenerEntry:
    """One line of a listener log: a nonce the listener saw, from where, when."""

    nonce: str
    src: str
    at: str
    proto: str = ""
    port: int | None = None
    dst: str = ""
    kind: str = ""  # tcp | udp | dns | ntp | icmp


@dataclass(slots=True)
class Flow:
    """Traffic between a device and an external address seen in a capture."""

    device: str
    remote: str
    proto: str  # tcp | udp | icmp | other
    port: int | None  # the remote port
    state: str  # attempted | established
    first_seen: str
    last_seen: str
    packets_out: int = 0
    packets_in: int = 0
    remote_class: str = "external"

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device, "remote": self.remote, "proto": self.proto, "port": self.port,
            "state": self.state, "first_seen": self.first_seen, "last_seen": self.last_seen,
            "packets_out": self.packets_out, "packets_in": self.packets_in, "remote_class": self.remote_class,
        }  # fmt: skip


@dataclass(slots=True)
class DnsLookup:
    """A device's DNS query for a vendor-cloud name, and what came back."""

    device: str
    resolver: str
    qname: str
    cloud: str  # the matching name_or_pattern of signatures/cloud_endpoints.yaml
    vendor: str
    at: str
    answered: bool = False
    external_answers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device, "resolver": self.resolver, "qname": self.qname, "cloud": self.cloud,
            "vendor": self.vendor, "at": self.at, "answered": self.answered,
            "external_answers": list(self.external_answers),
        }  # fmt: skip


@dataclass(slots=True)
class PassiveResult:
    """What a capture showed: flows to external addresses and vendor-cloud lookups."""

    source: str
    start: str | None
    end: str | None
    packets: int
    devices: list[str]
    flows: list[Flow] = field(default_factory=list)
    lookups: list[DnsLookup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "start": self.start, "end": self.end, "packets": self.packets,
            "devices": self.devices, "flows": [f.to_json() for f in self.flows],
            "lookups": [q.to_json() for q in self.lookups], "notes": list(self.notes),
        }  # fmt: skip


@dataclass(slots=True)
class Verdict:
    """A verdict on a device or a segment, with qualifiers, gaps and the evidence behind it.

    ``verdict`` is the contract's one word; ``egress`` is the egress axis alone (OPEN, CLOSED or
    INCONCLUSIVE), which differs from ``verdict`` only when an inbound path makes it EXPOSED;
    ``exposed`` says whether an inbound path exists, also when the verdict is OPEN.
    """

    subject_kind: str  # device | segment
    subject: str
    verdict: str
    egress: str
    exposed: bool
    qualifiers: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    paths: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    decided_at: str = field(default_factory=utc_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "egress": self.egress,
            "exposed": self.exposed,
            "subject_kind": self.subject_kind,
            "subject": self.subject,
            "qualifiers": list(self.qualifiers),
            "missing": list(self.missing),
            "paths": list(self.paths),
            "evidence": list(self.evidence),
            "decided_at": self.decided_at,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Verdict:
        """The verdict :meth:`to_json` wrote (the store keeps each verdict as this document)."""

        def listed(value: Any) -> list[Any]:
            if value is None:
                return []
            return list(value) if isinstance(value, list) else [value]

        qualifiers = doc.get("qualifiers")
        return cls(
            subject_kind=str(doc.get("subject_kind") or "device"), subject=str(doc.get("subject") or ""),
            verdict=str(doc.get("verdict") or ""), egress=str(doc.get("egress") or ""),
            exposed=bool(doc.get("exposed")),
            # Verdicts written by hand or by another tool may state qualifiers as a mapping.
            qualifiers=[f"{k}: {v}" for k, v in qualifiers.items()] if isinstance(qualifiers, dict) else listed(qualifiers),
            missing=listed(doc.get("missing")), paths=listed(doc.get("paths")), evidence=listed(doc.get("evidence")),
            decided_at=str(doc.get("decided_at") or utc_now()),
        )  # fmt: skip
