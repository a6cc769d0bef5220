"""Issue 10, scan-level safety: a scan whose probe never yields still stops on SIGTERM/SIGINT (its
watchdog), and a scan killed outright (SIGKILL) is noticed through its heartbeat by the next
command that opens the store.

Real `camaudit` processes and real SQLite files; the only devices are plain TCP listeners on
loopback (127.93.1.0/24, 127.93.2.0/24: this suite's block).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from camaudit.config import load_config
from camaudit.errors import ConfigError
from camaudit.store import Store, open_store

#: A scan whose probe spins forever without giving control back to the event loop, as a parser
#: looping on hostile bytes would. The probe is replaced here, in the child process only: the
#: product has no switch for this.
SPINNING_SCAN = """
import pathlib, sys
import camaudit.probes
from camaudit.cli import main

marker = pathlib.Path(sys.argv[1])

async def spinning_probe(*args, **kwargs):
    marker.write_text("spinning")
    while True:  # never returns, never awaits
        pass

camaudit.probes.probe_host = spinning_probe
main(sys.argv[2:])
"""

STALE_NOTE = re.compile(r"marked interrupted at \S+: no heartbeat since \S+ \(the process was probably killed\)")


@pytest.fixture
def open_port() -> Iterator[tuple[str, int]]:
    """A listening TCP socket on loopback: the kernel completes the handshakes, enough for a sweep."""
    with socket.socket() as sock:
        sock.bind(("127.93.1.1", 0))
        sock.listen(64)
        yield sock.getsockname()


def camaudit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "camaudit", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def wait_for(condition: object, what: str, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"the scan ended before {what}: {proc.communicate()[1]}")
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    pytest.fail(f"timed out waiting for {what}")


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    try:
        with closing(sqlite3.connect(db, timeout=30)) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_scan_whose_probe_never_yields(
    tmp_path: Path, open_port: tuple[str, int], signum: int
) -> None:
    address, port = open_port
    db, marker = tmp_path / "spin.db", tmp_path / "spinning"
    proc = subprocess.Popen(
        [sys.executable, "-c", SPINNING_SCAN, str(marker), "scan", address, "--db", str(db), "--ports", str(port),
         "--no-discovery", "--no-interrogate", "--json", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    try:
        wait_for(marker.exists, "the probe to start spinning", proc)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signum)
        try:
            out, err = proc.communicate(timeout=15)  # a generous bound: "does not hang"
        except subprocess.TimeoutExpired:
            pytest.fail(f"the scan ignored {signal.Signals(signum).name} for 15 s")
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    assert "stopped by its watchdog" in err, err
    assert out == ""  # no half document on stdout
    [(status, notes, finished)] = rows(db, "select status, notes, finished_at from scans")
    assert status == "interrupted"
    assert finished
    assert any(f"did not stop within 5 s of {signal.Signals(signum).name}" in n for n in json.loads(str(notes)))
    # What the sweep found before the probe hung is kept.
    assert rows(db, "select address, port from services") == [(address, port)]
    assert took < 15


def test_a_killed_scan_is_marked_interrupted_by_the_next_command(tmp_path: Path) -> None:
    config = tmp_path / "camaudit.toml"
    config.write_text("[scan]\nheartbeat_interval = 0.5\nstale_after = 3.0\n")
    db = tmp_path / "killed.db"
    with socket.socket() as sock:
        sock.bind(("127.93.2.1", 0))
        sock.listen(64)
        port = sock.getsockname()[1]
        # 254 addresses at 10 connections/s: ~25 s, far longer than this test lets it run.
        proc = subprocess.Popen(
            [sys.executable, "-m", "camaudit", "scan", "127.93.2.0/24", "--db", str(db), "--config", str(config),
             "--sweep-only", "--ports", str(port), "--rate", "10", "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        try:
            wait_for(lambda: rows(db, "select 1 from scans"), "the scan to be recorded", proc)
            [(started,)] = rows(db, "select started_at from scans")
            begun = dt.datetime.fromisoformat(str(started))
            # Older than the threshold used below, so only the heartbeat can keep it running.
            wait_for(lambda: (dt.datetime.now(dt.UTC) - begun).total_seconds() > 4.5, "4.5 s of scanning", proc)
            [(beat,)] = rows(db, "select heartbeat_at from scans")
            assert str(beat) > str(started), "the scan records its heartbeat while it runs"
            alive = json.loads(camaudit("scans", "--db", str(db), "--json", "--stale-after", "3").stdout)["scans"]
            assert [s["status"] for s in alive] == ["running"], "a scan with a fresh heartbeat is left alone"
            assert proc.poll() is None
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
    time.sleep(3.5)
    listed = camaudit("scans", "--db", str(db), "--json", "--stale-after", "3")
    assert listed.returncode == 0, listed.stderr
    [scan] = json.loads(listed.stdout)["scans"]
    assert scan["status"] == "interrupted"
    assert any(STALE_NOTE.fullmatch(n) for n in scan["notes"]), scan["notes"]
    assert scan["finished_at"]
    # Written to the store (it was writable), once.
    [(status, notes)] = rows(db, "select status, notes from scans")
    assert status == "interrupted" and len(json.loads(str(notes))) == 1
    again = json.loads(camaudit("scans", "--db", str(db), "--json").stdout)["scans"]
    assert again[0]["notes"] == scan["notes"]


def _age(path: Path, scan_id: str, seconds: float, *, column: str = "heartbeat_at") -> str:
    then = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).isoformat(timespec="microseconds")
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"update scans set {column} = ? where id = ?", [then, scan_id])
    return then


def test_stale_scans_are_marked_when_writable_and_only_shown_when_read_only(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        killed = store.start_scan(targets=["127.93.3.1"])
        old_version = store.start_scan(targets=["127.93.3.2"])  # from before heartbeats: none recorded
        alive = store.start_scan(targets=["127.93.3.3"])
        done = store.start_scan(targets=["127.93.3.4"])
        store.finish_scan(done, "complete")
    last_beat = _age(path, killed, 600)
    _age(path, old_version, 600, column="started_at")
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("update scans set heartbeat_at = null where id = ?", [old_version])
    _age(path, done, 600)

    # Read-only (archived evidence): shown as interrupted, nothing written.
    with Store(path, read_only=True, stale_after=60) as store:
        shown = {row.id: row for row in store.scans()}
        assert store.scan(killed).status == "interrupted"
    assert {i: r.status for i, r in shown.items()} == {killed: "interrupted", old_version: "interrupted",
                                                       alive: "running", done: "complete"}
    assert STALE_NOTE.fullmatch(shown[killed].notes[-1]) and last_beat in shown[killed].notes[-1]
    assert rows(path, "select count(*) from scans where status = 'running'") == [(3,)]

    # Writable: marked for good, the note kept, the end set to the last sign of life.
    with open_store(path, create=False, stale_after=60) as store:
        marked = {row.id: row for row in store.scans()}
    assert marked[killed].status == "interrupted" and marked[killed].finished_at == last_beat
    assert marked[alive].status == "running" and marked[done].status == "complete"
    assert dict(rows(path, "select id, status from scans")) == {killed: "interrupted", old_version: "interrupted",
                                                                alive: "running", done: "complete"}
    assert STALE_NOTE.fullmatch(json.loads(str(rows(path, f"select notes from scans where id = '{killed}'")[0][0]))[0])


def test_a_stale_threshold_that_a_live_scan_could_miss_is_refused() -> None:
    with pytest.raises(ConfigError, match="stale_after .* more than twice heartbeat_interval"):
        load_config(heartbeat_interval=5.0, stale_after=8.0)
    assert load_config(heartbeat_interval=0.5, stale_after=3.0).stale_after == 3.0


def test_a_killed_scan_is_identified_and_assessed_by_the_command_that_marks_it(tmp_path: Path) -> None:
    """Issue 11 item 7 on the stale path: a scan whose process died (status still running, its
    evidence stored, nothing identified) says what it saw once a later command marks it."""
    from camaudit.model import Observation
    from camaudit.store import assessments as stored_assessments

    db = tmp_path / "killed.db"
    with open_store(db) as store:
        scan_id = store.start_scan(targets=["10.7.0.0/24"], config={"sweep_only": False})
        store.add_services(scan_id, [("10.7.0.2", 80), ("10.7.0.2", 8000)])
        store.add_observations(scan_id, [
            Observation("10.7.0.2", "http_server", "App-webs/", 80, "http"),
            Observation("10.7.0.2", "http_www_authenticate", 'Digest realm="IP Camera(21388)"', 80, "http"),
        ])
        old = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).isoformat()
        store.db.execute("update scans set heartbeat_at = ?, started_at = ? where id = ?", [old, old, scan_id])
        store.db.conn.commit()
    res = subprocess.run([sys.executable, "-m", "camaudit", "scans", "--db", str(db), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    [entry] = json.loads(res.stdout)["scans"]
    assert entry["status"] == "interrupted" and any("no heartbeat since" in n for n in entry["notes"])
    with open_store(db) as store:
        [host] = store.hosts_of_scan(scan_id)
        assert host["identity"]["vendor"] == "hikvision"
        assert stored_assessments.latest_assessment(store, scan_id) is not None
