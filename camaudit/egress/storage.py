"""Egress evidence in the store: runs, listener logs, captures and verdicts, through the store's
egress and verdicts modules (no SQL here). A standalone egress run is an egress run, never a
scan: its verdicts belong to the run; a check run inside a scan belongs to that scan.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..store import Store
from ..store import egress as stored
from ..store import verdicts as stored_verdicts
from . import wire
from .results import ActiveResult, ListenerEntry, Verdict
from .verdict import DEFAULT_CONTROL_WINDOW_S, active_verdict, apply_listener_log, select_controls

log = logging.getLogger(__name__)

MAX_LOG_LINE = 4096


def judge_run(store: Store, run: ActiveResult, *, window_s: float = DEFAULT_CONTROL_WINDOW_S,
              subject: str | None = None) -> tuple[Verdict, list[ActiveResult]]:
    """Join the listener log, find the controls, decide. Returns the verdict and the controls."""
    apply_listener_log(run, stored.listener_entries(store, (p.nonce or "" for p in run.paths)))
    controls = select_controls(run, stored.control_runs(store, exclude=run.run_id), window_s) if not run.control else []
    for c in controls:
        apply_listener_log(c, stored.listener_entries(store, (p.nonce or "" for p in c.paths)))
    return active_verdict(run, controls, window_s=window_s, subject=subject), controls


def write_verdicts(store: Store, scan_id: str, verdicts: Sequence[Verdict]) -> None:
    """Record a scan's verdicts; each replaces the scan's current verdict on the same subject."""
    stored_verdicts.write_verdicts(store, verdicts, scan_id=scan_id)


def write_run_verdicts(store: Store, run_id: str, verdicts: Sequence[Verdict], *, site: str | None = None) -> None:
    """Record the verdicts an egress run decided (a standalone check, a capture)."""
    stored_verdicts.write_verdicts(store, verdicts, egress_run_id=run_id, site=site)


# -- listener logs ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportSummary:
    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    bad: int = 0
    matched_runs: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    run_id: str | None = None  # the listener-log egress run recording this import

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "lines": self.lines, "imported": self.imported, "duplicates": self.duplicates, "bad": self.bad,
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
    arrived (and the segment runs whose controls it concerns). Each re-decided verdict is
    recorded where the run's first one was: with its scan, or with the run."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read the listener log {path}: {exc.strerror}") from exc
    summary = ImportSummary()
    entries: list[ListenerEntry] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        summary.lines += 1
        entry = parse_log_line(line)
        if entry is None:
            summary.bad += 1
            continue
        entries.append(entry)
    if summary.lines and not entries:
        raise InputError(f"{path} holds no listener log lines (JSON lines written by `camaudit egress listen --log`)")
    summary.imported = stored.add_listener_log(store, entries, str(path))
    summary.duplicates = len(entries) - summary.imported
    run_ids = stored.runs_for_nonces(store, (e.nonce for e in entries))
    affected = set(run_ids)
    controls = [r for r in (stored.load_active(store, i) for i in run_ids) if r is not None and r.control]
    if controls:
        for seg in stored.segment_runs(store):
            if select_controls(seg, controls, window_s):
                affected.add(seg.run_id)
    summary.matched_runs = sorted(run_ids)
    # The import itself is passive evidence: an egress run of its own (never a scan).
    summary.run_id = stored.start_passive_run(store, "listener-log", options={
        "file": str(path), "lines": summary.lines, "imported": summary.imported, "matched_runs": summary.matched_runs})
    for run_id in sorted(affected):
        run = stored.load_active(store, run_id)
        meta = stored.egress_run(store, run_id)
        if run is None or meta is None or run.control:
            continue  # a control run records no verdict: its vantage is not a camera segment
        verdict, _ = judge_run(store, run, window_s=window_s)
        if meta.scan_id:
            write_verdicts(store, meta.scan_id, [verdict])
        else:
            write_run_verdicts(store, run_id, [verdict], site=meta.site)
        summary.verdicts.append(verdict)
    return summary
