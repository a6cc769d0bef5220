"""The command line as its users meet it (review of DESIGN.md section 7): a damaged, read-only or
full database, a closed stdin, a binary file given by mistake. Each error is one line on stderr
with the contract's exit code, never a traceback; --json keeps stdout to one JSON document.

Real processes, real SQLite files, a real full tmpfs; devices only on loopback in 127.84.0.0/16.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from camaudit.errors import StoreError
from camaudit.store import open_store


def run(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "camaudit", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def new_store(path: Path) -> str:
    with open_store(path) as store:
        scan_id = store.start_scan(targets=["127.84.9.1"])
        store.add_services(scan_id, [("127.84.9.1", 80)])
        store.finish_scan(scan_id, "complete")
    return scan_id


@pytest.mark.parametrize("table", ["identities", "hosts", "findings"])
def test_a_database_missing_a_table_is_named_damaged(tmp_path: Path, table: str) -> None:
    db = tmp_path / "dropped.db"
    new_store(db)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(f"drop table {table}")
        conn.commit()
    for args in (["scans"], ["show", "latest"], ["report", "--format", "json", "-o", "-"], ["diff", "latest", "latest"]):
        result = run(*args, "--db", str(db))
        assert_one_line_error(result, 2, f"table {table} is missing")  # corrupt: an input error
        assert result.stdout == ""


def test_a_write_that_sqlite_refuses_inside_a_transaction_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    new_store(db)
    with open_store(db) as store:
        with pytest.raises(StoreError, match="damaged or not a camaudit database"), store.write() as conn:
            conn.execute("insert into no_such_table values (1)")
        # The failed transaction was rolled back: the store still takes writes.
        store.finish_scan(store.scans()[0].id, "complete")


def test_ask_credentials_without_a_terminal_is_a_usage_error(tmp_path: Path) -> None:
    result = run("scan", "127.84.9.1", "--ask-credentials", "--json", "--db", str(tmp_path / "x.db"))
    assert_one_line_error(result, 2, "needs a terminal")
    assert result.stdout == "", "a prompt must never land on stdout"
    assert not (tmp_path / "x.db").exists(), "nothing is recorded before the input is known good"


def test_datasette_metadata_needs_an_existing_database(tmp_path: Path) -> None:
    result = run("export", "datasette-metadata", "--db", str(tmp_path / "none.db"), "-o", str(tmp_path / "m.json"))
    assert_one_line_error(result, 2, "no database at")
    assert not (tmp_path / "m.json").exists()


def test_a_binary_register_file_does_not_reach_the_terminal(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    new_store(db)
    binary = tmp_path / "register.csv"
    binary.write_bytes(b"\x1b[31m\x00\x01\x07 binary")
    result = run("register", "import", str(binary), "--db", str(db))
    assert_one_line_error(result, 2, "asset_id")
    assert not any(c in result.stderr for c in "\x1b\x00\x01\x07")


def test_json_commands_print_one_document_each(tmp_path: Path) -> None:
    db = str(tmp_path / "j.db")
    first = new_store(Path(db))
    # Nothing listens on this address: a quick, complete scan (the second one in the store).
    scan = run("scan", "127.84.9.2", "--sweep-only", "--no-discovery", "--ports", "9", "--json", "--db", db)
    assert scan.returncode == 0, scan.stderr
    second = json.loads(scan.stdout)["scan_id"]
    for args in (
        ["scans", "--json"], ["show", "latest", "--json"], ["show", "127.84.9.1", "--json"],
        ["diff", first, second, "--json"], ["report", "--format", "json", "-o", "-"],
    ):
        result = run(*args, "--db", db)
        assert result.returncode in (0, 1), (args, result.stderr)
        json.loads(result.stdout)  # one document, nothing else
        assert "Traceback" not in result.stderr


# -- read-only and full disks (root: a read-only bind mount, a tmpfs) ---------------------------


@contextlib.contextmanager
def mounted(target: Path, *args: str) -> Iterator[Path]:
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", *args, str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.root
def test_a_read_only_database_can_be_read_but_not_scanned_into(tmp_path: Path) -> None:
    source = tmp_path / "evidence"
    source.mkdir()
    scan_id = new_store(source / "x.db")
    with mounted(tmp_path / "ro", "--bind", str(source)) as ro:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        db = str(ro / "x.db")
        listed = run("scans", "--json", "--db", db)
        assert listed.returncode == 0, listed.stderr
        assert [s["scan_id"] for s in json.loads(listed.stdout)["scans"]] == [scan_id]
        shown = run("show", "latest", "--json", "--db", db)
        assert shown.returncode == 0 and json.loads(shown.stdout)["scan_id"] == scan_id
        report = run("report", "--db", db, "--fail-on", "none", "-o", str(tmp_path / "archived.html"))
        assert report.returncode == 0, report.stderr  # an archived store is reported, not changed
        assert (tmp_path / "archived.html").stat().st_size > 0
        result = run("scan", "127.84.9.1", "--no-discovery", "--db", db)
        assert_one_line_error(result, 3, "read-only")
        result = run("register", "import", "/dev/null", "--db", db)
        assert_one_line_error(result, 3, "read-only")


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[str]:
    manifest = tmp_path / "lab.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "camaudit", "lab", "up", "--devices", "30", "--subnet", "127.84.10.0/24",
         "--manifest", str(manifest)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not manifest.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert manifest.exists(), "the lab did not come up"
        yield "127.84.10.0/27"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.root
def test_a_full_disk_fails_the_scan_plainly_and_keeps_what_was_written(tmp_path: Path, lab: str) -> None:
    with mounted(tmp_path / "tiny", "-t", "tmpfs", "-o", "size=1m", "tmpfs") as tiny:
        db = tiny / "x.db"
        before = run("scan", "127.84.10.1", "--sweep-only", "--no-discovery", "--db", str(db), "-q")
        assert before.returncode in (0, 1), before.stderr
        first = json.loads(run("scans", "--json", "--db", str(db)).stdout)["scans"][0]["scan_id"]
        # Leave ~120 KiB: enough to open the store and start the scan, not to record 30 devices.
        free = os.statvfs(tiny).f_bavail * os.statvfs(tiny).f_frsize
        (tiny / "filler").write_bytes(b"\0" * max(0, free - 120 * 1024))
        result = run("scan", lab, "--no-discovery", "--json", "--db", str(db))
        assert result.returncode == 3, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("camaudit: error: ") and "disk is full" in lines[-1], lines
        # At most a warning that the scan could not be marked failed, before the error itself.
        assert all(line.startswith("camaudit: WARNING: could not mark") for line in lines[:-1]), lines
        assert result.stdout == ""
        (tiny / "filler").unlink()
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
            statuses = dict(conn.execute("select id, status from scans").fetchall())
        assert statuses.pop(first) == "complete", "what was written before stays readable"
        # The failed scan is marked when the disk leaves room for that one row; else the user
        # was told it could not be (the warning above), and it shows as running.
        marked_failed = list(statuses.values()) in ([], ["failed"])
        told = any("could not mark" in line for line in lines)
        assert marked_failed or (list(statuses.values()) == ["running"] and told), (statuses, lines)
        listed = run("scans", "--json", "--db", str(db))
        assert listed.returncode == 0 and first in listed.stdout


@pytest.mark.root
def test_a_report_on_a_full_disk_fails_plainly_and_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    new_store(db)
    with mounted(tmp_path / "tiny", "-t", "tmpfs", "-o", "size=8k", "tmpfs") as tiny:
        result = run("report", "--db", str(db), "--fail-on", "none", "-o", str(tiny / "report.html"))
        assert_one_line_error(result, 3, "No space left on device")
        assert list(tiny.iterdir()) == []  # no half-written report, no temporary file
