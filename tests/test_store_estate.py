"""The store's estate API (issue 11): sites, stable devices with promotion, sightings, egress runs
apart from scans, one verdicts table, frozen assessments, finalising a scan on what it stored,
and migrating a camaudit 0.1.0 store in place."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from camaudit.assess import scan_view
from camaudit.audit import finalise_scan
from camaudit.egress.results import Verdict
from camaudit.model import Identity, Observation
from camaudit.model.verdicts import Reason
from camaudit.register import Asset
from camaudit.store import devices as stored_devices
from camaudit.store import egress as stored_egress
from camaudit.store import observations as stored_observations
from camaudit.store import open_store
from camaudit.store import verdicts as stored_verdicts
from camaudit.store.assessments import assessments_of_scan, findings_of, latest_assessment
from camaudit.store.register import load_register, save_register
from camaudit.store.scans import sites
from camaudit.store.schema import migrations

DATA = Path(__file__).parent / "data"
SERIAL = "DS-2CD2032-I20160101AAWR500000001"


def _hik(serial: str | None = None) -> Identity:
    return Identity(vendor="hikvision", device_type="camera", serial=serial, confidence=0.9, covered=True)


def test_migrations_are_registered_in_their_true_order() -> None:
    names = [m.name for m in migrations._migrations]  # the registry sqlite-utils applies in this order
    assert names == sorted(names) and names[:6] == [
        "0001_scans_hosts_services_observations", "0002_devices_identities_sightings",
        "0003_register_reconciliation_findings", "0004_device_settings",
        "0005_egress_runs_tests_listener_log_flows", "0006_host_problems",
    ]  # fmt: skip


def test_a_device_is_promoted_when_a_scan_learns_its_serial(tmp_path: Path) -> None:
    with open_store(tmp_path / "p.db") as store:
        first = store.start_scan(targets=["10.1.0.0/24"])
        store.add_services(first, [("10.1.0.5", 80)])
        assert store.add_identity(first, "10.1.0.5", _hik()) == "addr:10.1.0.5"
        second = store.start_scan(targets=["10.1.0.0/24"])
        assert store.add_identity(second, "10.1.0.5", _hik(SERIAL)) == f"serial:{SERIAL}"
        [device] = stored_devices.devices(store, "default")
        assert device.id == f"serial:{SERIAL}" and device.aliases == ["addr:10.1.0.5"]
        # the weaker device's history moved with it: both scans' sightings and identities
        sightings = stored_devices.sightings(store, site="default")
        assert {(s.scan_id, s.device_id) for s in sightings} == {(first, device.id), (second, device.id)}
        assert store.hosts_of_scan(first)[0]["identity"]["device_id"] == device.id
        # a third scan without the serial (no credentials) resolves to the same device
        third = store.start_scan(targets=["10.1.0.0/24"])
        assert store.add_identity(third, "10.1.0.5", _hik()) == device.id
        # ... unless another maker answers at that address: another device
        fourth = store.start_scan(targets=["10.1.0.0/24"])
        assert store.add_identity(fourth, "10.1.0.5", Identity(vendor="axis")) == "addr:10.1.0.5"


def test_a_mac_resolves_to_the_device_known_by_serial(tmp_path: Path) -> None:
    with open_store(tmp_path / "m.db") as store:
        a = store.start_scan(targets=["10.2.0.9"])
        store.add_identity(a, "10.2.0.9", _hik(SERIAL), mac="44:19:B6:00:00:09")
        b = store.start_scan(targets=["10.2.0.0/24"])  # a new DHCP lease, no serial read
        assert store.add_identity(b, "10.2.0.77", _hik(), mac="44:19:b6:00:00:09") == f"serial:{SERIAL}"


def test_sites_are_separate_address_spaces(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as store:
        north = store.start_scan(targets=["192.168.1.0/24"], site="north")
        south = store.start_scan(targets=["192.168.1.0/24"], site="south")
        store.add_identity(north, "192.168.1.10", _hik())
        store.add_identity(south, "192.168.1.10", _hik(SERIAL))
        assert [d.id for d in stored_devices.devices(store, "north")] == ["addr:192.168.1.10"]
        assert [d.id for d in stored_devices.devices(store, "south")] == [f"serial:{SERIAL}"]
        assert store.scan("latest", site="north").id == north and store.scan("latest").id == south
        assert [s.site for s in store.scans()] == ["south", "north"]
        assert {s.name: s.segments for s in sites(store)} == {"north": ["192.168.1.0/24"], "south": ["192.168.1.0/24"]}


def test_each_site_is_reconciled_with_its_own_register(tmp_path: Path) -> None:
    with open_store(tmp_path / "r.db") as store:
        save_register(store, [Asset("N-1", address="192.168.1.10", declared_maker="Axis")], source_file="n.csv", site="north")
        north = store.start_scan(targets=["192.168.1.0/24"], site="north")
        south = store.start_scan(targets=["192.168.1.0/24"], site="south")
        for scan_id in (north, south):
            store.add_services(scan_id, [("192.168.1.10", 80)])
            store.add_identity(scan_id, "192.168.1.10", Identity(vendor="axis"))
        assert scan_view(store, north).devices[0].register == "matched"
        assert scan_view(store, south).register_size == 0 and scan_view(store, south).devices[0].register == "no_register"


def test_egress_runs_are_not_scans_and_verdicts_keep_their_history(tmp_path: Path) -> None:
    with open_store(tmp_path / "e.db") as store:
        run_id = stored_egress.start_passive_run(store, "pcap", options={"capture": "x.pcap"})
        first = Verdict("device", "10.3.0.4", "INCONCLUSIVE", "INCONCLUSIVE", False, missing=[Reason("planned_not_tested", {"path": "tcp/443"})])
        later = Verdict("device", "10.3.0.4", "OPEN", "OPEN", True, qualifiers=[Reason("legacy_text", {"text": "flow to 203.0.113.9"})])
        [first_id] = stored_verdicts.write_verdicts(store, [first], egress_run_id=run_id)
        stored_verdicts.write_verdicts(store, [later], egress_run_id=run_id)
        assert store.scans() == []
        [(_, current)] = stored_verdicts.run_verdicts(store, [run_id])
        assert current == later  # the document round-trips into the same Verdict
        [(_, kept)] = stored_verdicts.verdicts_by_id(store, [first_id])
        assert kept == first


def test_finalise_identifies_and_assesses_what_a_killed_scan_stored(tmp_path: Path) -> None:
    """A scan killed mid-way (status still running, nothing identified): the stale path."""
    db = tmp_path / "k.db"
    with open_store(db) as store:
        scan_id = store.start_scan(targets=["10.4.0.0/24"])
        store.add_services(scan_id, [("10.4.0.2", 80), ("10.4.0.2", 8000)])
        store.add_observations(scan_id, [Observation("10.4.0.2", "http_server", "App-webs/", 80, "http"),
                                         Observation("10.4.0.2", "http_www_authenticate",
                                                     'Digest realm="IP Camera(21388)"', 80, "http")])
        summary = finalise_scan(store, scan_id, "interrupted")
        assert store.scan(scan_id).status == "interrupted"
        assert store.hosts_of_scan(scan_id)[0]["identity"]["vendor"] == "hikvision"
        latest = latest_assessment(store, scan_id)
        assert summary is not None and summary.total and latest is not None
        assert summary.total == len(findings_of(store, latest.id))
        # finalising again does not assess again
        assert finalise_scan(store, scan_id, "interrupted") is None
        assert len(assessments_of_scan(store, scan_id)) == 1


def test_a_0_1_store_migrates_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copy(DATA / "camaudit-0.1.0.db", db)
    with open_store(db) as store:
        applied = [r["name"] for r in store.db.query("select name from _sqlite_migrations")]
        assert applied[-1] == migrations._migrations[-1].name
        [scan] = store.scans()
        assert scan.site == "default" and scan.targets  # the egress pseudo-scans are gone from scans
        kinds = sorted(r["kind"] for r in store.db.query("select kind from egress_runs"))
        assert kinds == ["check", "control"]
        assert store.db.execute("select count(*) from egress_runs where scan_id is not null").fetchone()[0] == 0
        [(run_verdict_run,)] = store.db.execute("select egress_run_id from verdicts").fetchall()
        assert stored_egress.egress_run(store, run_verdict_run).kind == "check"
        devices = stored_devices.devices(store, "default")
        assert len(devices) == 4 and all(d.key_kind in ("serial", "mac", "addr") for d in devices)
        assert {s.device_id for s in stored_devices.sightings(store, scan_id=scan.id)} == {d.id for d in devices}
        migrated = latest_assessment(store, scan.id)
        assert migrated is not None and migrated.reason == "migrated from 0.1" and not migrated.inputs_recorded
        assert findings_of(store, migrated.id)
        assert [a.asset_id for a in load_register(store, "default")] == ["CAM-1", "CAM-9"]
        assert store.db.execute("pragma foreign_key_check").fetchall() == []
    out = tmp_path / "old.md"
    done = subprocess.run([sys.executable, "-m", "camaudit", "report", "--db", str(db), "-o", str(out), "--fail-on", "none"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "migrated from 0.1" in out.read_text() and scan.id in out.read_text()
    listed = subprocess.run([sys.executable, "-m", "camaudit", "scans", "--db", str(db), "--json"],
                            capture_output=True, text=True, timeout=60)
    assert [s["site"] for s in json.loads(listed.stdout)["scans"]] == ["default"]


@pytest.mark.parametrize("name", ["", "two words", "x" * 65, "a/b"])
def test_bad_site_names_are_usage_errors(tmp_path: Path, name: str) -> None:
    open_store(tmp_path / "n.db").close()
    done = subprocess.run([sys.executable, "-m", "camaudit", "scans", "--db", str(tmp_path / "n.db"), "--site", name],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "a site name is" in done.stderr and "Traceback" not in done.stderr


def test_a_verdict_decided_after_the_assessment_does_not_change_it_and_the_report_says_so(tmp_path: Path) -> None:
    from camaudit.report import render
    from camaudit.report.data import build_report

    with open_store(tmp_path / "v.db") as store:
        scan_id = store.start_scan(targets=["10.5.0.0/24"])
        store.add_services(scan_id, [("10.5.0.3", 80)])
        store.add_identity(scan_id, "10.5.0.3", _hik(SERIAL))
        store.finish_scan(scan_id, "complete")
        first = build_report(store, scan_id)
        assert first["verdicts_not_assessed"] == 0 and first["devices"][0]["verdict"] == "NONE"
        # an imported listener log re-decides: OPEN now, for the next assessment
        stored_verdicts.write_verdicts(store, [Verdict("device", "10.5.0.3", "OPEN", "OPEN", False)], scan_id=scan_id)
        again = build_report(store, scan_id)
        assert again["assessment"] == first["assessment"] and again["findings"] == first["findings"]
        assert again["devices"][0]["verdict"] == "NONE" and again["verdicts_not_assessed"] == 1
        assert r"1 verdict\(s\) decided since" in render(again, "md")
        fresh = build_report(store, scan_id, reassess=True)
        assert fresh["devices"][0]["verdict"] == "OPEN" and fresh["verdicts_not_assessed"] == 0


def test_device_settings_keep_their_not_verified_codes_through_the_store(tmp_path: Path) -> None:
    """The verdict logic decides on codes: settings read back from the store must carry the
    same reasons, not English sentences (which would come back as undecidable legacy text)."""
    from camaudit.model.settings import DeviceSettings

    reasons = [Reason("auth_required", {"what": "ISAPI cloud platform", "read": "isapi:EZVIZ", "port": 80}),
               Reason("onvif_no_service", {"ports": "80, 8000", "count": 2})]
    settings = DeviceSettings("10.6.0.2", gateway=["10.6.0.1"], not_verified=list(reasons))
    with open_store(tmp_path / "s.db") as store:
        scan_id = store.start_scan(targets=["10.6.0.0/24"])
        store.add_device_settings(scan_id, settings)
        back = store.device_settings(scan_id)["10.6.0.2"]
        assert back.not_verified == reasons
        assert back == settings
        [row] = store.db.query("select not_verified from device_settings where scan_id = ?", [scan_id])
        assert json.loads(row["not_verified"])[0]["code"] == "auth_required"


def test_identity_fields_and_their_evidence_come_back_from_the_store(tmp_path: Path) -> None:
    """Issue 14 item 7 through the store: a report built from the store explains each field."""
    from camaudit.fingerprint import identify

    found = [Observation("10.8.0.2", "sadp", (DATA / "captures" / "discovery" / "sadp_hikvision.xml").read_text(), 37020, "sadp")]
    identity = identify(found)
    assert identity.fields, "the engine names the evidence behind each field"
    with open_store(tmp_path / "f.db") as store:
        scan_id = store.start_scan(targets=["10.8.0.0/24"])
        store.add_services(scan_id, [("10.8.0.2", 80)])
        store.add_identity(scan_id, "10.8.0.2", identity)
        [(host, _)] = stored_observations.hosts(store, scan_id)
        assert host.identity is not None and host.identity.fields == identity.fields
        assert store.hosts_of_scan(scan_id)[0]["identity"]["fields"] == identity.to_json()["fields"]
