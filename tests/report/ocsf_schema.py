"""OCSF 1.5.0 validation helpers for the tests, built from py-ocsf-models' own classes.

py-ocsf-models (0.10) ships the Compliance Finding class (2003) but not the Vulnerability
Finding class (2002); this module assembles the latter from the package's Finding base event
and its ``vulnerability`` object as the OCSF 1.5.0 schema defines the class (category 2,
``vulnerabilities`` required, ``resources`` and ``evidences`` optional). Nothing is fetched.
"""

from __future__ import annotations

from typing import Any, Literal

from py_ocsf_models.events.findings.finding import Finding
from py_ocsf_models.objects.evidence_artifacts import EvidenceArtifacts
from py_ocsf_models.objects.resource_details import ResourceDetails
from py_ocsf_models.objects.vulnerability_details import VulnerabilityDetails


class VulnerabilityFinding(Finding):
    category_uid: Literal[2]
    category_name: str | None = None
    class_uid: Literal[2002]
    class_name: str | None = None
    type_uid: Literal[200200, 200201, 200202, 200203, 200299]
    time: int
    vulnerabilities: list[VulnerabilityDetails]
    resources: list[ResourceDetails] | None = None
    evidences: list[EvidenceArtifacts] | None = None


#: Free-form attributes (objects of any shape, by the schema's definition).
_FREE_FORM = {"data", "unmapped"}


def unknown_attributes(sent: Any, parsed: Any, path: str = "") -> list[str]:
    """Paths of attributes in ``sent`` that the validated model did not keep: attributes the
    schema does not define (pydantic ignores them rather than failing)."""
    missing: list[str] = []
    if isinstance(sent, dict) and isinstance(parsed, dict):
        for key, value in sent.items():
            where = f"{path}.{key}" if path else key
            if key not in parsed:
                missing.append(where)
            elif key not in _FREE_FORM:
                missing += unknown_attributes(value, parsed[key], where)
    elif isinstance(sent, list) and isinstance(parsed, list):
        for index, (a, b) in enumerate(zip(sent, parsed, strict=False)):
            missing += unknown_attributes(a, b, f"{path}[{index}]")
    return missing
