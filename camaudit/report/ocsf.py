"""Findings as JSON aligned to the OCSF Compliance Finding class (uid 2003), for SIEMs and GRC
tools (reference/egress.md section 6).

The mapping: each finding is one event; ``compliance.status_id`` follows the rule's status
(1 Pass, 2 Warning, 3 Fail; a CLOSED verdict passes, INCONCLUSIVE warns, OPEN fails, as
egress.md section 6 maps them); ``compliance.standards`` carries the rule's standards and
``compliance.control`` its id; ``evidences`` carry the device and everything behind its
identity and verdict; ``resources`` name the device, asset or segment. Fields camaudit has
and OCSF does not name travel in ``unmapped``.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from .. import __version__
from ..assess import Finding
from ..policy import Policy

#: The OCSF schema version the mapping was written against (egress.md section 6, [S65]).
OCSF_VERSION = "1.9.0-dev"
CLASS_UID = 2003  # Compliance Finding
CATEGORY_UID = 2  # Findings
ACTIVITY_CREATE = 1
SEVERITY_IDS = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_SEVERITY_NAMES = {"info": "Informational", "low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
_STATUS = {"pass": (1, "Pass"), "warning": (2, "Warning"), "fail": (3, "Fail")}


def _epoch_ms(timestamp: str | None) -> int:
    moment = _dt.datetime.fromisoformat(timestamp) if timestamp else _dt.datetime.now(_dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return int(moment.timestamp() * 1000)


def _resource(finding: Finding) -> dict[str, Any]:
    kind, _, name = finding.subject.partition(":")
    if kind == "asset":
        return {"uid": name, "name": name, "type": "registered asset"}
    if kind == "segment":
        return {"uid": name, "name": name, "type": "network segment"}
    evidence = finding.evidence
    return {"uid": evidence.get("device_id") or finding.subject, "name": finding.subject, "type": "device"}


def _evidence(finding: Finding) -> list[dict[str, Any]]:
    evidence = finding.evidence
    if "device_id" not in evidence:
        return [{"data": evidence}]
    ident = evidence.get("identity") or {}
    device = {
        "uid": evidence.get("device_id"),
        "ip": evidence.get("address"),
        "mac": evidence.get("mac"),
        "vendor_name": ident.get("vendor"),
        "model": ident.get("model"),
    }
    return [{"device": {k: v for k, v in device.items() if v is not None}, "data": evidence}]


def to_ocsf(finding: Finding, policy: Policy, *, time: str | None = None) -> dict[str, Any]:
    """One finding as an OCSF Compliance Finding event."""
    rule = policy.rule(finding.rule)
    status_id, status = _STATUS[rule.status if rule else "fail"]
    when = _epoch_ms(time)
    event: dict[str, Any] = {
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "severity_id": SEVERITY_IDS[finding.severity],
        "severity": _SEVERITY_NAMES[finding.severity],
        "status_id": 1,
        "status": "New",
        "time": when,
        "message": finding.title,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": finding.id,
            "product": {"name": "camaudit", "vendor_name": "camaudit", "version": __version__},
        },
        "finding_info": {
            "uid": finding.id,
            "title": finding.title,
            "desc": finding.detail,
            "types": [finding.rule],
            "created_time": when,
        },
        "compliance": {
            "status_id": status_id,
            "status": status,
            "control": finding.rule,
            "standards": list(rule.standards) if rule else [],
            "status_detail": finding.detail,
        },
        "resources": [_resource(finding)],
        "evidences": _evidence(finding),
        "unmapped": {"scan_id": finding.scan_id, "subject": finding.subject, "camaudit_severity": finding.severity},
    }
    if rule and rule.remediation:
        event["remediation"] = {"desc": rule.remediation.get("en", "")}
    return event


def render_ocsf(findings: list[Finding], policy: Policy, *, time: str | None = None, lines: bool = False) -> str:
    """The findings as a JSON array, or as JSON lines (one event per line) with ``lines``."""
    events = [to_ocsf(f, policy, time=time) for f in findings]
    if lines:
        return "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in events)
    return json.dumps(events, indent=2, ensure_ascii=False, default=str) + "\n"
