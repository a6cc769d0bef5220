"""``camaudit demo`` end to end, on a small lab in this area's test block."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def test_demo_writes_the_store_and_summarises(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "camaudit", "demo", "--out", str(tmp_path), "--devices", "12",
         "--subnet", "127.78.40.0/24", "--seed", "2"],
        capture_output=True, timeout=170, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "Emulated 12 devices" in out and "Evidence store:" in out
    db = tmp_path / "camaudit-demo.db"
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        assert "scans" in tables
        assert conn.execute("select count(*) from scans").fetchone()[0] == 1
    assert time.monotonic() - started < 170


def test_demo_refuses_a_missing_out_dir(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "camaudit", "demo", "--out", str(tmp_path / "nope")],
                          capture_output=True, timeout=60)
    assert done.returncode == 2 and b"Traceback" not in done.stderr
