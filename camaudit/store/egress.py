"""Egress runs and their evidence: active checks and controls with their tested paths, the
listener log, and captures. An egress run is never a scan; one that ran inside a scan
(``camaudit scan --listener``) names it."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..egress.results import ActiveResult, ListenerEntry, PassiveResult, PathResult
from ..model import DEFAULT_SITE, EgressRun, utc_now
from .scans import ensure_site

if TYPE_CHECKING:
    from .db import Store


def save_run(store: Store, run: ActiveResult, *, options: dict[str, Any], scan_id: str | None = None,
             site: str | None = None) -> None:
    """Record an active check or control run and its tested paths."""
    site = site or DEFAULT_SITE
    with store.write() as db:
        ensure_site(db, site, [run.segment] if run.segment else [])
        db.table("egress_runs").insert({
            "id": run.run_id, "scan_id": scan_id, "site": site, "kind": "control" if run.control else "check",
            "control": int(run.control), "segment": run.segment, "listeners": json.dumps(run.listeners),
            "vantage": json.dumps(run.vantage), "started_at": run.started_at, "finished_at": run.finished_at,
            "planned": json.dumps(run.planned), "route": json.dumps(run.route), "notes": json.dumps(run.notes),
            "options": json.dumps(options), "camaudit_version": __version__,
        }, pk="id")  # fmt: skip
        db.table("egress_tests").insert_all([
            {"run_id": run.run_id, "path": p.path, "nonce": p.nonce, "result": p.result, "basis": p.basis,
             "conclusive": int(p.conclusive), "proto": p.proto, "dst": p.dst, "port": p.port,
             "started_at": p.started_at, "ended_at": p.ended_at, "evidence": json.dumps(p.to_json())}
            for p in run.paths
        ], pk=("run_id", "path"))  # fmt: skip


def start_passive_run(store: Store, kind: str, *, options: dict[str, Any], site: str | None = None,
                      segment: str | None = None, started_at: str | None = None) -> str:
    """Record a passive evidence run (a capture, a listener log); returns its id."""
    import uuid

    run_id = str(uuid.uuid4())
    site = site or DEFAULT_SITE
    now = utc_now()
    with store.write() as db:
        ensure_site(db, site)
        db.table("egress_runs").insert({
            "id": run_id, "scan_id": None, "site": site, "kind": kind, "control": 0, "segment": segment,
            "listeners": "[]", "vantage": "{}", "started_at": started_at or now, "finished_at": now, "planned": "[]",
            "route": "null", "notes": "[]", "options": json.dumps(options, default=str), "camaudit_version": __version__,
        }, pk="id")  # fmt: skip
    return run_id


def _active_from_row(store: Store, row: dict[str, Any]) -> ActiveResult:
    paths = [PathResult.from_json(json.loads(t["evidence"]))
             for t in store.db.query("select evidence from egress_tests where run_id = ? order by rowid", [row["id"]])]
    return ActiveResult(
        run_id=row["id"], control=bool(row["control"]), listeners=json.loads(row["listeners"] or "[]"),
        vantage=json.loads(row["vantage"] or "{}"), started_at=row["started_at"], finished_at=row["finished_at"],
        planned=json.loads(row["planned"] or "[]"), paths=paths, route=json.loads(row["route"] or "null"),
        notes=json.loads(row["notes"] or "[]"), segment=row["segment"],
    )


def _run_from_row(row: dict[str, Any]) -> EgressRun:
    return EgressRun(
        id=row["id"], site=row.get("site") or DEFAULT_SITE, kind=row.get("kind") or ("control" if row["control"] else "check"),
        segment=row["segment"], started_at=row["started_at"], finished_at=row["finished_at"], scan_id=row["scan_id"],
        control=bool(row["control"]), vantage=json.loads(row["vantage"] or "{}"),
        listeners=json.loads(row["listeners"] or "[]"), options=json.loads(row["options"] or "{}"),
    )  # fmt: skip


def load_active(store: Store, run_id: str) -> ActiveResult | None:
    row = next(iter(store.db.query("select * from egress_runs where id = ?", [run_id])), None)
    return _active_from_row(store, row) if row else None


def egress_run(store: Store, run_id: str) -> EgressRun | None:
    row = next(iter(store.db.query("select * from egress_runs where id = ?", [run_id])), None)
    return _run_from_row(row) if row else None


def control_runs(store: Store, *, exclude: str | None = None) -> list[ActiveResult]:
    return [_active_from_row(store, r) for r in store.db.query(
        "select * from egress_runs where control = 1 and id != ?", [exclude or ""])]


def segment_runs(store: Store) -> list[ActiveResult]:
    """Every active check run from a camera segment (not the controls)."""
    return [_active_from_row(store, r) for r in store.db.query(
        "select * from egress_runs where control = 0 and coalesce(kind, 'check') = 'check'")]


def runs_near(store: Store, site: str, start: str, end: str, window_s: float) -> list[EgressRun]:
    """The egress runs of a site, other than a scan's own, that started within ``window_s`` of
    the span [start, end] (a scan's control window)."""
    lo, hi = _shift(start, -window_s), _shift(end, window_s)
    rows = store.db.query("select * from egress_runs where site = ? and scan_id is null and control = 0 "
                          "and started_at >= ? and started_at <= ? order by started_at", [site, lo, hi])
    return [_run_from_row(r) for r in rows]


def runs_of_scan(store: Store, scan_id: str) -> list[EgressRun]:
    return [_run_from_row(r) for r in store.db.query("select * from egress_runs where scan_id = ? order by started_at",
                                                     [scan_id])]


def _shift(when: str, seconds: float) -> str:
    """``when`` moved by ``seconds``, in the store's one timestamp format (string order is time
    order)."""
    try:
        moment = _dt.datetime.fromisoformat(when)
    except ValueError:
        return when
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return (moment + _dt.timedelta(seconds=seconds)).astimezone(_dt.UTC).isoformat(timespec="microseconds")


def listener_entries(store: Store, nonces: Iterable[str]) -> list[ListenerEntry]:
    wanted = sorted({n.lower() for n in nonces if n})
    out: list[ListenerEntry] = []
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for r in store.db.query(f"select * from listener_log where nonce in ({marks})", chunk):  # noqa: S608 - placeholders only
            out.append(ListenerEntry(nonce=r["nonce"], src=r["src"], at=r["at"], proto=r["proto"] or "",
                                     port=r["port"], dst=r["dst"] or "", kind=r["kind"] or ""))
    return out


def add_listener_log(store: Store, entries: Sequence[ListenerEntry], source_file: str) -> int:
    """Store listener log lines (each once); returns how many were new."""
    rows = []
    for entry in entries:
        digest = sha256("\x1f".join([entry.nonce, entry.src, entry.at, entry.proto, str(entry.port)]).encode())
        rows.append({"id": digest.hexdigest()[:32], "nonce": entry.nonce, "src": entry.src, "dst": entry.dst,
                     "proto": entry.proto, "port": entry.port, "kind": entry.kind, "at": entry.at,
                     "source_file": source_file, "imported_at": utc_now()})
    before = store.db.table("listener_log").count
    with store.write() as db:
        db.table("listener_log").insert_all(rows, pk="id", ignore=True)
    return store.db.table("listener_log").count - before


def runs_for_nonces(store: Store, nonces: Iterable[str]) -> set[str]:
    wanted = sorted({n.lower() for n in nonces if n})
    run_ids: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        marks = ",".join("?" * len(chunk))
        run_ids |= {r["run_id"] for r in store.db.query(
            f"select distinct run_id from egress_tests where lower(nonce) in ({marks})", chunk)}  # noqa: S608
    return run_ids


def save_passive(store: Store, run_id: str, result: PassiveResult) -> None:
    rows = []
    for f in result.flows:
        key = f"{run_id}|{result.source}|flow|{f.device}|{f.remote}|{f.proto}|{f.port}"
        rows.append({"id": sha256(key.encode()).hexdigest()[:32], "run_id": run_id, "scan_id": None,
                     "capture": result.source, "kind": "flow", "device": f.device, "remote": f.remote,
                     "proto": f.proto, "port": f.port, "state": f.state, "first_seen": f.first_seen,
                     "last_seen": f.last_seen, "detail": json.dumps(f.to_json())})
    for q in result.lookups:
        key = f"{run_id}|{result.source}|lookup|{q.device}|{q.resolver}|{q.qname}"
        rows.append({"id": sha256(key.encode()).hexdigest()[:32], "run_id": run_id, "scan_id": None,
                     "capture": result.source, "kind": "lookup", "device": q.device, "remote": q.resolver,
                     "proto": "dns", "port": 53, "state": "answered" if q.answered else "unanswered",
                     "first_seen": q.at, "last_seen": q.at, "detail": json.dumps(q.to_json())})
    if rows:
        with store.write() as db:
            db.table("egress_flows").insert_all(rows, pk="id", replace=True)


def runs_of_site(store: Store, site: str, *, limit: int = 50) -> list[EgressRun]:
    """The egress runs of a site (checks, controls, captures, listener logs), newest first."""
    rows = store.db.query("select * from egress_runs where site = ? order by started_at desc, rowid desc limit ?",
                          [site, int(limit)])
    return [_run_from_row(r) for r in rows]
