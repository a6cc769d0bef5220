"""Run, judge and record: the library functions behind ``egress check`` and ``egress pcap``, and
the ones ``camaudit scan --listener`` calls per scan and per host.

    outcome = check_and_record(store, CheckOptions(listeners=[...]), scan_id=scan_id)
    verdicts = record_scan_verdicts(store, scan_id, outcome, {address: DeviceSettings, ...}, passive)
    # verdicts[address] is each host's Verdict (hosts[].verdict = verdicts[address].verdict)
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..model import DEFAULT_SITE
from ..store import Store
from ..store import egress as stored
from .check import CheckOptions, run_egress_check
from .results import ActiveResult, PassiveResult, Verdict
from .storage import judge_run, write_run_verdicts, write_verdicts
from .verdict import DEFAULT_CONTROL_WINDOW_S, control_passed, device_verdict, rollup

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CheckOutcome:
    """A recorded check: the run, its verdict and the controls that spoke for it."""

    scan_id: str | None  # the scan the check ran in; None for a standalone egress run
    run: ActiveResult
    verdict: Verdict
    controls: list[ActiveResult] = field(default_factory=list)
    site: str = DEFAULT_SITE

    @property
    def control_passed(self) -> bool:
        return control_passed(self.run)

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        doc = v.to_json()
        return {
            "verdict": v.verdict,
            "qualifiers": doc["qualifiers"],
            "missing": doc["missing"],
            "qualifier_codes": doc["qualifier_codes"],
            "missing_codes": doc["missing_codes"],
            "paths": v.paths,
            "egress": v.egress,
            "exposed": v.exposed,
            "control": self.run.control,
            "control_passed": self.control_passed if self.run.control else None,
            "controls": [{"run_id": c.run_id, "started_at": c.started_at, "passed": control_passed(c),
                          "vantage": c.vantage} for c in self.controls],
            "segment": v.subject,
            "run_id": self.run.run_id,
            "scan_id": self.scan_id,
            "site": self.site,
            "listeners": self.run.listeners,
            "vantage": self.run.vantage,
            "started_at": self.run.started_at,
            "finished_at": self.run.finished_at,
            "route": self.run.route,
            "notes": self.run.notes,
        }


def check_and_record(store: Store, opts: CheckOptions, *, scan_id: str | None = None,
                     window_s: float = DEFAULT_CONTROL_WINDOW_S, site: str | None = None) -> CheckOutcome:
    """Run the check, store the run and its tests, decide (with the listener log and control runs
    already in the store) and store the segment verdict. A control run gets no verdict row: its
    vantage is not a camera segment. Without ``scan_id`` the run is a standalone egress run of
    ``site`` (never a scan); its verdict belongs to the run."""
    opts.validate()
    if scan_id is not None:
        from ..store.scans import site_of_scan

        site = site_of_scan(store, scan_id)
    site = site or DEFAULT_SITE
    run = run_egress_check(opts)
    stored.save_run(store, run, scan_id=scan_id, options=opts.to_json(), site=site)
    verdict, controls = judge_run(store, run, window_s=window_s)
    if not run.control:
        if scan_id is not None:
            write_verdicts(store, scan_id, [verdict])
        else:
            write_run_verdicts(store, run.run_id, [verdict], site=site)
    return CheckOutcome(scan_id=scan_id, run=run, verdict=verdict, controls=controls, site=site)


def record_scan_verdicts(store: Store, scan_id: str | None, outcome: CheckOutcome | None,
                         settings: Mapping[str, Any], passive: PassiveResult | None = None,
                         *, segment: str | None = None) -> dict[str, Verdict]:
    """Per-host verdicts (:func:`device_verdict`) and the segment roll-up, written to the store:
    with the scan, or (``scan_id`` None) with the outcome's egress run.
    ``settings`` maps each host address to its ``DeviceSettings`` (or None when not read)."""
    return record_scan_verdicts_and_rollup(store, scan_id, outcome, settings, passive, segment=segment)[0]


def record_scan_verdicts_and_rollup(store: Store, scan_id: str | None, outcome: CheckOutcome | None,
                                    settings: Mapping[str, Any], passive: PassiveResult | None = None,
                                    *, segment: str | None = None) -> tuple[dict[str, Verdict], Verdict]:
    """:func:`record_scan_verdicts`, and the segment's roll-up as well: the verdict the report
    shows for the segment, which the scan's console line must say too."""
    active = outcome.verdict if outcome is not None else None
    verdicts = {addr: device_verdict(s, active, passive, address=addr) for addr, s in settings.items()}
    subject = segment or (active.subject if active is not None else "scanned devices")
    seg = rollup(subject, active, list(verdicts.values()))
    if scan_id is None:
        if outcome is None:
            raise ValueError("verdicts belong to a scan or to an egress run")
        write_run_verdicts(store, outcome.run.run_id, [*verdicts.values(), seg], site=outcome.site)
    else:
        write_verdicts(store, scan_id, [*verdicts.values(), seg])
    return verdicts, seg


def _networks(cidrs: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for c in cidrs:
        for part in c.split(","):
            if not part.strip():
                continue
            try:
                nets.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise UsageError(f"--devices {part!r} is not an address or CIDR network") from None
    return nets


def pcap_and_record(store: Store, *, file: str | None, iface: str | None, duration: float,
                    cidrs: Sequence[str], scan_ref: str | None, site: str | None = None) -> dict[str, Any]:
    """Analyse a capture for the devices (``--devices``, else the hosts of ``scan_ref``), store its
    flows and lookups and the devices' passive verdicts as a passive egress run (never a scan);
    return the JSON document."""
    from .passive import analyse_pcap, capture_live

    nets = _networks(cidrs)
    scan_id = None
    if scan_ref is not None:
        scan = store.scan(scan_ref, site=site)
        scan_id, site = scan.id, scan.site
        if not nets:
            nets = _networks([h["address"] for h in store.hosts_of_scan(scan.id)])
            if not nets:
                raise UsageError(f"scan {scan.id} holds no hosts to look for in the capture")
    if not nets:
        raise UsageError("name the devices with --devices CIDR, or take them from a scan with --scan latest")
    if file is not None:
        result = analyse_pcap(file, nets)
    else:
        assert iface is not None
        result = capture_live(iface, duration, nets)
    site = site or DEFAULT_SITE
    run_id = stored.start_passive_run(store, "pcap", site=site, started_at=result.start, options={
        "capture": result.source, "devices": [str(n) for n in nets], "scan_id": scan_id})
    stored.save_passive(store, run_id, result)
    devices = sorted({f.device for f in result.flows} | {q.device for q in result.lookups})
    verdicts = [device_verdict(None, None, result, address=d) for d in devices]
    write_run_verdicts(store, run_id, verdicts, site=site)
    doc = result.to_json()
    doc["run_id"] = run_id
    doc["site"] = site
    doc["scan_id"] = scan_id
    doc["verdicts"] = [v.to_json() for v in verdicts]
    return doc


def outcome_from_store(store: Store, run_id: str, *, window_s: float = DEFAULT_CONTROL_WINDOW_S) -> CheckOutcome:
    """A recorded run, judged again with what the store holds now (listener log, controls)."""
    run = stored.load_active(store, run_id)
    meta = stored.egress_run(store, run_id)
    if run is None or meta is None:
        raise UsageError(f"no egress run {run_id} in {store.path}")
    verdict, controls = judge_run(store, run, window_s=window_s)
    return CheckOutcome(scan_id=meta.scan_id, run=run, verdict=verdict, controls=controls, site=meta.site)
