"""Assessments: frozen records of what a scan was assessed with (policy, register, signatures,
camaudit version, the verdicts used) and the findings and reconciliation they produced. An
assessment is written once and never rewritten."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..model import Assessment, Finding
from ..model.findings import FindingSummary
from ..model.findings import finding_order as finding_order

if TYPE_CHECKING:
    from sqlite_utils import Database

    from .db import Store


def save_assessment(store: Store, assessment: Assessment, findings: Iterable[Finding],
                    reconciliation: Iterable[dict[str, Any]], *, only_if_first: bool = False) -> bool:
    """Record a new assessment with its findings and reconciliation, in one transaction
    (:func:`recording`); returns whether it was written. ``findings`` may be an iterator: each is
    written as it comes (and is not taken when nothing is written)."""
    with recording(store, assessment, only_if_first=only_if_first) as writer:
        if writer is None:
            return False
        for row in reconciliation:
            writer.reconciled(row)
        for finding in findings:
            writer.finding(finding)
    return True


class AssessmentWriter:
    """Writes one assessment's findings and reconciliation rows as they are made, a batch at a
    time, inside the transaction :func:`recording` holds: assessing a large scan holds neither
    its findings nor its rows (issue 15)."""

    BATCH = 256

    def __init__(self, db: Database, assessment: Assessment) -> None:
        self._db = db
        self._assessment = assessment
        self._findings: list[dict[str, Any]] = []
        self._reconciled: list[dict[str, Any]] = []

    def finding(self, finding: Finding) -> None:
        # Each finding's evidence is made JSON as it is taken: the finding itself can go.
        self._findings.append({k: v for k, v in finding.to_json().items() if k != "evidence"} | {
            "assessment_id": self._assessment.id, "evidence": json.dumps(finding.evidence, default=str),
            "assessed_at": self._assessment.created_at})
        if len(self._findings) >= self.BATCH:
            self.flush()

    def reconciled(self, row: dict[str, Any]) -> None:
        self._reconciled.append(row | {"assessment_id": self._assessment.id})
        if len(self._reconciled) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if self._reconciled:
            # Two hosts that resolve to one device (both report its serial) make one entry: the
            # first written stays, whichever order a caller decides them in.
            self._db.table("reconciliation").insert_all(self._reconciled, pk=("assessment_id", "entry"), ignore=True)
            self._reconciled = []
        if self._findings:
            self._db.table("findings").insert_all(self._findings, pk=("assessment_id", "id"), replace=True)
            self._findings = []


@contextmanager
def recording(store: Store, assessment: Assessment, *, only_if_first: bool = False) -> Iterator[AssessmentWriter | None]:
    """Record a new assessment in one transaction: its row now, its findings and reconciliation
    through the writer given, all or nothing. With ``only_if_first``, the writer is None and
    nothing is written when the scan has an assessment already (two reports at once make one
    first assessment)."""
    with store.write() as db:
        if only_if_first and db.execute("select 1 from assessments where scan_id = ? limit 1",
                                        [assessment.scan_id]).fetchone():
            yield None
            return
        db.table("assessments").insert({
            "id": assessment.id, "scan_id": assessment.scan_id, "site": assessment.site,
            "created_at": assessment.created_at, "policy_hash": assessment.policy_hash,
            "policy_source": assessment.policy_source, "register_hash": assessment.register_hash,
            "register_imported_at": assessment.register_imported_at,
            "register": json.dumps(assessment.register, default=str), "signatures_hash": assessment.signatures_hash,
            "camaudit_version": assessment.camaudit_version, "reason": assessment.reason,
            "verdict_ids": json.dumps(assessment.verdict_ids), "egress_runs": json.dumps(assessment.egress_runs),
        }, pk="id")  # fmt: skip
        writer = AssessmentWriter(db, assessment)
        yield writer
        writer.flush()


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
    """The findings of one assessment, most severe first (:func:`finding_order`), read one at a
    time: SQLite orders their ids, and none is held here (issue 15)."""
    ordered = store.db.execute(
        "select id from findings where assessment_id = ? "
        "order by severity_rank(severity) desc, rule, address_order(subject), subject", [assessment_id])
    while ids := ordered.fetchmany(256):
        for (finding_id,) in ids:
            for r in store.db.query("select * from findings where assessment_id = ? and id = ?",
                                    [assessment_id, finding_id]):
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


def summary_of(store: Store, assessment_id: str) -> FindingSummary:
    """How many findings one assessment made by severity, and the headlines of the most severe,
    read row by row (:class:`camaudit.model.findings.FindingSummary`)."""
    summary = FindingSummary()
    for row in store.db.execute("select id, scan_id, rule, severity, subject, title, detail from findings "
                                "where assessment_id = ?", [assessment_id]):
        summary.add(Finding(*row))
    return summary
