"""Hostile device text: every signature regex, the normaliser and the CLI stay cheap and never raise.

Every regex in signatures/*.yaml runs on text a device controls (up to 16 KiB per observation).
These tests feed 16 KiB inputs built to make backtracking regexes blow up (long runs of the
characters a pattern loops on, repeated example lines, a mismatch at the end) and check a generous
per-signature time budget: a guard against quadratic or exponential patterns, not a benchmark.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from camaudit.fingerprint import identify
from camaudit.fingerprint.engine import Engine
from camaudit.fingerprint.signatures import Signature, default_set, example_input
from camaudit.model import MAX_OBSERVATION_VALUE, OBSERVATION_KINDS, Observation

#: Seconds one signature (all its matchers and extractors) may take on one 16 KiB input. The fixed
#: patterns take well under 1 ms; the quadratic ones this guards against took 25 ms to 1.8 s.
BUDGET = 0.05
SIZE = MAX_OBSERVATION_VALUE
ADDRESS = "127.64.0.1"


def fill(unit: str, prefix: str = "", suffix: str = "\x01") -> str:
    """``prefix`` + ``unit`` repeated to exactly SIZE characters, ending with a mismatch."""
    body = prefix + unit * ((SIZE - len(prefix)) // max(len(unit), 1) + 1)
    return body[: SIZE - len(suffix)] + suffix


_UNITS = [
    "a", "A", "0", " ", "\t", "\n", "\r\n", ".", "-", "=", "<", ">", '"', "/", ":", "\\", "%",
    "a.", "a ", "a-", "A0", "<a ", "<a>", "<a>x</b>", "<title>", "<TITLE x", "</title ", "<d:Scopes>",
    "<Types>", '"a":"', '"a": "\\', "a=b\n", "x.=\n", "version=1\n", "firmwareVersion=1\n",
    "a.firmwareVersion=1\n", "deviceInfo.", "Network ", "Video x ", "DS-", "A-", "2020", 'realm="',
    "/name/a", "a: ", "Server: ", "\ufffd",
]  # fmt: skip
_PREFIXED = [
    ("Server: a", " ", "b"),  # a lazy header value before \s*$ (was 1.8 s)
    ("Server: a", " \t", "b"),
    ("AXIS a ", "Network ", "\x01"),  # .* after each Network word (was 50 ms)
    ("AXIS a b ", "Video x ", "\x01"),
    ("deviceType=", "x", "\x01"),
    ('realm="Login to ', "a", "\x01"),
    ("DS-2CD", "2020", "\x01"),
    ("HTTP/1.1 200 OK\r\n", "X: a\r\n", "\x01"),
    ("{", '"a" :', "\x01"),
    ('<DeviceInfo xmlns="http://www.isapi.org/ver20/XMLSchema">', "<a>", "\x01"),
    ("<html><title>", "x", "\x01"),
]
GENERIC = [fill(unit) for unit in _UNITS] + [fill(unit, prefix, suffix) for prefix, unit, suffix in _PREFIXED]


def derived_inputs(signature: Signature) -> list[str]:
    """16 KiB inputs made of the signature's own examples: whole, line by line, one char short."""
    found: list[str] = []
    for example in [*signature.examples, *signature.counter_examples]:
        text = example_input(example)
        if not text:
            continue
        found += [fill(text), fill(text[:-1]), fill(text + "\n")]
        for line in text.splitlines()[:6]:
            if line.strip():
                found += [fill(line + "\n"), fill(line[:-1] + "\n")]
    return found


def cost(action: Callable[[], object]) -> float:
    """Seconds ``action`` takes: once, or the best of three when the first run looks slow."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
        if best < BUDGET:
            break
    return best


def run_signature(signature: Signature, text: str) -> None:
    parts = {"raw": text, "value": text, "registrant": text, "oui": ""}
    signature.match(parts)
    for alternatives in signature.extractors.values():
        for extractor in alternatives:
            if extractor.regex is not None:
                extractor.regex.search(parts.get(extractor.part, text))


SIGNATURES = default_set().signatures


@pytest.mark.parametrize("signature", SIGNATURES, ids=[s.id for s in SIGNATURES])
def test_every_signature_stays_cheap_on_hostile_16k_text(signature: Signature) -> None:
    slow = []
    for text in GENERIC + derived_inputs(signature):
        seconds = cost(functools.partial(run_signature, signature, text))
        if seconds >= BUDGET:
            slow.append(f"{seconds * 1000:.0f} ms on {text[:40]!r}...")
    assert not slow, f"{signature.id} ({signature.file}) backtracks: " + "; ".join(slow[:3])


@pytest.mark.parametrize("kind", sorted(OBSERVATION_KINDS))
def test_normalising_and_matching_each_kind_stays_cheap(kind: str) -> None:
    """The whole path an observation takes (header split, title, XML/JSON flattening, matching)."""
    engine = Engine()
    slow = []
    for text in GENERIC:
        seconds = cost(functools.partial(engine.identify, [Observation(ADDRESS, kind, text)]))
        if seconds >= BUDGET:
            slow.append(f"{seconds * 1000:.0f} ms on {text[:40]!r}...")
    assert not slow, f"{kind}: " + "; ".join(slow[:3])


def test_the_engine_reads_no_more_than_an_observation_holds() -> None:
    engine = Engine()
    marker = "Hikvision Digital Technology"
    assert engine.matches("http_body", marker)
    # Beyond the bound the text is not read, even through the engine's own API with a raw str.
    assert not engine.matches("http_body", "x" * MAX_OBSERVATION_VALUE + marker)
    assert engine.matches("http_body", "x" * (MAX_OBSERVATION_VALUE - len(marker)) + marker)


# --------------------------------------------------------------------------- hostile structure

_BOMB = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
         '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><l>&c;</l>')
HOSTILE = {
    "xml-bomb": _BOMB,
    "xml-external-entity": '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]><l>&x;</l>',
    "xml-deep": "<a>" * 1500 + "x" + "</a>" * 1500,  # parses: 10.5 KiB, deeper than the recursion limit
    "xml-deep-unclosed": "<a>" * 5000,
    "xml-long-names": "<" + "n" * 4000 + ">" + "".join(f"<b{i}>1</b{i}>" for i in range(900)),
    "json-deep-object": '{"a":' * 3000 + "1" + "}" * 3000,
    "json-deep-list": "[" * 8000 + "]" * 8000,
    "json-huge-integer": '{"SerialNo": ' + "9" * 5000 + "}",
    "json-huge-float": '{"Version": 1e99999, "SerialNo": -1e99999}',
    "json-long-keys": '{"' + "k" * 4000 + '":{"' + "k" * 4000 + '":{' + ",".join(f'"f{i}":1' for i in range(600)) + "}}}",
    "invalid-utf8": b'\xff\xfe<DeviceInfo>\xc3\x28<model>\xed\xa0\x80</model></DeviceInfo>'.decode("utf-8", "replace"),
    "lone-surrogates": '{"a": {"b": "\ud800", "c": "\udfff"}}',
    "nul-and-controls": "<a>\x00\x01\x1b[2J</a>",
    "binary-header-then-garbage": "\x20\x00\x00\x00DHIP" + "\x00" * 24 + "{\x01\x02" + "\xff" * 100,
}  # fmt: skip
STRUCTURED_KINDS = ["sadp", "dhip", "isapi_device_info", "onvif_device_info", "onvif_probe_match", "upnp", "dahua_cgi"]


@pytest.mark.parametrize("kind", STRUCTURED_KINDS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_structured_kinds_never_raise_on_hostile_documents(kind: str, name: str) -> None:
    start = time.perf_counter()
    identity = identify([Observation(ADDRESS, kind, HOSTILE[name])])
    assert time.perf_counter() - start < 1.0
    # None of these documents names a maker: the result is an honest unknown, not a guess.
    assert identity.vendor == "unknown" and identity.confidence == 0.0


def test_a_hostile_document_beside_real_evidence_does_not_hide_it() -> None:
    observations = [Observation(ADDRESS, "sadp", HOSTILE["xml-deep"]),
                    Observation(ADDRESS, "dhip", HOSTILE["json-deep-object"]),
                    Observation(ADDRESS, "http_server", "App-webs/", 80)]
    assert identify(observations).vendor == "hikvision"


def test_identify_cli_answers_every_hostile_line() -> None:
    lines = [json.dumps({"id": name, "observations": [{"kind": kind, "value": value}]})
             for name, value in sorted(HOSTILE.items()) for kind in ("sadp", "dhip")]
    lines += [
        '{"id": "deep-line", "observations": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"id": "huge-number", "observations": [{"kind": "http_server", "value": ' + "9" * 5000 + "}]}",
        '{"id": "huge-float", "observations": [{"kind": "http_server", "value": 1e999}]}',
        json.dumps({"id": "spaces", "observations": [{"kind": "http_headers", "value": fill(" ", "Server: a", "b")}]}),
        json.dumps({"id": "last", "observations": [{"kind": "http_server", "value": "App-webs/"}]}),
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass") + b'\xff\xfe{"id": "bad-bytes"\n'
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "camaudit", "identify", "-"], input=data,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert time.perf_counter() - start < 60
    out = [json.loads(line) for line in result.stdout.decode("utf-8", "surrogateescape").splitlines()]
    assert len(out) == len(lines) + 1
    for record in out:
        assert "error" in record or record.get("vendor"), record
    deep_line, huge_number, huge_float, spaces, last, bad_bytes = out[-6:]
    assert "nested too deeply" in deep_line["error"]
    assert "error" in huge_number
    assert (huge_float["id"], spaces["id"], spaces["vendor"]) == ("huge-float", "spaces", "unknown")
    assert (last["id"], last["vendor"]) == ("last", "hikvision")
    assert "error" in bad_bytes


def test_json_escaped_lone_surrogates_never_reach_identity_fields() -> None:
    """A device's JSON may escape a lone surrogate; the store and reports must be able to write
    every identity field as UTF-8."""
    reply = '{"method": "client.notifyDevInfo", "params": {"deviceInfo": {"SerialNo": "6C01\\udfffE93", "DeviceType": "IPC-\\ud800"}}}'
    identity = identify([Observation(ADDRESS, "dhip", reply)])
    assert identity.vendor == "dahua"
    assert identity.serial == "6C01?E93" and identity.model == "IPC-?"
    json.dumps(identity.to_json(), ensure_ascii=False).encode("utf-8")
