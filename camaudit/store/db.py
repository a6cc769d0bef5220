"""The store's connection: SQLite through sqlite-utils, WAL, ``BEGIN IMMEDIATE`` writes, read-only
opens, and the mapping of SQLite faults to plain-language errors.

Every stage writes as it goes, so an interrupted scan keeps what it found. Scan ids are UUIDs and
every row carries its scan id (and so its site), so stores written by agents on different
segments merge without collision. WAL mode and ``BEGIN IMMEDIATE`` writes with a generous busy
timeout let two scans write to one database at once, each landing whole.

The SQL of each domain lives beside this module (scans, observations, devices, verdicts, egress,
assessments, register); :class:`Store` offers the common calls as methods.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlite_utils

from ..config import STALE_AFTER
from ..errors import DamagedStore, StoreError, UsageError
from ..model import Identity, Observation, Scan
from ..model.findings import SEVERITIES, address_order
from ..model.settings import DeviceSettings
from .schema import REQUIRED_TABLES, migrations

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 60_000


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
    elif "no such table" in text or "no such column" in text or _is_not_a_database(exc):
        return DamagedStore(f"cannot {doing} {path}: the database is damaged or not a camaudit database ({text})")
    else:
        reason = text
    return StoreError(f"cannot {doing} {path}: {reason}")


def _is_not_a_database(exc: sqlite3.Error) -> bool:
    return "file is not a database" in str(exc) or "malformed" in str(exc)


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


#: The page cache SQLite keeps for one connection, in KiB. SQLite's default is 2 MiB. A scan
#: writes and reads its store page after page, so its connection's cache fills whatever its
#: size; the pages it misses come from the operating system's file cache, not from the disk.
#: At 2 MiB the cache was what made a scan's resident peak rise with the size of its store
#: (issue 15, benchmarks/README.md "Seventh round").
PAGE_CACHE_KIB = 512


def _prepare(conn: sqlite3.Connection) -> None:
    """What every connection to a store has: its page cache, and the SQL functions that order
    rows as camaudit orders them (addresses in numeric order, severities by rank), so that a
    large result is sorted by SQLite rather than held to be sorted in Python."""
    conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
    conn.create_function("address_order", 1, sql_address_order, deterministic=True)
    conn.create_function("severity_rank", 1, _sql_severity_rank, deterministic=True)


def sql_address_order(text: object) -> str:
    """A text that sorts as :func:`camaudit.model.findings.address_order` does: IPv4 addresses in
    numeric order, then IPv6, then anything else."""
    version, number = address_order(str(text)) if text is not None else (9, 0)
    return f"{version}:{number:039d}"


def _sql_severity_rank(severity: object) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


class Store:
    """One evidence database. Open with :func:`open_store`; use as a context manager."""

    def __init__(self, path: str | Path, *, read_only: bool = False, stale_after: float = STALE_AFTER) -> None:
        from . import scans

        self.path = Path(path)
        self.read_only = read_only
        self.stale_after = stale_after
        #: scan id -> note, for killed scans this store could not mark (read-only or a full
        #: disk): shown as interrupted in memory, never written.
        self.stale: dict[str, str] = {}
        #: Killed scans this open marked interrupted: whoever opened the store identifies and
        #: assesses what they stored (camaudit.audit.finalise_stale_scans).
        self.marked_stale: list[str] = []
        if read_only:
            self.db = sqlite_utils.Database(self._connect_read_only())
            self._check_schema()
            self.stale = dict(scans.find_stale_scans(self, stale_after))
            return
        try:
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = _enable_wal(conn)
            if mode != "wal":
                log.debug("journal mode is %s, not wal", mode)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            _prepare(conn)
        except sqlite3.DatabaseError as exc:
            if _is_not_a_database(exc):
                raise DamagedStore(f"{self.path} is not a camaudit database (or is damaged): {exc}") from exc
            raise store_error(self.path, exc, "open") from exc
        self.db = sqlite_utils.Database(conn)
        self._migrate()
        try:
            self.marked_stale = scans.mark_stale_scans(self, stale_after)
        except StoreError as exc:  # a full disk: show them as interrupted, write nothing
            log.debug("could not mark killed scans: %s", exc)
            self.stale = dict(scans.find_stale_scans(self, stale_after))

    def _connect_read_only(self) -> sqlite3.Connection:
        """A database the user cannot write (archived evidence, a read-only disk) can still be
        read: mode=ro, and immutable=1 when SQLite cannot make the WAL's shared-memory file."""
        base = "file:" + urllib.parse.quote(str(self.path.resolve()))
        last: sqlite3.Error | None = None
        for suffix in ("?mode=ro", "?immutable=1"):
            try:
                conn = sqlite3.connect(base + suffix, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                conn.execute("select count(*) from sqlite_master").fetchone()
                _prepare(conn)
                return conn
            except sqlite3.DatabaseError as exc:
                if _is_not_a_database(exc):
                    raise DamagedStore(f"{self.path} is not a camaudit database (or is damaged): {exc}") from exc
                last = exc
        assert last is not None
        raise store_error(self.path, last, "read") from last

    def _check_schema(self) -> None:
        try:
            pending = migrations.pending(self.db)
            missing = [t for t in REQUIRED_TABLES if not self.db.table(t).exists()]
        except sqlite3.DatabaseError as exc:
            raise DamagedStore(f"{self.path} is not a camaudit database (or is damaged): {exc}") from exc
        if pending:
            raise StoreError(f"{self.path} is read-only and needs upgrading by this camaudit version: "
                             "copy it somewhere writable first")
        if missing:
            raise DamagedStore(f"{self.path} is damaged: table {', '.join(missing)} is missing "
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
                raise DamagedStore(f"{self.path} is not a camaudit database (or is damaged): {exc}") from exc
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

    # -- the common calls (each domain module holds the SQL) ------------------------------------

    def start_scan(self, *, targets: Sequence[str], exclude: Sequence[str] = (), config: dict[str, Any] | None = None,
                   config_hash: str = "", addresses: int = 0, site: str | None = None) -> str:
        from . import scans

        return scans.start_scan(self, targets=targets, exclude=exclude, config=config, config_hash=config_hash,
                                addresses=addresses, site=site)

    def touch_scan(self, scan_id: str) -> None:
        from . import scans

        scans.touch_scan(self, scan_id)

    def finish_scan(self, scan_id: str, status: str, *, notes: Sequence[str] = (), error: str | None = None) -> None:
        from . import scans

        scans.finish_scan(self, scan_id, status, notes=notes, error=error)

    def scans(self, limit: int | None = None, *, site: str | None = None) -> list[Scan]:
        from . import scans

        return scans.list_scans(self, limit, site=site)

    def scan(self, scan_ref: str, *, site: str | None = None) -> Scan:
        from . import scans

        return scans.find_scan(self, scan_ref, site=site)

    def add_services(self, scan_id: str, found: Iterable[tuple[str, int]], proto: str = "tcp") -> None:
        from . import observations

        observations.add_services(self, scan_id, found, proto)

    def add_observations(self, scan_id: str, found: Iterable[Observation]) -> None:
        from . import observations

        observations.add_observations(self, scan_id, found)

    def add_problems(self, scan_id: str, address: str, problems: Sequence[str]) -> None:
        from . import observations

        observations.add_problems(self, scan_id, address, problems)

    def add_device_settings(self, scan_id: str, settings: DeviceSettings | dict[str, Any]) -> None:
        from . import observations

        observations.add_device_settings(self, scan_id, settings)

    def device_settings(self, scan_id: str) -> dict[str, DeviceSettings]:
        from . import observations

        return observations.device_settings(self, scan_id)

    def hosts_of_scan(self, scan_id: str) -> list[dict[str, Any]]:
        from . import observations

        return observations.hosts_of_scan(self, scan_id)

    def address_history(self, address: str, *, site: str | None = None) -> list[dict[str, Any]]:
        from . import observations

        return observations.address_history(self, address, site=site)

    def add_identity(self, scan_id: str, address: str, identity: Identity, *, mac: str | None = None) -> str:
        from . import devices

        return devices.add_identity(self, scan_id, address, identity, mac=mac)


def open_store(path: str | Path, *, create: bool = True, stale_after: float = STALE_AFTER) -> Store:
    """Open (and migrate) the store at ``path``. With ``create=False`` a missing file is a
    UsageError rather than a new empty database (for commands that only read).

    Opening marks ``running`` scans whose heartbeat is older than ``stale_after`` seconds as
    ``interrupted`` (their process was killed; :attr:`Store.marked_stale`); a read-only store
    only shows them so."""
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
