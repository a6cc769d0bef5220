"""Properties of the centre's merge (camaudit.store.bundles.merge_bundle): a bundle's database is
untrusted even when its signature is good (a compromised agent signs what it likes). Whatever the
database holds (flipped bytes, rows of another run or site, tables swapped for views, triggers,
odd types), the merge either merges or raises BundleRefused, never anything else, never hangs,
and a refused bundle leaves the central store as it was."""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import tempfile
from pathlib import Path

from fuzzkit import time_bound
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from camaudit.errors import BundleRefused
from camaudit.model import Observation
from camaudit.store import bundles as stored_bundles
from camaudit.store import open_store

SQL_MUTATIONS = (
    "update scans set site = 'yard'",
    "update verdicts set site = 'yard'",
    "insert into hosts (scan_id, address) values ('another-scan', '10.0.0.9')",
    "insert into scans (id, site, status) values ('second-scan', 'pool', 'complete')",
    "delete from scans",
    "update scans set status = 'running'",
    "update scans set id = x'00ff'",
    "drop table observations",
    "drop table observations; create view observations as select * from hosts",
    "create trigger t after insert on hosts begin delete from scans; end",
    "insert into _sqlite_migrations (migration_set, name) values ('camaudit', '9999_future')",
    "update observations set value = randomblob(2000)",
    "update observations set port = 'eighty'",
    "update hosts set address = null",
    "insert into listener_log (id, nonce) values ('x', 'not-ours')",
    "insert into egress_runs (id, scan_id, site) values ('r', null, 'pool')",
    "pragma writable_schema = on; update sqlite_master set sql = 'create table hosts (x)' where name = 'hosts'",
)


@functools.cache
def seed_database() -> bytes:
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "agent.db") as store:
        scan_id = store.start_scan(targets=["10.1.0.0/24"], site="pool")
        store.add_services(scan_id, [("10.1.0.1", 80), ("10.1.0.2", 554)])
        store.add_observations(scan_id, [Observation("10.1.0.1", "http_server", "App-webs/", 80, "fuzz"),
                                         Observation("10.1.0.2", "rtsp_server", "Dahua Rtsp Server/2.0", 554, "fuzz")])
        store.finish_scan(scan_id, "complete")
        return stored_bundles.export_run(store, scan_id=scan_id).database


def apply(database: bytes, statements: list[str]) -> bytes:
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(database)
        for statement in statements:
            try:
                conn.executescript(statement)
            except sqlite3.Error:
                pass  # a mutation that does not apply to this mutant: keep the others
        return conn.serialize()
    finally:
        conn.close()


def counts_of(database: bytes) -> dict[str, int]:
    """What an honest manifest would say of these rows (so the merge's deeper checks are reached)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(database)
        counts = {}
        for table in stored_bundles.BUNDLE_TABLES:
            try:
                counts[table] = int(conn.execute(f'select count(*) from "{table}"').fetchone()[0])  # noqa: S608
            except sqlite3.Error:
                counts[table] = 0
        return counts
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    data = apply(seed_database(), draw(st.lists(st.sampled_from(SQL_MUTATIONS), max_size=3)))
    flips = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        index = draw(st.integers(100, len(flips) - 1))
        flips[index] ^= 1 << draw(st.integers(0, 7))
    return bytes(flips)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_a_hostile_bundle_database_merges_or_is_refused_and_then_changes_nothing(database: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "central.db") as store:
        def snapshot() -> list[tuple[str, int]]:
            return [(t, store.db.execute(f'select count(*) from "{t}"').fetchone()[0])  # noqa: S608
                    for t in (*stored_bundles.BUNDLE_TABLES, "bundles", "sites")]

        before = snapshot()
        try:
            with time_bound(10.0):
                outcome = stored_bundles.merge_bundle(
                    store, database, bundle_id=hashlib.sha256(database).hexdigest(), kind="scan", site="pool",
                    segments=[], agent_id="agent-x", agent_version="0", job_id=None, signer="ed25519:0", size=0,
                    counts=counts_of(database))
        except BundleRefused as refused:
            event(f"refused: {refused.code}")
            assert str(refused) and "\n" not in str(refused)
            assert snapshot() == before
            return
        event("merged")
        assert not outcome.already
        assert store.db.execute("select count(*) from bundles").fetchone()[0] == 1
        assert {r[0] for r in store.db.execute("select site from scans")} == {"pool"}


def test_a_damaged_page_is_refused_in_one_line() -> None:
    """Found by the campaign (fuzz/run.py): SQLite's integrity report lists one fault per line,
    and the refusal quoted it whole, so `bundle import` printed several lines."""
    damaged = bytearray(seed_database())
    damaged[101] ^= 1  # page 1's free-space pointer: "free space corruption", then pages never used
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "central.db") as store:
        try:
            stored_bundles.merge_bundle(
                store, bytes(damaged), bundle_id=hashlib.sha256(damaged).hexdigest(), kind="scan", site="pool",
                segments=[], agent_id="agent-x", agent_version="0", job_id=None, signer="ed25519:0", size=0,
                counts=counts_of(bytes(damaged)))
        except BundleRefused as refused:
            assert refused.code == "malformed"
            assert "free space corruption; " in str(refused) and "\n" not in str(refused)
        else:
            raise AssertionError("a damaged bundle database was merged")


def test_a_schema_whose_sql_breaks_over_lines_is_refused_in_one_line() -> None:
    """Found by the campaign (fuzz/run.py, 2026-12-04): one flipped bit turned a space of the
    device_aliases table's CREATE statement into a double quote. SQLite's error quotes the
    unterminated token it found, newlines included, and the refusal quoted the error whole, so
    `bundle import` printed a message over several lines."""
    seed = seed_database()
    statement = seed.index(b'CREATE TABLE "device_aliases"')
    column = seed.index(b'\n   "device_id" TEXT', statement) + 1
    damaged = seed[:column] + b'"' + seed[column + 1:]  # '\n"  "device_id"': as the campaign found it
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "central.db") as store:
        try:
            stored_bundles.merge_bundle(
                store, damaged, bundle_id=hashlib.sha256(damaged).hexdigest(), kind="scan", site="pool",
                segments=[], agent_id="agent-x", agent_version="0", job_id=None, signer="ed25519:0", size=0,
                counts=counts_of(damaged))
        except BundleRefused as refused:
            assert refused.code == "malformed"
            assert "malformed database schema (device_aliases)" in str(refused)
            assert "\n" not in str(refused)
        else:
            raise AssertionError("a bundle database with a broken schema was merged")
