"""Verdicts: one row per verdict, holding the Verdict's own JSON document
(:meth:`Verdict.to_json`) and the columns queries need. A verdict belongs to a scan (decided
inside it) or to an egress run (a standalone check, a capture); a later decision on the same
subject replaces it for what is *current*, and the earlier row stays for the assessments that
were made on it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..egress.results import Verdict
from ..model import DEFAULT_SITE

if TYPE_CHECKING:
    from .db import Store


def write_verdicts(store: Store, verdicts: Sequence[Verdict], *, scan_id: str | None = None,
                   egress_run_id: str | None = None, site: str | None = None,
                   device_ids: dict[str, str] | None = None) -> list[int]:
    """Record verdicts of a scan or an egress run; each replaces the current verdict on the same
    subject of the same scan or run. Returns the new rows' ids."""
    if site is None:
        from .scans import site_of_scan

        site = site_of_scan(store, scan_id) if scan_id else DEFAULT_SITE
    owner, value = ("scan_id", scan_id) if scan_id else ("egress_run_id", egress_run_id)
    ids: list[int] = []
    with store.write() as db:
        for v in verdicts:
            db.execute(f"update verdicts set current = 0 where {owner} = ? and subject_kind = ? and subject = ?",  # noqa: S608
                       [value, v.subject_kind, v.subject])
            doc = v.to_json()
            table = db.table("verdicts").insert({
                "scan_id": scan_id, "egress_run_id": egress_run_id, "site": site, "subject_kind": v.subject_kind,
                "subject": v.subject, "device_id": (device_ids or {}).get(v.subject), "verdict": v.verdict,
                "egress": v.egress, "exposed": int(v.exposed), "current": 1, "decided_at": v.decided_at,
                "document": json.dumps(doc, default=str),
            })  # fmt: skip
            ids.append(int(str(table.last_pk)))
    return ids


def _load(rows: Sequence[dict[str, object]]) -> list[tuple[int, Verdict]]:
    out = []
    for r in rows:
        try:
            doc = json.loads(str(r["document"]))
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append((int(str(r["id"])), Verdict.from_json(doc)))
    return out


def scan_verdicts(store: Store, scan_id: str) -> list[tuple[int, Verdict]]:
    """The current verdicts of a scan, with their row ids, in the order they were decided."""
    return _load(list(store.db.query("select id, document from verdicts where scan_id = ? and current = 1 "
                                      "order by id", [scan_id])))


def run_verdicts(store: Store, run_ids: Sequence[str]) -> list[tuple[int, Verdict]]:
    """The current verdicts decided by these egress runs."""
    out: list[tuple[int, Verdict]] = []
    for run_id in run_ids:
        out += _load(list(store.db.query("select id, document from verdicts where egress_run_id = ? and current = 1 "
                                         "order by id", [run_id])))
    return out


def verdicts_by_id(store: Store, ids: Sequence[int]) -> list[tuple[int, Verdict]]:
    """The verdict rows an assessment was made on, whatever has been decided since."""
    out: list[tuple[int, Verdict]] = []
    for i in range(0, len(ids), 500):
        chunk = list(ids[i : i + 500])
        marks = ",".join("?" * len(chunk))
        out += _load(list(store.db.query(f"select id, document from verdicts where id in ({marks}) order by id", chunk)))  # noqa: S608
    return out


def current_verdict_words(store: Store, *, scan_id: str | None = None, egress_run_id: str | None = None) -> list[str]:
    owner, value = ("scan_id", scan_id) if scan_id else ("egress_run_id", egress_run_id)
    return [r[0] for r in store.db.execute(f"select verdict from verdicts where {owner} = ? and current = 1 order by id",  # noqa: S608
                                           [value]).fetchall()]
