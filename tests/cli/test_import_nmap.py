"""`camaudit import nmap`: an nmap -sV run (real nmap 7.93 XML made against the lab, in
tests/data/nmap/) recorded as a scan, identified and assessed, then reported, shown and diffed
like any scan; and hostile or useless files refused with one line, nothing recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from camaudit.errors import InputError
from camaudit.fingerprint import nmap_xml
from camaudit.nmap_import import import_nmap
from camaudit.store import open_store

DATA = Path(__file__).resolve().parents[1] / "data" / "nmap"
CLI = [sys.executable, "-m", "camaudit"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, cwd=cwd)


def _host_xml(address: str, ports: str, extra: str = "") -> str:
    return (f'<host><status state="up" reason="syn-ack"/><address addr="{address}" addrtype="ipv4"/>{extra}'
            f"<ports>{ports}</ports></host>")  # fmt: skip


def _nmaprun(hosts: str, start: str = "1795963794") -> str:
    return (f'<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap -sV -sU -p T:80,U:37020 10.66.0.0/24" '
            f'start="{start}" version="7.93">{hosts}<runstats><finished time="{start}"/>'
            f'<hosts up="1" down="0" total="256"/></runstats></nmaprun>')  # fmt: skip


def test_import_of_a_real_nmap_run_is_a_scan_like_any(tmp_path: Path) -> None:
    db = str(tmp_path / "audit.db")
    manifest = {e["address"]: e for e in json.loads((DATA / "lab-sV.manifest.json").read_text())}
    done = run("import", "nmap", str(DATA / "lab-sV.xml"), "--db", db, "--site", "zwembad", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["site"], result["status"], result["hosts"]) == ("zwembad", "complete", 8)
    scan_id = result["scan_id"]
    with open_store(db) as store:
        scan = store.scan(scan_id)
        kinds = {r["kind"] for r in store.db.query("select kind from observations where scan_id = ?", [scan_id])}
        services = store.db.execute("select count(*) from services where scan_id = ?", [scan_id]).fetchone()[0]
    assert scan.started_at.startswith("2026-11-29T14:49:54"), "dated by the nmap run, not by the import"
    assert "nmap_service" in kinds and "open_port" not in kinds and services == result["services"] > 8
    assert scan.targets == ["127.77.9.1-8"]
    # Identified and assessed: the report is camaudit's attribution of nmap's evidence.
    report = run("report", "--db", db, "--site", "zwembad", "--format", "json", "-o", "-", "--fail-on", "none")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert doc["scan"]["scan_id"] == scan_id and doc["assessment"]["assessment_id"]
    for device in doc["devices"]:
        truth = manifest[device["address"]]
        assert device["vendor"] == (truth["vendor"] if truth["vendor"] != "other" else "unknown"), device["address"]
    assert doc["summary"]["covered"] >= 4 and any(f["rule"] for f in doc["findings"])
    shown = run("show", "latest", "--db", db, "--json")
    assert shown.returncode == 0 and len(json.loads(shown.stdout)["hosts"]) == 8
    listed = json.loads(run("scans", "--db", db, "--json").stdout)["scans"]
    assert [s["scan_id"] for s in listed] == [scan_id]
    # The same file again is refused; a later run of the same nmap command is a second scan.
    same = run("import", "nmap", str(DATA / "lab-sV.xml"), "--db", db, "--site", "zwembad")
    assert same.returncode == 2 and f"imported already, as scan {scan_id[:8]}" in same.stderr
    later = tmp_path / "next-day.xml"
    later.write_text((DATA / "lab-sV.xml").read_text().replace('start="1795963794"', 'start="1796050194"', 1))
    again = run("import", "nmap", str(later), "--db", db, "--site", "zwembad", "--json")
    assert again.returncode == 0, again.stderr
    changes = run("diff", "--db", db, "--site", "zwembad", "--json")
    assert changes.returncode == 0, changes.stderr
    assert json.loads(changes.stdout)["changes"] == []


def test_import_keeps_udp_ports_hostnames_and_dates_a_future_run_now(tmp_path: Path) -> None:
    xml = tmp_path / "udp.xml"
    ports = ('<port protocol="tcp" portid="80"><state state="open"/><service name="http" product="Hikvision IP camera httpd"/></port>'
             '<port protocol="udp" portid="37020"><state state="open"/></port>')  # fmt: skip
    extra = '<hostnames><hostname name="cam-entrance.example.internal" type="PTR"/></hostnames>'
    xml.write_text(_nmaprun(_host_xml("10.66.0.7", ports, extra), start="99999999999"))
    db = tmp_path / "u.db"
    with open_store(db) as store:
        result = import_nmap(store, str(xml))
        scan = store.scan(result.scan_id)
        protos = {(r["proto"], r["port"]) for r in store.db.query("select proto, port from services")}
    assert protos == {("tcp", 80), ("udp", 37020)}
    assert scan.started_at[:4] != "5138" and any("in the future" in n for n in scan.notes)
    inventory = run("export", "inventory", "--db", str(db), "--format", "json", "-o", "-", cwd=tmp_path)
    row = json.loads(inventory.stdout)["inventory"][0]
    assert row["hostname"] == "cam-entrance.example.internal"
    assert "udp/37020" in row["open_services"] and "tcp/80 http" in row["open_services"]


HOSTILE = {
    "entities.xml": ('<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
                     ']><nmaprun>&b;</nmaprun>', "is not valid nmap XML"),
    "external.xml": ('<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                     "<nmaprun>&x;</nmaprun>", "is not valid nmap XML"),
    "truncated.xml": (_nmaprun(_host_xml("10.66.0.8", ""))[:90], "is not valid nmap XML"),
    "foreign.xml": ("<scan><host/></scan>", "is not nmap XML (root element <scan>"),
    "empty.xml": (_nmaprun(_host_xml("10.66.0.9", '<port protocol="tcp" portid="80"><state state="closed"/></port>')),
                  "no host with an open port"),
    "binary.xml": ("\x00\x01\x02PK\x03\x04" * 50, "is not valid nmap XML"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_bad_nmap_file_is_one_line_and_records_nothing(tmp_path: Path, name: str) -> None:
    text, message = HOSTILE[name]
    (tmp_path / name).write_text(text)
    db = tmp_path / "h.db"
    done = run("import", "nmap", str(tmp_path / name), "--db", str(db))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "root:" not in done.stderr, "an external entity is never read"
    if name == "empty.xml":  # well-formed nmap XML with nothing to import: the store opens, nothing is recorded
        with open_store(db) as store:
            assert store.scans() == []
    else:
        assert not db.exists(), "a file that is not nmap XML creates no database"


def test_missing_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = run("import", "nmap", str(tmp_path / "absent.xml"), "--db", str(tmp_path / "a.db"))
    assert absent.returncode == 2 and "cannot read nmap XML" in absent.stderr and "Traceback" not in absent.stderr
    big = tmp_path / "big.xml"
    big.write_bytes(b" " * 4096 + (DATA / "lab-sV.xml").read_bytes())
    monkeypatch.setattr(nmap_xml, "MAX_XML_BYTES", 4096)  # the limit, made small enough to test
    with open_store(tmp_path / "b.db") as store, pytest.raises(InputError, match="larger than"):
        import_nmap(store, str(big))
    with open_store(tmp_path / "b.db") as store:
        assert store.scans() == []
    assert os.path.getsize(big) > 4096
