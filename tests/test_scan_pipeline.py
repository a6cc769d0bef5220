"""The scan pipeline end to end, through the `camaudit` command, against real loopback
listeners that the tests start (addresses in 127.41.0.0/16)."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import (  # tests/hostile.py
    HIKVISION_APPWEBS_ROOT,
    ServerFarm,
    close_mid_response,
    garbage,
    header_flood,
    http_site,
    reset,
    silent,
    trickle,
)


def camaudit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "camaudit", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def listeners() -> Iterator[list[tuple[str, int]]]:
    """Plain TCP listeners that accept and close: enough for a sweep."""
    socks = []
    spots = [("127.41.0.1", 8080), ("127.41.0.1", 8554), ("127.41.0.3", 37777)]
    for address, port in spots:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(64)
        socks.append(sock)
    stop = threading.Event()

    def accept_loop(sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                continue

    threads = [threading.Thread(target=accept_loop, args=(s,), daemon=True) for s in socks]
    for thread in threads:
        thread.start()
    yield spots
    stop.set()
    for thread in threads:
        thread.join(2)
    for sock in socks:
        sock.close()


def test_sweep_only_json_contract(tmp_path: Path, listeners: list[tuple[str, int]]) -> None:
    db = tmp_path / "c.db"
    result = camaudit("scan", "127.41.0.0/29", "--db", str(db), "--json", "--sweep-only", "--ports", "8080,8554,37777,9")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout holds one JSON document and nothing else
    assert set(doc) >= {"scan_id", "hosts"}
    found = {(h["address"], p) for h in doc["hosts"] for p in h["ports"]}
    assert found == set(listeners)
    assert all(set(h) >= {"address", "ports", "observations"} for h in doc["hosts"])
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status from scans where id = ?", [doc["scan_id"]]).fetchone()[0] == "complete"
        assert conn.execute("select count(*) from services").fetchone()[0] == 3


def test_full_scan_records_probe_evidence(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with ServerFarm() as farm:
        address = "127.40.1.1"
        farm.serve(address, 8080, http_site({"/": HIKVISION_APPWEBS_ROOT}))
        result = camaudit("scan", address, "--db", str(db), "--json", "--ports", "8080")
    assert result.returncode == 0, result.stderr
    [host] = json.loads(result.stdout)["hosts"]
    kinds = {o["kind"]: o["value"] for o in host["observations"]}
    assert kinds["http_server"] == "App-webs/"
    shown = camaudit("show", "latest", "--db", str(db), "--json")
    assert json.loads(shown.stdout)["hosts"][0]["observations"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_scan_keeps_what_it_found(tmp_path: Path, listeners: list[tuple[str, int]], signum: int) -> None:
    db = tmp_path / "i.db"
    # 254 addresses x 3 ports at 40 connections/s would take ~19 s: interrupt it after 2 s.
    proc = subprocess.Popen(
        [sys.executable, "-m", "camaudit", "scan", "127.41.0.0/24", "--db", str(db), "--json", "--sweep-only",
         "--ports", "8080,8554,37777", "--rate", "40"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2.0)
    started = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=15)
    assert time.monotonic() - started < 5, "the scan must stop promptly"
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    doc = json.loads(out)
    assert doc["status"] == "interrupted"
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status from scans").fetchone()[0] == "interrupted"
        stored = set(conn.execute("select address, port from services").fetchall())
    # The low addresses were swept in the first 2 s and their open ports were written at once.
    assert ("127.41.0.1", 8080) in stored
    assert stored <= set(listeners)


def test_scans_and_show_list_the_history(tmp_path: Path, listeners: list[tuple[str, int]]) -> None:
    db = tmp_path / "h.db"
    for _ in range(2):
        assert camaudit("scan", "127.41.0.1", "--db", str(db), "--sweep-only", "--ports", "8080", "-q").returncode == 0
    listing = json.loads(camaudit("scans", "--db", str(db), "--json").stdout)["scans"]
    assert len(listing) == 2 and all(s["status"] == "complete" for s in listing)
    history = json.loads(camaudit("show", "127.41.0.1", "--db", str(db), "--json").stdout)["history"]
    assert [h["host"]["ports"] for h in history] == [[8080], [8080]]
    text = camaudit("show", listing[0]["scan_id"][:8], "--db", str(db))
    assert text.returncode == 0 and "127.41.0.1" in text.stdout


def test_hostile_devices_cannot_stall_or_crash_a_scan(tmp_path: Path) -> None:
    """Six hostile services on one address: the scan ends in bounded time, keeps what it could
    read, and says plainly what it could not (in its JSON and in the store)."""
    db = tmp_path / "hostile.db"
    address = "127.40.9.1"
    ports = {8080: silent(), 8081: header_flood(), 8082: close_mid_response(), 8083: garbage(),
             8084: trickle(interval=0.5), 8085: reset(after_request=True)}
    with ServerFarm() as farm:
        for port, handler in ports.items():
            farm.serve(address, port, handler)
        started = time.monotonic()
        result = camaudit(
            "scan", address, "--db", str(db), "--json", "--ports", ",".join(map(str, ports)),
            "--probe-timeout", "2", "--no-discovery", "--no-interrogate", "--fail-on", "none",
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # 6 ports x (3 x 2 s + 1 s) would be the per-port worst case, run 3 at a time; far less in practice.
    assert elapsed < 30, elapsed
    [host] = json.loads(result.stdout)["hosts"]
    assert sorted(host["ports"]) == sorted(ports)
    problems = " ".join(host["problems"])
    for port in (8080, 8081, 8084):  # silent, flood, trickle: each named
        assert f"tcp/{port}" in problems, problems
    kinds = {(o["kind"], o["port"]) for o in host["observations"]}
    assert ("http_server", 8081) in kinds  # the flood's Server header was read before the cut
    with sqlite3.connect(db) as conn:
        stored = json.loads(conn.execute("select problems from hosts where address = ?", [address]).fetchone()[0])
    assert stored == host["problems"]
