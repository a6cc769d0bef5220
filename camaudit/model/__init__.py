"""The data that flows between camaudit's stages (DESIGN.md sections 1, 3 and 4): one definition each.

Observations are raw evidence; everything else is derived from them and links back to them.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: The observation vocabulary (DESIGN.md section 3). A contract: users' scripts rely on it.
OBSERVATION_KINDS: frozenset[str] = frozenset(
    {
        "mac",
        "open_port",
        "http_server",
        "http_www_authenticate",
        "http_headers",
        "http_title",
        "http_body",
        "favicon_mmh3",
        "favicon_md5",
        "tls_cert",
        "rtsp_server",
        "rtsp_www_authenticate",
        "rtsp_response",
        "onvif_probe_match",
        "onvif_device_info",
        "sadp",
        "dhip",
        "isapi_device_info",
        "dahua_cgi",
        "mdns",
        "upnp",
        "snmp_sysdescr",
        "telnet_banner",
        "ftp_banner",
        # nmap -sV's own service match ("product=...; version=...; ..."), from --nmap-xml input
        "nmap_service",
        # a host name the network gave for the address (nmap's reverse DNS or user-set name)
        "hostname",
    }
)

#: Values are bounded: a device controls them, and the store and reports must stay small.
MAX_OBSERVATION_VALUE = 16 * 1024

DEVICE_TYPES: frozenset[str] = frozenset({"camera", "nvr", "dvr", "doorbell", "encoder", "other"})


def utc_now() -> str:
    """An ISO 8601 UTC timestamp with microseconds, the one format the store uses."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def bounded_text(value: str | bytes, limit: int = MAX_OBSERVATION_VALUE) -> str:
    """Decode leniently and cut to ``limit`` characters: device text is untrusted."""
    if isinstance(value, bytes):
        value = value[: limit * 4].decode("utf-8", errors="replace")
    value = value.replace("\x00", "\ufffd")
    return value[:limit]


@dataclass(frozen=True, slots=True)
class Observation:
    """One piece of raw evidence about one address (and port, when it has one)."""

    address: str
    kind: str
    value: str
    port: int | None = None
    source: str = ""
    observed_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if self.kind not in OBSERVATION_KINDS:
            raise ValueError(f"unknown observation kind {self.kind!r}")
        if len(self.value) > MAX_OBSERVATION_VALUE:
            object.__setattr__(self, "value", self.value[:MAX_OBSERVATION_VALUE])

    def brief(self) -> dict[str, Any]:
        """The contract's JSON shape: kind, value, port."""
        return {"kind": self.kind, "value": self.value, "port": self.port}


@dataclass(slots=True)
class Host:
    """What one scan learned about one address."""

    address: str
    ports: list[int] = field(default_factory=list)
    mac: str | None = None
    observations: list[Observation] = field(default_factory=list)
    #: Probes that could not finish (timeouts, resets, oversized answers), said plainly.
    problems: list[str] = field(default_factory=list)
    identity: Identity | None = None
    #: What the device reported about its own network and cloud (DeviceSettings.to_json()).
    settings: dict[str, Any] | None = None
    #: The egress verdict for this device, when one was decided (contract: hosts[].verdict).
    verdict: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "address": self.address,
            "ports": sorted(self.ports),
            "observations": [o.brief() for o in self.observations],
        }
        if self.mac:
            doc["mac"] = self.mac
        if self.problems:
            doc["problems"] = list(self.problems)
        if self.identity is not None:
            doc["identity"] = self.identity.to_json()
        if self.settings is not None:
            doc["settings"] = self.settings
        if self.verdict is not None:
            doc["verdict"] = self.verdict
        return doc


@dataclass(frozen=True, slots=True)
class SignatureHit:
    """One signature that matched, and the observation it matched."""

    signature: str
    kind: str
    value: str
    port: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.signature, "kind": self.kind, "value": self.value, "port": self.port}


@dataclass(slots=True)
class FieldEvidence:
    """One signature and observation behind one identity field (issue 14 item 7).

    ``via`` says how the value was reached when the signature did not state it itself: a maker
    taken from the OEM lineage of the brand the signature named (``lineage: lorex -> dahua``).
    """

    signature: str
    kind: str
    observation: str
    port: int | None = None
    via: str | None = None
    #: The value as the device sent it in this observation, when the field spells it otherwise
    #: (SADP's "V5.2.0build 140721" for the firmware "V5.2.0 build 140721").
    as_sent: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"signature": self.signature, "kind": self.kind, "observation": self.observation,
                               "port": self.port}
        if self.via:
            doc["via"] = self.via
        if self.as_sent is not None:
            doc["as_sent"] = self.as_sent
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FieldEvidence:
        port = doc.get("port")
        return cls(str(doc.get("signature") or ""), str(doc.get("kind") or ""), str(doc.get("observation") or ""),
                   port if isinstance(port, int) else None, doc.get("via"), doc.get("as_sent"))


@dataclass(slots=True)
class FieldSource:
    """An identity field's value and the evidence behind it, the deciding evidence first."""

    value: str
    evidence: list[FieldEvidence] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "evidence": [e.to_json() for e in self.evidence]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FieldSource:
        evidence = doc.get("evidence")
        return cls(str(doc.get("value") or ""),
                   [FieldEvidence.from_json(e) for e in evidence if isinstance(e, dict)] if isinstance(evidence, list) else [])


@dataclass(slots=True)
class Identity:
    """Who made a device, by the evidence (DESIGN.md section 4, a contract)."""

    vendor: str = "unknown"
    brand: str | None = None
    device_type: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    confidence: float = 0.0
    covered: bool = False
    advisories: list[str] = field(default_factory=list)
    signatures: list[SignatureHit] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    #: Per field (vendor, brand, model, firmware, serial, device_type) the value and the
    #: signatures and observations behind it. Additive to the section 4 contract (issue 14).
    fields: dict[str, FieldSource] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # Field by field, in the order declared: dataclasses.asdict copied every signature and
        # field source deeply only for them to be replaced (a fifth of assessing, issue 15).
        return {
            "vendor": self.vendor, "brand": self.brand, "device_type": self.device_type, "model": self.model,
            "firmware": self.firmware, "serial": self.serial, "confidence": round(self.confidence, 3),
            "covered": self.covered, "advisories": list(self.advisories),
            "signatures": [s.to_json() for s in self.signatures], "conflicts": list(self.conflicts),
            "fields": {name: source.to_json() for name, source in self.fields.items()},
        }  # fmt: skip


@dataclass(slots=True)
class ScanResult:
    """The outcome of one run of the pipeline."""

    scan_id: str
    status: str
    started_at: str
    finished_at: str | None
    targets: list[str]
    #: Hosts to write with the result (:meth:`to_json` without ``hosts``). ``run_scan`` leaves it
    #: empty: a scan holds no host (issue 15); the hosts as recorded, ports, evidence, identity,
    #: settings and verdict included, are read from the store (``camaudit.audit.scan_hosts``).
    hosts: list[Host] = field(default_factory=list)
    #: How many hosts the scan recorded (what answered), and their open TCP ports.
    hosts_found: int = 0
    open_ports: int = 0
    #: Things the run could not do (no root for ARP, nmap missing, ...), said once each.
    notes: list[str] = field(default_factory=list)
    addresses_scanned: int = 0
    #: What the scan's assessment found: how many findings by severity and the most severe
    #: (empty for --sweep-only). A scan holds no finding (issue 15):
    #: ``camaudit.audit.scan_findings`` reads them whole from the store.
    finding_summary: FindingSummary = field(default_factory=lambda: FindingSummary())  # defined below, in .findings
    #: Policy findings, most severe first, for a result built by its caller (``to_json``);
    #: ``run_scan`` leaves it empty and fills :attr:`finding_summary`.
    findings: list[Any] = field(default_factory=list)
    #: The segment's egress check (``egress check --json`` shape), when --listener was given.
    egress: dict[str, Any] | None = None
    #: The site the scan is recorded under (``--site``).
    site: str = "default"

    def to_json(self, hosts: Iterable[Host] | None = None, findings: Iterable[Any] | None = None) -> dict[str, Any]:
        """The scan's JSON document. ``hosts`` are the hosts as recorded, in address order
        (``camaudit.audit.scan_hosts``); without them, :attr:`hosts` (what answered). ``findings``
        likewise (``camaudit.audit.scan_findings``); without them, :attr:`findings`."""
        listed = self._sorted_hosts() if hosts is None else hosts
        found = self.findings if findings is None else findings
        return self._document([h.to_json() for h in listed], [f.to_json() for f in found])

    def _sorted_hosts(self) -> list[Host]:
        return sorted(self.hosts, key=lambda h: address_order(h.address))

    def _document(self, hosts: list[dict[str, Any]], findings: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "site": self.site,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "targets": self.targets,
            "addresses_scanned": self.addresses_scanned,
            "notes": self.notes,
            "hosts": hosts,
            "findings": findings,
            **({"egress": self.egress} if self.egress is not None else {}),
        }

    def write_json(self, write: Callable[[str], object], hosts: Iterable[Host] | None = None,
                   findings: Iterable[Any] | None = None) -> None:
        """Write exactly ``json.dumps(self.to_json(hosts, findings), indent=2, default=str)``, one
        host and one finding at a time: for thousands of hosts the whole document as one string
        (and its encoded copy) was the largest thing a scan held, and the findings, which carry
        their evidence, came next (issue 15). ``hosts`` and ``findings`` may be iterators read as
        they are written."""
        import json

        listed = self._sorted_hosts() if hosts is None else hosts
        found = self.findings if findings is None else findings
        lists: dict[str, Iterable[Callable[[], Any]]] = {
            "hosts": (h.to_json for h in listed),
            "findings": (f.to_json for f in found),
        }
        rest = json.dumps(self._document([], []), indent=2, default=str)
        # Only a top-level key sits at two spaces on a line of its own: a string value cannot
        # contain a raw newline, so a marker cannot match inside one.
        markers = {key: f'\n  "{key}": []' for key in lists}
        if not all(marker in rest for marker in markers.values()):  # not the layout expected
            write(json.dumps(self.to_json(listed, found), indent=2, default=str))
            return
        for key, items in lists.items():
            head, _, tail = rest.partition(markers[key])
            written = 0
            for item in items:
                body = json.dumps(item(), indent=2, default=str).replace("\n", "\n    ")
                write((head + f'\n  "{key}": [' if not written else ",") + "\n    " + body)
                written += 1
            write("\n  ]" if written else head + markers[key])
            rest = tail
        write(rest)


# The estate and findings types (issue 11): defined in their own modules, re-exported here so
# that every type crossing stages is importable from camaudit.model.
from .estate import (  # noqa: E402
    DEFAULT_SITE,
    DEVICE_KEY_KINDS,
    EGRESS_RUN_KINDS,
    SCAN_STATUSES,
    Assessment,
    Device,
    EgressRun,
    Scan,
    Sighting,
    Site,
)
from .findings import (  # noqa: E402
    SEVERITIES,
    Finding,
    FindingSummary,
    address_order,
    count_by_severity,
    severity_at_least,
    severity_rank,
)

__all__ = [
    "DEFAULT_SITE", "DEVICE_KEY_KINDS", "EGRESS_RUN_KINDS", "SCAN_STATUSES", "SEVERITIES", "Assessment", "Device",
    "EgressRun", "Finding", "FindingSummary", "Scan", "Sighting", "Site", "count_by_severity", "severity_at_least",
    "severity_rank",
]
