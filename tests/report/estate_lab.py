"""A central store of three sites for the estate report tests, written through the Store's
public methods as scans and egress verification write them (verdicts with reason codes):

- ``zwembad``: two scans; the latest CLOSED on 31 tested paths from 10.20.0.5, its control run
  12 minutes before the check, 0 of its devices reporting a cloud registration;
- ``werf``: three Dahua cameras whose cloud settings could not be read without credentials
  (INCONCLUSIVE), and the Hikvision that zwembad's register declares (found here, by serial);
- ``depot``: a complete scan, then one that was interrupted (flagged at the top).

Evidence values follow report_lab.py (reference/fingerprinting.md; MAC prefixes of oui.json).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from report_lab import LabDevice, _dahua, _hik, _hik_closed_segment

from camaudit.egress.results import Verdict
from camaudit.model import Identity, Observation, SignatureHit
from camaudit.model.verdicts import Reason
from camaudit.store import Store, open_store
from camaudit.store.verdicts import write_verdicts

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def dahua_at(address: str, serial: str, mac: str) -> LabDevice:
    base = _dahua(address)
    ident = dataclasses.replace(base.identity, serial=serial)
    return LabDevice(address, mac, ident, (("rtsp_server", "Dahua Rtsp Server", 554), ("mac", mac, None)), base.ports)


def axis_at(address: str, mac: str) -> LabDevice:
    realm = 'Digest realm="AXIS_WS_00408C000099"'
    return LabDevice(address, mac, Identity(vendor="axis", device_type="camera", confidence=0.8, covered=False,
                                            signatures=[SignatureHit("axis-realm", "http_www_authenticate", realm, 80)]),
                     (("http_www_authenticate", realm, 80),), (80, 554))  # fmt: skip


def write_site_scan(store: Store, site: str, devices: list[LabDevice], verdicts: list[Verdict], targets: list[str],
                    status: str = "complete") -> str:
    scan_id = store.start_scan(targets=targets, addresses=256, site=site)
    for d in devices:
        store.add_services(scan_id, [(d.address, p) for p in d.ports])
        store.add_observations(scan_id, [Observation(d.address, k, v, p, "lab") for k, v, p in d.observations])
        store.add_identity(scan_id, d.address, d.identity, mac=d.mac or None)
    if verdicts:
        write_verdicts(store, verdicts, scan_id=scan_id)
    store.finish_scan(scan_id, status)
    return scan_id


VANTAGE = {"code": "vantage", "host": "sensor-zwembad", "addresses": ["10.20.0.5"], "gateway": "10.20.0.1"}


def closed_segment(segment: str) -> Verdict:
    """A CLOSED segment as egress verification states it: 31 paths blocked, a control 12 minutes earlier."""
    qualifiers = [
        Reason("no_egress_observed", {"count": 31, "paths": "tcp/443, udp/8800, dns/resolver, ...",
                                      "vantage": VANTAGE, "start": at(12), "end": at(14)}),
        Reason("positive_control", {"runs": [Reason("control_run", {
            "run": "c0ffee00-run", "vantage": {"code": "vantage", "host": "router", "addresses": ["198.51.100.9"],
                                               "gateway": "198.51.100.1"}, "at": at(0), "count": 31})]}),
        Reason("placement_scope"),
    ]
    paths = [{"path": "tcp/443", "result": "blocked", "evidence": {"basis": "timeout"}},
             {"path": "dns/resolver", "result": "blocked", "evidence": {"basis": "nxdomain"}}]
    return Verdict(subject_kind="segment", subject=segment, verdict="CLOSED", egress="CLOSED", exposed=False,
                   qualifiers=qualifiers, paths=paths, decided_at=at(15))


def unread_dahua(address: str) -> Verdict:
    return Verdict(subject_kind="device", subject=address, verdict="INCONCLUSIVE", egress="INCONCLUSIVE", exposed=False,
                   missing=[Reason("settings_not_read"),
                            Reason("registration_unverified", {"service": "Dahua P2P", "note": Reason("dahua_no_status_api"),
                                                               "source": "CGI"})],
                   decided_at=at(20))  # fmt: skip


ZWEMBAD_REGISTER = """asset_id,address,mac,serial,declared_maker,declared_brand,declared_model,location,purpose,department,segment,dpia_ref,procurement_ref
ZW-001,10.20.0.11,,DS-2CD2532F-IWS20140721AAWR000000001,Hikvision,,DS-2CD2532F-IWS,Pool hall,safety,Sport,10.20.0.0/24,,PO-1
ZW-002,10.20.0.30,00:40:8c:00:00:99,,Axis,,,Entrance,entrance,Sport,10.20.0.0/24,,PO-2
"""


@dataclass
class EstateDb:
    path: Path
    zwembad: str
    werf: str
    depot_complete: str
    depot_interrupted: str


def build_estate_db(path: Path) -> EstateDb:
    with open_store(path) as store:
        write_site_scan(store, "zwembad", [axis_at("10.20.0.30", "00:40:8c:00:00:99")], [], ["10.20.0.0/24"])
        zwembad = write_site_scan(
            store, "zwembad",
            [axis_at("10.20.0.30", "00:40:8c:00:00:99"), axis_at("10.20.0.31", "00:40:8c:00:00:98")],
            [closed_segment("10.20.0.0/24")], ["10.20.0.0/24"])  # fmt: skip
        werf = write_site_scan(
            store, "werf",
            [dahua_at("10.40.0.21", "6C01E93PAG00021", "08:ed:ed:00:40:21"),
             dahua_at("10.40.0.22", "6C01E93PAG00022", "08:ed:ed:00:40:22"),
             dahua_at("10.40.0.23", "6C01E93PAG00023", "08:ed:ed:00:40:23"), _hik("V5.4.0 build 160530")],
            [unread_dahua("10.40.0.21"), unread_dahua("10.40.0.22"), unread_dahua("10.40.0.23")],
            ["10.40.0.0/24"])  # fmt: skip
        depot_complete = write_site_scan(store, "depot", [_hik_closed_segment()], [], ["10.30.0.0/24"])
        depot_interrupted = write_site_scan(store, "depot", [_hik_closed_segment()], [], ["10.30.0.0/24"],
                                            status="interrupted")
        from camaudit.register import import_register

        reg = path.parent / "zwembad-register.csv"
        reg.write_text(ZWEMBAD_REGISTER)
        import_register(store, reg, site="zwembad")
    return EstateDb(path, zwembad, werf, depot_complete, depot_interrupted)
