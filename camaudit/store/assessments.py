"""Assessments: frozen records of what a scan was assessed with (policy, register, signatures,
camaudit version, the verdicts used) and the findings and reconciliation they produced. An
assessment is written once and never rewritten."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..model import Assessment, Finding, severity_rank
from .observations import _address_sort_key

if TYPE_CHECKING:
    from .db import Store


def save_assessment(store: Store, assessment: Assessment, findings: Iterable[Finding],
                    reconciliation: Sequence[dict[str, Any]], *, only_if_first: bool = False) -> bool:
    """Record a new assessment with its findings and reconciliation, in one transaction. With
    ``only_if_first``, nothing is written when the scan has an assessment already (two reports
    at once make one first assessment); returns whether it was written. ``findings`` may be an
    iterator: each is written as it comes (and is not taken when nothing is written)."""
    with store.write() as db:
        if only_if_first and db.execute("select 1 from assessments where scan_id = ? limit 1",
                                        [assessment.scan_id]).fetchone():
            return False
        db.table("assessments").insert({
            "id": assessment.id, "scan_id": assessment.scan_id, "site": assessment.site,
            "created_at": assessment.created_at, "policy_hash": assessment.policy_hash,
            "policy_source": assessment.policy_source, "register_hash": assessment.register_hash,
            "register_imported_at": assessment.register_imported_at,
            "register": json.dumps(assessment.register, default=str), "signatures_hash": assessment.signatures_hash,
            "camaudit_version": assessment.camaudit_version, "reason": assessment.reason,
            "verdict_ids": json.dumps(assessment.verdict_ids), "egress_runs": json.dumps(assessment.egress_runs),
        }, pk="id")  # fmt: skip
        if reconciliation:
            db.table("reconciliation").insert_all(
                [r | {"assessment_id": assessment.id} for r in reconciliation], pk=("assessment_id", "entry"),
                replace=True)
        # A generator: each finding's evidence is made JSON as its row is written, not all at
        # once (issue 15: the rows of a large scan's findings were a copy of them all).
        db.table("findings").insert_all(
            ({k: v for k, v in f.to_json().items() if k != "evidence"}
             | {"assessment_id": assessment.id, "evidence": json.dumps(f.evidence, default=str),
                "assessed_at": assessment.created_at} for f in findings),
            pk=("assessment_id", "id"), replace=True)
    return True


def _from_row(row: dict[str, Any]) -> Assessment:
    def listed(text: Any) -> list[Any]:
        try:
            value = json.loads(text) if text else []
        except ValueError:
            return []
        return value if isinstance(value, list) else []

    return Assessment(
        id=row["id"], scan_id=row["scan_id"], site=row["site"], created_at=row["created_at"],
        policy_hash=row["policy_hash"] or "", policy_source=row["policy_source"] or "",
        register_hash=row["register_hash"] or "", register_imported_at=row["register_imported_at"],
        signatures_hash=row["signatures_hash"] or "", camaudit_version=row["camaudit_version"] or "",
        reason=row["reason"] or "", verdict_ids=[int(i) for i in listed(row["verdict_ids"])],
        egress_runs=[str(r) for r in listed(row["egress_runs"])], register=listed(row["register"]),
        inputs_recorded=row["register"] is not None and row["verdict_ids"] is not None,
    )  # fmt: skip



def latest_assessment(store: Store, scan_id: str) -> Assessment | None:
    row = next(iter(store.db.query("select * from assessments where scan_id = ? order by created_at desc, rowid desc "
                                   "limit 1", [scan_id])), None)
    return _from_row(row) if row else None


def assessment_by_ref(store: Store, ref: str) -> Assessment | None:
    row = next(iter(store.db.query("select * from assessments where id = ? or id like ? order by created_at desc limit 1",
                                   [ref, ref.replace("%", "").replace("_", "") + "%"])), None)
    return _from_row(row) if row else None


def assessments_of_scan(store: Store, scan_id: str) -> list[Assessment]:
    return [_from_row(r) for r in store.db.query("select * from assessments where scan_id = ? order by created_at, rowid",
                                                 [scan_id])]


def has_register_snapshot(store: Store, assessment_id: str) -> bool:
    row = store.db.execute("select register from assessments where id = ?", [assessment_id]).fetchone()
    return bool(row and row[0] is not None)


def has_verdict_snapshot(store: Store, assessment_id: str) -> bool:
    row = store.db.execute("select verdict_ids from assessments where id = ?", [assessment_id]).fetchone()
    return bool(row and row[0] is not None)


def each_finding(store: Store, assessment_id: str) -> Iterator[Finding]:
    """The findings of one assessment, most severe first, read one at a time: only their
    sort keys are held, not their evidence (issue 15)."""
    keys = [(_order(r["severity"], r["rule"], r["subject"]), r["id"])
            for r in store.db.query("select id, rule, severity, subject from findings where assessment_id = ?",
                                    [assessment_id])]
    keys.sort()
    for _, finding_id in keys:
        for r in store.db.query("select * from findings where assessment_id = ? and id = ?", [assessment_id, finding_id]):
            yield _finding(r)


def _finding(r: dict[str, Any]) -> Finding:
    try:
        evidence = json.loads(r["evidence"]) if r["evidence"] else {}
    except ValueError:
        evidence = {}
    return Finding(r["id"], r["scan_id"], r["rule"], r["severity"], r["subject"], r["title"], r["detail"],
                   evidence if isinstance(evidence, dict) else {})


def findings_of(store: Store, assessment_id: str) -> list[Finding]:
    """The findings of one assessment, most severe first."""
    findings = [_finding(r) for r in store.db.query("select * from findings where assessment_id = ?", [assessment_id])]
    findings.sort(key=finding_order)
    return findings


def finding_order(finding: Finding) -> tuple[int, str, tuple[int, int], str]:
    """Most severe first, then by rule, then by address in numeric order."""
    return _order(finding.severity, finding.rule, finding.subject)


def _order(severity: str, rule: str, subject: str) -> tuple[int, str, tuple[int, int], str]:
    return (-severity_rank(severity), rule, _address_sort_key(subject), subject)
