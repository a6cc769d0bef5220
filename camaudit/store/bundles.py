"""Evidence bundles in the store: a run's rows copied out into a database of their own (the
agent), merged into the central store in one transaction with its ledger row (the centre), and
the agent's outbox of bundles not yet merged.

What a bundle carries is the run's *evidence*: for a scan its ``scans`` row, hosts, services,
observations, device settings, the egress runs made inside it (tests, flows), the verdicts it
decided and the listener log entries of its nonces; for an egress run the run, its tests, flows,
verdicts and listener entries. What the centre derives itself is left out: identities, devices,
sightings and assessments. Device ids are per site and the centre's own (a device the centre
knows by its serial stays that device), and an assessment is made under the centre's policy and
register. So a merged scan is finalised at the centre exactly as a local scan is.

A bundle's database is untrusted: it is opened in memory (``deserialize``), read-only
(``query_only``), with ``trusted_schema=OFF`` and an integrity check, its tables checked to be
tables, its migrations known, every row shown to belong to the one run the manifest names and to
its site; rows are then copied by column name with ``INSERT ... ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlite_utils

from ..errors import BundleRefused, UsageError
from ..model import utc_now
from .scans import ensure_site, site_segments
from .schema import migrations

if TYPE_CHECKING:
    from .db import Store

#: The tables a bundle carries, in the order they are written (parents first).
BUNDLE_TABLES = ("scans", "hosts", "services", "observations", "device_settings", "egress_runs", "egress_tests",
                 "egress_flows", "verdicts", "listener_log")
OUTBOX_STATES = ("pending", "uploaded", "merged")

# Which rows of each table belong to the run. ``:run`` is the scan's or the egress run's id; the
# egress runs of a run are the scan's own runs, or the egress run itself.
_RUNS = {"scan": "select id from {db}egress_runs where scan_id = :run",
         "egress": "select id from {db}egress_runs where id = :run"}
_BELONGS: dict[str, dict[str, str]] = {
    "scan": {
        "scans": "id = :run",
        "hosts": "scan_id = :run",
        "services": "scan_id = :run",
        "observations": "scan_id = :run",
        "device_settings": "scan_id = :run",
        "egress_runs": "scan_id = :run",
        "egress_tests": "run_id in ({runs})",
        "egress_flows": "scan_id = :run or run_id in ({runs})",
        "verdicts": "scan_id = :run or egress_run_id in ({runs})",
        "listener_log": "nonce in (select nonce from {db}egress_tests where run_id in ({runs}))",
    },
    "egress": {
        "scans": "0",
        "hosts": "0",
        "services": "0",
        "observations": "0",
        "device_settings": "0",
        "egress_runs": "id = :run and scan_id is null",
        "egress_tests": "run_id in ({runs})",
        "egress_flows": "run_id in ({runs}) and scan_id is null",
        "verdicts": "egress_run_id in ({runs}) and scan_id is null",
        "listener_log": "nonce in (select nonce from {db}egress_tests where run_id in ({runs}))",
    },
}
#: Tables whose rows name their site: each must be the bundle's.
_SITE_TABLES = ("scans", "egress_runs", "verdicts")


def _where(kind: str, table: str, db: str = "") -> str:
    runs = _RUNS[kind].format(db=db)
    return _BELONGS[kind][table].format(runs=runs, db=db)


@dataclass(frozen=True)
class RunExport:
    """A run's rows as a database file of the store's schema, and what its manifest says."""

    kind: str  # scan | egress
    run_id: str
    site: str
    segments: list[str]
    started_at: str
    finished_at: str
    counts: dict[str, int]
    database: bytes = field(repr=False)


@dataclass(frozen=True)
class MergeOutcome:
    bundle_id: str
    kind: str
    run_id: str
    site: str
    already: bool  # the store had it: nothing was changed
    counts: dict[str, int]
    merged_at: str
    note: str = ""  # why it counts as merged already, when it came in another bundle


def export_run(store: Store, *, scan_id: str | None = None, egress_run_id: str | None = None) -> RunExport:
    """Copy one run's rows into a new database (in memory) and return its bytes. A scan still
    running is refused: a bundle is immutable, and its run must be over."""
    if (scan_id is None) == (egress_run_id is None):
        raise UsageError("export one run: a scan or an egress run")
    if scan_id is not None:
        kind, run_id = "scan", scan_id
        row = next(iter(store.db.query("select * from scans where id = ?", [scan_id])), None)
        if row is None:
            raise UsageError(f"no scan {scan_id!r} in {store.path}")
        if row["status"] == "running" and scan_id not in store.stale:
            raise UsageError(f"scan {scan_id} is still running; export it when it has finished")
        finished = row["finished_at"] or row["heartbeat_at"] or row["started_at"]
    else:
        assert egress_run_id is not None
        kind, run_id = "egress", egress_run_id
        row = next(iter(store.db.query("select * from egress_runs where id = ?", [egress_run_id])), None)
        if row is None:
            raise UsageError(f"no egress run {egress_run_id!r} in {store.path}")
        if row["scan_id"]:
            raise UsageError(f"egress run {egress_run_id} belongs to scan {row['scan_id']}: export that scan")
        finished = row["finished_at"] or row["started_at"]
    site = str(row["site"] or "default")
    started = str(row["started_at"])
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        target = sqlite_utils.Database(conn)
        migrations.apply(target)
        # The same run exported twice makes the same bytes (and so the same bundle id): nothing
        # in the file depends on when it was exported.
        conn.execute("update _sqlite_migrations set applied_at = ?", [started])
        counts: dict[str, int] = {}
        conn.execute("BEGIN")
        for table in BUNDLE_TABLES:
            columns = _columns(conn, "main", table) & _columns(store.db.conn, "main", table)
            names = sorted(columns)
            select = ", ".join(f'"{c}"' for c in names)
            rows = store.db.conn.execute(
                f'select {select} from "{table}" where {_where(kind, table)} order by rowid',  # noqa: S608
                {"run": run_id}).fetchall()
            marks = ", ".join("?" * len(names))
            conn.executemany(f'insert into "{table}" ({select}) values ({marks})', rows)  # noqa: S608
            counts[table] = len(rows)
        conn.execute("COMMIT")
        conn.execute("VACUUM")
        database = conn.serialize()
    finally:
        conn.close()
    return RunExport(kind=kind, run_id=run_id, site=site, segments=site_segments(store, site), started_at=started,
                     finished_at=str(finished), counts=counts, database=database)


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f'pragma "{schema}".table_info("{table}")')}


def merged_bundle(store: Store, bundle_id: str) -> dict[str, Any] | None:
    """The ledger row of a bundle this store has merged, or None."""
    return next(iter(store.db.query("select * from bundles where bundle_id = ?", [bundle_id])), None)


def ledger(store: Store, *, site: str | None = None) -> list[dict[str, Any]]:
    sql, params = "select * from bundles ", []
    if site is not None:
        sql += "where site = ? "
        params.append(site)
    return list(store.db.query(sql + "order by merged_at, bundle_id", params))


class _AlreadyMerged(Exception):
    """Another merger recorded the bundle between our check and our write: roll back ours."""


def open_bundle_database(database: bytes) -> sqlite3.Connection:
    """Open a bundle's database in memory, read-only, schema untrusted, integrity checked."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.deserialize(database)
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA cell_size_check = ON")
        result = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(5)").fetchall()]
        if result != ["ok"]:
            # One line: SQLite's report lists one fault per line.
            faults = "; ".join(line for row in result for line in row.splitlines() if line.strip())
            raise BundleRefused("malformed", f"the bundle's database is damaged: {faults[:200]}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise BundleRefused("malformed", f"the bundle's database cannot be read: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def merge_bundle(store: Store, database: bytes, *, bundle_id: str, kind: str, site: str, segments: Sequence[str],
                 agent_id: str, agent_version: str, job_id: str | None, signer: str, size: int,
                 counts: dict[str, int], before_commit: Callable[[], None] | None = None) -> MergeOutcome:
    """Merge a verified bundle's rows into this store in one transaction together with its ledger
    row. A bundle already in the ledger changes nothing (``already``). Raises BundleRefused when
    the rows are not what the manifest says (another run, another site, other counts)."""
    known = merged_bundle(store, bundle_id)
    if known is not None:
        return MergeOutcome(bundle_id, str(known["kind"]), str(known["run_id"]), str(known["site"]), True,
                            json.loads(known["counts"] or "{}"), str(known["merged_at"]))
    source = open_bundle_database(database)
    try:
        run_id, rows = _read_run(store, source, kind=kind, site=site, counts=counts)
    except sqlite3.DatabaseError as exc:
        raise BundleRefused("malformed", f"the bundle's database cannot be read: {exc}") from None
    finally:
        source.close()
    owner_table = "scans" if kind == "scan" else "egress_runs"
    existing = store.db.execute(f"select site from {owner_table} where id = ?", [run_id]).fetchone()  # noqa: S608
    if existing is not None:
        if existing[0] != site:
            raise BundleRefused("conflict", f"the bundle's {kind} {run_id} is in the central store already, "
                                            f"under site {existing[0]!r}, not {site!r}")
        earlier = store.db.execute("select bundle_id from bundles where run_id = ? order by merged_at limit 1",
                                   [run_id]).fetchone()
        source_note = f"bundle {str(earlier[0])[:16]}" if earlier else "a local run"
        return MergeOutcome(bundle_id, kind, run_id, site, True, counts, utc_now(),
                            note=f"its {kind} {run_id} came in {source_note}")
    merged_at = utc_now()
    try:
        with store.write() as db:
            inserted = db.execute(
                "insert into bundles (bundle_id, site, kind, run_id, agent_id, agent_version, job_id, signer, size, "
                "counts, merged_at, finalised_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null) "
                "on conflict (bundle_id) do nothing",
                [bundle_id, site, kind, run_id, agent_id, agent_version, job_id, signer, size,
                 json.dumps(counts, sort_keys=True), merged_at])
            if inserted.rowcount != 1:
                raise _AlreadyMerged
            ensure_site(db, site, segments)
            for table in BUNDLE_TABLES:
                names, values = rows[table]
                if not values:
                    continue
                listed = ", ".join(f'"{c}"' for c in names)
                marks = ", ".join("?" * len(names))
                db.conn.executemany(f'insert into "{table}" ({listed}) values ({marks}) on conflict do nothing',  # noqa: S608
                                    values)
            if before_commit is not None:
                before_commit()
    except _AlreadyMerged:
        known = merged_bundle(store, bundle_id)
        assert known is not None
        return MergeOutcome(bundle_id, kind, run_id, site, True, counts, str(known["merged_at"]))
    return MergeOutcome(bundle_id, kind, run_id, site, False, counts, merged_at)


def _read_run(store: Store, source: sqlite3.Connection, *, kind: str, site: str,
              counts: dict[str, int]) -> tuple[str, dict[str, tuple[list[str], list[tuple[Any, ...]]]]]:
    """Check the bundle's database and read the run's rows: (run id, table -> (columns, rows))."""
    names = {str(r[0]): str(r[1]) for r in source.execute("select name, type from sqlite_master")}
    for table in (*BUNDLE_TABLES, "_sqlite_migrations"):
        if names.get(table) != "table":
            raise BundleRefused("malformed", f"the bundle's database has no table {table}")
    ours = {str(r[0]) for r in store.db.execute("select name from _sqlite_migrations")}
    theirs = {str(r[0]) for r in source.execute("select name from _sqlite_migrations")}
    if theirs - ours:
        raise BundleRefused("unknown_schema", "the bundle was made by a newer camaudit (its database has "
                                              "migrations this one lacks): upgrade camaudit at the centre")
    owner = "scans" if kind == "scan" else "egress_runs"
    owners = source.execute(f"select id from {owner}").fetchall()  # noqa: S608
    if len(owners) != 1 or not isinstance(owners[0][0], str) or not owners[0][0]:
        raise BundleRefused("malformed", f"a {kind} bundle holds exactly one {'scan' if kind == 'scan' else 'egress run'}"
                                         f", this one {len(owners)}")
    run_id = str(owners[0][0])
    if kind == "scan":
        status = source.execute("select status from scans").fetchone()[0]
        if status not in ("complete", "interrupted", "failed"):
            raise BundleRefused("malformed", f"the bundle's scan has status {str(status)[:20]!r}, not a finished one")
    for table in _SITE_TABLES:
        wrong = source.execute(f'select count(*) from "{table}" where site is not ?', [site]).fetchone()[0]  # noqa: S608
        if wrong:
            raise BundleRefused("wrong_site", f"the bundle is from site {site!r} but {wrong} row(s) of its {table} "
                                              "name another site")
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    for table in BUNDLE_TABLES:
        where = _where(kind, table)
        total = source.execute(f'select count(*) from "{table}"').fetchone()[0]  # noqa: S608
        belonging = source.execute(f'select count(*) from "{table}" where {where}', {"run": run_id}).fetchone()[0]  # noqa: S608
        if total != belonging:
            raise BundleRefused("malformed", f"the bundle's {table} holds {total - belonging} row(s) of another run")
        if counts.get(table, 0) != total:
            raise BundleRefused("malformed", f"the bundle's manifest counts {counts.get(table, 0)} {table} rows, "
                                             f"its database {total}")
        columns = _columns(source, "main", table) & _columns(store.db.conn, "main", table)
        if table == "verdicts":
            # Row ids are the centre's; device ids are resolved by the centre's own identification.
            columns -= {"id", "device_id"}
        listed = sorted(columns)
        select = ", ".join(f'"{c}"' for c in listed)
        values = source.execute(f'select {select} from "{table}" where {where} order by rowid',  # noqa: S608
                                {"run": run_id}).fetchall()
        rows[table] = (listed, values)
    extra = set(counts) - set(BUNDLE_TABLES)
    if extra:
        raise BundleRefused("malformed", f"the bundle's manifest counts unknown tables: {', '.join(sorted(extra))[:200]}")
    return run_id, rows


def unfinalised(store: Store) -> list[dict[str, Any]]:
    """Merged bundles whose run the centre has not identified and assessed yet (a merger killed
    between the merge and the finalisation)."""
    return list(store.db.query("select * from bundles where finalised_at is null order by merged_at, bundle_id"))


def mark_finalised(store: Store, bundle_id: str) -> None:
    with store.write() as db:
        db.execute("update bundles set finalised_at = ? where bundle_id = ?", [utc_now(), bundle_id])


def link_verdict_devices(store: Store, scan_id: str) -> None:
    """Give a merged scan's verdicts the centre's device ids (the bundle's are the agent's)."""
    with store.write() as db:
        db.execute("update verdicts set device_id = (select i.device_id from identities i where i.scan_id = "
                   "verdicts.scan_id and i.address = verdicts.subject) where scan_id = ? and device_id is null",
                   [scan_id])


# -- the agent's outbox ---------------------------------------------------------------------------


def add_to_outbox(store: Store, *, bundle_id: str, site: str, kind: str, run_id: str, job_id: str | None,
                  bundle: bytes) -> bool:
    """Keep a bundle until the centre has merged it; False when it was there already."""
    now = utc_now()
    with store.write() as db:
        cursor = db.execute(
            "insert into outbox (bundle_id, site, kind, run_id, job_id, state, bundle, created_at, updated_at, "
            "attempts, last_error) values (?, ?, ?, ?, ?, 'pending', ?, ?, ?, 0, null) on conflict (bundle_id) do nothing",
            [bundle_id, site, kind, run_id, job_id, bundle, now, now])
        return bool(cursor.rowcount == 1)


def outbox(store: Store, *, states: Sequence[str] = OUTBOX_STATES) -> list[dict[str, Any]]:
    """Outbox entries in the given states, oldest first, without their bytes."""
    marks = ", ".join("?" * len(states))
    return list(store.db.query(
        f"select bundle_id, site, kind, run_id, job_id, state, created_at, updated_at, attempts, last_error, "  # noqa: S608
        f"length(bundle) as size from outbox where state in ({marks}) order by created_at, bundle_id", list(states)))


def outbox_bundle(store: Store, bundle_id: str) -> bytes | None:
    row = store.db.execute("select bundle from outbox where bundle_id = ?", [bundle_id]).fetchone()
    return bytes(row[0]) if row else None


def set_outbox_state(store: Store, bundle_id: str, state: str) -> None:
    if state not in OUTBOX_STATES:
        raise ValueError(state)
    with store.write() as db:
        db.execute("update outbox set state = ?, updated_at = ?, last_error = null where bundle_id = ?",
                   [state, utc_now(), bundle_id])


def count_upload_attempt(store: Store, bundle_id: str, *, error: str | None = None) -> int:
    """Record an upload attempt (before it is made; with ``error`` when it failed); returns the
    attempts made before this one."""
    with store.write() as db:
        row = db.execute("select attempts from outbox where bundle_id = ?", [bundle_id]).fetchone()
        db.execute("update outbox set attempts = attempts + 1, updated_at = ?, last_error = ? where bundle_id = ?",
                   [utc_now(), error, bundle_id])
    return int(row[0] or 0) if row else 0
