"""Shared pieces of the property tests: seeds, hostile mutations, and a per-input time bound.

The property every parser owes its callers (DESIGN.md, "every device response is untrusted") is
the parser contract: whatever the bytes, it returns a model or None, never raises, and finishes in
bounded time. The strategies here feed it two kinds of input:

* mutations of real samples: the discovery captures and device lines in ``tests/data/captures``
  and the public fingerprint samples in ``../shared/corpus/fingerprints.json``, with byte flips,
  truncations, deletions, duplications and insertions of hostile tokens (negative or huge chunk
  sizes, unknown XML encodings, Unicode digits, 5000-digit numbers, deep nesting, long runs of an
  opening tag that never closes);
* plain random bytes and text.

``bounded`` turns a hang into a failure: the call runs under a SIGALRM timer on the main thread
(pure-Python loops and regex scans are interrupted), so a parser stuck in a loop fails the example
instead of stalling CI. The bound is generous (the machine is shared); it proves "does not hang",
not "is fast".

Used by ``tests/fuzz/test_fuzz_*.py`` and by the by-hand campaign ``fuzz/run.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "tests" / "data" / "captures"
#: ``../shared/corpus`` beside the repository (the worktree layout); CAMAUDIT_CORPUS overrides.
CORPUS = Path(os.environ.get("CAMAUDIT_CORPUS", REPO.parent / "shared" / "corpus" / "fingerprints.json"))
if not CORPUS.is_file():
    CORPUS = Path("/work/shared/corpus/fingerprints.json")

#: Seconds one parser call may take before it counts as a hang (see ``bounded``). Generous: a
#: linear parse of the largest generated input takes milliseconds even on a loaded machine.
TIME_BOUND = float(os.environ.get("CAMAUDIT_FUZZ_TIME_BOUND", "5"))


class ParserHang(AssertionError):
    """A parser call ran past ``TIME_BOUND``: a hang or super-linear work on a small input."""


@contextlib.contextmanager
def time_bound(seconds: float | None = None) -> Iterator[None]:
    """Raise ``ParserHang`` inside the block once ``seconds`` pass (main thread only; elsewhere
    the block runs unguarded, since signals reach only the main thread)."""
    limit = TIME_BOUND if seconds is None else seconds
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise ParserHang(f"no answer within {limit:g} s: the call hangs or does super-linear work")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def bounded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` under ``time_bound``."""
    with time_bound():
        return fn(*args, **kwargs)


# --- seeds -----------------------------------------------------------------------------------


@cache
def corpus_samples() -> tuple[tuple[str, str], ...]:
    """``(kind, sample)`` of every corpus sample with a kind (empty when the corpus is absent)."""
    if not CORPUS.is_file():
        return ()
    doc = json.loads(CORPUS.read_text(encoding="utf-8"))
    return tuple((s["kind"], s["sample"]) for s in doc["samples"] if s.get("kind") and s.get("sample"))


@cache
def devices() -> tuple[tuple[tuple[str, str], ...], ...]:
    """Per device of tests/data/captures/devices.jsonl, its ``(kind, value)`` observations."""
    out = []
    for line in (CAPTURES / "devices.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(tuple((o["kind"], o["value"]) for o in json.loads(line)["observations"]))
    return tuple(out)


def device_observations() -> tuple[tuple[str, str], ...]:
    """``(kind, value)`` of every observation in tests/data/captures/devices.jsonl."""
    return tuple(pair for device in devices() for pair in device)


def observation_values(*kinds: str) -> list[bytes]:
    """Corpus and capture values of the given kinds (all kinds when none is given), as UTF-8."""
    pairs = corpus_samples() + device_observations()
    return [v.encode("utf-8", "surrogatepass") for k, v in pairs if not kinds or k in kinds]


def capture(name: str) -> bytes:
    return (CAPTURES / "discovery" / name).read_bytes()


# --- hostile tokens and mutations --------------------------------------------------------------

HOSTILE_TOKENS: tuple[bytes, ...] = (
    b"-1",
    b"-3\n",
    b"-4\r\n",
    b"-0x10\n",
    b"0\r\n\r\n",
    b"ffffffffffffffffffffffffffffffff\r\n",
    b"1" * 5000,
    b"9" * 40,
    "\u0663".encode(),  # ARABIC-INDIC DIGIT THREE: str.isdigit() says yes
    "4\u00b2".encode(),  # SUPERSCRIPT TWO: isdigit() is True, int() refuses it
    "\uff11\uff12".encode(),  # fullwidth digits
    b'<?xml version="1.0" encoding="x-bogus"?>',
    b'<?xml version="1.0" encoding="utf-16"?>',
    b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]>",
    b"&a;&#0;&#x110000;&#xD800;",
    b"<![CDATA[",
    b"]]>",
    b"<title ",
    b"<title>",
    b"</title>",
    b"<a>" * 40,
    b"[" * 40,
    b"{" * 40,
    b'{"a":' * 40,
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xed\xa0\x80",  # a UTF-8-encoded lone surrogate
    b"\r\n\r\n",
    b"\n\n",
    b"\r",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"WWW-Authenticate: Digest realm=\"",
    b'Digest realm="x", nonce="',
    b"\\\\\\\"",
    b"http://[::1",
    b"http://user:pass@[::1]:99999/",
    b"CSeq: 4\xc2\xb2\r\n",
    b"=" * 8,
    b"table.UPnP.MapTable[" + b"1" * 5000 + b"].Enable=true\n",
    b"DHIP",
    b" \t",
)
#: How often a hostile token is repeated: once, a few times, or enough to expose super-linear work.
REPEATS = (1, 1, 1, 2, 3, 64, 4096, 40_000)
#: Largest input a mutation may build (bytes): far above any device reply the parsers accept.
MAX_MUTANT = 320 * 1024


@st.composite
def mutated(
    draw: st.DrawFn, seeds: list[bytes], tokens: tuple[bytes, ...] = HOSTILE_TOKENS, max_size: int = MAX_MUTANT
) -> bytes:
    """One seed with 1-4 mutations: byte flips, truncation, deletion, duplication, hostile tokens."""
    data = bytearray(draw(st.sampled_from(seeds)) if seeds else b"")
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "truncate", "delete", "duplicate", "insert", "line", "replace")))
        at = draw(st.integers(0, len(data))) if data else 0
        if op == "line":
            # At the start of a line: where framing fields (chunk sizes, header names) live.
            starts = [0] + [i + 1 for i, byte in enumerate(data[:8192]) if byte == 0x0A]
            at = draw(st.sampled_from(starts))
        if op == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "duplicate":
            chunk = bytes(data[at : at + draw(st.integers(1, 256))])
            data[at:at] = chunk * draw(st.sampled_from(REPEATS[:6]))
        else:
            token = draw(st.sampled_from(tokens))
            token *= min(draw(st.sampled_from(REPEATS)), max_size // max(1, len(token)) + 1)
            end = at + (draw(st.integers(0, 16)) if op == "replace" else 0)
            data[at:end] = token
        if len(data) > max_size:
            del data[max_size:]
    return bytes(data)


def fuzz_bytes(
    seeds: list[bytes], max_size: int = 4096, tokens: tuple[bytes, ...] = HOSTILE_TOKENS
) -> st.SearchStrategy[bytes]:
    """Mutated samples most of the time, plain random bytes otherwise. ``tokens`` puts the
    hostile tokens that matter most to one parser first (they are drawn from more often)."""
    return st.one_of(mutated(seeds, tokens), mutated(seeds), st.binary(max_size=max_size))


def fuzz_text(
    seeds: list[bytes], max_size: int = 2048, tokens: tuple[bytes, ...] = HOSTILE_TOKENS
) -> st.SearchStrategy[str]:
    """Text: mutated samples decoded (Latin-1 keeps every byte; UTF-8 with replacement), or any
    Unicode text including lone surrogates."""
    return st.one_of(
        mutated(seeds, tokens).map(lambda b: b.decode("utf-8", "replace")),
        mutated(seeds).map(lambda b: b.decode("latin-1")),
        st.text(max_size=max_size),
        st.text(st.characters(exclude_categories=()), max_size=64)  # lone surrogates too,
    )
