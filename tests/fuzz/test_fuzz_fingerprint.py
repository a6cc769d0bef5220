"""Properties of the fingerprint normaliser and engine (camaudit.fingerprint.normalize/engine).

Any observation value of any kind normalises without an exception, in bounded time, into text a
UTF-8 writer can store; and any list of observations identifies to a well-formed identity.
"""

from __future__ import annotations

from fuzzkit import bounded, corpus_samples, device_observations, devices, fuzz_text
from hypothesis import given
from hypothesis import strategies as st

from camaudit.fingerprint import normalize
from camaudit.fingerprint.engine import identify
from camaudit.model import OBSERVATION_KINDS, Observation

KINDS = sorted(OBSERVATION_KINDS)
SEEDS = [v.encode("utf-8") for _, v in corpus_samples() + device_observations()]
TOKENS = (b"<title ", b"<title>", b"<a>" * 50, b'{"a":' * 50, b"[" * 50, b"\\udfff", b"1" * 5000,
          b"HTTP/1.1 200 OK\r\n", b"Server: ", b"\r\n\r\n", b"&#x110000;", b"\xed\xa0\x80")
VALUES = fuzz_text(SEEDS, tokens=TOKENS)


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@given(st.sampled_from(KINDS), VALUES)
def test_normalise_never_raises(kind: str, value: str) -> None:
    items = bounded(lambda: list(normalize.expand(kind, value)))
    assert items and items[0].kind == kind
    for item in items:
        assert item.kind in OBSERVATION_KINDS
        assert all(isinstance(part, str) for part in item.parts.values())
        if _storable(value):
            assert all(_storable(part) for part in item.parts.values()), "normalising made text unstorable"


@given(st.lists(st.tuples(st.sampled_from(KINDS), VALUES, st.none() | st.integers(1, 65535)), max_size=6))
def test_identify_never_raises(observations: list[tuple[str, str, int | None]]) -> None:
    obs = [Observation("10.0.0.5", kind, value, port) for kind, value, port in observations]
    identity = bounded(identify, obs)
    assert 0.0 <= identity.confidence <= 1.0
    assert isinstance(identity.vendor, str) and identity.vendor
    if identity.vendor == "unknown":
        assert identity.confidence == 0.0
    assert bounded(identify, obs) == identity  # the match cache changes nothing


@given(st.sampled_from(devices()), st.randoms(use_true_random=False))
def test_identify_does_not_depend_on_observation_order(pairs: tuple[tuple[str, str], ...], rng: object) -> None:
    """One device's evidence, in any order, gives one identity. (Evidence of two devices mixed can
    name two models with equal certainty; the first one seen wins then.)"""
    obs = [Observation("10.0.0.5", kind, value) for kind, value in pairs]
    shuffled = list(obs)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    first, second = identify(obs), identify(shuffled)
    assert (first.vendor, first.confidence, first.model) == (second.vendor, second.confidence, second.model)
