"""The estate above single scans: sites and their segments, scans, egress runs, devices that
stay the same device across scans, sightings, and frozen assessments (DESIGN.md section 6).

These are what the store's reads return; nothing above the store handles its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A scan's life: running until it ends one of the other three ways.
SCAN_STATUSES: tuple[str, ...] = ("running", "complete", "interrupted", "failed")
#: The site a scan belongs to when none is named (``--site``, config ``[scan] site``).
DEFAULT_SITE = "default"
#: Kinds of egress run: an active check from a camera segment, a positive control from a
#: vantage with egress, and the passive evidence of a capture or a listener log.
EGRESS_RUN_KINDS: tuple[str, ...] = ("check", "control", "pcap", "listener-log")
#: Device key kinds, strongest first (:func:`camaudit.store.device_key`).
DEVICE_KEY_KINDS: tuple[str, ...] = ("serial", "mac", "addr")


@dataclass(frozen=True, slots=True)
class Site:
    """A place audited as one estate: its own address space, so two sites that both use
    192.168.1.0/24 never mix. Segments are the CIDRs it was scanned with."""

    name: str
    created_at: str
    segments: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"site": self.name, "created_at": self.created_at, "segments": list(self.segments)}


@dataclass(frozen=True, slots=True)
class Scan:
    """One camera scan as recorded."""

    id: str
    site: str
    started_at: str
    finished_at: str | None
    status: str
    targets: list[str]
    addresses_scanned: int
    hosts: int
    notes: list[str]
    camaudit_version: str
    error: str | None
    heartbeat_at: str | None = None

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"

    def to_json(self) -> dict[str, Any]:
        return {
            "scan_id": self.id, "site": self.site, "started_at": self.started_at, "finished_at": self.finished_at,
            "status": self.status, "targets": self.targets, "addresses_scanned": self.addresses_scanned,
            "hosts": self.hosts, "notes": self.notes, "camaudit_version": self.camaudit_version,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class EgressRun:
    """One egress run: an active check or control (``egress check``), or passive evidence (a
    capture, a listener log). Never a scan; ``scan_id`` is set only for the check a
    ``camaudit scan --listener`` ran inside the scan."""

    id: str
    site: str
    kind: str  # one of EGRESS_RUN_KINDS
    segment: str | None
    started_at: str
    finished_at: str | None
    scan_id: str | None = None
    control: bool = False
    vantage: dict[str, Any] = field(default_factory=dict)
    listeners: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.id, "site": self.site, "kind": self.kind, "segment": self.segment,
            "started_at": self.started_at, "finished_at": self.finished_at, "scan_id": self.scan_id,
            "control": self.control, "vantage": self.vantage, "listeners": self.listeners,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Device:
    """A device of a site, stable across scans: its key is ``serial:<s>``, else ``mac:<m>``,
    else ``addr:<a>``; a device known by a weaker key is promoted when a stronger one is learnt."""

    site: str
    id: str
    first_seen: str
    last_seen: str
    serial: str | None = None
    mac: str | None = None
    vendor: str | None = None
    brand: str | None = None
    model: str | None = None
    aliases: list[str] = field(default_factory=list)

    @property
    def key_kind(self) -> str:
        return self.id.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Sighting:
    """A device seen at an address in one scan."""

    site: str
    scan_id: str
    device_id: str
    address: str
    first_seen: str
    last_seen: str


@dataclass(frozen=True, slots=True)
class Assessment:
    """One frozen assessment of a scan: what it was assessed with, and when. Reports show an
    assessment; re-reporting never changes one (``camaudit assess`` makes a new one)."""

    id: str
    scan_id: str
    site: str
    created_at: str
    policy_hash: str
    policy_source: str
    register_hash: str
    register_imported_at: str | None
    signatures_hash: str
    camaudit_version: str
    reason: str
    verdict_ids: list[int] = field(default_factory=list)
    egress_runs: list[str] = field(default_factory=list)
    register: list[dict[str, Any]] = field(default_factory=list)  # the register as it was
    #: False for an assessment migrated from 0.1, which did not record its inputs: it is shown
    #: with today's register and verdicts.
    inputs_recorded: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "assessment_id": self.id, "scan_id": self.scan_id, "site": self.site, "created_at": self.created_at,
            "policy_hash": self.policy_hash, "policy_source": self.policy_source,
            "register_hash": self.register_hash, "register_imported_at": self.register_imported_at,
            "signatures_hash": self.signatures_hash, "camaudit_version": self.camaudit_version,
            "reason": self.reason, "egress_runs": list(self.egress_runs), "inputs_recorded": self.inputs_recorded,
        }  # fmt: skip
