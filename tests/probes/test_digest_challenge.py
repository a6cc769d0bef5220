"""Issue 10 item 4: parsing a Digest challenge is linear, and finds what it found before."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camaudit.probes.vendor_api import parse_challenge

_OLD_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


def _old_parse_challenge(header: str) -> dict[str, str] | None:
    """The version this replaced (a bare findall), kept as the reference for the results."""
    if len(header) > 4096 or header[:7].lower() != "digest ":
        return None
    params: dict[str, str] = {}
    for name, raw in _OLD_PARAM.findall(header[7:]):
        value = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
        params[name.lower()] = value
    return params if "realm" in params and "nonce" in params else None


@pytest.mark.parametrize(
    "header",
    [
        'Digest realm="Login to ND011811000000", nonce="ec3682ef24b2cd9cedefe5cc26110000"',  # Lorex
        'Digest realm="IP Camera(21388)", qop="auth", nonce="abc", stale="FALSE"',
        'Digest realm="x", nonce=n, algorithm=SHA-256, opaque="o\\"q"',
        'Digest junk realm="r", 1nonce=x, nonce="y"',
        'Digest realm="unterminated, nonce=z',
    ],
)
def test_known_challenges_parse_as_before(header: str) -> None:
    assert parse_challenge(header) == _old_parse_challenge(header)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet='aZ_-= ,"\\\t9é;\n', max_size=40), st.booleans())
def test_any_challenge_parses_as_before(text: str, with_params: bool) -> None:
    header = "Digest " + text + (' realm="r", nonce=n' if with_params else "")
    assert parse_challenge(header) == _old_parse_challenge(header)


def _best_time(fn: Callable[[], object], *, number: int = 10, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best


#: Up to the parser's own 4 KiB limit (a longer challenge is refused before parsing).
@pytest.mark.parametrize("hostile", ["a" * 4089, "a-" * 2044, "a " * 2044, "a" + " " * 4088,
                                     'a="' + "x" * 4086, "a=" * 2044])
def test_challenge_parsing_is_linear(hostile: str) -> None:
    header = ("Digest " + hostile)[:4096]
    benign = 'Digest realm="' + "r" * 2000 + '", nonce="' + "n" * 2000 + '", qop="auth"'
    assert len(benign) <= 4096 and parse_challenge(benign) is not None
    hostile_time = _best_time(lambda: parse_challenge(header))
    benign_time = _best_time(lambda: parse_challenge(benign))
    assert hostile_time < 2.0
    assert hostile_time < 20 * max(benign_time, 1e-5), (hostile_time, benign_time)
