"""Findings and the severity vocabulary, defined once (DESIGN.md section 6)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: Severities, least to most severe. A contract: policies, --fail-on and exports name them.
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")


def severity_rank(severity: str) -> int:
    """0 for info up to 4 for critical; ValueError for anything else."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: a rule of the policy that held for one subject of one scan."""

    id: str
    scan_id: str
    rule: str
    severity: str
    subject: str  # an address, asset:<id>, or segment:<name>
    title: str
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "scan_id": self.scan_id, "rule": self.rule, "severity": self.severity,
            "subject": self.subject, "title": self.title, "detail": self.detail, "evidence": self.evidence,
        }  # fmt: skip


def severity_at_least(findings: Iterable[Finding], threshold: str) -> bool:
    """True when a finding is at ``threshold`` or above (``none`` never is; DESIGN.md section 7)."""
    if threshold == "none":
        return False
    floor = severity_rank(threshold)
    return any(severity_rank(f.severity) >= floor for f in findings)


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    """Most severe first: {"critical": n, "high": n, ...}."""
    counts = dict.fromkeys(reversed(SEVERITIES), 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts
