"""The evidence store: migrations, writes, concurrency, damaged files."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from camaudit.errors import StoreError, UsageError
from camaudit.model import Identity, Observation, SignatureHit
from camaudit.store import device_key, open_store


def test_new_store_has_the_schema_and_records_migrations(tmp_path: Path) -> None:
    with open_store(tmp_path / "a.db") as store:
        tables = set(store.db.table_names())
        assert {"scans", "hosts", "services", "observations", "devices", "identities", "sightings"} <= tables
        applied = [r["name"] for r in store.db.query("select name from _sqlite_migrations order by rowid")]
        assert applied[:2] == ["0001_scans_hosts_services_observations", "0002_devices_identities_sightings"]
        assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    # Reopening applies nothing twice.
    with open_store(tmp_path / "a.db") as store:
        assert store.db.execute("select count(*) from _sqlite_migrations").fetchone()[0] == len(applied)


def test_scan_lifecycle_and_queries(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as store:
        scan_id = store.start_scan(targets=["10.0.0.0/30"], addresses=2)
        store.add_services(scan_id, [("10.0.0.1", 80), ("10.0.0.1", 554), ("10.0.0.2", 37777)])
        obs = Observation("10.0.0.1", "http_server", "App-webs/", 80, "http")
        store.add_observations(scan_id, [obs, obs, Observation("10.0.0.2", "mac", "3c:ef:8c:00:00:01", None, "arp")])
        identity = Identity(vendor="hikvision", model="DS-2CD2385G1-I", serial="DS-2CD2385G1-I20200414AAWRE33842150",
                            confidence=0.95, covered=True, signatures=[SignatureHit("x", "http_server", "App-webs/", 80)])
        device_id = store.add_identity(scan_id, "10.0.0.1", identity)
        store.finish_scan(scan_id, "complete", notes=["ARP sweep skipped: needs root"])

        [row] = store.scans()
        assert (row.status, row.hosts, row.addresses_scanned) == ("complete", 2, 2)
        assert row.notes == ["ARP sweep skipped: needs root"]
        assert store.scan("latest").id == scan_id
        assert store.scan(scan_id[:8]).id == scan_id
        hosts = store.hosts_of_scan(scan_id)
        assert [h["address"] for h in hosts] == ["10.0.0.1", "10.0.0.2"]
        assert hosts[0]["ports"] == [80, 554]
        assert len(hosts[0]["observations"]) == 1  # the same evidence is stored once
        assert hosts[1]["mac"] == "3c:ef:8c:00:00:01"
        assert hosts[0]["identity"]["vendor"] == "hikvision"
        assert hosts[0]["identity"]["device_id"] == device_id == "serial:DS-2CD2385G1-I20200414AAWRE33842150"
        assert store.address_history("10.0.0.2")[0]["scan_id"] == scan_id


def test_unknown_scan_references_are_usage_errors(tmp_path: Path) -> None:
    with open_store(tmp_path / "e.db") as store:
        with pytest.raises(UsageError, match="holds no scans"):
            store.scan("latest")
        store.start_scan(targets=["10.0.0.1"])
        with pytest.raises(UsageError, match="no scan"):
            store.scan("ffffffff")


def test_device_key_prefers_serial_then_mac_then_address() -> None:
    assert device_key(serial="abc", mac="AA:BB:CC:00:00:01", address="10.0.0.1") == "serial:ABC"
    assert device_key(serial=None, mac="AA:BB:CC:00:00:01", address="10.0.0.1") == "mac:aa:bb:cc:00:00:01"
    assert device_key(serial="", mac=None, address="10.0.0.1") == "addr:10.0.0.1"


def test_damaged_or_foreign_files_are_refused_plainly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a camaudit database"):
        open_store(junk)
    with pytest.raises(UsageError, match="no database"):
        open_store(tmp_path / "absent.db", create=False)
    with pytest.raises(UsageError, match="folder"):
        open_store(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        open_store(tmp_path / "no" / "such" / "dir.db")


def test_a_foreign_sqlite_database_gets_our_tables_beside_its_own(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("create table notes (x)")
    conn.commit()
    conn.close()
    with open_store(path) as store:
        assert "scans" in store.db.table_names() and "notes" in store.db.table_names()


def _writer(path: str, label: str, batches: int) -> None:
    with open_store(path) as store:
        scan_id = store.start_scan(targets=[label])
        for batch in range(batches):
            store.add_services(scan_id, [(f"10.{label}.{batch}.{i}", 80) for i in range(1, 21)])
            store.add_observations(
                scan_id, [Observation(f"10.{label}.{batch}.{i}", "http_server", f"srv {i}", 80) for i in range(1, 21)]
            )
        store.finish_scan(scan_id, "complete")


def test_two_scans_writing_at_once_both_land_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, label, 40)) for label in ("1", "2")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    with open_store(path) as store:
        rows = store.scans()
        assert sorted(r.status for r in rows) == ["complete", "complete"]
        for row in rows:
            assert store.db.execute("select count(*) from services where scan_id = ?", [row.id]).fetchone()[0] == 800
            assert store.db.execute("select count(*) from observations where scan_id = ?", [row.id]).fetchone()[0] == 800
