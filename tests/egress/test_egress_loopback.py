"""The listener and the check over real sockets on loopback (127.83.1.0/24, this area's block),
a real SQLite store, and the CLI as a user runs it. Multicast and gateway probes are off here
(--no-upnp, --no-natpmp, --ra-wait 0): on loopback they would leave the host's namespace.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camaudit.egress import wire
from camaudit.egress.active import RateLimiter
from camaudit.egress.storage import import_listener_log, parse_log_line
from camaudit.lab.listeners import egress_listener
from camaudit.lab.netns import GUARD_ENV
from camaudit.store import open_store

LISTENER = "127.83.1.1"
NOBODY = "127.83.1.2"  # nothing listens here
TCP, UDP = "18443,18555", "53,123,18800"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {GUARD_ENV: "1"}
SAFE = ["--no-upnp", "--no-natpmp", "--ra-wait", "0", "--no-proxy-discovery", "--max-hops", "2"]


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("listen")
    with egress_listener((sys.executable, "-m", "camaudit"), LISTENER, tmp, "--tcp-ports", TCP, "--udp-ports", UDP, "--dns-zone", "egress.test", "--duration", "120", ready_within=15) as log:
        yield log


def _check(db: Path, listener: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    res = subprocess.run([sys.executable, "-m", "camaudit", "egress", "check", "--listener", listener,
                          "--resolver", listener, "--dns-zone", "egress.test", "--tcp-ports", TCP, "--udp-ports", UDP,
                          "--timeout", "1", "--db", str(db), "--json", *SAFE, *extra],
                         capture_output=True, text=True, timeout=60, env=ENV)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout), res.stderr


def test_control_and_check_against_the_listener(listener: Path, tmp_path: Path) -> None:
    db = tmp_path / "eg.db"
    code, control, _ = _check(db, LISTENER, "--control")
    assert code == 0 and control["control_passed"] is True
    code, doc, _ = _check(db, LISTENER)
    assert code == 1 and doc["verdict"] == "OPEN"
    allowed = {p["path"] for p in doc["paths"] if p["result"] == "allowed"}
    expected = {"tcp/18443", "tcp/18555", "udp/18800"}
    if os.geteuid() == 0:  # without root the listener cannot bind ports 53 and 123
        expected |= {"udp/53", "udp/123", "dns/direct", "dns/resolver", "ntp"}
    assert expected <= allowed
    assert set(doc) >= {"verdict", "qualifiers", "missing", "paths", "exposed", "run_id", "scan_id",
                        "qualifier_codes", "missing_codes"}
    assert doc["qualifiers"] and all(isinstance(q, str) for q in doc["qualifiers"])
    assert doc["qualifier_codes"][0]["code"] == "egress_observed"
    # Each allowed probe's evidence: its nonce, what was sent, what came back, when.
    tcp = next(p for p in doc["paths"] if p["path"] == "tcp/18443")["evidence"]
    assert tcp["nonce"] in tcp["sent"] and tcp["nonce"] in tcp["received"] and tcp["started_at"] <= tcp["ended_at"]
    # The listener logged every nonce; its log merges into the store and proves the same runs.
    logged = {e.nonce for e in (parse_log_line(line) for line in listener.read_text().splitlines()) if e}
    assert {p["evidence"]["nonce"] for p in doc["paths"] if p["result"] == "allowed" and p["path"] != "icmp"} <= logged
    with open_store(db) as store:
        summary = import_listener_log(store, listener)
        assert doc["run_id"] in summary.matched_runs and summary.bad == 0
        again = import_listener_log(store, listener)
        assert again.imported == 0 and again.duplicates == summary.imported + summary.duplicates
        kinds = [r["kind"] for r in store.db.query("select kind from egress_runs order by started_at, rowid")]
        assert kinds == ["control", "check", "listener-log", "listener-log"]  # each import is a passive run
        # a control run records no verdict: its vantage is not a camera segment; re-deciding
        # keeps one current verdict per run and subject (the earlier ones stay, not current)
        assert [r["verdict"] for r in store.db.query("select verdict from verdicts where current = 1")] == ["OPEN"]
        assert {r["egress_run_id"] for r in store.db.query("select egress_run_id from verdicts")} == {doc["run_id"]}
        # egress runs are not scans (issue 11): `latest` has no scan to show
        assert store.scans() == [] and doc["scan_id"] is None and doc["site"] == "default"


def test_nothing_listening_is_inconclusive_and_a_late_log_proves_one_way_egress(tmp_path: Path) -> None:
    db = tmp_path / "eg.db"
    # (loopback answers ICMP echo for every 127/8 address: that would rightly be OPEN, so skip it)
    code, doc, _ = _check(db, NOBODY, "--udp-ports", "18800", "--skip", "icmp")
    assert code == 0 and doc["verdict"] == "INCONCLUSIVE"
    assert any(m.startswith("icmp: skipped") for m in doc["missing"])
    # RSTs and port unreachables from the far host are not egress and not a block on their own.
    assert {p["evidence"]["basis"] for p in doc["paths"] if p["path"].startswith(("tcp/", "udp/"))} == {"reset"}
    assert any("positive control" in m for m in doc["missing"])
    udp = next(p for p in doc["paths"] if p["path"] == "udp/18800")["evidence"]
    line = {"at": udp["ended_at"], "kind": "udp", "nonce": udp["nonce"], "src": "198.51.100.1", "dst": NOBODY,
            "proto": "udp", "port": 18800, "path": "udp/18800"}
    log = tmp_path / "late.jsonl"
    log.write_text(json.dumps(line) + "\nnot json\n")
    res = subprocess.run([sys.executable, "-m", "camaudit", "egress", "import-log", str(log), "--db", str(db), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["bad"] == 1 and summary["matched_runs"] == [doc["run_id"]]
    assert summary["verdicts"][0]["verdict"] == "OPEN"
    assert any("one-way" in q for q in summary["verdicts"][0]["qualifiers"])
    with open_store(db) as store:
        rows = list(store.db.query("select verdict, document from verdicts where egress_run_id = ? and current = 1",
                                   [doc["run_id"]]))
    assert [r["verdict"] for r in rows] == ["OPEN"]
    udp_path = next(p for p in json.loads(rows[0]["document"])["paths"] if p["path"] == "udp/18800")
    assert udp_path["result"] == "allowed" and udp_path["evidence"]["basis"] == "listener-log"
    assert udp_path["evidence"]["extra"]["listener_log"]["src"] == "198.51.100.1"


def test_the_listener_shrugs_off_garbage(listener: Path) -> None:
    for payload in (b"\x00" * 300, b"GET / HTTP/1.1\r\n\r\n", os.urandom(2000)):
        with socket.create_connection((LISTENER, 18443), timeout=2) as s:
            s.sendall(payload)
            s.settimeout(6)
            assert s.recv(100) == b""  # closed without an answer
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(payload[:1400], (LISTENER, 53))
            u.sendto(payload[:1400], (LISTENER, 123))
    nonce = wire.new_nonce()
    with socket.create_connection((LISTENER, 18555), timeout=2) as s:
        s.sendall(wire.probe_line(nonce, "tcp/18555"))
        assert wire.parse_echo(s.recv(256), nonce) == "127.0.0.1"


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    for args, needle in ((["--listener", "cameras.local"], "not an IP address"),
                         (["--listener", LISTENER, "--tcp-ports", "80,99999"], "99999"),
                         (["--listener", LISTENER, "--control-window", "soon"], "duration")):
        res = subprocess.run([sys.executable, "-m", "camaudit", "egress", "check", *args, "--db",
                              str(tmp_path / "x.db"), *SAFE], capture_output=True, text=True, timeout=60, env=ENV)
        assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    res = subprocess.run([sys.executable, "-m", "camaudit", "egress", "import-log", str(tmp_path / "none.jsonl"),
                          "--db", str(tmp_path / "x.db")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "cannot read the listener log" in res.stderr


def test_rate_limiter_spaces_probe_starts() -> None:
    limiter = RateLimiter(100.0)
    t0 = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - t0 >= 0.095
