"""`camaudit bundle export` on an agent and `camaudit bundle import` at the centre (issue 12, the
offline path), on real scans of the loopback lab (127.77.12.0/24, this module's block): the merged
scan is the agent's, kept under its site, identified and assessed at the centre as a local scan
is; a second import changes nothing; refused bundles and a full disk leave the store as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from camaudit.fleet.bundle import build_bundle, verify_bundle, write_bundle
from camaudit.fleet.config import init_fleet, load_central, trust_key
from camaudit.fleet.keys import AgentKey, load_or_create_key
from camaudit.fleet.merge import merge_verified
from camaudit.lab import plan_devices
from camaudit.lab.netns import GUARD_ENV
from camaudit.lab.runner import LabThread
from camaudit.store import bundles as stored_bundles
from camaudit.store import open_store

SUBNET = "127.77.12.0/24"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("CAMAUDIT_")} | {
    GUARD_ENV: "1", "CAMAUDIT_USERNAME": "admin", "CAMAUDIT_PASSWORD": "camaudit-lab"}
CLI = [sys.executable, "-m", "camaudit"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def store_digest(db: Path) -> tuple[dict[str, int], str]:
    """Row counts per table and a hash of every row's content (order-independent)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' order by name")]
        counts, digest = {}, hashlib.sha256()
        for table in tables:
            rows = sorted(repr(tuple(r)) for r in conn.execute(f'select * from "{table}"'))  # noqa: S608
            counts[table] = len(rows)
            digest.update(f"{table}:{len(rows)}\n".encode())
            for row in rows:
                digest.update(row.encode() + b"\n")
        return counts, digest.hexdigest()
    finally:
        conn.close()


@dataclass
class Estate:
    root: Path
    fleet: Path  # central.toml
    pool_site_file: Path
    pool_key: AgentKey
    yard_key: AgentKey
    pool_db: Path
    yard_db: Path
    pool_scan: str
    yard_scan: str
    addresses: list[str]


def _scan(lab: list[dict[str, Any]], db: Path, site: str) -> str:
    ports = sorted({p for e in lab for p in e["ports"]["tcp"]})
    done = run("scan", *(e["address"] for e in lab), "--db", str(db), "--json", "--ports", ",".join(map(str, ports)),
               "--no-discovery", "--fail-on", "none", "-q", "--site", site)
    assert done.returncode == 0, done.stderr
    scan_id: str = json.loads(done.stdout)["scan_id"]
    return scan_id


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    root = tmp_path_factory.mktemp("estate")
    init_fleet(root / "fleet", ["pool", "yard"], server="nats://127.0.0.1:4222")
    pool_key = load_or_create_key(root / "pool-agent.key")
    yard_key = load_or_create_key(root / "yard-agent.key")
    trust_key(root / "fleet", "pool", pool_key.public_text)
    trust_key(root / "fleet", "yard", yard_key.public_text)
    specs = plan_devices(4, subnet=SUBNET, mix="hikvision=2,dahua=1,axis=1", seed=12)
    with LabThread(specs) as running:
        lab = running.manifest
        # Two sites scanning the same addresses (in the field: two segments with the same ranges).
        pool_scan = _scan(lab, root / "pool.db", "pool")
        yard_scan = _scan(lab, root / "yard.db", "yard")
    # The pool agent's fleet file names its key.
    site_file = root / "fleet" / "site-pool.toml"
    site_file.write_text("\n".join(f'key_file = "{root / "pool-agent.key"}"' if line.startswith("key_file") else line
                                   for line in site_file.read_text().splitlines()) + "\n")
    yield Estate(root, root / "fleet" / "central.toml", site_file, pool_key, yard_key, root / "pool.db",
                 root / "yard.db", pool_scan, yard_scan, [e["address"] for e in lab])


def export(estate: Estate, out: Path, *args: str) -> dict[str, Any]:
    done = run("bundle", "export", "--json", "-o", str(out), *args)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def import_json(bundle: Path, fleet: Path, db: Path) -> dict[str, Any]:
    done = run("bundle", "import", str(bundle), "--fleet", str(fleet), "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_export_import_merges_the_scan_under_its_site_as_a_local_scan(estate: Estate, tmp_path: Path) -> None:
    bundle = tmp_path / "pool.bundle"
    exported = export(estate, bundle, "--db", str(estate.pool_db), "--scan", "latest",
                      "--fleet", str(estate.pool_site_file))
    assert exported["site"] == "pool" and exported["run_id"] == estate.pool_scan
    assert exported["counts"]["scans"] == 1 and exported["counts"]["observations"] > 0
    assert exported["key"] == estate.pool_key.fingerprint
    central = tmp_path / "central.db"
    merged = import_json(bundle, estate.fleet, central)
    assert merged["merged"] is True and merged["already"] is False
    assert (merged["site"], merged["kind"], merged["run_id"]) == ("pool", "scan", estate.pool_scan)

    scans = json.loads(run("scans", "--db", str(central), "--json").stdout)
    listed = scans["scans"]
    assert [(s["scan_id"], s["site"], s["status"]) for s in listed] == [(estate.pool_scan, "pool", "complete")]
    shown = run("show", estate.pool_scan, "--db", str(central), "--json")
    assert shown.returncode == 0, shown.stderr
    assert "pool" in shown.stdout
    report = tmp_path / "report.json"
    done = run("report", "--db", str(central), "--site", "pool", "-o", str(report), "--fail-on", "none")
    assert done.returncode == 0, done.stderr
    assert estate.pool_scan in report.read_text()

    # Identified and assessed at the centre as the agent did locally: the same identities and
    # the same findings (the agent's devices are not copied; the centre resolves its own).
    agent, centre = sqlite3.connect(estate.pool_db), sqlite3.connect(central)
    identity_sql = "select address, vendor, brand, model, serial from identities where scan_id = ? order by address"
    assert centre.execute(identity_sql, [estate.pool_scan]).fetchall() == \
        agent.execute(identity_sql, [estate.pool_scan]).fetchall() != []
    finding_sql = ("select f.rule, f.severity, f.subject from findings f join assessments a on a.id = f.assessment_id "
                   "where a.scan_id = ? order by 1, 2, 3")
    assert centre.execute(finding_sql, [estate.pool_scan]).fetchall() == \
        agent.execute(finding_sql, [estate.pool_scan]).fetchall()
    assert centre.execute("select count(*) from devices where site = 'pool'").fetchone()[0] == len(estate.addresses)
    ledger = centre.execute("select bundle_id, site, kind, run_id, finalised_at from bundles").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in ledger] == [(exported["bundle_id"], "pool", "scan", estate.pool_scan)]
    assert ledger[0][4] is not None


def test_a_second_import_says_already_merged_and_changes_nothing(estate: Estate, tmp_path: Path) -> None:
    bundle = tmp_path / "pool.bundle"
    export(estate, bundle, "--db", str(estate.pool_db), "--scan", estate.pool_scan[:8], "--key",
           str(estate.root / "pool-agent.key"))
    central = tmp_path / "central.db"
    import_json(bundle, estate.fleet, central)
    before = store_digest(central)
    again = run("bundle", "import", str(bundle), "--fleet", str(estate.fleet), "--db", str(central))
    assert again.returncode == 0, again.stderr
    assert "already merged" in again.stdout
    assert store_digest(central) == before
    # The same scan exported again is the same bundle, byte for byte: merged once.
    second = tmp_path / "pool-again.bundle"
    export(estate, second, "--db", str(estate.pool_db), "--scan", estate.pool_scan, "--key",
           str(estate.root / "pool-agent.key"))
    assert second.read_bytes() == bundle.read_bytes()


def test_two_sites_with_the_same_addresses_stay_apart(estate: Estate, tmp_path: Path) -> None:
    central = tmp_path / "central.db"
    for db, key, name in ((estate.pool_db, "pool-agent.key", "pool"), (estate.yard_db, "yard-agent.key", "yard")):
        out = tmp_path / f"{name}.bundle"
        export(estate, out, "--db", str(db), "--scan", "latest", "--key", str(estate.root / key))
        assert import_json(out, estate.fleet, central)["site"] == name
    conn = sqlite3.connect(central)
    assert dict(conn.execute("select site, count(*) from scans group by site").fetchall()) == {"pool": 1, "yard": 1}
    per_site = dict(conn.execute("select site, count(*) from devices group by site").fetchall())
    assert per_site == {"pool": len(estate.addresses), "yard": len(estate.addresses)}
    assert conn.execute("select count(distinct site) from sightings").fetchone()[0] == 2
    yard_only = json.loads(run("scans", "--db", str(central), "--site", "yard", "--json").stdout)
    listed = yard_only["scans"]
    assert [s["scan_id"] for s in listed] == [estate.yard_scan]


def _resigned(estate: Estate, tmp_path: Path, database: bytes, key: AgentKey, site: str, **manifest: Any) -> Path:
    counts = manifest.pop("counts", None)
    if counts is None:
        conn = sqlite3.connect(":memory:")
        conn.deserialize(database)
        counts = {t: conn.execute(f'select count(*) from "{t}"').fetchone()[0]  # noqa: S608
                  for t in stored_bundles.BUNDLE_TABLES}
        conn.close()
    data = build_bundle(database, key, kind=manifest.pop("kind", "scan"), site=site, segments=[], agent_id="agent-x",
                        agent_version="0", job_id=None, started_at="2026-01-01T00:00:00+00:00",
                        finished_at="2026-01-01T00:01:00+00:00", counts=counts)
    path = tmp_path / f"crafted-{hashlib.sha256(data).hexdigest()[:8]}.bundle"
    write_bundle(path, data)
    return path


def _database_of(estate: Estate, tmp_path: Path) -> bytes:
    with open_store(estate.pool_db) as store:
        return stored_bundles.export_run(store, scan_id=estate.pool_scan).database


def test_refused_bundles_change_nothing(estate: Estate, tmp_path: Path) -> None:
    central = tmp_path / "central.db"
    good = tmp_path / "good.bundle"
    export(estate, good, "--db", str(estate.yard_db), "--scan", "latest", "--key", str(estate.root / "yard-agent.key"))
    import_json(good, estate.fleet, central)
    before = store_digest(central)
    database = _database_of(estate, tmp_path)

    altered = tmp_path / "altered.bundle"
    data = bytearray(good.read_bytes())
    data[-100] ^= 0x01
    altered.write_bytes(bytes(data))
    refused = [
        (altered, "was altered"),
        # The pool scan's rows under a manifest that says yard, signed by yard's key.
        (_resigned(estate, tmp_path, database, estate.yard_key, "yard"), "name another site"),
        # The pool scan signed by the yard key, claiming pool.
        (_resigned(estate, tmp_path, database, estate.yard_key, "pool"), "a key trusted for site 'yard'"),
        # Counts that are not the database's.
        (_resigned(estate, tmp_path, database, estate.pool_key, "pool", counts={"scans": 1}), "manifest counts"),
        # A scan bundle that holds no scan.
        (_resigned(estate, tmp_path, database, estate.pool_key, "pool", kind="egress"), "holds exactly one"),
    ]
    for path, reason in refused:
        done = run("bundle", "import", str(path), "--fleet", str(estate.fleet), "--db", str(central))
        assert reason in one_line_error(done, 2), path
        assert "bundle refused" in done.stderr
    assert store_digest(central) == before


def test_a_damaged_database_inside_a_signed_bundle_is_refused(estate: Estate, tmp_path: Path) -> None:
    database = bytearray(_database_of(estate, tmp_path))
    database[len(database) // 2: len(database) // 2 + 64] = b"\xff" * 64  # a page's cells destroyed
    path = _resigned(estate, tmp_path, bytes(database), estate.pool_key, "pool",
                     counts={t: 0 for t in stored_bundles.BUNDLE_TABLES})
    central = tmp_path / "central.db"
    done = run("bundle", "import", str(path), "--fleet", str(estate.fleet), "--db", str(central))
    assert "bundle's database" in one_line_error(done, 2) or "manifest counts" in done.stderr


def test_a_merge_not_finalised_is_finished_by_the_next_import(estate: Estate, tmp_path: Path) -> None:
    """A merger killed after the merge's commit but before identification and assessment: the next
    import (or central serve) finishes the scan, once."""
    pool_bundle, yard_bundle = tmp_path / "pool.bundle", tmp_path / "yard.bundle"
    export(estate, pool_bundle, "--db", str(estate.pool_db), "--scan", "latest", "--key",
           str(estate.root / "pool-agent.key"))
    export(estate, yard_bundle, "--db", str(estate.yard_db), "--scan", "latest", "--key",
           str(estate.root / "yard-agent.key"))
    central = tmp_path / "central.db"
    settings = load_central(estate.fleet)
    with open_store(central) as store:
        merge_verified(store, verify_bundle(pool_bundle, settings.sites))
        assert [r["run_id"] for r in stored_bundles.unfinalised(store)] == [estate.pool_scan]
        assert store.db.execute("select count(*) from identities").fetchone()[0] == 0
    import_json(yard_bundle, estate.fleet, central)
    conn = sqlite3.connect(central)
    assert conn.execute("select count(*) from bundles where finalised_at is null").fetchone()[0] == 0
    per_scan = dict(conn.execute("select scan_id, count(*) from assessments group by scan_id").fetchall())
    assert per_scan == {estate.pool_scan: 1, estate.yard_scan: 1}
    assert dict(conn.execute("select scan_id, count(*) from identities group by scan_id").fetchall()) == {
        estate.pool_scan: len(estate.addresses), estate.yard_scan: len(estate.addresses)}


def test_export_refuses_a_run_of_another_site_and_overwrites_nothing(estate: Estate, tmp_path: Path) -> None:
    out = tmp_path / "x.bundle"
    error = one_line_error(run("bundle", "export", "--db", str(estate.yard_db), "--scan", estate.yard_scan,
                               "--fleet", str(estate.pool_site_file), "-o", str(out)), 2)
    assert "site 'yard'" in error and "--site pool" in error
    assert "no scans for site 'pool'" in one_line_error(run(
        "bundle", "export", "--db", str(estate.yard_db), "--scan", "latest", "--fleet", str(estate.pool_site_file),
        "-o", str(out)), 2)
    assert not out.exists()
    out.write_bytes(b"keep")
    error = one_line_error(run("bundle", "export", "--db", str(estate.pool_db), "--scan", "latest", "--key",
                               str(estate.root / "pool-agent.key"), "-o", str(out)), 3)
    assert "never overwritten" in error and out.read_bytes() == b"keep"
    assert "no scan" in one_line_error(run("bundle", "export", "--db", str(estate.pool_db), "--scan", "ffffffff",
                                           "--key", str(estate.root / "pool-agent.key"), "-o", str(out)), 2)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is made with a small tmpfs, which needs root")
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True,
                          timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=30)


def _fill(directory: Path, leave: int) -> None:
    """Fill the file system of ``directory`` until about ``leave`` bytes are free."""
    free = shutil.disk_usage(directory).free
    with open(directory / "filler", "wb") as handle:
        try:
            handle.write(b"\0" * max(0, free - leave))
        except OSError:
            pass


def test_a_full_disk_at_the_centre_merges_nothing_and_says_so(estate: Estate, tmp_path: Path,
                                                              small_disk: Path) -> None:
    bundle = tmp_path / "pool.bundle"
    export(estate, bundle, "--db", str(estate.pool_db), "--scan", "latest", "--key",
           str(estate.root / "pool-agent.key"))
    central = small_disk / "central.db"
    with open_store(central):
        pass  # an empty central store, migrated
    _fill(small_disk, 128 * 1024)  # room to open the store, not for the bundle's 300 kB of rows
    done = run("bundle", "import", str(bundle), "--fleet", str(estate.fleet), "--db", str(central))
    assert "disk is full" in one_line_error(done, 3)
    (small_disk / "filler").unlink()
    counts, _ = store_digest(central)
    assert counts["scans"] == counts["observations"] == counts["bundles"] == 0
    # With room again the same bundle merges whole.
    assert import_json(bundle, estate.fleet, central)["already"] is False
    assert store_digest(central)[0]["scans"] == 1


def test_a_full_disk_at_the_agent_writes_no_bundle(estate: Estate, small_disk: Path) -> None:
    _fill(small_disk, 4 * 1024)
    out = small_disk / "pool.bundle"
    done = run("bundle", "export", "--db", str(estate.pool_db), "--scan", "latest", "--key",
               str(estate.root / "pool-agent.key"), "-o", str(out))
    assert "disk is full" in one_line_error(done, 3)
    assert not out.exists() and [p.name for p in small_disk.iterdir()] == ["filler"]


def test_an_egress_run_travels_as_its_own_bundle(estate: Estate, tmp_path: Path) -> None:
    from camaudit.store.egress import start_passive_run

    agent_db = tmp_path / "agent.db"
    shutil.copy(estate.pool_db, agent_db)
    with open_store(agent_db) as store:
        run_id = start_passive_run(store, "pcap", options={"capture": "segment.pcap"}, site="pool",
                                   segment="10.1.0.0/24")
    bundle = tmp_path / "egress.bundle"
    exported = export(estate, bundle, "--db", str(agent_db), "--egress-run", run_id, "--fleet",
                      str(estate.pool_site_file))
    assert (exported["kind"], exported["run_id"], exported["counts"]["scans"]) == ("egress", run_id, 0)
    central = tmp_path / "central.db"
    merged = import_json(bundle, estate.fleet, central)
    assert (merged["kind"], merged["site"], merged["already"]) == ("egress", "pool", False)
    conn = sqlite3.connect(central)
    assert conn.execute("select id, site, kind, scan_id from egress_runs").fetchall() == [(run_id, "pool", "pcap", None)]
    assert conn.execute("select count(*) from scans").fetchone()[0] == 0
    assert conn.execute("select kind, finalised_at is not null from bundles").fetchall() == [("egress", 1)]
    assert import_json(bundle, estate.fleet, central)["already"] is True
    # An egress run made inside a scan is the scan's: exported with it, not alone.
    with open_store(agent_db) as store:
        inner = store.db.execute("select id from egress_runs where scan_id is not null").fetchone()
    if inner:
        error = one_line_error(run("bundle", "export", "--db", str(agent_db), "--egress-run", inner[0], "--key",
                                   str(estate.root / "pool-agent.key"), "-o", str(tmp_path / "x.bundle")), 2)
        assert "export that scan" in error


def test_export_finds_the_agent_key_beside_the_store(estate: Estate, tmp_path: Path) -> None:
    """The issue's contract form, `bundle export --db agent.db --scan ID|latest -o FILE`: the key
    is the agent's, found where `fleet key` made it."""
    agent_db = tmp_path / "agent.db"
    shutil.copy(estate.pool_db, agent_db)
    out = tmp_path / "out.bundle"
    error = one_line_error(run("bundle", "export", "--db", str(agent_db), "--scan", "latest", "-o", str(out)), 2)
    assert "give --fleet site-NAME.toml or --key FILE" in error
    shutil.copy(estate.root / "pool-agent.key", tmp_path / "agent-ed25519.key")
    os.chmod(tmp_path / "agent-ed25519.key", 0o600)
    exported = export(estate, out, "--db", str(agent_db), "--scan", "latest")
    assert exported["key"] == estate.pool_key.fingerprint and exported["run_id"] == estate.pool_scan
    assert import_json(out, estate.fleet, tmp_path / "central.db")["site"] == "pool"
