"""Findings and the severity vocabulary, defined once (DESIGN.md section 6)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

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
    return _any_at_least((f.severity for f in findings), threshold)


def _any_at_least(severities: Iterable[str], threshold: str) -> bool:
    if threshold == "none":
        return False
    floor = severity_rank(threshold)
    return any(severity_rank(severity) >= floor for severity in severities)


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    """Most severe first: {"critical": n, "high": n, ...}."""
    counts = dict.fromkeys(reversed(SEVERITIES), 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts


def address_order(text: str) -> tuple[int, int]:
    """Addresses in numeric order, IPv4 before IPv6; anything else after them."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return (9, 0)
    return (ip.version, int(ip))


def finding_order(finding: Finding) -> tuple[int, str, tuple[int, int], str]:
    """Most severe first, then by rule, then by subject (addresses in numeric order)."""
    return (-severity_rank(finding.severity), finding.rule, address_order(finding.subject), finding.subject)


@dataclass(slots=True)
class FindingSummary:
    """What an assessment found, in a size that does not grow with the scan: how many findings
    of each severity, and the most severe of them as headlines (without evidence). A scan's
    result carries this (issue 15); the findings themselves are in the store
    (``camaudit.audit.scan_findings`` reads them whole)."""

    #: How many headlines :attr:`top` keeps.
    TOP: ClassVar[int] = 10

    counts: dict[str, int] = field(default_factory=lambda: count_by_severity(()))
    #: The most severe findings, most severe first (:func:`finding_order`), at most :attr:`TOP`.
    top: list[Finding] = field(default_factory=list)

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> FindingSummary:
        summary = cls()
        for finding in findings:
            summary.add(finding)
        return summary

    def add(self, finding: Finding) -> None:
        """Count one finding, and keep its headline when it is among the most severe so far."""
        self.counts[finding.severity] += 1
        self.top.append(Finding(finding.id, finding.scan_id, finding.rule, finding.severity, finding.subject,
                                finding.title, finding.detail))
        if len(self.top) > 4 * self.TOP:  # sorted now and then, not at every finding
            self._trim()

    def _trim(self) -> None:
        self.top.sort(key=finding_order)
        del self.top[self.TOP:]

    def __post_init__(self) -> None:
        self._trim()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def most_severe(self) -> list[Finding]:
        """The headlines of the most severe findings, most severe first."""
        self._trim()
        return list(self.top)

    def at_least(self, threshold: str) -> bool:
        """:func:`severity_at_least` for the findings counted."""
        return _any_at_least((severity for severity, n in self.counts.items() if n), threshold)
