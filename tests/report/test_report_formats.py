"""Markdown, JSON and CSV reports and the exports: inventory (CSV, JSON, XLSX), OCSF findings,
and the Datasette description of the database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from report_lab import LabDb, LabDevice, write_scan

from camaudit.assess import evaluate, scan_view
from camaudit.model import Identity
from camaudit.policy import load_policy
from camaudit.report import write_report
from camaudit.report.data import build_report
from camaudit.report.datasette import metadata_for, shipped_metadata
from camaudit.report.i18n import keys_match
from camaudit.report.inventory import INVENTORY_COLUMNS, inventory_rows, write_inventory
from camaudit.report.markdown import cell
from camaudit.report.ocsf import render_ocsf
from camaudit.store import open_store


def _copy(lab: LabDb, target: Path) -> Path:
    with open_store(lab.path) as store:
        store.db.execute(f"vacuum into '{target}'")
    return target


def test_json_report_matches_the_store(lab_db: LabDb, tmp_path: Path) -> None:
    with open_store(_copy(lab_db, tmp_path / "j.db")) as store:
        report = write_report(store, tmp_path / "r.json")
        doc = json.loads(report.path.read_text())
        stored = store.db.execute("select count(*) from findings where scan_id = ?", [lab_db.latest]).fetchone()[0]
    assert doc["scan"]["scan_id"] == lab_db.latest and doc["report_version"] == 1
    assert len(doc["findings"]) == stored == 13
    assert doc["summary"]["verdicts"] == {"OPEN": 1, "CLOSED": 1, "INCONCLUSIVE": 5, "NONE": 0}
    assert doc["register"]["missing_assets"][0]["asset_id"] == "CAM-005"
    lorex = next(d for d in doc["devices"] if d["address"] == "10.20.0.13")
    assert lorex["maker_mismatch"] and lorex["brand"] == "lorex" and lorex["vendor"] == "dahua"
    kinds = {(c["kind"], c["address"]) for c in doc["changes"]["changes"]}
    assert ("appeared", "10.20.0.15") in kinds and ("moved", "10.20.0.12") in kinds


def test_markdown_escapes_device_text(tmp_path: Path) -> None:
    hostile = "![x](http://camaudit-test.invalid/a.png) | <b>"
    with open_store(tmp_path / "m.db") as store:
        device = LabDevice("10.40.0.2", "08:ed:ed:00:40:02", Identity(vendor="dahua", model=hostile, covered=True), (), (80,))
        write_scan(store, [device], [], ["10.40.0.0/24"])
        text = write_report(store, tmp_path / "r.md").path.read_text()
    assert hostile not in text and cell(hostile) in text
    assert "](http" not in text
    row = next(line for line in text.splitlines() if line.startswith("| 10.40.0.2 |"))
    assert row.count(" | ") == 10, "a pipe in device text does not add a column"


def test_markdown_and_dutch(lab_db: LabDb, tmp_path: Path) -> None:
    with open_store(_copy(lab_db, tmp_path / "nl.db")) as store:
        text = write_report(store, tmp_path / "r.md", lang="nl").path.read_text()
    assert text.startswith("# Auditrapport camera's")
    assert "Gelijste fabrikant, geen internetverbinding waargenomen" in text
    assert keys_match()


def test_csv_report_is_one_row_per_finding_and_never_a_formula(tmp_path: Path) -> None:
    with open_store(tmp_path / "c.db") as store:
        device = LabDevice("10.40.0.3", "08:ed:ed:00:40:03",
                           Identity(vendor="dahua", model="=cmd|' /C calc'!A0", covered=True, confidence=0.9,
                                    advisories=["CVE-2021-33044"]),
                           (), (80,))  # fmt: skip
        write_scan(store, [device], [], ["10.40.0.0/24"])
        text = write_report(store, tmp_path / "r.csv").path.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["rule"] for r in rows} == {"known-cve", "covered-egress-unverified"}
    assert all(r["model"] == "'=cmd|' /C calc'!A0" for r in rows)


def test_inventory_exports(lab_db: LabDb, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    with open_store(_copy(lab_db, tmp_path / "i.db")) as store:
        rows = inventory_rows(store)
    assert len(rows) == 7 + 1, "seven devices found and one registered asset not found"
    by_address = {r["address"]: r for r in rows}
    assert by_address["10.20.0.15"]["register_status"] == "unregistered" and by_address["10.20.0.15"]["verdict"] == "OPEN"
    assert by_address["10.20.0.30"]["register_status"] == "missing" and by_address["10.20.0.30"]["declared_maker"] == "Hanwha"
    assert by_address["10.20.0.11"]["advisories"] == ["CVE-2017-7921"] and by_address["10.20.0.11"]["exposed"]
    for fmt in ("csv", "json", "xlsx"):
        write_inventory(rows, fmt, tmp_path / f"inv.{fmt}")
    read_csv = list(csv.DictReader(io.StringIO((tmp_path / "inv.csv").read_text())))
    assert [r["address"] for r in read_csv] == [r["address"] for r in rows]
    assert read_csv[0]["advisories"] == "CVE-2017-7921" and read_csv[0]["covered"] == "yes"
    assert json.loads((tmp_path / "inv.json").read_text())["inventory"][4]["maker"] == "hikvision"
    sheet = openpyxl.load_workbook(tmp_path / "inv.xlsx").active
    values = list(sheet.values)
    assert values[0] == INVENTORY_COLUMNS and len(values) == len(rows) + 1
    assert values[3][INVENTORY_COLUMNS.index("brand")] == "lorex"


def test_xlsx_never_holds_a_formula(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    write_inventory([{"address": "10.0.0.1", "model": '=HYPERLINK("http://x","y")'}], "xlsx", tmp_path / "f.xlsx")
    cell_ = openpyxl.load_workbook(tmp_path / "f.xlsx").active.cell(row=2, column=INVENTORY_COLUMNS.index("model") + 1)
    assert cell_.data_type == "s" and cell_.value.startswith("'=")


def test_findings_as_ocsf_compliance_and_vulnerability_findings(lab_db: LabDb) -> None:
    policy = load_policy()
    with open_store(lab_db.path) as store:
        findings = evaluate(scan_view(store, lab_db.latest), policy)
    events = json.loads(render_ocsf(findings, policy, time="2026-11-04T09:00:00+00:00"))
    assert len(events) == len(findings) == 13
    for event in events:
        assert event["metadata"]["version"] == "1.5.0", "a released OCSF version, not a -dev one"
        assert event["category_uid"] == 2 and event["type_uid"] == event["class_uid"] * 100 + 1
        assert event["severity_id"] in range(1, 6) and event["time"] == 1793782800000
    by_rule = {e["finding_info"]["types"][0]: e for e in events}
    cves = [e for e in events if e["finding_info"]["types"][0] == "known-cve"]
    assert cves and all((e["class_uid"], e["class_name"]) == (2002, "Vulnerability Finding") and "compliance" not in e
                        for e in cves)  # fmt: skip
    hik = next(e for e in cves if e["resources"][0]["data"]["ip"] == "10.20.0.11")
    assert [v["cve"]["uid"] for v in hik["vulnerabilities"]] == ["CVE-2017-7921"]
    assert hik["vulnerabilities"][0]["vendor_name"] == "hikvision" and hik["vulnerabilities"][0]["remediation"]["desc"]
    policy_events = [e for e in events if e["finding_info"]["types"][0] != "known-cve"]
    assert policy_events and all(e["class_uid"] == 2003 and e["compliance"]["status_id"] in (1, 2, 3) for e in policy_events)
    open_ = by_rule["covered-egress-open"]
    assert (open_["severity_id"], open_["compliance"]["status_id"]) == (5, 3)
    assert "NDAA FY2019 s.889" in open_["compliance"]["standards"]
    assert open_["resources"][0]["uid"] == "mac:20:bb:bc:00:00:15"
    assert open_["resources"][0]["data"] == {"ip": "10.20.0.15", "mac": "20:bb:bc:00:00:15", "vendor_name": "hikvision"}
    assert by_rule["covered-egress-closed"]["compliance"]["status_id"] == 1
    assert by_rule["covered-egress-unverified"]["compliance"]["status_id"] == 2
    lines = render_ocsf(findings, policy, lines=True).splitlines()
    assert len(lines) == 13 and sorted({json.loads(line)["class_uid"] for line in lines}) == [2002, 2003]


def test_ocsf_events_validate_against_the_released_schema(lab_db: LabDb) -> None:
    """Every event validates with py-ocsf-models (OCSF 1.5.0), and no attribute we write is one
    the schema does not know (pydantic would drop it silently: compare what comes back)."""
    ocsf = pytest.importorskip("py_ocsf_models")
    from ocsf_schema import VulnerabilityFinding, unknown_attributes
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding

    assert ocsf.OCSF_VERSION == "1.5.0"
    policy = load_policy()
    with open_store(lab_db.path) as store:
        findings = evaluate(scan_view(store, lab_db.latest), policy)
    events = json.loads(render_ocsf(findings, policy, time="2026-11-04T09:00:00+00:00"))
    seen = set()
    for event in events:
        model = {2002: VulnerabilityFinding, 2003: ComplianceFinding}[event["class_uid"]]
        parsed = model.model_validate(event)
        assert parsed.metadata.version == ocsf.OCSF_VERSION
        assert unknown_attributes(event, parsed.model_dump(mode="json", exclude_none=True)) == []
        seen.add(event["class_uid"])
    assert seen == {2002, 2003}


def test_datasette_metadata_describes_every_table_and_column(lab_db: LabDb) -> None:
    described = shipped_metadata()["databases"]["camaudit"]["tables"]
    with open_store(lab_db.path) as store:
        for table in store.db.table_names():
            assert table in described, f"describe table {table} in config/datasette-metadata.json"
            assert described[table]["description"]
            columns = {c.name for c in store.db[table].columns}
            assert set(described[table]["columns"]) == columns, f"config/datasette-metadata.json, table {table}"
    assert set(metadata_for("/x/audit.db")["databases"]) == {"audit"}


def test_the_database_opens_in_datasette_as_it_is(lab_db: LabDb) -> None:
    datasette_app = pytest.importorskip("datasette.app")
    ds = datasette_app.Datasette([str(lab_db.path)], metadata=metadata_for(lab_db.path), immutables=[])

    async def fetch() -> tuple[dict, dict]:
        tables = await ds.client.get("/lab.json")
        rows = await ds.client.get("/lab/identities.json?_shape=array&scan_id=" + lab_db.latest)
        return tables.json(), rows.json()

    tables, rows = asyncio.run(fetch())
    listed = {t["name"]: t for t in tables["tables"]}
    assert {"scans", "identities", "findings", "verdicts", "register", "reconciliation"} <= set(listed)
    assert len(rows) == 7 and {r["vendor"] for r in rows} >= {"hikvision", "dahua", "axis"}


def test_build_report_refuses_an_unknown_language(lab_db: LabDb) -> None:
    from camaudit.errors import UsageError

    with open_store(lab_db.path) as store, pytest.raises(UsageError, match="no report language 'fr'"):
        build_report(store, lang="fr", record=False)
