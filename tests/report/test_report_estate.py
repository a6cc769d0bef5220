"""The estate report (issue 13 item 1), the statement section (item 3), and the PDF and charts
(item 4), on a central store of three sites written through the store (estate_lab.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from estate_lab import EstateDb, build_estate_db
from report_lab import LabDb

from camaudit.report import write_estate_report, write_report
from camaudit.report.data import build_report
from camaudit.report.estate import build_estate
from camaudit.store import open_store

CLI = [sys.executable, "-m", "camaudit"]


@pytest.fixture(scope="module")
def estate_db(tmp_path_factory: pytest.TempPathFactory) -> EstateDb:
    """Module-scoped: tests must not change it."""
    return build_estate_db(tmp_path_factory.mktemp("estate") / "central.db")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def estate_json(estate_db: EstateDb, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "estate.json"
    done = run("report", "--estate", "--db", str(estate_db.path), "-o", str(out), "--fail-on", "none", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def by_site(doc: dict) -> dict[str, dict]:
    return {s["site"]: s for s in doc["sites"]}


def test_one_conclusion_per_site_from_the_verdicts_in_english(estate_db: EstateDb, tmp_path: Path) -> None:
    sites = by_site(estate_json(estate_db, tmp_path))
    assert sorted(sites) == ["depot", "werf", "zwembad"]
    assert sites["zwembad"]["conclusion_text"] == (
        "zwembad: CLOSED on 31 tested paths from 10.20.0.5, control passed 12 minutes earlier, "
        "0 of 2 devices report a cloud registration")
    assert sites["werf"]["conclusion_text"] == (
        "werf: INCONCLUSIVE: the cloud settings of 3 Dahua devices could not be read without credentials")
    assert sites["depot"]["conclusion"]["code"] == "conclusion_none"
    # the conclusion is codes first: its words come from the message tables
    assert sites["zwembad"]["conclusion"] == {
        "code": "conclusion_closed", "site": "zwembad", "paths": 31, "vantage": "10.20.0.5", "minutes": 12,
        "control_before": True, "registered": 0, "devices": 2}


def test_conclusions_in_dutch(estate_db: EstateDb, tmp_path: Path) -> None:
    sites = by_site(estate_json(estate_db, tmp_path, "--lang", "nl"))
    assert sites["zwembad"]["conclusion_text"].startswith("zwembad: CLOSED op 31 geteste routes vanaf 10.20.0.5, "
                                                          "controle 12 minuten eerder geslaagd")
    assert "konden zonder inloggegevens niet worden uitgelezen" in sites["werf"]["conclusion_text"]
    assert "Bewering:" in sites["zwembad"]["statement"]["text"][0]


def test_each_site_entry_has_the_scan_reports_shape(estate_db: EstateDb, tmp_path: Path) -> None:
    doc = estate_json(estate_db, tmp_path)
    with open_store(estate_db.path) as store:
        scan_doc = build_report(store, estate_db.werf)
    for entry in doc["sites"]:
        assert set(scan_doc) <= set(entry), set(scan_doc) - set(entry)
        assert set(scan_doc["summary"]) <= set(entry["summary"])
        assert {"by_maker", "findings", "verdicts"} <= set(entry["summary"])
    sites = by_site(doc)
    assert sites["werf"]["scan"]["scan_id"] == estate_db.werf
    assert sites["zwembad"]["scan"]["scan_id"] == estate_db.zwembad


def test_interrupted_latest_scan_is_flagged_and_the_complete_one_reported(estate_db: EstateDb, tmp_path: Path) -> None:
    doc = estate_json(estate_db, tmp_path)
    assert {(f["code"], f["site"]) for f in doc["flags"]} == {("flag_interrupted", "depot"),
                                                              ("flag_older_complete", "depot")}
    depot = by_site(doc)["depot"]
    assert depot["scan"]["scan_id"] == estate_db.depot_complete
    assert depot["latest_scan"] == {"scan_id": estate_db.depot_interrupted, "status": "interrupted",
                                    "started_at": depot["latest_scan"]["started_at"]}


def test_max_age_flags_sites_whose_latest_scan_is_older(estate_db: EstateDb) -> None:
    with open_store(estate_db.path) as store:
        fresh = build_estate(store, max_age=7 * 86400)
        stale = build_estate(store, max_age=0.001)
    assert not [f for f in fresh["flags"] if f["code"] == "flag_stale"]
    assert sorted(f["site"] for f in stale["flags"] if f["code"] == "flag_stale") == ["depot", "werf", "zwembad"]
    assert "is older than" in " ".join(stale["flags_text"])


def test_a_stale_site_writes_the_report_and_exits_3(estate_db: EstateDb, tmp_path: Path) -> None:
    # The exit-code contract: --max-age not met is 3. The estate report is still written (it says
    # which sites are stale), but a scheduled run must not pass when a site stopped reporting.
    time.sleep(1.1)  # every scan of the fixture is now older than one second
    out = tmp_path / "stale.json"
    done = run("report", "--estate", "--db", str(estate_db.path), "-o", str(out), "--fail-on", "none",
               "--max-age", "1")
    assert done.returncode == 3, done.stderr
    stale = sorted(f["site"] for f in json.loads(out.read_text())["flags"] if f["code"] == "flag_stale")
    assert stale == ["depot", "werf", "zwembad"]
    assert f"the latest scan of {', '.join(stale)} started longer ago than --max-age 1" in done.stderr
    assert "Traceback" not in done.stderr
    fresh = run("report", "--estate", "--db", str(estate_db.path), "-o", str(tmp_path / "fresh.json"),
                "--fail-on", "none", "--max-age", "7d")
    assert fresh.returncode == 0, fresh.stderr


@pytest.mark.parametrize("bad", ["soon", "-3d", "0", "7 days"])
def test_a_max_age_that_is_not_a_duration_is_a_one_line_usage_error(estate_db: EstateDb, tmp_path: Path, bad: str) -> None:
    done = run("report", "--estate", "--db", str(estate_db.path), "-o", str(tmp_path / "e.html"), "--max-age", bad)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "--max-age" in done.stderr
    assert not (tmp_path / "e.html").exists()


def test_estate_inventory_by_maker_brand_covered_and_site(estate_db: EstateDb, tmp_path: Path) -> None:
    inv = estate_json(estate_db, tmp_path)["inventory"]
    assert inv["devices"] == 7 and inv["covered"] == 5
    assert {m["maker"]: (m["devices"], m["covered"]) for m in inv["by_maker"]} == {
        "dahua": (3, 3), "axis": (2, 0), "hikvision": (2, 2)}
    assert {s["site"]: s["by_maker"] for s in inv["by_site"]} == {
        "depot": {"hikvision": 1}, "werf": {"dahua": 3, "hikvision": 1}, "zwembad": {"axis": 2}}


def test_register_reconciled_across_sites(estate_db: EstateDb, tmp_path: Path) -> None:
    """ZW-001 is declared at zwembad (by serial) and was found at werf; ZW-002 is at its own site."""
    doc = estate_json(estate_db, tmp_path)
    cross = doc["register_across_sites"]
    assert [(c["asset_id"], c["declared_site"], c["found_site"], c["matched_by"]) for c in cross] == [
        ("ZW-001", "zwembad", "werf", "serial")]


def test_changes_since_the_previous_scan_per_site(estate_db: EstateDb, tmp_path: Path) -> None:
    sites = by_site(estate_json(estate_db, tmp_path))
    changes = sites["zwembad"]["changes"]
    assert changes is not None
    kinds = {(c["kind"], c["address"]) for c in changes["changes"]}
    assert ("appeared", "10.20.0.31") in kinds and ("verdict", "10.20.0.30") in kinds  # the segment was checked since
    assert sites["werf"]["changes"] is None


def test_estate_html_and_markdown_carry_flags_conclusions_and_statements(estate_db: EstateDb, tmp_path: Path) -> None:
    with open_store(estate_db.path) as store:
        html = write_estate_report(store, tmp_path / "estate.html", lang="nl").path.read_text()
        md = write_estate_report(store, tmp_path / "estate.md").path.read_text()
    assert html.index('id="estate-flags"') < html.index('id="conclusions"')  # flagged at the top
    assert "CLOSED op 31 geteste routes" in html and "Verklaring" in html
    for chart in ("chart-site-makers", "chart-site-verdicts", "chart-site-1-history"):
        assert f'id="{chart}"' in html
    assert "<script" not in html and not re.search(r"(src|href)=\"(?!#)", html)
    assert md.index("Sites to look at first") < md.index("## Conclusions per site")
    assert "ZW-001 is declared at zwembad and was found at werf" in md
    assert "Claim: from the vantage 10.20.0.5, none of the 31 egress paths" in md


def test_scan_report_has_the_statement_and_the_reproducibility_footer(lab_db: LabDb, tmp_path: Path) -> None:
    with open_store(lab_db.path) as store:
        doc = build_report(store, lab_db.latest)
        html = write_report(store, tmp_path / "r.html", lang="nl").path.read_text()
        md = write_report(store, tmp_path / "r.md").path.read_text()
    repro = doc["statement"]["reproducibility"]
    a = doc["assessment"]
    assert repro["assessment_id"] == a["assessment_id"] and repro["policy_hash"] == a["policy_hash"]
    assert repro["register_version"] == a["register_hash"] and repro["signatures_version"] == a["signatures_hash"]
    assert repro["scan_id"] == lab_db.latest and repro["camaudit_version"] == a["camaudit_version"]
    assert doc["statement"]["text"][0].startswith("Claim: ")
    assert any(line.startswith("Not verified: ") for line in doc["statement"]["text"])
    assert 'id="statement"' in html and "Bewering:" in html and "Reproduceerbaarheid" in html
    assert f'data-repro="assessment_id">{a["assessment_id"]}<' in html
    assert 'id="chart-history"' in html
    assert "### Statement" in md and f"`{a['assessment_id']}`" in md
    # the JSON report keeps its shape: additions only
    assert {"summary", "devices", "findings", "segments", "scan", "assessment"} <= set(doc)
    assert {"by_maker", "findings"} <= set(doc["summary"])


def test_findings_over_time_history_names_each_scan(lab_db: LabDb) -> None:
    with open_store(lab_db.path) as store:
        doc = build_report(store, lab_db.latest)
    assert [h["scan_id"] for h in doc["history"]] == [lab_db.first, lab_db.latest]
    assert doc["history"][-1]["findings"] == doc["summary"]["findings"]


def test_estate_report_of_an_empty_store_is_a_usage_error(tmp_path: Path) -> None:
    open_store(tmp_path / "empty.db").close()
    done = run("report", "--estate", "--db", str(tmp_path / "empty.db"), "-o", str(tmp_path / "e.html"))
    assert done.returncode == 2 and "holds no scans" in done.stderr and "Traceback" not in done.stderr


def _one_site(tmp_path: Path, devices: list, verdicts: list) -> dict:
    from estate_lab import write_site_scan

    with open_store(tmp_path / "one.db") as store:
        write_site_scan(store, "hal", devices, verdicts, ["10.50.0.0/24"])
        return build_estate(store, lang="en")["sites"][0]


def test_a_cloud_status_that_cannot_be_verified_is_not_called_a_missing_credential(tmp_path: Path) -> None:
    """Dahua has no read-only API for its P2P online status: read with credentials, the device
    still stays INCONCLUSIVE, and the conclusion says why without blaming credentials."""
    from estate_lab import dahua_at

    from camaudit.egress.results import Verdict
    from camaudit.model.verdicts import Reason

    unverified = Verdict(subject_kind="device", subject="10.50.0.2", verdict="INCONCLUSIVE", egress="INCONCLUSIVE",
                         exposed=False, missing=[Reason("registration_unverified", {
                             "service": "Dahua P2P", "note": Reason("dahua_no_status_api"), "source": "CGI"})])
    site = _one_site(tmp_path, [dahua_at("10.50.0.2", "6C01E93PAG50002", "08:ed:ed:00:50:02")], [unverified])
    assert site["conclusion_text"] == "hal: INCONCLUSIVE: the cloud registration status of 1 device (Dahua) could not be verified"


def test_a_site_with_only_an_exposure_record_has_no_egress_verdict(tmp_path: Path) -> None:
    from estate_lab import axis_at

    from camaudit.egress.results import Verdict
    from camaudit.model.verdicts import Reason

    exposed_only = Verdict(subject_kind="segment", subject="10.50.0.0/24", verdict="EXPOSED", egress="", exposed=True,
                           qualifiers=[Reason("exposed_inbound", {"paths": "upnp/igd"})])
    site = _one_site(tmp_path, [axis_at("10.50.0.3", "00:40:8c:00:50:03")], [exposed_only])
    assert site["statement"]["verdict"] == "NONE"
    assert site["conclusion"]["code"] == "conclusion_none"


def test_a_site_with_a_device_outside_every_checked_segment_is_not_closed(tmp_path: Path) -> None:
    from estate_lab import axis_at, closed_segment

    with open_store(tmp_path / "two.db") as store:
        from estate_lab import write_site_scan

        write_site_scan(store, "hal", [axis_at("10.20.0.3", "00:40:8c:00:50:03"), axis_at("10.60.0.3", "00:40:8c:00:60:03")],
                        [closed_segment("10.20.0.0/24")], ["10.20.0.0/24", "10.60.0.0/24"])
        site = build_estate(store)["sites"][0]
    assert site["statement"]["verdict"] == "INCONCLUSIVE"
    assert site["conclusion_text"] == "hal: INCONCLUSIVE: 1 device without a verdict of its own"


def test_estate_csv_is_refused_in_one_line(estate_db: EstateDb, tmp_path: Path) -> None:
    done = run("report", "--estate", "--db", str(estate_db.path), "-o", str(tmp_path / "e.csv"))
    assert done.returncode == 2 and "html, md, json or pdf" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_estate_json_to_stdout(estate_db: EstateDb) -> None:
    done = run("report", "--estate", "--db", str(estate_db.path), "--format", "json", "-o", "-", "--fail-on", "none")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kind"] == "estate"


def test_hostile_device_text_stays_text_in_the_estate_report_and_its_charts(tmp_path: Path) -> None:
    from estate_lab import write_site_scan
    from report_lab import LabDevice

    from camaudit.model import Identity

    evil = '<img src="http://camaudit-test.invalid/x.png"><script>alert(1)</script>'
    device = LabDevice("10.70.0.1", "08:ed:ed:00:70:01", Identity(vendor="dahua", brand=evil, model=evil, covered=True),
                       (("http_title", evil, 80),), (80,))
    with open_store(tmp_path / "evil.db") as store:
        write_site_scan(store, "hal", [device], [], ["10.70.0.0/24"])
        html = write_estate_report(store, tmp_path / "e.html").path.read_text()
        md = write_estate_report(store, tmp_path / "e.md").path.read_text()
    assert "<script" not in html and "<img" not in html
    assert "&lt;img src=" in html  # shown, as text (the brand table)
    assert not re.search(r"(?<!\\)<img", md) and "\\<img" in md  # escaped as the scan report's Markdown is


def test_a_site_with_a_register_but_no_scan_is_flagged(tmp_path: Path) -> None:
    from camaudit.register import import_register

    db = build_estate_db(tmp_path / "c.db").path
    reg = tmp_path / "kantoor.csv"
    reg.write_text("asset_id,address,declared_maker\nK-1,10.90.0.5,Axis\n")
    with open_store(db) as store:
        import_register(store, reg, site="kantoor")
        doc = build_estate(store, lang="nl")
    assert {"code": "flag_no_scan", "site": "kantoor", "assets": 1, "runs": 0} in doc["flags"]
    assert "kantoor: nooit gescand (1 geregistreerde asset(s), 0 egress-run(s))" in " ".join(doc["flags_text"])
    assert "kantoor" not in [s["site"] for s in doc["sites"]]


@pytest.mark.parametrize("extra", [["--scan", "ffff"], ["--site", "werf"], ["--reassess"], ["--require-complete"]])
def test_single_scan_options_are_refused_with_estate(estate_db: EstateDb, tmp_path: Path, extra: list[str]) -> None:
    done = run("report", "--estate", "--db", str(estate_db.path), "-o", str(tmp_path / "e.html"), *extra)
    assert done.returncode == 2 and extra[0] in done.stderr and "--estate covers every site" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "e.html").exists()


def test_max_age_without_estate_is_the_scans_own_age(estate_db: EstateDb, tmp_path: Path) -> None:
    """One --max-age for both reports: for one scan's report it is that scan's age (a fresh scan is
    reported; a stale one is exit 3, tested in test_report_cli), for the estate each site's."""
    fresh = run("report", "--db", str(estate_db.path), "-o", str(tmp_path / "r.html"), "--max-age", "7d")
    assert fresh.returncode == 0, fresh.stderr
    assert (tmp_path / "r.html").exists()
