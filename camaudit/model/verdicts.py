"""Verdicts and the reasons they are stated with (DESIGN.md sections 5 and 6).

A verdict's qualifiers, its missing items and a device's "not verified" reads are
:class:`Reason` values: a code and its parameters, never a sentence. Decisions test codes;
the words are the report layer's (:mod:`camaudit.report.messages`), in English and Dutch, so
rewording a message can never change a verdict.

The JSON form of a reason is flat: ``{"code": "auth_required", "what": "ISAPI deviceInfo"}``.
A reason may carry other reasons as parameters (a device's gap inside a segment's roll-up);
they are kept in that same JSON form, so a reason is always plain JSON inside.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import utc_now

OPEN = "OPEN"
EXPOSED = "EXPOSED"
CLOSED = "CLOSED"
INCONCLUSIVE = "INCONCLUSIVE"
#: The verdict vocabulary (a contract, DESIGN.md section 5).
VERDICTS = (OPEN, EXPOSED, CLOSED, INCONCLUSIVE)
#: The egress axis alone: EXPOSED is the inbound axis, reported beside it.
EGRESS_VERDICTS = (OPEN, CLOSED, INCONCLUSIVE)

#: The code of a sentence written by camaudit 0.1 (or by hand) before reasons were codes. It is
#: shown as written and, having no code to decide on, never counts as evidence for CLOSED.
LEGACY_TEXT = "legacy_text"


def _plain(value: Any) -> Any:
    """A parameter value as plain JSON: reasons become their flat JSON form."""
    if isinstance(value, Reason):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: a code (what happened) and its parameters (the values: a read, a port, a path)."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not self.code:
            raise ValueError(f"a reason needs a code, not {self.code!r}")
        if "code" in self.params:
            raise ValueError("'code' cannot be a parameter of a reason: the JSON form is flat")
        object.__setattr__(self, "params", {str(k): _plain(v) for k, v in self.params.items()})

    def __hash__(self) -> int:
        return hash((self.code, json.dumps(self.params, sort_keys=True, default=str)))

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, **self.params}

    @classmethod
    def from_json(cls, doc: Any) -> Reason:
        """The reason ``doc`` stands for. A flat object with a code is read exactly; anything
        else (a 0.1 sentence, a hand-written value) becomes :data:`LEGACY_TEXT`, shown as is."""
        if isinstance(doc, Reason):
            return doc
        if isinstance(doc, Mapping) and isinstance(doc.get("code"), str) and doc.get("code"):
            return cls(str(doc["code"]), {str(k): v for k, v in doc.items() if k != "code"})
        if isinstance(doc, Mapping):
            text = "; ".join(f"{k}: {v}" for k, v in doc.items())
        else:
            text = "" if doc is None else str(doc)
        return cls(LEGACY_TEXT, {"text": text})


def reasons_from_json(value: Any) -> list[Reason]:
    """A stored list of reasons (flat objects, or 0.1's sentences) as reasons. A hand-written
    object without a code (``{"vantage": ..., "window": ...}``) gives one reason per entry."""
    if value in (None, "", [], {}):
        return []
    if isinstance(value, Mapping) and not isinstance(value.get("code"), str):
        return [Reason(LEGACY_TEXT, {"text": f"{k}: {v}"}) for k, v in value.items()]
    if isinstance(value, Mapping) or not isinstance(value, list | tuple):
        return [Reason.from_json(value)]
    return [Reason.from_json(v) for v in value]


def reasons_to_json(reasons: Iterable[Reason]) -> list[dict[str, Any]]:
    return [r.to_json() for r in reasons]


def english(reasons: Iterable[Reason]) -> list[str]:
    """The reasons in English, for JSON consumers that read sentences (``hosts[].verdict``)."""
    from ..report.messages import render  # here: the catalogue is the report layer's

    return [render(r, "en") for r in reasons]


@dataclass(slots=True)
class Verdict:
    """A verdict on a device or a segment, with qualifiers, gaps and the evidence behind it.

    ``verdict`` is the contract's one word; ``egress`` is the egress axis alone (OPEN, CLOSED or
    INCONCLUSIVE), which differs from ``verdict`` only when an inbound path makes it EXPOSED;
    ``exposed`` says whether an inbound path exists, also when the verdict is OPEN.
    """

    subject_kind: str  # device | segment
    subject: str
    verdict: str
    egress: str
    exposed: bool
    qualifiers: list[Reason] = field(default_factory=list)
    missing: list[Reason] = field(default_factory=list)
    paths: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    decided_at: str = field(default_factory=utc_now)

    @property
    def qualifier_text(self) -> list[str]:
        """The qualifiers in English."""
        return english(self.qualifiers)

    @property
    def missing_text(self) -> list[str]:
        """What is missing, in English."""
        return english(self.missing)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``qualifiers`` and ``missing`` as English sentences (a contract that
        users' scripts read), ``qualifier_codes`` and ``missing_codes`` as the flat reasons."""
        return {
            "verdict": self.verdict,
            "egress": self.egress,
            "exposed": self.exposed,
            "subject_kind": self.subject_kind,
            "subject": self.subject,
            "qualifiers": self.qualifier_text,
            "missing": self.missing_text,
            "qualifier_codes": reasons_to_json(self.qualifiers),
            "missing_codes": reasons_to_json(self.missing),
            "paths": list(self.paths),
            "evidence": list(self.evidence),
            "decided_at": self.decided_at,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Verdict:
        """The inverse of :meth:`to_json`, exact. A document without codes (camaudit 0.1) keeps
        its sentences as :data:`LEGACY_TEXT` reasons."""
        qualifiers = doc.get("qualifier_codes")
        missing = doc.get("missing_codes")
        return cls(
            subject_kind=str(doc.get("subject_kind") or "device"),
            subject=str(doc.get("subject") or ""),
            verdict=str(doc.get("verdict") or INCONCLUSIVE),
            egress=str(doc.get("egress") or doc.get("verdict") or INCONCLUSIVE),
            exposed=bool(doc.get("exposed", False)),
            qualifiers=reasons_from_json(qualifiers if qualifiers is not None else doc.get("qualifiers")),
            missing=reasons_from_json(missing if missing is not None else doc.get("missing")),
            paths=list(doc.get("paths") or []),
            evidence=list(doc.get("evidence") or []),
            decided_at=str(doc.get("decided_at") or utc_now()),
        )
