"""Assessment: identities, egress verdicts, advisories and the register's reconciliation,
turned into findings by the policy (DESIGN.md section 1, "assess").

Everything here reads the store only. :func:`scan_view` gathers what one scan established about
each device (the view reports and exports are written from); :func:`evaluate` applies a policy
to it; :func:`assess_scan` does both and records the reconciliation and the findings.

Verdicts come from the ``verdicts`` table (see :mod:`camaudit.assess_schema`); a scan with no
verdict rows, or a store without the table, has "no verdict recorded" (``NONE``), said plainly.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from .egress.verdict import carried_verdict, segments_of
from .model import utc_now
from .model.verdicts import Reason, Verdict, english, reasons_from_json, reasons_to_json
from .policy import SEVERITIES, Policy, load_policy, severity_rank
from .register import Asset, FoundDevice, Reconciled, load_register, normalise_mac, reconcile
from .scope import is_external
from .store import ScanRow, Store, _address_sort_key, device_key

log = logging.getLogger(__name__)

EGRESS_VERDICTS = ("OPEN", "CLOSED", "INCONCLUSIVE")
NO_VERDICT = "NONE"
#: An identity at or above this confidence rests on more than weak hints (DESIGN.md section 4).
CONFIRMED_CONFIDENCE = 0.5
#: What a device with no verdict lacks (rendered by the report layer's catalogue).
NO_VERDICT_MISSING = Reason("no_verdict_in_scan")
NO_VERDICT_RECORDED = Reason("no_verdict_recorded")
#: Facts that are reasons (rendered in the report's language through the message catalogue),
#: and the register's sentence (translated by camaudit.report.i18n where it knows it).
_REASON_FACTS = ("verdict_source", "verdict_text", "qualifiers", "missing")
_SENTENCE_FACTS = ("mismatch",)
#: When several egress verdicts speak of one subject the most alarming wins; CLOSED never
#: outvotes doubt (egress.md section 1.4 roll-up rule).
_VERDICT_ORDER = {"OPEN": 3, "INCONCLUSIVE": 2, "CLOSED": 1, NO_VERDICT: 0}


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: a rule of the policy that held for one subject of one scan."""

    id: str
    scan_id: str
    rule: str
    severity: str
    subject: str  # an address, asset:<id>, or segment:<name>
    title: str
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "scan_id": self.scan_id, "rule": self.rule, "severity": self.severity,
            "subject": self.subject, "title": self.title, "detail": self.detail, "evidence": self.evidence,
        }  # fmt: skip


def severity_at_least(findings: Iterable[Finding], threshold: str) -> bool:
    """True when a finding is at ``threshold`` or above (``none`` never is; DESIGN.md section 7)."""
    if threshold == "none":
        return False
    floor = severity_rank(threshold)
    return any(severity_rank(f.severity) >= floor for f in findings)


# -- verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerdictRow:
    subject_kind: str
    subject: str
    verdict: str
    qualifiers: list[Reason] | None = None
    missing: list[Reason] = field(default_factory=list)
    paths: list[Any] = field(default_factory=list)
    evidence: Any = None
    decided_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Qualifiers and missing items in English for readers of the JSON, and as codes."""
        return {
            "subject_kind": self.subject_kind, "subject": self.subject, "verdict": self.verdict,
            "qualifiers": english(self.qualifiers) if self.qualifiers is not None else None,
            "missing": english(self.missing), "paths": self.paths,
            "qualifier_codes": reasons_to_json(self.qualifiers or []), "missing_codes": reasons_to_json(self.missing),
            "evidence": self.evidence, "decided_at": self.decided_at,
        }  # fmt: skip


def _json_field(value: Any, default: Any) -> Any:
    if value in (None, ""):
        return default
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # plain text written by hand stays readable


def read_verdicts(store: Store, scan_id: str) -> list[VerdictRow]:
    """The verdict rows of a scan; empty when none were recorded or the table is absent.
    Columns beyond the agreed ones (``evidence``) are read when present."""
    if not store.db.table("verdicts").exists():
        return []
    rows = []
    for row in store.db.query("select * from verdicts where scan_id = ? order by rowid", [scan_id]):
        verdict = str(row.get("verdict") or "").upper()
        kind = str(row.get("subject_kind") or "device").lower()
        if verdict not in (*EGRESS_VERDICTS, "EXPOSED") or kind not in ("device", "segment"):
            log.warning("ignoring verdict row %r for %r: unknown verdict or subject kind", verdict, row.get("subject"))
            continue
        qualifiers = _json_field(row.get("qualifiers"), None)
        paths = _json_field(row.get("paths"), [])
        rows.append(
            VerdictRow(
                subject_kind=kind,
                subject=str(row.get("subject") or ""),
                verdict=verdict,
                # codes (flat objects), or the sentences of a 0.1 store or a hand-written row
                qualifiers=None if qualifiers is None else reasons_from_json(qualifiers),
                missing=reasons_from_json(_json_field(row.get("missing"), [])),
                paths=paths if isinstance(paths, list) else [paths],
                evidence=_json_field(row.get("evidence"), None),
                decided_at=row.get("decided_at"),
            )
        )
    return rows


def _worst(rows: Sequence[VerdictRow]) -> VerdictRow | None:
    egress = [r for r in rows if r.verdict in EGRESS_VERDICTS]
    if not egress:
        return None
    verdicts = {r.verdict for r in egress}
    if verdicts == {"CLOSED", "INCONCLUSIVE"} or verdicts == {"INCONCLUSIVE"}:
        return next(r for r in egress if r.verdict == "INCONCLUSIVE")
    return max(egress, key=lambda r: _VERDICT_ORDER[r.verdict])


@dataclass(slots=True)
class SegmentView:
    """One segment with a verdict, and the devices of this scan inside it."""

    name: str
    verdict: str
    row: VerdictRow | None
    exposed: VerdictRow | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    devices: list[str] = field(default_factory=list)  # addresses
    covered_devices: int = 0

    def facts(self) -> dict[str, Any]:
        return {
            "segment": self.name,
            "verdict": self.verdict,
            "verdict_text": NO_VERDICT_RECORDED if self.verdict == NO_VERDICT else self.verdict,
            "qualifiers": self.row.qualifiers if self.row else None,
            "missing": self.row.missing if self.row else [],
            "exposed": self.exposed is not None,
            "devices": len(self.devices),
            "covered_devices": self.covered_devices,
        }


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


# -- the view of one scan ------------------------------------------------------------------


@dataclass(slots=True)
class DeviceView:
    """Everything one scan established about one device."""

    address: str
    device_id: str
    mac: str | None
    ports: list[int]
    identity: dict[str, Any] | None
    verdict: str = NO_VERDICT
    verdict_row: VerdictRow | None = None
    #: Where the verdict comes from (a ``source_*`` reason, egress.verdict.carried_verdict).
    source: Reason | None = None
    exposed: VerdictRow | None = None
    segment: str | None = None  # the segment whose verdict applies, else the register's
    register: str = "no_register"  # matched | unregistered | no_register | not_a_camera
    reconciled: Reconciled | None = None
    #: What the device itself reports that points to the internet (egress.md 1.4 row 11).
    internet_settings: list[str] = field(default_factory=list)

    @property
    def vendor(self) -> str:
        return (self.identity or {}).get("vendor") or "unknown"

    @property
    def verdict_source(self) -> str:
        """Where the verdict comes from, in English ("" when nothing was recorded)."""
        return english([self.source])[0] if self.source is not None else ""

    @property
    def covered(self) -> bool:
        return bool((self.identity or {}).get("covered"))

    @property
    def asset(self) -> Asset | None:
        return self.reconciled.asset if self.reconciled else None

    def facts(self) -> dict[str, Any]:
        ident = self.identity or {}
        asset = self.asset
        row = self.verdict_row
        return {
            "address": self.address,
            "device_id": self.device_id,
            "mac": self.mac,
            "maker": self.vendor,
            "vendor": self.vendor,
            "brand": ident.get("brand") or self.vendor,
            "model": ident.get("model"),
            "firmware": ident.get("firmware") or "unknown",
            "serial": ident.get("serial") or "unknown",
            "device_type": ident.get("device_type"),
            "confidence": ident.get("confidence") or 0.0,
            "identified": self.vendor != "unknown",
            "covered": self.covered,
            # Covered on evidence that can carry a claim: a lone MAC prefix or favicon names a
            # maker at under 0.5 (fingerprint engine), which is a lead, not a finding.
            "internet_config": bool(self.internet_settings),
            "internet_settings": self.internet_settings,
            "covered_confirmed": self.covered and (ident.get("confidence") or 0.0) >= CONFIRMED_CONFIDENCE,
            "advisories": list(ident.get("advisories") or []),
            "has_advisories": bool(ident.get("advisories")),
            "verdict": self.verdict,
            "verdict_source": self.source or NO_VERDICT_RECORDED,
            "verdict_text": NO_VERDICT_RECORDED if self.verdict == NO_VERDICT else self.verdict,
            "qualifiers": row.qualifiers if row else None,
            "missing": ([NO_VERDICT_MISSING] if self.verdict == NO_VERDICT else (row.missing if row else [])),
            "exposed": self.exposed is not None,
            "register": self.register,
            "asset_id": asset.asset_id if asset else None,
            "declared_maker": asset.declared_maker if asset else None,
            "declared_brand": asset.declared_brand if asset else None,
            "maker_mismatch": bool(self.reconciled and self.reconciled.maker_mismatch),
            "mismatch": self.reconciled.detail if self.reconciled and self.reconciled.maker_mismatch else "",
            "location": asset.location if asset else None,
            "department": asset.department if asset else None,
            "segment": self.segment,
        }

    def evidence(self) -> dict[str, Any]:
        """What stands behind this device's identity, verdict and register status."""
        ident = self.identity or {}
        doc: dict[str, Any] = {
            "device_id": self.device_id,
            "address": self.address,
            "mac": self.mac,
            "open_ports": self.ports,
            "identity": {k: ident.get(k) for k in ("vendor", "brand", "device_type", "model", "firmware", "serial", "confidence", "covered", "advisories", "conflicts")},
            "signatures": ident.get("signatures", []),
            "verdict": {"verdict": self.verdict, "source": self.verdict_source or "no verdict recorded",
                        "source_code": (self.source or NO_VERDICT_RECORDED).to_json()},
        }
        if self.verdict_row:
            doc["verdict"] |= self.verdict_row.to_json()
        if self.exposed:
            doc["exposed"] = self.exposed.to_json()
        if self.reconciled:
            doc["register"] = self.reconciled.to_row("") | {"asset": self.asset.to_json() if self.asset else None}
            doc["register"].pop("scan_id")
        return doc


@dataclass(slots=True)
class ScanView:
    """One scan as reports, exports and assessment see it."""

    scan: ScanRow
    devices: list[DeviceView]
    segments: list[SegmentView]
    missing_assets: list[Reconciled]
    register_size: int
    verdict_rows: list[VerdictRow]

    @property
    def has_register(self) -> bool:
        return self.register_size > 0


def _found_devices(store: Store, scan_id: str) -> list[DeviceView]:
    # The device's MAC as add_identity recorded it, for hosts whose MAC came with the identity.
    macs = dict(
        store.db.execute(
            "select d.id, d.mac from devices d join identities i on i.device_id = d.id where i.scan_id = ?", [scan_id]
        ).fetchall()
    )
    settings = store.device_settings(scan_id) if store.db.table("device_settings").exists() else {}
    devices = []
    for host in store.hosts_of_scan(scan_id):
        ident = host.get("identity")
        device_id = (ident or {}).get("device_id") or device_key(serial=None, mac=host.get("mac"), address=host["address"])
        mac = host.get("mac") or macs.get(device_id)
        device = DeviceView(host["address"], device_id, mac, list(host["ports"]), ident)
        device.internet_settings = internet_settings(settings.get(host["address"]))
        devices.append(device)
    return devices


def internet_settings(settings: dict[str, Any] | None) -> list[str]:
    """The settings a device reports that point to the internet: public DNS or NTP servers and
    cloud or P2P services switched on. A configuration risk, never an egress verdict by itself
    (egress.md section 1.4, row 11). Servers given by name are left out: camaudit does not
    resolve them, and an internal name would be a false finding."""
    if not settings:
        return []
    found: list[str] = []
    for label, key in (("DNS server", "dns"), ("NTP server", "ntp")):
        for server in settings.get(key) or []:
            try:
                external = is_external(str(server))
            except ValueError:  # a host name
                continue
            if external:
                found.append(f"{label} {server}")
    for service, state in sorted((settings.get("cloud") or {}).items()):
        if isinstance(state, dict) and state.get("enabled") is True:
            found.append(f"{service} enabled")
    return found


def scan_view(store: Store, scan_ref: str = "latest") -> ScanView:
    """Gather one scan's devices, their verdicts and their register status. Writes nothing."""
    scan = store.scan(scan_ref)
    devices = _found_devices(store, scan.id)
    assets = load_register(store)
    missing: list[Reconciled] = []
    if assets:
        found = [
            FoundDevice(d.address, d.device_id, normalise_mac(d.mac or "") or d.mac, (d.identity or {}).get("serial"), d.vendor,
                        (d.identity or {}).get("brand"), (d.identity or {}).get("model"))
            for d in devices
        ]  # fmt: skip
        by_device = {}
        for item in reconcile(found, assets):
            if item.device is not None:
                by_device[item.device.device_id] = item
            else:
                missing.append(item)
        for device in devices:
            device.reconciled = by_device.get(device.device_id)
            device.register = device.reconciled.status if device.reconciled else "not_a_camera"
    verdict_rows = read_verdicts(store, scan.id)
    segments = _apply_verdicts(devices, verdict_rows)
    return ScanView(scan, devices, segments, missing, len(assets), verdict_rows)


def _apply_verdicts(devices: list[DeviceView], rows: list[VerdictRow]) -> list[SegmentView]:
    by_segment: dict[str, list[VerdictRow]] = {}
    by_device: dict[str, list[VerdictRow]] = {}
    for row in rows:
        (by_segment if row.subject_kind == "segment" else by_device).setdefault(row.subject, []).append(row)
    segments = []
    for name, seg_rows in by_segment.items():
        worst = _worst(seg_rows)
        exposed = next((r for r in seg_rows if r.verdict == "EXPOSED"), None)
        segments.append(SegmentView(name, worst.verdict if worst else NO_VERDICT, worst, exposed, _network(name)))
    # Which verdict a device carries is decided once, by the egress verification's own rule
    # (camaudit.egress.verdict.carried_verdict); here the stored rows are only handed to it.
    recorded = [(s, _as_verdict("segment", s.name, s.row, s.exposed)) for s in segments]
    seg_verdicts = [v for _, v in recorded if v is not None]
    by_verdict = {id(v): s for s, v in recorded if v is not None}
    for device in devices:
        own = by_device.get(device.address, []) + by_device.get(device.device_id, [])
        own_worst = _worst(own)
        own_exposed = next((r for r in own if r.verdict == "EXPOSED"), None)
        own_verdict = _as_verdict("device", device.address, own_worst, own_exposed) if own else None
        declared = device.asset.segment if device.asset else None
        for inside in segments_of(device.address, seg_verdicts, declared):
            segment = by_verdict[id(inside)]
            segment.devices.append(device.address)
            segment.covered_devices += int(device.covered)
        carried = carried_verdict(own_verdict, seg_verdicts, device.address, declared_segment=declared)
        seg = by_verdict[id(carried.segment)] if carried.segment is not None else None
        device.source = carried.source
        if carried.verdict is not None:
            device.verdict_row = own_worst if carried.verdict is own_verdict else (seg.row if seg else None)
            device.verdict = device.verdict_row.verdict if device.verdict_row else NO_VERDICT
        if carried.exposed is not None:
            device.exposed = own_exposed if carried.exposed is own_verdict else (seg.exposed if seg else None)
        device.segment = seg.name if seg else declared
    return sorted(segments, key=lambda s: s.name)


def _as_verdict(kind: str, subject: str, worst: VerdictRow | None, exposed: VerdictRow | None) -> Verdict | None:
    """The stored rows of one subject as the verdict they record (``egress`` NONE when only an
    EXPOSED row speaks for it)."""
    row = worst or exposed
    if row is None:
        return None
    egress = worst.verdict if worst else NO_VERDICT
    return Verdict(subject_kind=kind, subject=subject, verdict=egress if egress != NO_VERDICT else "EXPOSED",
                   egress=egress, exposed=exposed is not None, qualifiers=list(row.qualifiers or []),
                   missing=list(row.missing), paths=list(row.paths),
                   evidence=row.evidence if isinstance(row.evidence, list) else [],
                   decided_at=row.decided_at or "")


# -- evaluation ----------------------------------------------------------------------------


def asset_facts(asset: Asset) -> dict[str, Any]:
    """The facts of a registered asset that no device of the scan matched."""
    maker_model = " ".join(v for v in (asset.declared_maker, asset.declared_model) if v)
    identifiers = [f"{label} {value}" for label, value in (("address", asset.address), ("MAC", asset.mac), ("serial", asset.serial)) if value]
    return asset.to_json() | {
        "register": "missing",
        "declared": ", ".join(v for v in (maker_model, asset.location) if v),
        "identifiers": ", ".join(identifiers) or "nothing to find it by",
    }


def finding_id(scan_id: str, rule: str, subject: str) -> str:
    return sha256(f"{scan_id}\x1f{rule}\x1f{subject}".encode()).hexdigest()[:24]


def evaluate(view: ScanView, policy: Policy, lang: str = "en") -> list[Finding]:
    """Apply every rule of ``policy`` to every subject of ``view``; most severe first."""
    scan_id = view.scan.id
    findings: list[Finding] = []

    def local(facts: dict[str, Any]) -> dict[str, Any]:
        # here: camaudit.report imports this module
        from .report.i18n import localise
        from .report.messages import render

        def words(value: Any) -> Any:
            if isinstance(value, Reason):
                return render(value, lang)
            if isinstance(value, list):
                return [words(v) for v in value]
            return value

        facts = facts | {k: words(facts[k]) for k in _REASON_FACTS if k in facts}
        if lang == "en":
            return facts
        return facts | {k: localise(facts[k], lang) for k in _SENTENCE_FACTS if k in facts}

    def add(rule_id: str, severity: str, subject: str, title: str, detail: str, evidence: dict[str, Any]) -> None:
        findings.append(Finding(finding_id(scan_id, rule_id, subject), scan_id, rule_id, severity, subject, title, detail, evidence))

    for device in view.devices:
        facts = local(device.facts())
        for rule in policy.for_subject("device"):
            if rule.matches(facts):
                add(rule.id, rule.severity, device.address, rule.text("title", facts, lang),
                    rule.text("detail", facts, lang), device.evidence())  # fmt: skip
    for item in view.missing_assets:
        assert item.asset is not None
        facts = asset_facts(item.asset)
        for rule in policy.for_subject("asset"):
            if rule.matches(facts):
                add(rule.id, rule.severity, f"asset:{item.asset.asset_id}", rule.text("title", facts, lang),
                    rule.text("detail", facts, lang), {"asset": item.asset.to_json(), "register": "missing"})  # fmt: skip
    for segment in view.segments:
        facts = local(segment.facts())
        for rule in policy.for_subject("segment"):
            if rule.matches(facts):
                evidence = {
                    "segment": segment.name,
                    "verdict": segment.row.to_json() if segment.row else None,
                    "exposed": segment.exposed.to_json() if segment.exposed else None,
                    "devices": segment.devices,
                }
                add(rule.id, rule.severity, f"segment:{segment.name}", rule.text("title", facts, lang),
                    rule.text("detail", facts, lang), evidence)  # fmt: skip
    findings.sort(key=_finding_order)
    return findings


def assess_scan(store: Store, scan_id: str, policy: Policy | None = None) -> list[Finding]:
    """Assess one scan: reconcile it with the register, apply ``policy`` (the shipped one when
    None), and record the reconciliation and the findings, replacing earlier ones for this
    scan. Returns the findings, most severe first."""
    view = scan_view(store, scan_id)
    findings = evaluate(view, policy or load_policy())
    record_assessment(store, view, findings)
    return findings


def record_assessment(store: Store, view: ScanView, findings: Sequence[Finding]) -> None:
    """Replace the scan's recorded reconciliation and findings with these, in one transaction."""
    now = utc_now()
    recon_rows = [d.reconciled.to_row(view.scan.id) for d in view.devices if d.reconciled]
    recon_rows += [m.to_row(view.scan.id) for m in view.missing_assets]
    with store.write() as db:
        db.execute("delete from findings where scan_id = ?", [view.scan.id])
        db.execute("delete from reconciliation where scan_id = ?", [view.scan.id])
        if recon_rows:
            db.table("reconciliation").insert_all(recon_rows, pk=("scan_id", "entry"), replace=True)
        if findings:
            db.table("findings").insert_all(
                [
                    {k: v for k, v in f.to_json().items() if k != "evidence"}
                    | {"evidence": json.dumps(f.evidence, default=str), "assessed_at": now}
                    for f in findings
                ],
                pk="id",
                replace=True,
            )
    log.info("scan %s assessed: %d findings", view.scan.id, len(findings))


def stored_findings(store: Store, scan_id: str) -> list[Finding]:
    """The findings recorded for a scan by the last assessment, most severe first."""
    rows = store.db.query("select * from findings where scan_id = ?", [scan_id])
    findings = [
        Finding(r["id"], r["scan_id"], r["rule"], r["severity"], r["subject"], r["title"], r["detail"], _json_field(r["evidence"], {}))
        for r in rows
    ]
    findings.sort(key=_finding_order)
    return findings


def _finding_order(finding: Finding) -> tuple[int, str, tuple[int, int], str]:
    """Most severe first, then by rule, then by address in numeric order."""
    return (-severity_rank(finding.severity), finding.rule, _address_sort_key(finding.subject), finding.subject)


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts = dict.fromkeys(reversed(SEVERITIES), 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts
