"""Databases for the report tests, written through the Store's public methods as a scan of the
lab would write them, with the egress verdicts written as egress verification writes them.

Evidence values come from ../shared/reference/fingerprinting.md (Hikvision `App-webs/` server
and `IP Camera(...)` realm, table rows 102 and 107; Dahua `Dahua Rtsp Server`, row 131, and
the `Login to <serial>` realm of Lorex, row 130; Lorex = Dahua OEM, section "OEM lineage";
Dahua serial layout and firmware strings, lines 146-147; CVE-2017-7921 and CVE-2021-33044
version facts, lines 169-170) and MAC prefixes from reference/oui.json (Hikvision 44:19:B6 is
named in fingerprinting.md line 140; Dahua 08:ED:ED; Axis 00:40:8C; EZVIZ 20:BB:BC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from camaudit.egress.results import Verdict
from camaudit.model import Identity, Observation, SignatureHit, utc_now
from camaudit.model.verdicts import Reason, reasons_from_json
from camaudit.store import Store, open_store
from camaudit.store.verdicts import write_verdicts

HIK_SERIAL = "DS-2CD2532F-IWS20140721AAWR000000001"
DAHUA_SERIAL = "6C01E93PAG69A7D"
LOREX_SERIAL = "3C06520PAN00001"


@dataclass(frozen=True)
class LabDevice:
    address: str
    mac: str
    identity: Identity
    observations: tuple[tuple[str, str, int | None], ...]  # kind, value, port
    ports: tuple[int, ...]


def _hik(firmware: str) -> LabDevice:
    realm = 'Digest realm="IP Camera(21388)", nonce="0", stale="FALSE"'
    return LabDevice(
        "10.20.0.11",
        "44:19:b6:00:00:11",
        Identity(
            vendor="hikvision", brand=None, device_type="camera", model="DS-2CD2532F-IWS", firmware=firmware,
            serial=HIK_SERIAL, confidence=0.95, covered=True, advisories=["CVE-2017-7921"],
            signatures=[
                SignatureHit("hikvision-http-server-app-webs", "http_server", "App-webs/", 80),
                SignatureHit("hikvision-realm-ip-camera", "http_www_authenticate", realm, 80),
            ],
        ),
        (("http_server", "App-webs/", 80), ("http_www_authenticate", realm, 80), ("mac", "44:19:b6:00:00:11", None)),
        (80, 554, 8000),
    )


def _dahua(address: str) -> LabDevice:
    return LabDevice(
        address,
        "08:ed:ed:00:00:12",
        Identity(
            vendor="dahua", brand=None, device_type="camera", model="IPC-HDW4431C-A",
            firmware="2.800.0000016.0.R,build:2020-06-05", serial=DAHUA_SERIAL, confidence=0.9, covered=True,
            advisories=["CVE-2021-33044"],
            signatures=[SignatureHit("dahua-rtsp-server", "rtsp_server", "Dahua Rtsp Server", 554)],
        ),
        (("rtsp_server", "Dahua Rtsp Server", 554), ("mac", "08:ed:ed:00:00:12", None)),
        (80, 554, 37777),
    )


def _lorex() -> LabDevice:
    realm = f'Digest realm="Login to {LOREX_SERIAL}"'
    return LabDevice(
        "10.20.0.13",
        "08:ed:ed:00:00:13",
        Identity(
            vendor="dahua", brand="lorex", device_type="nvr", model="NR818", firmware=None, serial=LOREX_SERIAL,
            confidence=0.85, covered=True,
            signatures=[
                SignatureHit("dahua-realm-login-to-serial", "http_www_authenticate", realm, 80),
                SignatureHit("lorex-favicon", "favicon_mmh3", "1653394551", 80),
            ],
        ),
        (("http_www_authenticate", realm, 80), ("favicon_mmh3", "1653394551", 80), ("http_title", "WEB SERVICE", 80)),
        (80, 554, 37777),
    )


def _axis() -> LabDevice:
    realm = 'Digest realm="AXIS_WS_00408C000014"'
    return LabDevice(
        "10.20.0.14",
        "00:40:8c:00:00:14",
        Identity(vendor="axis", device_type="camera", confidence=0.8, covered=False,
                 signatures=[SignatureHit("axis-realm", "http_www_authenticate", realm, 80)]),  # fmt: skip
        (("http_www_authenticate", realm, 80),),
        (80, 443, 554),
    )


def _ezviz() -> LabDevice:
    return LabDevice(
        "10.20.0.15",
        "20:bb:bc:00:00:15",
        Identity(vendor="hikvision", brand="ezviz", device_type="camera", confidence=0.7, covered=True,
                 signatures=[SignatureHit("hikvision-http-server-app-webs", "http_server", "App-webs/", 80)]),  # fmt: skip
        (("http_server", "App-webs/", 80),),
        (80, 554),
    )


def _printer() -> LabDevice:
    return LabDevice("10.20.0.20", "", Identity(), (("http_title", "Printer status", 80),), (80, 9100))


def _hik_closed_segment() -> LabDevice:
    return LabDevice(
        "10.30.0.5",
        "44:19:b6:00:30:05",
        Identity(vendor="hikvision", device_type="camera", model="DS-2CD2532F-IWS", firmware="V5.5.800 build 210628",
                 serial="DS-2CD2532F-IWS20210628AAWR000000030", confidence=0.95, covered=True,
                 signatures=[SignatureHit("hikvision-http-server-app-webs", "http_server", "App-webs/", 80)]),  # fmt: skip
        (("http_server", "App-webs/", 80),),
        (80,),
    )


def _uniview() -> LabDevice:
    return LabDevice("10.20.0.40", "48:ea:63:00:00:40", Identity(vendor="uniview", device_type="camera", confidence=0.6), (), (80,))


def _reasons(given: object) -> list[Reason]:
    """Reasons as a person or another tool states them: codes, sentences or a mapping."""
    return reasons_from_json(given)


def write_scan(store: Store, devices: list[LabDevice], verdicts: list[dict], targets: list[str], status: str = "complete") -> str:
    scan_id = store.start_scan(targets=targets, addresses=512)
    for d in devices:
        store.add_services(scan_id, [(d.address, p) for p in d.ports])
        store.add_observations(scan_id, [Observation(d.address, kind, value, port, "lab") for kind, value, port in d.observations])
        store.add_identity(scan_id, d.address, d.identity, mac=d.mac or None)
    # Verdicts as another tool or a person states them about a whole segment or device (no
    # camaudit evidence behind them): an EXPOSED row alone says nothing of egress.
    write_verdicts(store, [
        Verdict(subject_kind=v["kind"], subject=v["subject"], verdict=v["verdict"],
                egress="" if v["verdict"] == "EXPOSED" else v["verdict"], exposed=v["verdict"] == "EXPOSED",
                qualifiers=_reasons(v.get("qualifiers")),
                missing=_reasons(v.get("missing", [])), paths=list(v.get("paths", [])), decided_at=utc_now())
        for v in verdicts
    ], scan_id=scan_id)  # fmt: skip
    store.finish_scan(scan_id, status)
    return scan_id


REGISTER_CSV = """asset_id,address,mac,serial,declared_maker,declared_brand,declared_model,location,purpose,department,segment,dpia_ref,procurement_ref
CAM-001,10.20.0.11,,DS-2CD2532F-IWS20140721AAWR000000001,Hikvision,,DS-2CD2532F-IWS,Stadhuis entrance,entrance,Facilities,10.20.0.0/24,DPIA-2019-04,PO-1001
CAM-002,,08-ED-ED-00-00-12,,Dahua,,IPC-HDW4431C-A,Parking deck,parking,Facilities,10.20.0.0/24,DPIA-2019-04,PO-1002
NVR-003,10.20.0.13,,,Lorex,,NR818,Server room,recording,IT,10.20.0.0/24,,PO-1003
CAM-004,10.20.0.14,,,Axis,,,Lobby,entrance,Facilities,10.20.0.0/24,,PO-1004
CAM-005,10.20.0.30,,,Hanwha,,,Archive,archive,Records,10.20.0.0/24,,PO-1005
CAM-030,10.30.0.5,,,Hikvision,,,Depot gate,gate,Operations,10.30.0.0/24,,PO-2001
"""


@dataclass
class LabDb:
    path: Path
    first: str
    latest: str


def build_lab_db(path: Path, *, register: bool = True, verdicts: bool = True) -> LabDb:
    """Two scans of the lab: the first with the Dahua at 10.20.0.16, an Uniview that later goes,
    older Hikvision firmware, and a CLOSED segment; the latest with an EZVIZ that appeared,
    the Dahua moved to 10.20.0.12, the EZVIZ OPEN (it reports its cloud registration), the
    Hikvision EXPOSED (a UPnP mapping), the segment INCONCLUSIVE, and a second segment CLOSED."""
    with open_store(path) as store:
        first = write_scan(
            store,
            [_hik("V5.2.0 build 140721"), _dahua("10.20.0.16"), _lorex(), _axis(), _printer(), _uniview(), _hik_closed_segment()],
            [
                {"kind": "segment", "subject": "10.20.0.0/24", "verdict": "CLOSED",
                 "qualifiers": {"vantage": "sensor 10.20.0.2", "window": "2026-11-01T09:00Z/2026-11-02T09:00Z"},
                 "paths": ["dns-recursive", "tcp", "udp", "icmp", "ntp"]},
                {"kind": "segment", "subject": "10.30.0.0/24", "verdict": "CLOSED",
                 "qualifiers": {"vantage": "sensor 10.30.0.2", "window": "2026-11-01T09:00Z/2026-11-02T09:00Z"},
                 "paths": ["dns-recursive", "tcp", "udp", "icmp", "ntp"]},
            ] if verdicts else [],
            ["10.20.0.0/24", "10.30.0.0/24"],
        )  # fmt: skip
        latest = write_scan(
            store,
            [_hik("V5.4.0 build 160530"), _dahua("10.20.0.12"), _lorex(), _axis(), _ezviz(), _printer(), _hik_closed_segment()],
            [
                {"kind": "segment", "subject": "10.20.0.0/24", "verdict": "INCONCLUSIVE",
                 "qualifiers": {"vantage": "sensor 10.20.0.2"}, "missing": ["positive control", "IPv6 path"],
                 "paths": ["dns-recursive", "tcp"]},
                {"kind": "device", "subject": "10.20.0.15", "verdict": "OPEN",
                 "qualifiers": {"evidence": "Hik-Connect registerStatus=true reported by the device"}},
                {"kind": "device", "subject": "10.20.0.11", "verdict": "EXPOSED",
                 "qualifiers": {"evidence": "UPnP port mapping 8000 -> WAN"}},
                {"kind": "segment", "subject": "10.30.0.0/24", "verdict": "CLOSED",
                 "qualifiers": {"vantage": "sensor 10.30.0.2", "window": "2026-11-03T09:00Z/2026-11-04T09:00Z"},
                 "paths": ["dns-recursive", "dns-direct", "tcp", "udp", "icmp", "ntp"]},
            ] if verdicts else [],
            ["10.20.0.0/24", "10.30.0.0/24"],
        )  # fmt: skip
        if register:
            from camaudit.register import import_register

            reg = path.parent / "register.csv"
            reg.write_text(REGISTER_CSV)
            import_register(store, reg)
    return LabDb(path, first, latest)
