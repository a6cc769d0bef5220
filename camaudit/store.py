"""The evidence store: SQLite written through sqlite-utils, behind numbered migrations.

Every stage writes here as it goes, so an interrupted scan keeps what it found. Scan ids are
UUIDs and every row carries its scan id, so stores written by agents on different segments
merge without collision. WAL mode and ``BEGIN IMMEDIATE`` writes with a generous busy timeout
let two scans write to one database at once, each landing whole.

Tables (migration 1): scans, hosts, services, observations. Later migrations add identities,
devices and sightings (2), ... and the scans' heartbeat (7). Readable by Datasette as it is.

A running scan records a heartbeat every few seconds. A scan that was killed (SIGKILL, a power
cut) cannot mark itself, so every writable open marks a ``running`` scan whose heartbeat is older
than ``stale_after`` seconds as ``interrupted``, with a note; a read-only open only shows it so.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sqlite3
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from . import __version__
from .config import STALE_AFTER
from .errors import StoreError, UsageError
from .model import Identity, Observation, utc_now

log = logging.getLogger(__name__)

SCAN_STATUSES = ("running", "complete", "interrupted", "failed")
BUSY_TIMEOUT_MS = 60_000

migrations = Migrations("camaudit")

#: Tables the migrations create (here, assess_schema, egress.schema) and commands read: a database
#: whose migrations are recorded but that lacks one was damaged by hand.
_REQUIRED_TABLES = ("scans", "hosts", "services", "observations", "devices", "identities", "sightings",
                    "device_settings", "register", "reconciliation", "findings", "verdicts", "egress_runs",
                    "egress_tests", "listener_log", "egress_flows")


@migrations(name="0001_scans_hosts_services_observations")
def _m0001(db: sqlite_utils.Database) -> None:
    db.table("scans").create(
        {
            "id": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "targets": str,  # JSON list, as given
            "exclude": str,  # JSON list
            "config_hash": str,
            "config": str,  # JSON of the effective configuration
            "camaudit_version": str,
            "host": str,  # the machine the scan ran on
            "addresses_scanned": int,
            "notes": str,  # JSON list of plain-language notes
            "error": str,
        },
        pk="id",
    )
    db.table("hosts").create(
        {"scan_id": str, "address": str, "mac": str, "first_seen": str, "last_seen": str},
        pk=("scan_id", "address"),
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("services").create(
        {"scan_id": str, "address": str, "proto": str, "port": int, "state": str, "seen_at": str},
        pk=("scan_id", "address", "proto", "port"),
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("observations").create(
        {
            "id": str,  # content hash: the same evidence in the same scan is stored once
            "scan_id": str,
            "address": str,
            "port": int,
            "kind": str,
            "value": str,
            "source": str,
            "observed_at": str,
        },
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("observations").create_index(["scan_id", "address"])
    db.table("observations").create_index(["address"])
    db.table("services").create_index(["address"])
    db.table("hosts").create_index(["address"])


@migrations(name="0002_devices_identities_sightings")
def _m0002(db: sqlite_utils.Database) -> None:
    db.table("devices").create(
        {
            "id": str,  # serial:<serial>, else mac:<mac>, else addr:<address>
            "first_seen": str,
            "last_seen": str,
            "serial": str,
            "mac": str,
            "vendor": str,
            "brand": str,
            "model": str,
        },
        pk="id",
    )
    db.table("identities").create(
        {
            "scan_id": str,
            "address": str,
            "device_id": str,
            "vendor": str,
            "brand": str,
            "device_type": str,
            "model": str,
            "firmware": str,
            "serial": str,
            "confidence": float,
            "covered": int,
            "advisories": str,  # JSON list of CVE ids
            "signatures": str,  # JSON list of {id, kind, value, port}
            "conflicts": str,  # JSON list
            "identified_at": str,
        },
        pk=("scan_id", "address"),
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("sightings").create(
        {"scan_id": str, "device_id": str, "address": str, "seen_at": str},
        pk=("scan_id", "device_id", "address"),
        foreign_keys=[("scan_id", "scans", "id"), ("device_id", "devices", "id")],
    )
    db.table("identities").create_index(["device_id"])
    db.table("sightings").create_index(["device_id"])


@migrations(name="0004_device_settings")
def _m0004(db: sqlite_utils.Database) -> None:
    # What each device says about its own network and cloud (interrogation; redacted before it
    # is written). JSON null inside means "not verified", never "off" (egress.md section 2).
    db.table("device_settings").create(
        {
            "scan_id": str,
            "address": str,
            "gateway": str,  # JSON list, or null when not verified
            "dns": str,
            "ntp": str,
            "cloud": str,  # JSON object per cloud service: enabled, registered, source
            "upnp_mappings": str,
            "not_verified": str,  # JSON list of plain-language reasons
            "details": str,  # JSON: where each setting came from, redacted replies
            "read_at": str,
        },
        pk=("scan_id", "address"),
        foreign_keys=[("scan_id", "scans", "id")],
    )


@migrations(name="0006_host_problems")
def _m0006(db: sqlite_utils.Database) -> None:
    # What a scan could not do for a host (a probe that timed out, an oversized answer, a reset),
    # in plain language: an auditor must see what was not verified, not only what was.
    db.table("hosts").add_column("problems", str)


@migrations(name="0007_scan_heartbeat")
def _m0007(db: sqlite_utils.Database) -> None:
    # A running scan touches this every few seconds; a `running` scan whose heartbeat is old was
    # killed (SIGKILL, a power cut) and is marked interrupted by the next command (DESIGN.md 6).
    db.table("scans").add_column("heartbeat_at", str)


def device_key(*, serial: str | None, mac: str | None, address: str) -> str:
    """A device's identity across scans: serial, else MAC, else address (DESIGN.md section 6)."""
    if serial:
        return f"serial:{serial.strip().upper()}"
    if mac:
        return f"mac:{mac.strip().lower()}"
    return f"addr:{address}"


def observation_id(scan_id: str, obs: Observation) -> str:
    digest = sha256(
        "\x1f".join([scan_id, obs.address, str(obs.port), obs.kind, obs.value, obs.source]).encode()
    )
    return digest.hexdigest()[:32]


def store_error(path: Path, exc: sqlite3.Error, doing: str = "write to") -> StoreError:
    """A plain-language StoreError for an SQLite fault: a full disk, a read-only file or a failing
    disk are the user's to fix, and the message must say which (the evidence written before stays)."""
    text = str(exc)
    if "database or disk is full" in text or "disk is full" in text:
        reason = "the disk is full; what was recorded before is kept (free some space and run again)"
    elif "readonly database" in text or "read-only" in text:
        reason = "the database or its folder is read-only (check permissions, or copy it somewhere writable)"
    elif "disk I/O error" in text:
        reason = "disk I/O error (the disk may be full, failing or gone)"
    elif "unable to open database file" in text:
        reason = "the file or its folder cannot be opened for writing (permissions, or a read-only disk)"
    elif "no such table" in text or "no such column" in text:
        reason = f"the database is damaged or not a camaudit database ({text})"
    else:
        reason = text
    return StoreError(f"cannot {doing} {path}: {reason}")


def _is_not_a_database(exc: sqlite3.Error) -> bool:
    return "file is not a database" in str(exc) or "malformed" in str(exc)


@dataclass(frozen=True, slots=True)
class ScanRow:
    id: str
    started_at: str
    finished_at: str | None
    status: str
    targets: list[str]
    addresses_scanned: int
    hosts: int
    notes: list[str]
    camaudit_version: str
    error: str | None


def _enable_wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL. Switching needs an exclusive lock and SQLite answers "locked" at once,
    without its busy handler, while another process is opening the same new file: retry for
    as long as the busy timeout allows."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Store:
    """One evidence database. Open with :func:`open_store`; use as a context manager."""

    def __init__(self, path: str | Path, *, read_only: bool = False, stale_after: float = STALE_AFTER) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.stale_after = stale_after
        #: scan id -> note, for killed scans this store could not mark (read-only): shown as
        #: interrupted in memory, never written.
        self._stale: dict[str, str] = {}
        if read_only:
            self.db = sqlite_utils.Database(self._connect_read_only())
            self._check_schema()
            self._stale = dict(self._find_stale_scans())
            return
        try:
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = _enable_wal(conn)
            if mode != "wal":
                log.debug("journal mode is %s, not wal", mode)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            if _is_not_a_database(exc):
                raise StoreError(f"{self.path} is not a camaudit database (or is damaged): {exc}") from exc
            raise store_error(self.path, exc, "open") from exc
        self.db = sqlite_utils.Database(conn)
        self._migrate()
        self._mark_stale_scans()

    def _connect_read_only(self) -> sqlite3.Connection:
        """A database the user cannot write (archived evidence, a read-only disk) can still be
        read: mode=ro, and immutable=1 when SQLite cannot make the WAL's shared-memory file."""
        base = "file:" + urllib.parse.quote(str(self.path.resolve()))
        last: sqlite3.Error | None = None
        for suffix in ("?mode=ro", "?immutable=1"):
            try:
                conn = sqlite3.connect(base + suffix, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                conn.execute("select count(*) from sqlite_master").fetchone()
                return conn
            except sqlite3.DatabaseError as exc:
                if _is_not_a_database(exc):
                    raise StoreError(f"{self.path} is not a camaudit database (or is damaged): {exc}") from exc
                last = exc
        assert last is not None
        raise store_error(self.path, last, "read") from last

    def _check_schema(self) -> None:
        try:
            pending = migrations.pending(self.db)
            missing = [t for t in _REQUIRED_TABLES if not self.db.table(t).exists()]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a camaudit database (or is damaged): {exc}") from exc
        if pending:
            raise StoreError(f"{self.path} is read-only and needs upgrading by this camaudit version: "
                             "copy it somewhere writable first")
        if missing:
            raise StoreError(f"{self.path} is damaged: table {', '.join(missing)} is missing "
                             "(restore it from a backup, or start a new database with --db)")

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        # Two processes opening a new database at once must not both create its tables. SQLite's
        # own write lock serialises them: the whole upgrade runs in one BEGIN IMMEDIATE
        # transaction (each migration nests as a savepoint), so the second process waits, then
        # finds nothing pending. (A lock taken through another file descriptor on the database
        # would not do: closing it drops SQLite's POSIX locks held by this process.)
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                migrations.apply(self.db)
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.DatabaseError as exc:
            if _is_not_a_database(exc) or "already exists" in str(exc):
                raise StoreError(f"{self.path} is not a camaudit database (or is damaged): {exc}") from exc
            raise store_error(self.path, exc, "prepare") from exc
        self._check_schema()

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction, taken with BEGIN IMMEDIATE so concurrent writers queue on the
        busy timeout instead of failing on a lock upgrade."""
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from exc
        try:
            yield self.db
        except sqlite3.Error as exc:
            # A full disk or a read-only file can fail any statement once SQLite spills its cache.
            self._rollback()
            raise store_error(self.path, exc) from exc
        except BaseException:
            self._rollback()
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise store_error(self.path, exc) from exc

    def checkpoint(self) -> None:
        """Move the write-ahead log into the database and truncate it (best effort): after a
        full-disk fault this frees the log's space for a last small write."""
        with suppress(sqlite3.Error):
            self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _rollback(self) -> None:
        # A rollback after a disk fault can fail too; SQLite has then rolled back already, and the
        # error the caller sees must be the first one.
        with suppress(sqlite3.Error):
            if self.db.conn.in_transaction:
                self.db.conn.execute("ROLLBACK")

    # -- scans -----------------------------------------------------------------------------

    def start_scan(
        self,
        *,
        targets: Sequence[str],
        exclude: Sequence[str] = (),
        config: dict[str, Any] | None = None,
        config_hash: str = "",
        addresses: int = 0,
    ) -> str:
        scan_id = str(uuid.uuid4())
        with self.write() as db:
            db.table("scans").insert(
                {
                    "id": scan_id,
                    "started_at": utc_now(),
                    "finished_at": None,
                    "status": "running",
                    "targets": json.dumps(list(targets)),
                    "exclude": json.dumps(list(exclude)),
                    "config_hash": config_hash,
                    "config": json.dumps(config or {}, sort_keys=True, default=str),
                    "camaudit_version": __version__,
                    "host": socket.gethostname(),
                    "addresses_scanned": addresses,
                    "notes": "[]",
                    "error": None,
                    "heartbeat_at": utc_now(),
                }
            )
        return scan_id

    def touch_scan(self, scan_id: str) -> None:
        """The scan's heartbeat: it is alive now. Only a ``running`` scan is touched, so a scan
        already marked otherwise keeps the heartbeat its note names."""
        with self.write() as db:
            db.execute("update scans set heartbeat_at = ? where id = ? and status = 'running'", [utc_now(), scan_id])

    def _find_stale_scans(self) -> list[tuple[str, str]]:
        """(scan id, note) for each ``running`` scan whose heartbeat (or start, for a scan from
        before heartbeats) is older than ``stale_after`` seconds."""
        now = dt.datetime.now(dt.UTC)
        found = []
        for row in self.db.query(
            "select id, coalesce(heartbeat_at, started_at) as beat from scans where status = 'running'"
        ):
            try:
                beat = dt.datetime.fromisoformat(row["beat"])
            except (TypeError, ValueError):
                continue  # not a time camaudit wrote: leave the row as it is
            if beat.tzinfo is None:
                beat = beat.replace(tzinfo=dt.UTC)
            if (now - beat).total_seconds() > self.stale_after:
                found.append((row["id"], stale_note(now.isoformat(timespec="seconds"), row["beat"])))
        return found

    def _mark_stale_scans(self) -> None:
        """Mark killed scans ``interrupted`` (their process can no longer do it). The check is
        repeated inside the write lock, so a heartbeat that lands meanwhile is respected. When the
        store cannot take the write (a full disk), they are shown as interrupted in memory only."""
        if not self._find_stale_scans():
            return
        try:
            with self.write() as db:
                for scan_id, note in self._find_stale_scans():
                    row = db.execute("select notes, coalesce(heartbeat_at, started_at) from scans where id = ?",
                                     [scan_id]).fetchone()
                    notes = json.loads(row[0] or "[]") + [note]
                    db.table("scans").update(
                        scan_id, {"status": "interrupted", "finished_at": row[1], "notes": json.dumps(notes)}
                    )
                    log.info("scan %s: %s", scan_id, note)
        except StoreError as exc:
            log.debug("could not mark killed scans: %s", exc)
            self._stale = dict(self._find_stale_scans())

    def finish_scan(self, scan_id: str, status: str, *, notes: Sequence[str] = (), error: str | None = None) -> None:
        if status not in SCAN_STATUSES:
            raise ValueError(f"unknown scan status {status!r}")
        with self.write() as db:
            db.table("scans").update(
                scan_id,
                {"status": status, "finished_at": utc_now(), "notes": json.dumps(list(notes)), "error": error},
            )

    # -- evidence --------------------------------------------------------------------------

    def add_services(self, scan_id: str, found: Iterable[tuple[str, int]], proto: str = "tcp") -> None:
        now = utc_now()
        rows = [
            {"scan_id": scan_id, "address": a, "proto": proto, "port": p, "state": "open", "seen_at": now}
            for a, p in found
        ]
        if not rows:
            return
        hosts = [{"scan_id": scan_id, "address": a, "first_seen": now, "last_seen": now} for a in {r["address"] for r in rows}]
        with self.write() as db:
            db.table("hosts").insert_all(hosts, pk=("scan_id", "address"), ignore=True)
            db.table("services").insert_all(rows, pk=("scan_id", "address", "proto", "port"), ignore=True)

    def add_observations(self, scan_id: str, observations: Iterable[Observation]) -> None:
        rows = []
        macs: dict[str, str] = {}
        for obs in observations:
            rows.append(
                {
                    "id": observation_id(scan_id, obs),
                    "scan_id": scan_id,
                    "address": obs.address,
                    "port": obs.port,
                    "kind": obs.kind,
                    "value": obs.value,
                    "source": obs.source,
                    "observed_at": obs.observed_at,
                }
            )
            if obs.kind == "mac":
                macs[obs.address] = obs.value
        if not rows:
            return
        now = utc_now()
        with self.write() as db:
            db.table("hosts").insert_all(
                [{"scan_id": scan_id, "address": r["address"], "first_seen": now, "last_seen": now} for r in rows],
                pk=("scan_id", "address"),
                ignore=True,
            )
            for address, mac in macs.items():
                db.table("hosts").update((scan_id, address), {"mac": mac, "last_seen": now})
            db.table("observations").insert_all(rows, pk="id", ignore=True)

    def add_identity(self, scan_id: str, address: str, identity: Identity, *, mac: str | None = None) -> str:
        """Record a device's identity for this scan and its sighting; returns the device id."""
        now = utc_now()
        device_id = device_key(serial=identity.serial, mac=mac, address=address)
        with self.write() as db:
            existing = db.execute("select first_seen from devices where id = ?", [device_id]).fetchone()
            db.table("devices").upsert(
                {
                    "id": device_id,
                    "first_seen": existing[0] if existing else now,
                    "last_seen": now,
                    "serial": identity.serial,
                    "mac": mac,
                    "vendor": identity.vendor,
                    "brand": identity.brand,
                    "model": identity.model,
                },
                pk="id",
            )
            db.table("identities").upsert(
                {
                    "scan_id": scan_id,
                    "address": address,
                    "device_id": device_id,
                    "vendor": identity.vendor,
                    "brand": identity.brand,
                    "device_type": identity.device_type,
                    "model": identity.model,
                    "firmware": identity.firmware,
                    "serial": identity.serial,
                    "confidence": round(identity.confidence, 3),
                    "covered": int(identity.covered),
                    "advisories": json.dumps(identity.advisories),
                    "signatures": json.dumps([s.to_json() for s in identity.signatures]),
                    "conflicts": json.dumps(identity.conflicts),
                    "identified_at": now,
                },
                pk=("scan_id", "address"),
            )
            db.table("sightings").upsert(
                {"scan_id": scan_id, "device_id": device_id, "address": address, "seen_at": now},
                pk=("scan_id", "device_id", "address"),
            )
        return device_id

    def add_problems(self, scan_id: str, address: str, problems: Sequence[str]) -> None:
        """Record what could not be done for one host (JSON list, appended to earlier ones)."""
        if not problems:
            return
        now = utc_now()
        with self.write() as db:
            db.table("hosts").insert(
                {"scan_id": scan_id, "address": address, "first_seen": now, "last_seen": now},
                pk=("scan_id", "address"), ignore=True,
            )
            row = db.execute("select problems from hosts where scan_id = ? and address = ?", [scan_id, address]).fetchone()
            known = json.loads(row[0]) if row and row[0] else []
            merged = known + [p for p in problems if p not in known]
            db.table("hosts").update((scan_id, address), {"problems": json.dumps(merged), "last_seen": now})

    def add_device_settings(self, scan_id: str, settings: dict[str, Any]) -> None:
        """Record one device's self-reported settings (``DeviceSettings.to_json()``)."""
        row = {"scan_id": scan_id, "address": settings["address"], "read_at": utc_now()}
        for key in ("gateway", "dns", "ntp", "cloud", "upnp_mappings", "not_verified", "details"):
            row[key] = json.dumps(settings.get(key), sort_keys=True, default=str)
        with self.write() as db:
            db.table("device_settings").upsert(row, pk=("scan_id", "address"))

    def device_settings(self, scan_id: str) -> dict[str, dict[str, Any]]:
        """address -> the settings recorded for it in this scan."""
        result: dict[str, dict[str, Any]] = {}
        for row in self.db.query("select * from device_settings where scan_id = ?", [scan_id]):
            doc = {"address": row["address"]}
            for key in ("gateway", "dns", "ntp", "cloud", "upnp_mappings", "not_verified", "details"):
                doc[key] = json.loads(row[key]) if row[key] is not None else None
            result[row["address"]] = doc
        return result

    # -- queries ---------------------------------------------------------------------------

    def scans(self, limit: int | None = None) -> list[ScanRow]:
        sql = (
            "select s.*, (select count(*) from hosts h where h.scan_id = s.id) as host_count "
            "from scans s order by s.started_at desc"
        )
        if limit:
            sql += f" limit {int(limit)}"
        return [self._scan_row(row) for row in self.db.query(sql)]

    def scan(self, scan_ref: str) -> ScanRow:
        """Find a scan by id, unique id prefix, or ``latest``. UsageError when there is none."""
        if scan_ref == "latest":
            rows = self.scans(limit=1)
            if not rows:
                raise UsageError(f"{self.path} holds no scans yet")
            return rows[0]
        matches = list(
            self.db.query(
                "select s.*, (select count(*) from hosts h where h.scan_id = s.id) as host_count "
                "from scans s where s.id like ? order by s.started_at desc",
                [scan_ref.replace("%", "").replace("_", "") + "%"],
            )
        )
        if not matches:
            raise UsageError(f"no scan {scan_ref!r} in {self.path}; `camaudit scans` lists them")
        if len(matches) > 1 and matches[0]["id"] != scan_ref:
            raise UsageError(f"{scan_ref!r} matches {len(matches)} scans; give more of the id")
        return self._scan_row(matches[0])

    def hosts_of_scan(self, scan_id: str) -> list[dict[str, Any]]:
        """Each host of a scan with its open ports and observations, in address order."""
        hosts: dict[str, dict[str, Any]] = {}
        for row in self.db.query("select address, mac, problems from hosts where scan_id = ?", [scan_id]):
            hosts[row["address"]] = {"address": row["address"], "mac": row["mac"], "ports": [], "observations": []}
            if row["problems"]:
                hosts[row["address"]]["problems"] = json.loads(row["problems"])
        for row in self.db.query(
            "select address, port from services where scan_id = ? and proto = 'tcp' order by port", [scan_id]
        ):
            hosts.setdefault(row["address"], {"address": row["address"], "mac": None, "ports": [], "observations": []})
            hosts[row["address"]]["ports"].append(row["port"])
        for row in self.db.query(
            "select address, port, kind, value, source, observed_at from observations where scan_id = ? "
            "order by observed_at, rowid",
            [scan_id],
        ):
            hosts.setdefault(row["address"], {"address": row["address"], "mac": None, "ports": [], "observations": []})
            hosts[row["address"]]["observations"].append(
                {"kind": row["kind"], "value": row["value"], "port": row["port"], "source": row["source"]}
            )
        for row in self.db.query("select * from identities where scan_id = ?", [scan_id]):
            if row["address"] in hosts:
                hosts[row["address"]]["identity"] = identity_from_row(row)
        return sorted(hosts.values(), key=lambda h: _address_sort_key(h["address"]))

    def address_history(self, address: str) -> list[dict[str, Any]]:
        """What every scan recorded for one address, newest first."""
        result = []
        for scan in self.db.query(
            "select distinct s.id, s.started_at, s.status from scans s join hosts h on h.scan_id = s.id "
            "where h.address = ? order by s.started_at desc",
            [address],
        ):
            host = next((h for h in self.hosts_of_scan(scan["id"]) if h["address"] == address), None)
            status = "interrupted" if scan["id"] in self._stale else scan["status"]
            result.append({"scan_id": scan["id"], "started_at": scan["started_at"], "status": status, "host": host})
        return result

    def _scan_row(self, row: dict[str, Any]) -> ScanRow:
        stale = self._stale.get(row["id"])
        return ScanRow(
            id=row["id"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            status="interrupted" if stale else row["status"],
            targets=json.loads(row["targets"] or "[]"),
            addresses_scanned=row["addresses_scanned"] or 0,
            hosts=row.get("host_count", 0),
            notes=json.loads(row["notes"] or "[]") + ([stale] if stale else []),
            camaudit_version=row["camaudit_version"],
            error=row["error"],
        )


def stale_note(marked_at: str, heartbeat_at: str) -> str:
    """The note a killed scan gets when a later command marks it interrupted."""
    return (f"marked interrupted at {marked_at}: no heartbeat since {heartbeat_at} "
            "(the process was probably killed)")


def mark_interrupted_elsewhere(path: str | Path, scan_id: str, notes: Sequence[str], *, timeout: float = 5.0) -> bool:
    """Mark a running scan ``interrupted`` through a connection of its own: for the scan's
    watchdog thread, while the scan's own connection belongs to a thread that no longer answers
    (WAL lets the two write side by side). Returns whether the row was marked."""
    try:
        conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        cursor = conn.execute(
            "update scans set status = 'interrupted', finished_at = ?, notes = ? where id = ? and status = 'running'",
            [utc_now(), json.dumps(list(notes)), scan_id],
        )
        return cursor.rowcount == 1
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def identity_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """The contract's identity JSON from an ``identities`` row."""
    return {
        "vendor": row["vendor"],
        "brand": row["brand"],
        "device_type": row["device_type"],
        "model": row["model"],
        "firmware": row["firmware"],
        "serial": row["serial"],
        "confidence": row["confidence"],
        "covered": bool(row["covered"]),
        "advisories": json.loads(row["advisories"] or "[]"),
        "signatures": json.loads(row["signatures"] or "[]"),
        "conflicts": json.loads(row["conflicts"] or "[]"),
        "device_id": row["device_id"],
    }


def _address_sort_key(address: str) -> tuple[int, int]:
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0)
    return (ip.version, int(ip))


def open_store(path: str | Path, *, create: bool = True, stale_after: float = STALE_AFTER) -> Store:
    """Open (and migrate) the store at ``path``. With ``create=False`` a missing file is a
    UsageError rather than a new empty database (for commands that only read).

    Opening marks ``running`` scans whose heartbeat is older than ``stale_after`` seconds as
    ``interrupted`` (their process was killed); a read-only store only shows them so."""
    path = Path(path)
    if not create and not path.exists():
        raise UsageError(f"no database at {path}; run `camaudit scan` first or name one with --db")
    if path.exists() and path.is_dir():
        raise UsageError(f"{path} is a folder, not a database file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"the folder {parent} does not exist")
    if path.exists() and not os.access(path, os.R_OK):
        raise UsageError(f"cannot read {path}: permission denied")
    # A command that only reads can use a database it cannot write (archived evidence, a
    # read-only disk); one that writes gets a clear "read-only" StoreError from write().
    read_only = not create and not (os.access(path, os.W_OK) and os.access(parent, os.W_OK))
    return Store(path, read_only=read_only, stale_after=stale_after)


# Later migrations live beside the code that owns their tables; importing registers them.
from . import assess_schema  # noqa: E402, F401
from .egress import schema as _egress_schema  # noqa: E402, F401
