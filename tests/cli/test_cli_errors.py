"""Every error a user can cause gets one clear line and the contract's exit code, never a
traceback (DESIGN.md section 7). Runs the installed `camaudit` entry point in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "camaudit", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, input=stdin,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "8.8.8.8"], "--allow-public"),
        (["scan", "10.0.0.0/8"], "--max-hosts"),
        (["scan", "not-an-address"], "is not an address"),
        (["scan", "10.0.0.1", "--ports", "http"], "is not a port"),
        (["scan", "10.0.0.1", "--rate", "-5"], "Invalid value"),
        (["scan", "10.0.0.1", "--config", "/nonexistent/camaudit.toml"], "cannot read configuration file"),
        (["scan", "@/nonexistent/targets.txt"], "cannot read target file"),
        (["scan"], "Missing argument"),
        (["scans", "--db", "/nonexistent/x.db"], "no database"),
        (["frobnicate"], "No such command"),
    ],
)
def test_usage_errors_exit_2_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_damaged_database_is_reported_plainly(tmp_path: Path) -> None:
    db = tmp_path / "broken.db"
    db.write_bytes(b"\x00garbage" * 512)
    result = run("scans", "--db", str(db))
    assert result.returncode == 2, "a corrupt database is an input error (DESIGN.md section 7)"
    assert "not a camaudit database" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands_and_exit_codes() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("scan", "scans", "show"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout
