"""The message catalogue (camaudit.report.messages) is complete: every reason code the egress,
probe and assessment code can emit has an English and a Dutch message, and each message fits
the parameters the code is emitted with.

The codes are collected from the source (every ``Reason("code", ...)``, every not-verified
``_unverified("code", ...)`` and the codes vendor API readers return), so a new code without a
message fails here, not in an auditor's report.
"""

from __future__ import annotations

import ast
import string
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import camaudit
from camaudit.model.verdicts import LEGACY_TEXT, Reason
from camaudit.report import messages

SOURCE = Path(camaudit.__file__).parent
EMITTERS = ("Reason", "_unverified")


def _emitted_codes() -> dict[str, set[str]]:
    """code -> the files that emit it."""
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        if path.name == "messages.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            codes: list[str] = []
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in EMITTERS and isinstance(node.args[0].value, str):
                    codes.append(node.args[0].value)
            if isinstance(node, ast.FunctionDef) and node.name == "apply" and path.name == "vendor_api.py":
                # a config reader's apply() returns the code of why a reply was not used
                codes += [r.value.value for r in ast.walk(node) if isinstance(r, ast.Return)
                          and isinstance(r.value, ast.Constant) and isinstance(r.value.value, str)]
            for code in codes:
                found.setdefault(code, set()).add(str(path.relative_to(SOURCE)))
    return found


def test_both_languages_have_the_same_codes() -> None:
    assert set(messages.EN) == set(messages.NL)
    assert set(messages.CATALOGUES) == set(messages.LANGUAGES)


def test_every_emitted_code_has_a_message_in_every_language() -> None:
    emitted = _emitted_codes()
    assert len(emitted) > 60  # the collector found the emitters
    for lang, table in messages.CATALOGUES.items():
        unknown = {code: sorted(where) for code, where in emitted.items() if code not in table}
        assert not unknown, (lang, unknown)
    # and the catalogue carries no message nothing emits (a renamed code leaves none behind)
    assert set(messages.EN) - set(emitted) - {LEGACY_TEXT} == set()


def _fields(message: Any) -> set[str]:
    if callable(message):
        return set()
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(message) if name}


def _reasons(value: Any) -> Iterator[Reason]:
    if isinstance(value, Reason):
        yield value
        yield from _reasons(dict(value.params))
    elif isinstance(value, Mapping):
        if isinstance(value.get("code"), str):
            yield from _reasons(Reason.from_json(value))
        else:
            for v in value.values():
                yield from _reasons(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _reasons(v)


def _decided_reasons() -> list[Reason]:
    """Every reason the decision tables of the egress tests produce, nested ones included."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "egress"))
    try:
        from test_egress_reasons import _all_verdicts, _decide_all
    finally:
        sys.path.pop(0)
    found: list[Reason] = []
    for v in _all_verdicts():
        found += list(_reasons(v.qualifiers + v.missing))
    for *_, qualifiers, missing in _decide_all():
        found += list(_reasons(qualifiers + missing))
    return found


def test_every_decided_reason_renders_with_its_own_message_in_both_languages() -> None:
    reasons = _decided_reasons()
    assert len({r.code for r in reasons}) > 30
    for reason in reasons:
        for lang, table in messages.CATALOGUES.items():
            message = table[reason.code]
            assert _fields(message) <= set(reason.params), (lang, reason.code, sorted(reason.params))
            text = messages.render(reason, lang)
            assert text and not text.startswith(f"{reason.code} ("), (lang, reason)


@pytest.mark.parametrize("lang", messages.LANGUAGES)
def test_an_unknown_code_or_a_misfit_is_said_not_dropped(lang: str) -> None:
    assert messages.render(Reason("from_a_newer_camaudit", {"port": 80}), lang) == "from_a_newer_camaudit (port: 80)"
    assert messages.render(Reason("auth_required"), lang) == "auth_required"  # its "what" is missing
    assert messages.render({"code": "timed_out", "what": "ISAPI EZVIZ"}, lang).startswith("ISAPI EZVIZ: ")
