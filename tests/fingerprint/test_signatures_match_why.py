"""`camaudit signatures match --why` says why an observation did or did not match (issue 14 item 7)."""

from __future__ import annotations

import json
import subprocess
import sys

from camaudit.fingerprint.explain import explain
from camaudit.fingerprint.signatures import default_set


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "camaudit", "signatures", "match", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_a_match_a_shadowed_match_and_a_failed_matcher_are_told_apart() -> None:
    rows = [r for r in explain(default_set(), "http_server", "App-webs/") if "id" in r]
    by_id = {r["id"]: r for r in rows}
    assert by_id["hikvision-app-webs"]["outcome"] == "matched"
    assert by_id["hikvision-app-webs"]["extract"]["vendor"] == "hikvision"
    failed = by_id["hikvision-webs-family"]
    assert failed["outcome"] == "no match" and "Webs" in failed["reason"]
    assert failed["matchers"] and not failed["matchers"][0]["passed"]
    assert sum(1 for r in rows if r["outcome"] == "matched") == 1  # per file, the first match counts


def test_derived_parts_are_shown_with_the_text_signatures_read() -> None:
    response = "HTTP/1.1 401 Unauthorized\r\nServer: App-webs/\r\nWWW-Authenticate: Basic realm=\"IP Camera\"\r\n\r\n"
    rows = explain(default_set(), "http_headers", response)
    items = [r for r in rows if "item" in r]
    assert {i["item"] for i in items} >= {"http_headers", "http_server", "http_www_authenticate"}
    server = next(i for i in items if i["item"] == "http_server")
    assert server["derived"] is True and server["parts"]["value"] == "App-webs/"


def test_cli_why_with_one_signature() -> None:
    done = _cli("http_server", "-", "--why", "--signature", "hikvision-webs-family", stdin="App-webs/\n")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["outcome"] for r in rows] == ["no match"]
    assert "regex" in rows[0]["reason"]


def test_cli_why_says_when_nothing_matched_and_refuses_an_unknown_signature() -> None:
    done = _cli("http_server", "zz-no-such-server", "--why")
    assert done.returncode == 0 and "no signature matched" in done.stderr
    assert all(json.loads(line).get("outcome") != "matched" for line in done.stdout.splitlines())
    wrong = _cli("http_server", "x", "--why", "--signature", "no-such-id")
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr and "no-such-id" in wrong.stderr
