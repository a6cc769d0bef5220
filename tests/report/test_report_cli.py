"""The commands as users run them: exit codes (DESIGN.md section 7), clear one-line errors,
register import, exports, a demo database, and concurrent runs on one database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from report_lab import LabDb, build_lab_db, write_scan

from camaudit.store import open_store

CLI = [sys.executable, "-m", "camaudit"]


def run(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_report_exit_codes(fresh_lab_db: LabDb, tmp_path: Path) -> None:
    db = str(fresh_lab_db.path)
    written = run("report", "--db", db, "-o", str(tmp_path / "plain.html"))
    assert written.returncode == 0, "without --fail-on a written report exits 0, like trivy and grype"
    assert "2 critical, 4 high" in written.stderr and "findings at or above" not in written.stderr
    high = run("report", "--db", db, "-o", str(tmp_path / "r.html"), "--fail-on", "high")
    assert high.returncode == 1 and "2 critical, 4 high" in high.stderr and "findings at or above high" in high.stderr
    assert (tmp_path / "r.html").stat().st_size > 10_000, "the report is written even when the run fails on findings"
    assert run("report", "--db", db, "-o", str(tmp_path / "r.md"), "--fail-on", "none").returncode == 0
    first = run("report", "--db", db, "--scan", fresh_lab_db.first[:8], "-o", str(tmp_path / "first.json"), "--fail-on", "medium", "--json")
    assert first.returncode == 1 and json.loads(first.stdout)["findings"]["medium"] >= 1
    with open_store(fresh_lab_db.path) as store:
        write_scan(store, [], [], ["10.99.0.0/24"], status="interrupted")
    interrupted = run("report", "--db", db, "-o", str(tmp_path / "i.html"), "--require-complete")
    assert interrupted.returncode == 3 and "interrupted, not complete" in interrupted.stderr
    assert run("report", "--db", db, "-o", str(tmp_path / "i2.html")).returncode == 0, "an empty scan has no finding"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--db", "{tmp}/absent.db", "-o", "{tmp}/r.html"], "no database at"),
        (["report", "--db", "{db}", "-o", "{tmp}/r.docx"], "cannot tell the report format"),  # .pdf is a format now
        (["report", "--db", "{db}", "-o", "{tmp}/nofolder/r.html"], "does not exist"),
        (["report", "--db", "{db}", "--scan", "ffffffff", "-o", "{tmp}/r.html"], "no scan 'ffffffff'"),
        (["report", "--db", "{db}", "-o", "{tmp}/r.html", "--policy", "{tmp}/bad.yaml"], "bad.yaml, line 3, rule 'x': severity 'urgent'"),
        (["report", "--db", "{tmp}/garbage.db", "-o", "{tmp}/r.html"], "not a camaudit database"),
        (["register", "import", "{tmp}/bad.csv", "--db", "{db}"], "row 3: '10.0.0.256' is not an IP address"),
        (["export", "inventory", "--db", "{db}", "-o", "{tmp}/inv.pdf"], "the inventory is written as csv, json, xlsx"),
        (["export", "findings", "--db", "{db}", "-o", "{tmp}/f.csv"], "OCSF json or jsonl"),
    ],
)
def test_errors_are_one_clear_line(lab_db: LabDb, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("version: 1\nrules:\n  - id: x\n    severity: urgent\n    title: t\n")
    (tmp_path / "bad.csv").write_text("asset_id,address\nA,10.0.0.1\nB,10.0.0.256\n")
    (tmp_path / "garbage.db").write_bytes(b"this is not sqlite" * 100)
    result = run(*[a.format(tmp=tmp_path, db=lab_db.path) for a in args])
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _age_scans(db: Path, days: float) -> None:
    """Move every scan of ``db`` ``days`` into the past (as if the scheduled scan stopped running)."""
    import datetime as dt
    import sqlite3

    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat()
    with sqlite3.connect(db) as conn:
        conn.execute("update scans set started_at = ?, finished_at = ?", [when, when])


def test_max_age_refuses_a_stale_scan(fresh_lab_db: LabDb, tmp_path: Path) -> None:
    db = fresh_lab_db.path
    fresh = run("report", "--db", str(db), "-o", str(tmp_path / "fresh.html"), "--max-age", "26h")
    assert fresh.returncode == 0, fresh.stderr
    _age_scans(db, 3)
    stale = run("report", "--db", str(db), "-o", str(tmp_path / "stale.html"), "--max-age", "26h")
    assert stale.returncode == 3 and "beyond --max-age 26h; no report written" in stale.stderr, stale.stderr
    assert len(stale.stderr.strip().splitlines()) == 1 and not (tmp_path / "stale.html").exists()
    assert run("report", "--db", str(db), "-o", str(tmp_path / "week.html"), "--max-age", "7d").returncode == 0
    bad = run("report", "--db", str(db), "-o", str(tmp_path / "x.html"), "--max-age", "soon")
    assert bad.returncode == 2 and "is not a duration" in bad.stderr


def test_date_in_the_output_name_is_the_run_date(fresh_lab_db: LabDb, tmp_path: Path) -> None:
    import datetime as dt

    _age_scans(fresh_lab_db.path, 40)
    done = run("report", "--db", str(fresh_lab_db.path), "-o", str(tmp_path / "report-{date}-{scan}.md"))
    assert done.returncode == 0, done.stderr
    (written,) = tmp_path.glob("report-*.md")
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    assert written.name.startswith(f"report-{today}-") and written.name.endswith(f"-{fresh_lab_db.latest[:8]}.md")


def test_scan_id_from_never_reports_the_previous_scan(fresh_lab_db: LabDb, tmp_path: Path) -> None:
    """A scheduled report after a scan that failed before recording anything: `scan` removed the
    id file first, so the report writes nothing and exits 3 instead of reporting yesterday's scan."""
    db, id_file = str(fresh_lab_db.path), tmp_path / "scan-id"
    id_file.write_text(fresh_lab_db.latest + "\n")
    failed = run("scan", "not-an-address", "--db", db, "--scan-id-file", str(id_file), "-q")
    assert failed.returncode == 2 and not id_file.exists(), failed.stderr
    report = run("report", "--db", db, "--scan-id-from", str(id_file), "-o", str(tmp_path / "r.html"))
    assert report.returncode == 3 and "no report written" in report.stderr and not (tmp_path / "r.html").exists()
    # A scan that records writes its id, and the report shows that scan (not the lab's latest).
    done = run("scan", "127.82.11.1", "--db", db, "--ports", "9", "--no-discovery", "-q", "--scan-id-file", str(id_file))
    assert done.returncode == 0, done.stderr
    scan_id = id_file.read_text().strip()
    assert scan_id != fresh_lab_db.latest
    out = run("report", "--db", db, "--scan-id-from", str(id_file), "-o", "-", "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["scan"]["scan_id"] == scan_id
    both = run("report", "--db", db, "--scan-id-from", str(id_file), "--scan", scan_id[:8], "-o", "-", "--format", "json")
    assert both.returncode == 2 and "not both" in both.stderr


def test_register_import_and_list(tmp_path: Path) -> None:
    lab = build_lab_db(tmp_path / "r.db", register=False)
    example = Path(__file__).parents[2] / "config" / "register.example.csv"
    imported = run("register", "import", str(example), "--db", str(lab.path), "--json")
    assert imported.returncode == 0 and json.loads(imported.stdout) == {"imported": 4, "replaced": True, "warnings": []}
    listed = json.loads(run("register", "list", "--db", str(lab.path), "--json").stdout)
    assert [a["asset_id"] for a in listed["assets"]] == ["CAM-0001", "CAM-0002", "CAM-0100", "NVR-0001"]
    doc = json.loads(run("report", "--db", str(lab.path), "-o", "-", "--format", "json").stdout)
    assert doc["register"]["matched"] == 3 and doc["register"]["missing"] == 1
    assert {d["address"] for d in doc["devices"] if d["register"] == "unregistered"} == {"10.20.0.14", "10.20.0.15", "10.30.0.5"}


def test_exports_from_the_command(lab_db: LabDb, tmp_path: Path) -> None:
    db = str(lab_db.path)
    assert run("export", "inventory", "--db", db, "-o", str(tmp_path / "inv.csv")).returncode == 0
    assert (tmp_path / "inv.csv").read_text().count("\n") == 1 + 8
    assert run("export", "findings", "--db", db, "-o", str(tmp_path / "f.jsonl")).returncode == 0
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) == 13
    failing = run("export", "findings", "--db", db, "-o", str(tmp_path / "g.jsonl"), "--fail-on", "high")
    assert failing.returncode == 1 and "findings at or above high" in failing.stderr
    assert len((tmp_path / "g.jsonl").read_text().splitlines()) == 13, "written before failing on findings"
    meta = run("export", "datasette-metadata", "--db", db, "-o", str(tmp_path / "m.json"))
    assert meta.returncode == 0 and "lab" in json.loads((tmp_path / "m.json").read_text())["databases"]


def test_concurrent_runs_on_one_database(tmp_path: Path) -> None:
    """Scans of this module's loopback addresses and reports of the same database, all at once:
    every scan lands whole and every report is written."""
    db = tmp_path / "busy.db"
    lab = build_lab_db(db)
    procs = [subprocess.Popen([*CLI, "scan", f"127.82.9.{i}", "--db", str(db), "--quiet", "--ports", "80,554"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(1, 4)]  # fmt: skip
    procs += [subprocess.Popen([*CLI, "report", "--db", str(db), "--scan", lab.latest, "--fail-on", "none", "-o", str(tmp_path / f"r{i}.html")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode in (0, 1), err
    with open_store(db) as store:
        statuses = [s.status for s in store.scans()]
        findings = store.db.execute("select count(*) from findings where scan_id = ?", [lab.latest]).fetchone()[0]
    assert statuses.count("complete") == 5 and findings == 13
    assert all((tmp_path / f"r{i}.html").stat().st_size > 10_000 for i in range(3))


def test_a_demo_database(tmp_path: Path) -> None:
    """When `camaudit demo` exists: its database reports like any other."""
    demo = run("demo", "--out", str(tmp_path), "--devices", "10", "--subnet", "127.82.10.0/24", timeout=240)
    if demo.returncode == 2 and "No such command" in demo.stderr:
        pytest.skip("camaudit demo is not there yet")
    assert demo.returncode == 0, demo.stderr
    db = tmp_path / "camaudit-demo.db"
    report = run("report", "--db", str(db), "-o", "-", "--format", "json", "--fail-on", "none")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    with open_store(db) as store:
        hosts = store.db.execute("select count(*) from hosts where scan_id = ?", [doc["scan"]["scan_id"]]).fetchone()[0]
        covered = store.db.execute("select count(*) from identities where scan_id = ? and covered = 1", [doc["scan"]["scan_id"]]).fetchone()[0]
    assert doc["summary"]["hosts"] == hosts == 10 and doc["summary"]["covered"] == covered
    assert {m["maker"] for m in doc["summary"]["by_maker"]} & {"hikvision", "dahua"}
    # What the demo's last step calls (camaudit.lab.demo.write_html_report is its hook).
    from camaudit.report import write_demo_report

    html = write_demo_report(db)
    assert html == tmp_path / "camaudit-demo.html" and f'data-stat="hosts">{hosts}<' in html.read_text()


def test_every_export_writes_to_stdout_with_dash(lab_db: LabDb, tmp_path: Path) -> None:
    """`-o -` is stdout for every export (it once wrote a file named "-"), nothing else on stdout."""
    openpyxl = pytest.importorskip("openpyxl")
    db = str(lab_db.path)
    csv_out = run("export", "inventory", "--db", db, "--format", "csv", "-o", "-", cwd=tmp_path)
    assert csv_out.returncode == 0, csv_out.stderr
    assert csv_out.stdout.startswith("scan_id,device_id,address") and csv_out.stdout.count("\n") == 1 + 8
    inventory = json.loads(run("export", "inventory", "--db", db, "--format", "json", "-o", "-", cwd=tmp_path).stdout)
    assert len(inventory["inventory"]) == 8
    xlsx = subprocess.run([*CLI, "export", "inventory", "--db", db, "--format", "xlsx", "-o", "-"], capture_output=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert xlsx.returncode == 0 and xlsx.stdout[:2] == b"PK"
    (tmp_path / "from-stdout.xlsx").write_bytes(xlsx.stdout)
    assert len(list(openpyxl.load_workbook(tmp_path / "from-stdout.xlsx").active.values)) == 1 + 8
    events = json.loads(run("export", "findings", "--db", db, "--format", "json", "-o", "-", cwd=tmp_path).stdout)
    assert len(events) == 13
    lines = run("export", "findings", "--db", db, "--format", "jsonl", "-o", "-", cwd=tmp_path).stdout.splitlines()
    assert len(lines) == 13 and all(json.loads(line)["class_uid"] in (2002, 2003) for line in lines)
    meta = json.loads(run("export", "datasette-metadata", "--db", db, "-o", "-", cwd=tmp_path).stdout)
    assert "databases" in meta
    report = run("report", "--db", db, "--format", "md", "-o", "-", "--fail-on", "none", cwd=tmp_path)
    assert report.returncode == 0 and report.stdout.startswith("# ")
    assert not (tmp_path / "-").exists(), "no file named '-' is ever written"
    no_format = run("export", "inventory", "--db", db, "-o", "-", cwd=tmp_path)
    assert no_format.returncode == 2 and "name one with --format" in no_format.stderr


def test_inventory_export_has_site_times_vendor_services_and_readable_verdict(lab_db: LabDb, tmp_path: Path) -> None:
    db = str(lab_db.path)
    rows = json.loads(run("export", "inventory", "--db", db, "--format", "json", "-o", "-", cwd=tmp_path).stdout)["inventory"]
    by_address = {r["address"]: r for r in rows}
    hik = by_address["10.20.0.11"]
    assert hik["site"] == "default" and hik["first_seen"] and hik["last_seen"] and hik["first_seen"] <= hik["last_seen"]
    assert "hikvision" in (hik["mac_vendor"] or "").lower(), "the MAC's IEEE registrant"
    assert "tcp/80 http" in hik["open_services"] and "tcp/554" in " ".join(hik["open_services"])
    assert "hostname" in hik
    opened = by_address["10.20.0.15"]
    assert opened["verdict"] == "OPEN" and opened["verdict_text"].startswith("OPEN (")
    inconclusive = next(r for r in rows if r["verdict"] == "INCONCLUSIVE")
    assert "missing:" in inconclusive["verdict_text"]
    assert by_address["10.20.0.30"]["verdict_text"] == "not found by this scan"
    header = run("export", "inventory", "--db", db, "--format", "csv", "-o", "-", cwd=tmp_path).stdout.splitlines()[0].split(",")
    for column in ("site", "first_seen", "last_seen", "mac_vendor", "hostname", "open_services", "verdict_text"):
        assert column in header


def test_show_address_gives_the_verdict_of_each_scan(lab_db: LabDb) -> None:
    """The lab's Hikvision at 10.20.0.11: CLOSED in the first scan, INCONCLUSIVE in the latest,
    a firmware change between them; one grouped view, not a bare line per scan."""
    shown = run("show", "10.20.0.11", "--db", str(lab_db.path))
    assert shown.returncode == 0, shown.stderr
    verdicts = shown.stdout.split("\negress verdict\n")[1].split("\n\n")[0].splitlines()
    assert len(verdicts) == 2
    assert f"scan {lab_db.latest[:8]}  INCONCLUSIVE" in verdicts[0] and f"scan {lab_db.first[:8]}  CLOSED" in verdicts[1]
    identity = shown.stdout.split("\nidentity\n")[1].split("\n\n")[0]
    assert "V5.4.0 build 160530" in identity and "V5.2.0 build 140721" in identity
    doc = json.loads(run("show", "10.20.0.11", "--db", str(lab_db.path), "--json").stdout)
    assert [v["verdict"] for v in doc["summary"]["verdicts"]] == ["INCONCLUSIVE", "CLOSED"]
