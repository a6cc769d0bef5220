"""Assessment: identities, egress verdicts, advisories and the register's reconciliation,
turned into findings by the policy (DESIGN.md section 1, "assess").

Everything here reads the store only. :func:`scan_view` gathers what one scan established about
each device (the view reports and exports are written from); :func:`evaluate` applies a policy
to it; :func:`assess_scan` does both and records the reconciliation and the findings.

Verdicts come from the ``verdicts`` table (see :mod:`camaudit.assess_schema`); a scan with no
verdict rows, or a store without the table, has "no verdict recorded" (``NONE``), said plainly.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from . import __version__
from .egress.verdict import (
    DEFAULT_CONTROL_WINDOW_S,
    EGRESS_WORDS,
    carried_verdict,
    segments_of,
    subject_verdict,
)
from .model import Assessment, Finding, Identity, Scan, count_by_severity, severity_at_least, utc_now
from .model.verdicts import Reason, Verdict, english
from .policy import Policy, load_policy
from .register import Asset, FoundDevice, Reconciled, normalise_mac, reconcile
from .scope import is_external
from .store import Store, device_key
from .store import assessments as stored_assessments
from .store import devices as stored_devices
from .store import egress as stored_egress
from .store import observations as stored_observations
from .store import register as stored_register
from .store import verdicts as stored_verdicts
from .store.assessments import finding_order as _finding_order

log = logging.getLogger(__name__)

EGRESS_VERDICTS = EGRESS_WORDS
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

__all__ = [
    "CONFIRMED_CONFIDENCE", "EGRESS_VERDICTS", "NO_VERDICT", "DeviceView", "Finding", "ScanView", "SegmentView",
    "assess_scan", "count_by_severity", "create_assessment", "current_assessment", "evaluate", "scan_view",
    "severity_at_least", "stored_findings",
]


@dataclass(slots=True)
class SegmentView:
    """One segment with a verdict, and the devices of this scan inside it."""

    name: str
    verdict: str
    row: Verdict | None  # the segment's verdict, when it has an egress word
    exposed: Verdict | None
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
    identity: Identity | None
    verdict: str = NO_VERDICT
    verdict_row: Verdict | None = None
    #: Where the verdict comes from (a ``source_*`` reason, egress.verdict.carried_verdict).
    source: Reason | None = None
    exposed: Verdict | None = None
    segment: str | None = None  # the segment whose verdict applies, else the register's
    register: str = "no_register"  # matched | unregistered | no_register | not_a_camera
    reconciled: Reconciled | None = None
    #: What the device itself reports that points to the internet (egress.md 1.4 row 11).
    internet_settings: list[str] = field(default_factory=list)

    @property
    def vendor(self) -> str:
        return self.identity.vendor if self.identity and self.identity.vendor else "unknown"

    @property
    def verdict_source(self) -> str:
        """Where the verdict comes from, in English ("" when nothing was recorded)."""
        return english([self.source])[0] if self.source is not None else ""

    @property
    def covered(self) -> bool:
        return bool(self.identity and self.identity.covered)

    def identity_doc(self) -> dict[str, Any]:
        """The identity as the contract's JSON (:meth:`Identity.to_json`), empty when none: the
        one flattening of an identity that facts, evidence, reports and exports share."""
        return self.identity.to_json() if self.identity else {}

    @property
    def asset(self) -> Asset | None:
        return self.reconciled.asset if self.reconciled else None

    def facts(self) -> dict[str, Any]:
        ident = self.identity_doc()
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
        ident = self.identity_doc()
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
            doc["verdict"] |= self.verdict_row.to_json() | {"verdict": self.verdict}
        if self.exposed:
            doc["exposed"] = self.exposed.to_json()
        if self.reconciled:
            doc["register"] = self.reconciled.to_row("") | {"asset": self.asset.to_json() if self.asset else None}
            doc["register"].pop("scan_id")
        return doc


@dataclass(slots=True)
class ScanView:
    """One scan as reports, exports and assessment see it."""

    scan: Scan
    devices: list[DeviceView]
    segments: list[SegmentView]
    missing_assets: list[Reconciled]
    register_size: int
    verdict_rows: list[Verdict]
    #: The row ids of the verdicts the view was built on (an assessment freezes them).
    verdict_ids: list[int] = field(default_factory=list)
    #: The egress runs (not the scan's own) whose verdicts the view uses: the site's runs on
    #: the scan's segments within the control window.
    egress_runs: list[str] = field(default_factory=list)
    #: The register the view was reconciled with (an assessment freezes it).
    register: list[Asset] = field(default_factory=list)
    #: For a lean view (``scan_view(lean=True)``): reads one device's whole identity.
    full_identity: Callable[[str], Identity | None] | None = None

    def device_evidence(self, device: DeviceView) -> dict[str, Any]:
        """:meth:`DeviceView.evidence`, with the device's whole identity in a lean view."""
        if self.full_identity is None or device.identity is None:
            return device.evidence()
        return dataclasses.replace(device, identity=self.full_identity(device.address) or device.identity).evidence()

    @property
    def has_register(self) -> bool:
        return self.register_size > 0


def _found_devices(store: Store, scan_id: str, field_sources: bool, signatures: bool) -> list[DeviceView]:
    # The device's MAC as add_identity recorded it, for hosts whose MAC came with the identity.
    macs = stored_devices.macs_of_scan(store, scan_id)
    devices = []
    for host, resolved in stored_observations.hosts(store, scan_id, settings=False, field_sources=field_sources,
                                                    signatures=signatures):
        device_id = resolved or device_key(serial=None, mac=host.mac, address=host.address)
        devices.append(DeviceView(host.address, device_id, host.mac or macs.get(device_id), list(host.ports),
                                  host.identity))
    # Only what the settings say about the internet is kept: read one device at a time, so
    # that a large scan's settings are never all in memory at once (issue 15).
    by_address = {d.address: d for d in devices}
    for address, settings in stored_observations.each_device_settings(store, scan_id):
        if address in by_address:
            by_address[address].internet_settings = internet_settings(settings.to_json())
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


def _relevant(run_segment: str | None, scan: Scan, addresses: Sequence[str]) -> bool:
    """Whether an egress run's segment concerns a scan: a CIDR that overlaps the scan's targets
    or holds one of its hosts; a named segment (the register's) always may."""
    if not run_segment:
        return True
    segment = _network(run_segment)
    if segment is None:
        return True
    for target in scan.targets:
        network = _network(target.split("-")[0] if "-" in target else target)
        if network is not None and network.version == segment.version and network.overlaps(segment):
            return True
    return any(segment.version == ip.version and ip in segment
               for ip in (ipaddress.ip_address(a) for a in addresses if _network(a) is not None))


def gather_verdicts(store: Store, scan: Scan, addresses: Sequence[str],
                    window_s: float = DEFAULT_CONTROL_WINDOW_S) -> tuple[list[tuple[int, Verdict]], list[str]]:
    """The verdicts that speak for a scan now: its own, and those of the egress runs of its site
    on its segments that started within the control window of the scan (a standalone
    ``egress check`` or capture is an egress run, never a scan). Returns them with the runs used."""
    found = stored_verdicts.scan_verdicts(store, scan.id)
    end = scan.finished_at or scan.heartbeat_at or scan.started_at
    runs = []
    for run in stored_egress.runs_near(store, scan.site, scan.started_at, end, window_s):
        devices = run.options.get("devices") if run.kind == "pcap" else None
        if run.kind == "pcap" and run.options.get("scan_id") not in (None, scan.id):
            continue
        if isinstance(devices, list) and devices and not any(_relevant(str(d), scan, addresses) for d in devices):
            continue
        if run.kind != "pcap" and not _relevant(run.segment, scan, addresses):
            continue
        runs.append(run.id)
    found += stored_verdicts.run_verdicts(store, runs)
    return found, runs


def scan_view(store: Store, scan_ref: str = "latest", *, assessment: Assessment | None = None,
              site: str | None = None, field_sources: bool = True, lean: bool = False) -> ScanView:
    """Gather one scan's devices, their verdicts and their register status. Writes nothing.

    With ``assessment``, the view is the one that assessment was made on: the verdicts and the
    register as they were then (a frozen assessment is reproducible whatever came later).
    ``field_sources=False`` leaves out each identity's per-field sources, which reports show and
    the policy never reads (issue 15: they were the largest part of what assessing held).
    ``lean`` leaves out each identity's signatures and conflicts too, which only a finding's
    evidence shows: :meth:`ScanView.device_evidence` reads them for one device at a time, so
    that assessing does not hold every device's matched evidence at once (issue 15)."""
    scan = store.scan(scan_ref, site=site)
    devices = _found_devices(store, scan.id, field_sources and not lean, not lean)
    if assessment is not None and assessment.inputs_recorded:
        assets = [Asset(**a) for a in assessment.register]
        found = stored_verdicts.verdicts_by_id(store, assessment.verdict_ids)
        runs = list(assessment.egress_runs)
    else:
        assets = stored_register.load_register(store, scan.site)
        found, runs = gather_verdicts(store, scan, [d.address for d in devices])
    missing: list[Reconciled] = []
    if assets:
        found_devices = [
            FoundDevice(d.address, d.device_id, normalise_mac(d.mac or "") or d.mac, d.identity.serial if d.identity else None,
                        d.vendor, d.identity.brand if d.identity else None, d.identity.model if d.identity else None)
            for d in devices
        ]  # fmt: skip
        by_device = {}
        for item in reconcile(found_devices, assets):
            if item.device is not None:
                by_device[item.device.device_id] = item
            else:
                missing.append(item)
        for device in devices:
            device.reconciled = by_device.get(device.device_id)
            device.register = device.reconciled.status if device.reconciled else "not_a_camera"
    verdicts = [v for _, v in found]
    segments = _apply_verdicts(devices, verdicts)
    view = ScanView(scan, devices, segments, missing, len(assets), verdicts, [i for i, _ in found], runs, assets)
    if lean:
        view.full_identity = lambda address: stored_observations.identity_of(store, scan.id, address)
    return view


def _apply_verdicts(devices: list[DeviceView], verdicts: list[Verdict]) -> list[SegmentView]:
    """Each device's verdict and exposure as egress verification decides them, once
    (:func:`camaudit.egress.verdict.carried_verdict`), and the segments' views."""
    by_segment: dict[str, list[Verdict]] = {}
    by_device: dict[str, list[Verdict]] = {}
    for v in verdicts:
        if v.subject_kind not in ("device", "segment") or (v.egress not in EGRESS_WORDS and not v.exposed):
            log.warning("ignoring verdict %r for %r: unknown verdict or subject kind", v.verdict, v.subject)
            continue
        (by_segment if v.subject_kind == "segment" else by_device).setdefault(v.subject, []).append(v)
    segment_verdicts: list[Verdict] = []
    segments: dict[str, SegmentView] = {}
    for name, seg_verdicts in by_segment.items():
        merged = subject_verdict(seg_verdicts)
        if merged is None:
            continue
        segment_verdicts.append(merged)
        row = merged if merged.egress in EGRESS_WORDS else None
        segments[name] = SegmentView(name, row.egress if row else NO_VERDICT, row,
                                     merged if merged.exposed else None, _network(name))
    for device in devices:
        own = subject_verdict(by_device.get(device.address, []) + by_device.get(device.device_id, []))
        declared = device.asset.segment if device.asset else None
        for inside in segments_of(device.address, segment_verdicts, declared):
            segments[inside.subject].devices.append(device.address)
            segments[inside.subject].covered_devices += int(device.covered)
        carried = carried_verdict(own, segment_verdicts, device.address, declared_segment=declared)
        device.source = carried.source
        if carried.verdict is not None:
            device.verdict_row, device.verdict = carried.verdict, carried.verdict.egress
        device.exposed = carried.exposed
        device.segment = carried.segment.subject if carried.segment is not None else declared
    return sorted(segments.values(), key=lambda s: s.name)


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
    return sorted(each_finding(view, policy, lang), key=_finding_order)


def each_finding(view: ScanView, policy: Policy, lang: str = "en") -> Iterator[Finding]:
    """The findings of ``policy`` on ``view``, one at a time as they are made: each device's,
    then each missing asset's, then each segment's (:func:`evaluate` sorts them)."""
    scan_id = view.scan.id

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

    def add(rule_id: str, severity: str, subject: str, title: str, detail: str, evidence: dict[str, Any]) -> Finding:
        return Finding(finding_id(scan_id, rule_id, subject), scan_id, rule_id, severity, subject, title, detail, evidence)

    for device in view.devices:
        facts = local(device.facts())
        evidence: dict[str, Any] | None = None  # one document shared by the device's findings
        for rule in policy.for_subject("device"):
            if rule.matches(facts):
                evidence = evidence if evidence is not None else view.device_evidence(device)
                yield add(rule.id, rule.severity, device.address, rule.text("title", facts, lang),
                          rule.text("detail", facts, lang), evidence)  # fmt: skip
    for item in view.missing_assets:
        assert item.asset is not None
        facts = asset_facts(item.asset)
        for rule in policy.for_subject("asset"):
            if rule.matches(facts):
                yield add(rule.id, rule.severity, f"asset:{item.asset.asset_id}", rule.text("title", facts, lang),
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
                yield add(rule.id, rule.severity, f"segment:{segment.name}", rule.text("title", facts, lang),
                          rule.text("detail", facts, lang), evidence)  # fmt: skip


def signatures_version() -> str:
    """sha256 over the signature files identification loads (their names and contents)."""
    from .resources import signatures_dir

    digest = sha256()
    try:
        files = sorted((f for f in signatures_dir().iterdir() if f.is_file()), key=lambda f: f.name)
    except OSError:
        return ""
    for f in files:
        digest.update(f.name.encode() + b"\0")
        try:
            digest.update(f.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()


def create_assessment(store: Store, scan_id: str, policy: Policy | None = None, *, reason: str = "assess",
                      only_if_first: bool = False, evidence: bool = True) -> tuple[Assessment, list[Finding]]:
    """Assess one scan afresh and record it as a new, frozen assessment: the policy (by content
    hash), the register (its content, hash and import time), the signatures version, the
    verdicts and egress runs used, camaudit's version. Earlier assessments stay as they were.

    Returns the findings, most severe first; without their evidence when ``evidence`` is false:
    then each finding is recorded as it is made and only its headline is kept (issue 15: a large
    scan's findings, each with its device's evidence, were what assessing it held), and
    :func:`camaudit.audit.scan_findings` reads them whole."""
    policy = policy or load_policy()
    view = scan_view(store, scan_id, lean=True)
    findings: list[Finding] = []
    if evidence:
        findings = evaluate(view, policy)
        recorded: Iterable[Finding] = findings
    else:
        def headlines() -> Iterator[Finding]:
            for finding in each_finding(view, policy):
                findings.append(dataclasses.replace(finding, evidence={}))
                yield finding

        recorded = headlines()
    register_hash, imported_at = stored_register.register_version(store, view.scan.site)
    assessment = Assessment(
        id=str(uuid.uuid4()), scan_id=view.scan.id, site=view.scan.site, created_at=utc_now(),
        policy_hash=policy.content_hash, policy_source=policy.source, register_hash=register_hash,
        register_imported_at=imported_at, signatures_hash=signatures_version(), camaudit_version=__version__,
        reason=reason, verdict_ids=list(view.verdict_ids), egress_runs=list(view.egress_runs),
        register=[a.to_json() for a in view.register],
    )  # fmt: skip
    recon = [d.reconciled.to_row(view.scan.id) for d in view.devices if d.reconciled]
    recon += [m.to_row(view.scan.id) for m in view.missing_assets]
    if not stored_assessments.save_assessment(store, assessment, recorded, recon, only_if_first=only_if_first):
        first = stored_assessments.latest_assessment(store, view.scan.id)
        assert first is not None
        return first, stored_assessments.findings_of(store, first.id)
    findings.sort(key=_finding_order)
    log.info("scan %s assessed (%s): %d findings", view.scan.id, assessment.id, len(findings))
    return assessment, findings


def assess_scan(store: Store, scan_id: str, policy: Policy | None = None, *, reason: str = "assess",
                evidence: bool = True) -> list[Finding]:
    """Assess one scan (a new assessment, :func:`create_assessment`); its findings, most severe
    first (without their evidence when ``evidence`` is false)."""
    return create_assessment(store, scan_id, policy, reason=reason, evidence=evidence)[1]


def current_assessment(store: Store, scan_id: str, policy: Policy | None = None, *,
                       record: bool = True) -> tuple[Assessment, list[Finding]]:
    """The scan's latest assessment and its findings; the first one is made when there is none
    (or, for a store that cannot be written, an assessment made in memory and not recorded).
    A policy given that differs from the one the latest assessment applied makes a new one."""
    latest = stored_assessments.latest_assessment(store, scan_id)
    differs = policy is not None and latest is not None and latest.policy_hash and latest.policy_hash != policy.content_hash
    if latest is not None and not differs:
        return latest, stored_assessments.findings_of(store, latest.id)
    reason = "first report" if latest is None else "report with another policy"
    if store.read_only or not record:
        policy = policy or load_policy()
        view = scan_view(store, scan_id, lean=True)
        unrecorded = Assessment(
            id="not-recorded", scan_id=view.scan.id, site=view.scan.site, created_at=utc_now(),
            policy_hash=policy.content_hash, policy_source=policy.source, register_hash="", register_imported_at=None,
            signatures_hash="", camaudit_version=__version__, reason="assessed for this report only, not recorded",
            verdict_ids=list(view.verdict_ids), egress_runs=list(view.egress_runs),
            register=[a.to_json() for a in view.register],
        )  # fmt: skip
        return unrecorded, evaluate(view, policy)
    return create_assessment(store, scan_id, policy, reason=reason, only_if_first=latest is None)


def stored_findings(store: Store, scan_id: str) -> list[Finding]:
    """The findings of the scan's latest assessment, most severe first (none when never assessed)."""
    latest = stored_assessments.latest_assessment(store, scan_id)
    return stored_assessments.findings_of(store, latest.id) if latest else []
