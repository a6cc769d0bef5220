"""Scans and sites: starting and finishing scans, finding them (``latest`` is the latest
camera scan, of the site when one is named), and the sites and segments they belong to.

A running scan records a heartbeat every few seconds (:func:`touch_scan`). A scan that was killed
(SIGKILL, a power cut) cannot mark itself, so every writable open marks a ``running`` scan whose
heartbeat is older than ``stale_after`` seconds as ``interrupted``, with a note
(:func:`mark_stale_scans`); a read-only open only shows it so (:func:`find_stale_scans`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import socket
import sqlite3
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import UsageError
from ..model import DEFAULT_SITE, SCAN_STATUSES, Scan, Site, utc_now

if TYPE_CHECKING:
    from .db import Store

log = logging.getLogger(__name__)

_SELECT = ("select s.*, (select count(*) from hosts h where h.scan_id = s.id) as host_count from scans s ")


def ensure_site(db: Any, site: str, segments: Sequence[str] = ()) -> None:
    """Record the site (and the CIDRs it is scanned with as its segments), inside a write."""
    now = utc_now()
    db.table("sites").insert({"name": site, "created_at": now}, pk="name", ignore=True)
    for cidr in segments:
        try:
            network = str(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue  # a range or a name: not a segment
        db.table("segments").insert({"site": site, "cidr": network, "first_seen": now, "last_seen": now},
                                    pk=("site", "cidr"), ignore=True)
        db.execute("update segments set last_seen = ? where site = ? and cidr = ?", [now, site, network])


def start_scan(store: Store, *, targets: Sequence[str], exclude: Sequence[str] = (),
               config: dict[str, Any] | None = None, config_hash: str = "", addresses: int = 0,
               site: str | None = None, started_at: str | None = None) -> str:
    """Record a new running scan. ``started_at`` is for evidence gathered earlier by another
    tool (an imported nmap run); a scan camaudit runs starts now."""
    scan_id = str(uuid.uuid4())
    site = site or DEFAULT_SITE
    now = utc_now()
    started_at = started_at or now
    with store.write() as db:
        ensure_site(db, site, targets)
        db.table("scans").insert({
            "id": scan_id, "site": site, "started_at": started_at, "finished_at": None, "status": "running",
            "heartbeat_at": now, "targets": json.dumps(list(targets)), "exclude": json.dumps(list(exclude)),
            "config_hash": config_hash, "config": json.dumps(config or {}, sort_keys=True, default=str),
            "camaudit_version": __version__, "host": socket.gethostname(), "addresses_scanned": addresses,
            "notes": "[]", "error": None,
        })  # fmt: skip
    return scan_id


def finish_scan(store: Store, scan_id: str, status: str, *, notes: Sequence[str] = (), error: str | None = None,
                finished_at: str | None = None) -> None:
    if status not in SCAN_STATUSES:
        raise ValueError(f"unknown scan status {status!r}")
    with store.write() as db:
        db.table("scans").update(scan_id, {"status": status, "finished_at": finished_at or utc_now(),
                                           "notes": json.dumps(list(notes)), "error": error})


def add_note(store: Store, scan_id: str, note: str) -> None:
    """Append a plain-language note to a scan (kept once)."""
    with store.write() as db:
        row = db.execute("select notes from scans where id = ?", [scan_id]).fetchone()
        notes = json.loads(row[0] or "[]") if row else []
        if note not in notes:
            db.execute("update scans set notes = ? where id = ?", [json.dumps([*notes, note]), scan_id])


def scan_from_row(row: dict[str, Any], stale: dict[str, str] | None = None) -> Scan:
    """A scan row as a Scan. ``stale`` (scan id -> note) holds killed scans a read-only store
    could not mark: they are shown as interrupted, with the note, and nothing is written."""
    note = (stale or {}).get(row["id"])
    return Scan(
        id=row["id"], site=row.get("site") or DEFAULT_SITE, started_at=row["started_at"],
        finished_at=row["finished_at"], status="interrupted" if note else row["status"],
        targets=json.loads(row["targets"] or "[]"), addresses_scanned=row["addresses_scanned"] or 0,
        hosts=row.get("host_count", 0), notes=json.loads(row["notes"] or "[]") + ([note] if note else []),
        camaudit_version=row["camaudit_version"], error=row["error"], heartbeat_at=row.get("heartbeat_at"),
    )  # fmt: skip


# -- heartbeats and killed scans ------------------------------------------------------------------


def scan_with_config_hash(store: Store, site: str, config_hash: str) -> Scan | None:
    """The latest scan of ``site`` recorded with ``config_hash`` (an imported file's digest)."""
    rows = list(store.db.query("select * from scans where site = ? and config_hash = ? order by started_at desc limit 1",
                               [site, config_hash]))
    return scan_from_row(rows[0], store.stale) if rows else None


def scan_settings(store: Store, scan_id: str) -> dict[str, Any]:
    """The effective configuration a scan recorded when it started ({} when unreadable)."""
    row = store.db.execute("select config from scans where id = ?", [scan_id]).fetchone()
    try:
        doc = json.loads(row[0]) if row and row[0] else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def touch_scan(store: Store, scan_id: str) -> None:
    """The scan's heartbeat: it is alive now. Only a ``running`` scan is touched, so a scan
    already marked otherwise keeps the heartbeat its note names."""
    with store.write() as db:
        db.execute("update scans set heartbeat_at = ? where id = ? and status = 'running'", [utc_now(), scan_id])


def stale_note(marked_at: str, heartbeat_at: str) -> str:
    """The note a killed scan gets when a later command marks it interrupted."""
    return (f"marked interrupted at {marked_at}: no heartbeat since {heartbeat_at} "
            "(the process was probably killed)")


def find_stale_scans(store: Store, stale_after: float) -> list[tuple[str, str]]:
    """(scan id, note) for each ``running`` scan whose heartbeat (or start, for a scan from
    before heartbeats) is older than ``stale_after`` seconds."""
    now = dt.datetime.now(dt.UTC)
    found = []
    for row in store.db.query("select id, coalesce(heartbeat_at, started_at) as beat from scans where status = 'running'"):
        try:
            beat = dt.datetime.fromisoformat(row["beat"])
        except (TypeError, ValueError):
            continue  # not a time camaudit wrote: leave the row as it is
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=dt.UTC)
        if (now - beat).total_seconds() > stale_after:
            found.append((row["id"], stale_note(now.isoformat(timespec="seconds"), row["beat"])))
    return found


def mark_stale_scans(store: Store, stale_after: float) -> list[str]:
    """Mark killed scans ``interrupted`` (their process can no longer do it); returns their ids,
    so that the caller can identify and assess what they stored. The check is repeated inside
    the write lock, so a heartbeat that lands meanwhile is respected."""
    if not find_stale_scans(store, stale_after):
        return []
    marked = []
    with store.write() as db:
        for scan_id, note in find_stale_scans(store, stale_after):
            row = db.execute("select notes, coalesce(heartbeat_at, started_at) from scans where id = ?",
                             [scan_id]).fetchone()
            notes = json.loads(row[0] or "[]") + [note]
            db.table("scans").update(scan_id, {"status": "interrupted", "finished_at": row[1], "notes": json.dumps(notes)})
            log.info("scan %s: %s", scan_id, note)
            marked.append(scan_id)
    return marked


def mark_interrupted_elsewhere(path: str, scan_id: str, notes: Sequence[str], *, timeout: float = 5.0) -> bool:
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


def list_scans(store: Store, limit: int | None = None, *, site: str | None = None) -> list[Scan]:
    """Camera scans, newest first (egress runs are not scans)."""
    sql, params = _SELECT, []
    if site is not None:
        sql += "where s.site = ? "
        params.append(site)
    sql += "order by s.started_at desc, s.rowid desc"
    if limit:
        sql += f" limit {int(limit)}"
    return [scan_from_row(row, store.stale) for row in store.db.query(sql, params)]


def find_scan(store: Store, scan_ref: str, *, site: str | None = None) -> Scan:
    """A scan by id, unique id prefix, or ``latest`` (the latest camera scan of ``site``, or of
    any site when none is named). UsageError when there is none."""
    if scan_ref == "latest":
        rows = list_scans(store, limit=1, site=site)
        if not rows:
            where = f" for site {site!r}" if site else ""
            raise UsageError(f"{store.path} holds no scans{where} yet")
        return rows[0]
    matches = list(store.db.query(_SELECT + "where s.id like ? order by s.started_at desc",
                                  [scan_ref.replace("%", "").replace("_", "") + "%"]))
    if not matches:
        raise UsageError(f"no scan {scan_ref!r} in {store.path}; `camaudit scans` lists them")
    if len(matches) > 1 and matches[0]["id"] != scan_ref:
        raise UsageError(f"{scan_ref!r} matches {len(matches)} scans; give more of the id")
    return scan_from_row(matches[0], store.stale)


def sites(store: Store) -> list[Site]:
    result = []
    for row in store.db.query("select * from sites order by name"):
        segs = [r["cidr"] for r in store.db.query("select cidr from segments where site = ? order by cidr", [row["name"]])]
        result.append(Site(row["name"], row["created_at"], segs))
    return result


def site_segments(store: Store, site: str) -> list[str]:
    return [r["cidr"] for r in store.db.query("select cidr from segments where site = ? order by cidr", [site])]


def site_of_scan(store: Store, scan_id: str) -> str:
    row = store.db.execute("select site from scans where id = ?", [scan_id]).fetchone()
    return str(row[0]) if row and row[0] else DEFAULT_SITE


def latest_scans_by_site(store: Store) -> list[tuple[str, Scan | None, Scan | None]]:
    """For every site that has a camera scan: (site, its latest scan whatever its status, its
    latest complete scan or None), sites by name. The estate report stands on these."""
    result = []
    names = [r["site"] for r in store.db.query("select distinct coalesce(site, ?) as site from scans order by 1",
                                               [DEFAULT_SITE])]
    for name in names:
        latest = list_scans(store, limit=1, site=name)
        complete = [scan_from_row(row, store.stale) for row in store.db.query(
            _SELECT + "where s.site = ? and s.status = 'complete' order by s.started_at desc, s.rowid desc limit 1",
            [name])]
        complete = [s for s in complete if s.status == "complete"]  # a stale one reads as interrupted
        result.append((name, latest[0] if latest else None, complete[0] if complete else None))
    return result
