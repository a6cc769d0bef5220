"""Egress evidence in the store: runs, tests, listener logs, capture flows and verdicts.

Writes go through :meth:`camaudit.store.Store.write` (one transaction each). Verdict rows follow
the assessment schema's agreement (:mod:`camaudit.assess_schema`): one row per subject and
verdict, so an EXPOSED row sits beside the egress verdict of the same subject.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from ..model import utc_now
from ..model.verdicts import reasons_to_json
from ..store import Store
from . import wire
from .results import EXPOSED, ActiveResult, ListenerEntry, PassiveResult, PathResult, Verdict
from .verdict import DEFAULT_CONTROL_WINDOW_S, active_verdict, apply_listener_log, select_controls

log = logging.getLogger(__name__)

MAX_LOG_LINE = 4096


def start_egress_scan(store: Store, what: str, options: dict[str, Any]) -> str:
    """A scan row for a standalone egress run (verdicts and flows belong to a scan)."""
    return store.start_scan(targets=[], config={"egress": what, **options})


def save_run(store: Store, run: ActiveResult, *, scan_id: str, options: dict[str, Any]) -> None:
    with store.write() as db:
        db.table("egress_runs").insert({
            "id": run.run_id, "scan_id": scan_id, "control": int(run.control), "segment": run.segment,
            "listeners": json.dumps(run.listeners), "vantage": json.dumps(run.vantage),
            "started_at": run.started_at, "finished_at": run.finished_at, "planned": json.dumps(run.planned),
            "route": json.dumps(run.route), "notes": json.dumps(run.notes), "options": json.dumps(options),
            "camaudit_version": __version__,
        }, pk="id")
        db.table("egress_tests").insert_all([
            {"run_id": run.run_id, "path": p.path, "nonce": p.nonce, "result": p.result, "basis": p.basis,
             "conclusive": int(p.conclusive), "proto": p.proto, "dst": p.dst, "port": p.port,
             "started_at": p.started_at, "ended_at": p.ended_at, "evidence": json.dumps(p.to_json())}
            for p in run.paths
        ], pk=("run_id", "path"))


def _run_from_row(store: Store, row: dict[str, Any]) -> ActiveResult:
    paths = [PathResult.from_json(json.loads(t["evidence"]))
             for t in store.db.query("select evidence from egress_tests where run_id = ? order by rowid", [row["id"]])]
    return ActiveResult(
        run_id=row["id"], control=bool(row["control"]), listeners=json.loads(row["listeners"] or "[]"),
        vantage=json.loads(row["vantage"] or "{}"), started_at=row["started_at"], finished_at=row["finished_at"],
        planned=json.loads(row["planned"] or "[]"), paths=paths, route=json.loads(row["route"] or "null"),
        notes=json.loads(row["notes"] or "[]"), segment=row["segment"],
    )


def load_run(store: Store, run_id: str) -> ActiveResult | None:
    row = next(iter(store.db.query("select * from egress_runs where id = ?", [run_id])), None)
    return _run_from_row(store, row) if row else None


def run_scan_id(store: Store, run_id: str) -> str | None:
    row = next(iter(store.db.query("select scan_id from egress_runs where id = ?", [run_id])), None)
    return row["scan_id"] if row else None


def control_candidates(store: Store, run: ActiveResult, window_s: float) -> list[ActiveResult]:
    """Control runs recorded in the store near ``run`` (filtered exactly by :func:`select_controls`)."""
    rows = list(store.db.query("select * from egress_runs where control = 1 and id != ?", [run.run_id]))
    return select_controls(run, (_run_from_row(store, r) for r in rows), window_s)


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


def judge_run(store: Store, run: ActiveResult, *, window_s: float = DEFAULT_CONTROL_WINDOW_S,
              subject: str | None = None) -> tuple[Verdict, list[ActiveResult]]:
    """Join the listener log, find the controls, decide. Returns the verdict and the controls."""
    apply_listener_log(run, listener_entries(store, (p.nonce or "" for p in run.paths)))
    controls = control_candidates(store, run, window_s) if not run.control else []
    for c in controls:
        apply_listener_log(c, listener_entries(store, (p.nonce or "" for p in c.paths)))
    return active_verdict(run, controls, window_s=window_s, subject=subject), controls


def write_verdicts(store: Store, scan_id: str, verdicts: Sequence[Verdict]) -> None:
    """Replace this scan's verdict rows for each subject with the given verdicts (the egress row,
    and an EXPOSED row beside it when the subject is exposed)."""
    with store.write() as db:
        for v in verdicts:
            db.execute("delete from verdicts where scan_id = ? and subject_kind = ? and subject = ?",
                       [scan_id, v.subject_kind, v.subject])
            rows = [v.egress] + ([EXPOSED] if v.exposed else [])
            for word in rows:
                db.table("verdicts").insert({
                    "scan_id": scan_id, "subject_kind": v.subject_kind, "subject": v.subject, "verdict": word,
                    # the reasons as codes (flat JSON objects); words are the report layer's
                    "qualifiers": json.dumps(reasons_to_json(v.qualifiers)),
                    "missing": json.dumps(reasons_to_json(v.missing)),
                    "paths": json.dumps(v.paths), "decided_at": v.decided_at,
                    "evidence": json.dumps(v.evidence, default=str),
                })


# -- listener logs ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportSummary:
    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    bad: int = 0
    matched_runs: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "imported": self.imported, "duplicates": self.duplicates, "bad": self.bad,
                "matched_runs": self.matched_runs, "verdicts": [v.to_json() for v in self.verdicts]}


def parse_log_line(line: str) -> ListenerEntry | None:
    """One JSON line of a listener log, or None when it is not one."""
    if len(line) > MAX_LOG_LINE:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    nonce = str(doc.get("nonce") or "").lower()
    at = str(doc.get("at") or "")
    if not wire.is_nonce(nonce) or not at:
        return None
    try:
        _dt.datetime.fromisoformat(at)
    except ValueError:
        return None
    port = doc.get("port")
    return ListenerEntry(nonce=nonce, src=str(doc.get("src") or "")[:64], at=at, proto=str(doc.get("proto") or "")[:16],
                         port=port if isinstance(port, int) else None, dst=str(doc.get("dst") or "")[:64],
                         kind=str(doc.get("kind") or "")[:16])


def import_listener_log(store: Store, path: str | Path, *, window_s: float = DEFAULT_CONTROL_WINDOW_S) -> ImportSummary:
    """Merge a listener log into the store and re-decide every run whose probes it proves
    arrived (and the segment runs whose controls it concerns)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read the listener log {path}: {exc.strerror}") from exc
    summary = ImportSummary()
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        summary.lines += 1
        entry = parse_log_line(line)
        if entry is None:
            summary.bad += 1
            continue
        digest = sha256("\x1f".join([entry.nonce, entry.src, entry.at, entry.proto, str(entry.port)]).encode())
        rows.append({"id": digest.hexdigest()[:32], "nonce": entry.nonce, "src": entry.src, "dst": entry.dst,
                     "proto": entry.proto, "port": entry.port, "kind": entry.kind, "at": entry.at,
                     "source_file": str(path), "imported_at": utc_now()})
    if summary.lines and not rows:
        raise InputError(f"{path} holds no listener log lines (JSON lines written by `camaudit egress listen --log`)")
    before = store.db.table("listener_log").count
    with store.write() as db:
        db.table("listener_log").insert_all(rows, pk="id", ignore=True)
    summary.imported = store.db.table("listener_log").count - before
    summary.duplicates = len(rows) - summary.imported
    nonces = sorted({str(r["nonce"]) for r in rows})
    run_ids: set[str] = set()
    for i in range(0, len(nonces), 500):
        chunk = nonces[i : i + 500]
        marks = ",".join("?" * len(chunk))
        run_ids |= {r["run_id"] for r in store.db.query(
            f"select distinct run_id from egress_tests where lower(nonce) in ({marks})", chunk)}  # noqa: S608
    affected = set(run_ids)
    for run_id in run_ids:
        run = load_run(store, run_id)
        if run is not None and run.control:
            for r in store.db.query("select id from egress_runs where control = 0"):
                seg = load_run(store, r["id"])
                if seg is not None and select_controls(seg, [run], window_s):
                    affected.add(seg.run_id)
    summary.matched_runs = sorted(run_ids)
    for run_id in sorted(affected):
        run = load_run(store, run_id)
        scan_id = run_scan_id(store, run_id)
        if run is None or scan_id is None or run.control:
            continue  # a control run records no verdict: its vantage is not a camera segment
        verdict, _ = judge_run(store, run, window_s=window_s)
        write_verdicts(store, scan_id, [verdict])
        summary.verdicts.append(verdict)
    return summary


# -- captures ---------------------------------------------------------------------------------------


def save_passive(store: Store, scan_id: str, result: PassiveResult) -> None:
    rows = []
    for f in result.flows:
        key = f"{scan_id}|{result.source}|flow|{f.device}|{f.remote}|{f.proto}|{f.port}"
        rows.append({"id": sha256(key.encode()).hexdigest()[:32], "scan_id": scan_id, "capture": result.source,
                     "kind": "flow", "device": f.device, "remote": f.remote, "proto": f.proto, "port": f.port,
                     "state": f.state, "first_seen": f.first_seen, "last_seen": f.last_seen,
                     "detail": json.dumps(f.to_json())})
    for q in result.lookups:
        key = f"{scan_id}|{result.source}|lookup|{q.device}|{q.resolver}|{q.qname}"
        rows.append({"id": sha256(key.encode()).hexdigest()[:32], "scan_id": scan_id, "capture": result.source,
                     "kind": "lookup", "device": q.device, "remote": q.resolver, "proto": "dns", "port": 53,
                     "state": "answered" if q.answered else "unanswered", "first_seen": q.at, "last_seen": q.at,
                     "detail": json.dumps(q.to_json())})
    if rows:
        with store.write() as db:
            db.table("egress_flows").insert_all(rows, pk="id", replace=True)
