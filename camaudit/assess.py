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
from collections.abc import Callable, Iterable, Iterator
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
from .model.findings import FindingSummary, address_order
from .model.verdicts import Reason, Verdict, english
from .policy import Policy, Rule, load_policy
from .register import Asset, FoundDevice, Reconciled, Reconciliation, normalise_mac
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
    "DeviceJudge", "FindingSummary", "Rules", "ScanInputs", "assess_scan", "count_by_severity", "create_assessment",
    "current_assessment", "evaluate", "record_assessment", "scan_view",
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


def evidence_with_identity(device: DeviceView, whole_identity: Callable[[str], Identity | None] | None
                           ) -> dict[str, Any]:
    """:meth:`DeviceView.evidence`, with the device's whole identity (signatures, conflicts) read
    by ``whole_identity`` when it was read lean: only for a device with findings."""
    if whole_identity is None or device.identity is None:
        return device.evidence()
    return dataclasses.replace(device, identity=whole_identity(device.address) or device.identity).evidence()


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
        return evidence_with_identity(device, self.full_identity)

    @property
    def has_register(self) -> bool:
        return self.register_size > 0


def _each_device(store: Store, scan_id: str, *, field_sources: bool, signatures: bool,
                 settings: bool = True) -> Iterator[DeviceView]:
    """Each host of a scan as a device, undecided, a page of hosts read at a time in the text
    order of addresses (issue 15: a view of every device was what assessing a scan held). Of
    its settings only what points to the internet is kept."""
    for page in stored_observations.host_pages(store, scan_id, settings=settings, field_sources=field_sources,
                                               signatures=signatures):
        # The device's MAC as add_identity recorded it, for hosts whose MAC came with the identity.
        macs = stored_devices.macs_of_scan(store, scan_id, [host.address for host, _ in page])
        for host, resolved in page:
            device_id = resolved or device_key(serial=None, mac=host.mac, address=host.address)
            device = DeviceView(host.address, device_id, host.mac or macs.get(device_id), list(host.ports),
                                host.identity)
            device.internet_settings = internet_settings(host.settings)
            yield device


def _found_device(device: DeviceView) -> FoundDevice:
    """What reconciliation needs of a device."""
    ident = device.identity
    return FoundDevice(device.address, device.device_id, normalise_mac(device.mac or "") or device.mac,
                       ident.serial if ident else None, device.vendor, ident.brand if ident else None,
                       ident.model if ident else None)


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


def _relevant(run_segment: str | None, scan: Scan, addresses: Callable[[], Iterable[str]]) -> bool:
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
               for ip in (ipaddress.ip_address(a) for a in addresses() if _network(a) is not None))


def gather_verdicts(store: Store, scan: Scan, addresses: Callable[[], Iterable[str]] | None = None,
                    window_s: float = DEFAULT_CONTROL_WINDOW_S) -> tuple[list[tuple[int, Verdict]], list[str]]:
    """The verdicts that speak for a scan now: its own, and those of the egress runs of its site
    on its segments that started within the control window of the scan (a standalone
    ``egress check`` or capture is an egress run, never a scan). Returns them with the runs used.
    ``addresses`` gives the scan's addresses afresh each time it is called (by default, read
    from the store as they are needed)."""
    if addresses is None:
        addresses = lambda: stored_observations.each_address(store, scan.id)  # noqa: E731
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


@dataclass(slots=True)
class ScanInputs:
    """What a scan's devices are decided with, apart from the devices: the register and the
    verdicts that speak for the scan, with the egress runs they come from."""

    assets: list[Asset]
    verdicts: list[tuple[int, Verdict]]  # (row id, verdict)
    runs: list[str]

    @classmethod
    def of(cls, store: Store, scan: Scan, assessment: Assessment | None = None) -> ScanInputs:
        """Those of ``assessment`` when it recorded them (a frozen assessment is reproducible
        whatever came later), else as the store has them now."""
        if assessment is not None and assessment.inputs_recorded:
            return cls([Asset(**a) for a in assessment.register],
                       stored_verdicts.verdicts_by_id(store, assessment.verdict_ids), list(assessment.egress_runs))
        found, runs = gather_verdicts(store, scan)
        return cls(stored_register.load_register(store, scan.site), found, runs)


class DeviceJudge:
    """Decides each device of one scan, one at a time: its register status, its egress verdict
    and exposure (:func:`camaudit.egress.verdict.carried_verdict`), and the segments it sits in,
    whose roll-ups grow as devices are decided. Reports and assessments decide through it alike;
    what it holds grows with the register and the verdicts, not with the scan (issue 15)."""

    def __init__(self, store: Store, scan: Scan, inputs: ScanInputs, devices: Iterable[DeviceView] | None = None) -> None:
        """``devices`` are the scan's devices when the caller holds them already; without them,
        and with a register, they are read once more, lightly, before any is decided."""
        self._reconciliation: Reconciliation | None = None
        if inputs.assets:
            # Only devices that carry an identifier of the register can pair with an asset, and
            # only they are kept to be paired.
            if devices is None:
                devices = _each_device(store, scan.id, field_sources=False, signatures=False, settings=False)
            self._reconciliation = Reconciliation(inputs.assets)
            self._reconciliation.settle(_found_device(d) for d in devices)
        self._segments: dict[str, SegmentView] = {}
        self._segment_verdicts: list[Verdict] = []
        self._device_verdicts: dict[str, list[Verdict]] = {}
        by_segment: dict[str, list[Verdict]] = {}
        for _, v in inputs.verdicts:
            if v.subject_kind not in ("device", "segment") or (v.egress not in EGRESS_WORDS and not v.exposed):
                log.warning("ignoring verdict %r for %r: unknown verdict or subject kind", v.verdict, v.subject)
                continue
            (by_segment if v.subject_kind == "segment" else self._device_verdicts).setdefault(v.subject, []).append(v)
        for name, seg_verdicts in by_segment.items():
            merged = subject_verdict(seg_verdicts)
            if merged is None:
                continue
            self._segment_verdicts.append(merged)
            row = merged if merged.egress in EGRESS_WORDS else None
            self._segments[name] = SegmentView(name, row.egress if row else NO_VERDICT, row,
                                               merged if merged.exposed else None, _network(name))

    def decide(self, device: DeviceView) -> DeviceView:
        """The device with its register status, verdict, exposure and segment set."""
        if self._reconciliation is not None:
            device.reconciled = self._reconciliation.of(_found_device(device))
            device.register = device.reconciled.status if device.reconciled else "not_a_camera"
        own = subject_verdict(self._device_verdicts.get(device.address, [])
                              + self._device_verdicts.get(device.device_id, []))
        declared = device.asset.segment if device.asset else None
        for inside in segments_of(device.address, self._segment_verdicts, declared):
            self._segments[inside.subject].devices.append(device.address)
            self._segments[inside.subject].covered_devices += int(device.covered)
        carried = carried_verdict(own, self._segment_verdicts, device.address, declared_segment=declared)
        device.source = carried.source
        if carried.verdict is not None:
            device.verdict_row, device.verdict = carried.verdict, carried.verdict.egress
        device.exposed = carried.exposed
        device.segment = carried.segment.subject if carried.segment is not None else declared
        return device

    @property
    def missing_assets(self) -> list[Reconciled]:
        """The register's assets no device of the scan paired with."""
        return list(self._reconciliation.missing) if self._reconciliation is not None else []

    def segments(self) -> list[SegmentView]:
        """The segments with a verdict, by name, each with the devices decided so far inside it
        (in address order)."""
        for segment in self._segments.values():
            segment.devices.sort(key=address_order)
        return sorted(self._segments.values(), key=lambda s: s.name)


def scan_view(store: Store, scan_ref: str = "latest", *, assessment: Assessment | None = None,
              site: str | None = None, field_sources: bool = True, lean: bool = False) -> ScanView:
    """Gather one scan's devices, their verdicts and their register status. Writes nothing.

    With ``assessment``, the view is the one that assessment was made on: the verdicts and the
    register as they were then (a frozen assessment is reproducible whatever came later).
    ``field_sources=False`` leaves out each identity's per-field sources, which reports show and
    the policy never reads (issue 15: they were the largest part of what assessing held).
    ``lean`` leaves out each identity's signatures and conflicts too, which only a finding's
    evidence shows: :meth:`ScanView.device_evidence` reads them for one device at a time.
    The view holds every device; an assessment decides them one at a time instead
    (:func:`record_assessment`), through the same :class:`DeviceJudge`."""
    scan = store.scan(scan_ref, site=site)
    inputs = ScanInputs.of(store, scan, assessment)
    devices = sorted(_each_device(store, scan.id, field_sources=field_sources and not lean, signatures=not lean),
                     key=lambda d: address_order(d.address))
    judge = DeviceJudge(store, scan, inputs, devices)
    for device in devices:
        judge.decide(device)
    view = ScanView(scan, devices, judge.segments(), judge.missing_assets, len(inputs.assets),
                    [v for _, v in inputs.verdicts], [i for i, _ in inputs.verdicts], inputs.runs, inputs.assets)
    if lean:
        view.full_identity = lambda address: stored_observations.identity_of(store, scan.id, address)
    return view


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
    rules = Rules(policy, view.scan.id, lang)
    for device in view.devices:
        yield from rules.device(device, view.device_evidence)
    for item in view.missing_assets:
        yield from rules.asset(item)
    for segment in view.segments:
        yield from rules.segment(segment)


def _in_words(value: Any, lang: str) -> Any:
    """Reasons, and lists of them, rendered in ``lang``. A function of its own: a closure that
    calls itself is a reference cycle, one per device assessed, left for the garbage collector."""
    from .report.messages import render  # here: camaudit.report imports this module

    if isinstance(value, Reason):
        return render(value, lang)
    if isinstance(value, list):
        return [_in_words(v, lang) for v in value]
    return value


class Rules:
    """A policy's rules, applied to one subject of one scan at a time."""

    def __init__(self, policy: Policy, scan_id: str, lang: str = "en") -> None:
        self.policy, self.scan_id, self.lang = policy, scan_id, lang

    def _local(self, facts: dict[str, Any]) -> dict[str, Any]:
        # here: camaudit.report imports this module
        from .report.i18n import localise

        facts = facts | {k: _in_words(facts[k], self.lang) for k in _REASON_FACTS if k in facts}
        if self.lang == "en":
            return facts
        return facts | {k: localise(facts[k], self.lang) for k in _SENTENCE_FACTS if k in facts}

    def _finding(self, rule: Rule, subject: str, facts: dict[str, Any], evidence: dict[str, Any]) -> Finding:
        return Finding(finding_id(self.scan_id, rule.id, subject), self.scan_id, rule.id, rule.severity, subject,
                       rule.text("title", facts, self.lang), rule.text("detail", facts, self.lang), evidence)

    def device(self, device: DeviceView, evidence_of: Callable[[DeviceView], dict[str, Any]]) -> Iterator[Finding]:
        """The device's findings; ``evidence_of`` is asked once, and only when a rule holds."""
        facts = self._local(device.facts())
        evidence: dict[str, Any] | None = None  # one document shared by the device's findings
        for rule in self.policy.for_subject("device"):
            if rule.matches(facts):
                evidence = evidence if evidence is not None else evidence_of(device)
                yield self._finding(rule, device.address, facts, evidence)

    def asset(self, item: Reconciled) -> Iterator[Finding]:
        """The findings on a registered asset no device paired with."""
        assert item.asset is not None
        facts = asset_facts(item.asset)
        for rule in self.policy.for_subject("asset"):
            if rule.matches(facts):
                yield self._finding(rule, f"asset:{item.asset.asset_id}", facts,
                                    {"asset": item.asset.to_json(), "register": "missing"})

    def segment(self, segment: SegmentView) -> Iterator[Finding]:
        facts = self._local(segment.facts())
        for rule in self.policy.for_subject("segment"):
            if rule.matches(facts):
                evidence = {
                    "segment": segment.name,
                    "verdict": segment.row.to_json() if segment.row else None,
                    "exposed": segment.exposed.to_json() if segment.exposed else None,
                    "devices": segment.devices,
                }
                yield self._finding(rule, f"segment:{segment.name}", facts, evidence)


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


def record_assessment(store: Store, scan_id: str, policy: Policy | None = None, *, reason: str = "assess",
                      only_if_first: bool = False) -> tuple[Assessment, FindingSummary]:
    """Assess one scan afresh and record it as a new, frozen assessment: the policy (by content
    hash), the register (its content, hash and import time), the signatures version, the
    verdicts and egress runs used, camaudit's version. Earlier assessments stay as they were.
    With ``only_if_first``, a scan assessed already is not assessed again: its first assessment
    is returned.

    The scan's devices are read a page at a time and decided one at a time, and each device's
    findings and reconciliation are written as they are made: assessing holds neither the
    devices nor the findings, whatever the size of the scan (issue 15). Returns the assessment
    with a summary of its findings; :func:`create_assessment` also reads them back whole."""
    policy = policy or load_policy()
    scan = store.scan(scan_id)
    inputs = ScanInputs.of(store, scan)
    judge = DeviceJudge(store, scan, inputs)
    register_hash, imported_at = stored_register.register_version(store, scan.site)
    assessment = Assessment(
        id=str(uuid.uuid4()), scan_id=scan.id, site=scan.site, created_at=utc_now(),
        policy_hash=policy.content_hash, policy_source=policy.source, register_hash=register_hash,
        register_imported_at=imported_at, signatures_hash=signatures_version(), camaudit_version=__version__,
        reason=reason, verdict_ids=[i for i, _ in inputs.verdicts], egress_runs=list(inputs.runs),
        register=[a.to_json() for a in inputs.assets],
    )  # fmt: skip
    rules = Rules(policy, scan.id)
    summary = FindingSummary()

    def evidence_of(device: DeviceView) -> dict[str, Any]:
        return evidence_with_identity(device, lambda address: stored_observations.identity_of(store, scan.id, address))

    with stored_assessments.recording(store, assessment, only_if_first=only_if_first) as writer:
        if writer is None:
            first = stored_assessments.latest_assessment(store, scan.id)
            assert first is not None
            return first, stored_assessments.summary_of(store, first.id)
        def keep(found: Iterable[Finding]) -> None:
            for finding in found:
                writer.finding(finding)
                summary.add(finding)

        for device in _each_device(store, scan.id, field_sources=False, signatures=False):
            judge.decide(device)
            if device.reconciled is not None:
                writer.reconciled(device.reconciled.to_row(scan.id))
            keep(rules.device(device, evidence_of))
        for item in judge.missing_assets:
            writer.reconciled(item.to_row(scan.id))
            keep(rules.asset(item))
        for segment in judge.segments():
            keep(rules.segment(segment))
    log.info("scan %s assessed (%s): %d findings", scan.id, assessment.id, summary.total)
    return assessment, summary


def create_assessment(store: Store, scan_id: str, policy: Policy | None = None, *, reason: str = "assess",
                      only_if_first: bool = False) -> tuple[Assessment, list[Finding]]:
    """:func:`record_assessment`, with its findings read back whole, most severe first: what was
    recorded is what is returned."""
    assessment, _ = record_assessment(store, scan_id, policy, reason=reason, only_if_first=only_if_first)
    return assessment, stored_assessments.findings_of(store, assessment.id)


def assess_scan(store: Store, scan_id: str, policy: Policy | None = None, *, reason: str = "assess") -> list[Finding]:
    """Assess one scan (a new assessment, :func:`create_assessment`); its findings, most severe
    first."""
    return create_assessment(store, scan_id, policy, reason=reason)[1]


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
