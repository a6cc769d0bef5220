"""Findings as OCSF events, for SIEMs and GRC tools (reference/egress.md section 6).

The schema is OCSF 1.5.0, a released version (the one the py-ocsf-models package models; the
tests validate every event with it). A finding that names firmware under known CVEs (its rule
tests ``advisories``) is a Vulnerability Finding (class 2002) with one ``vulnerabilities``
entry per CVE; every other finding is a Compliance Finding (class 2003).

The mapping: each finding is one event; ``compliance.status_id`` follows the rule's status
(1 Pass, 2 Warning, 3 Fail; a CLOSED verdict passes, INCONCLUSIVE warns, OPEN fails, as
egress.md section 6 maps them); ``compliance.standards`` carries the rule's standards,
``compliance.control`` its id and ``compliance.desc`` the finding's detail; ``resources`` name
the device (address, MAC, maker, model in its ``data``), asset or segment, and ``evidences``
carry everything behind its identity and verdict. Fields camaudit has and OCSF does not name
travel in ``unmapped``.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from .. import __version__
from ..assess import Finding
from ..policy import Policy

#: The released OCSF schema version the events follow (py-ocsf-models 0.10 models it).
OCSF_VERSION = "1.5.0"
CLASS_UID = 2003  # Compliance Finding
VULNERABILITY_CLASS_UID = 2002  # Vulnerability Finding
CATEGORY_UID = 2  # Findings
#: Policy facts that make a rule a vulnerability rule: its findings are about CVEs.
_VULNERABILITY_FACTS = frozenset({"advisories", "has_advisories"})
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
    ident = evidence.get("identity") or {}
    device = {
        "ip": evidence.get("address"),
        "mac": evidence.get("mac"),
        "vendor_name": ident.get("vendor"),
        "model": ident.get("model"),
        "firmware": ident.get("firmware"),
    }
    return {"uid": evidence.get("device_id") or finding.subject, "name": finding.subject, "type": "device",
            "data": {k: v for k, v in device.items() if v is not None}}  # fmt: skip


def _evidence(finding: Finding) -> list[dict[str, Any]]:
    return [{"name": "camaudit evidence", "data": finding.evidence}]


def is_vulnerability(finding: Finding, policy: Policy) -> bool:
    """True when the finding is about CVEs: its rule tests the advisories and it names some."""
    rule = policy.rule(finding.rule)
    if rule is None or not any(c.fact in _VULNERABILITY_FACTS for c in rule.conditions):
        return False
    return bool(_advisories(finding))


def _advisories(finding: Finding) -> list[str]:
    ident = finding.evidence.get("identity") or {}
    return [str(a) for a in ident.get("advisories") or [] if a]


def to_ocsf(finding: Finding, policy: Policy, *, time: str | None = None) -> dict[str, Any]:
    """One finding as an OCSF event: a Vulnerability Finding for CVEs, else a Compliance Finding."""
    rule = policy.rule(finding.rule)
    status_id, status = _STATUS[rule.status if rule else "fail"]
    when = _epoch_ms(time)
    vulnerability = is_vulnerability(finding, policy)
    class_uid = VULNERABILITY_CLASS_UID if vulnerability else CLASS_UID
    event: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": "Vulnerability Finding" if vulnerability else "Compliance Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": class_uid * 100 + ACTIVITY_CREATE,
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
        "resources": [_resource(finding)],
        "evidences": _evidence(finding),
        "unmapped": {"scan_id": finding.scan_id, "subject": finding.subject, "camaudit_severity": finding.severity,
                     "rule": finding.rule, "compliance_status": status},
    }
    remediation = {"desc": rule.remediation.get("en", "")} if rule and rule.remediation.get("en") else None
    if vulnerability:
        ident = finding.evidence.get("identity") or {}
        event["vulnerabilities"] = [
            {"cve": {"uid": cve}, "title": cve, "desc": finding.detail, "severity": _SEVERITY_NAMES[finding.severity],
             "vendor_name": ident.get("vendor") or None,
             **({"remediation": remediation} if remediation else {})}
            for cve in _advisories(finding)
        ]  # fmt: skip
        for item in event["vulnerabilities"]:
            if item["vendor_name"] is None:
                del item["vendor_name"]
    else:
        event["compliance"] = {
            "status_id": status_id,
            "control": finding.rule,
            "standards": list(rule.standards) if rule else [],
            "desc": finding.detail,
        }
        if remediation:
            event["remediation"] = remediation
    return event


def render_ocsf(findings: list[Finding], policy: Policy, *, time: str | None = None, lines: bool = False) -> str:
    """The findings as a JSON array, or as JSON lines (one event per line) with ``lines``."""
    events = [to_ocsf(f, policy, time=time) for f in findings]
    if lines:
        return "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in events)
    return json.dumps(events, indent=2, ensure_ascii=False, default=str) + "\n"
