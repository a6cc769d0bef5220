"""Why an observation did or did not match each signature (``camaudit signatures match --why``).

Pure: bytes in, rows out. For each item the observation offers (the value itself, then the parts
derived from a response inside it) and each signature of that item's kind, one row says whether
the signature matched, was shadowed by an earlier signature of its file (the first match of a
file counts, recog's rule), or did not match, and which matchers passed or failed on which part.
"""

from __future__ import annotations

from typing import Any

from ..model import MAX_OBSERVATION_VALUE
from . import normalize
from .signatures import Matcher, SignatureSet

#: Longest part text shown per item (the normalised text signatures read).
SHOW_CHARS = 300


def _describe(matcher: Matcher) -> str:
    if matcher.type == "regex" and matcher.regex is not None:
        what = f"regex {matcher.regex.pattern!r}"
    elif matcher.type == "word":
        what = f"{'all' if matcher.words_all else 'any'} of words {list(matcher.words)!r}"
    elif matcher.type in ("equals", "hash"):
        what = f"{matcher.type} one of {len(matcher.values)} value(s)"
    else:
        what = f"oui prefix or registrant ({len(matcher.prefixes)} prefix(es))"
    if matcher.case_insensitive and matcher.type != "hash":
        what += ", any case"
    return ("not " if matcher.negative else "") + what + f" on part {matcher.part!r}"


def explain(signature_set: SignatureSet, kind: str, value: str) -> list[dict[str, Any]]:
    """One row per derived item (``"item"``) followed by one row per signature of its kind."""
    rows: list[dict[str, Any]] = []
    for item in normalize.expand(kind, value[:MAX_OBSERVATION_VALUE]):
        rows.append({"item": item.kind, "derived": item.derived,
                     "parts": {name: text[:SHOW_CHARS] for name, text in item.parts.items() if name != "raw"}})
        for entries in signature_set.by_kind.get(item.kind, ()):
            first: str | None = None
            for signature in entries:
                extracted = signature.match(item.parts)
                tests = [(matcher, bool(matcher.test(item.parts))) for matcher in signature.matchers]
                if extracted is not None and first is None:
                    first = signature.id
                    outcome, reason = "matched", "counts: the first signature of its file that matches"
                elif extracted is not None:
                    outcome = "shadowed"
                    reason = f"matches, but {first} matched first in {signature.file} and only the first counts"
                else:
                    outcome = "no match"
                    failed = [_describe(m) for m, ok in tests if not ok]
                    if signature.condition_all:
                        reason = "failed: " + "; ".join(failed)
                    else:
                        reason = "none of the matchers passed: " + "; ".join(failed)
                rows.append({
                    "id": signature.id, "file": signature.file, "kind": item.kind, "outcome": outcome,
                    "certainty": signature.certainty, "reason": reason,
                    "matchers": [{"test": _describe(m), "passed": ok} for m, ok in tests],
                    "extract": extracted or {},
                })
    return rows
