"""Issue 10 (hardening), through the real CLI in a subprocess: what a user's own input can do
to camaudit (scope, credentials files, stdin) ends in one clear line, never an echo of a
secret, a traceback or an "internal error"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run(
    *args: str, cwd: Path | None = None, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "camaudit", *args],
        capture_output=True, timeout=120, cwd=cwd, input=stdin, env={**os.environ, **(env or {})},
    )


# --- item 2: CGNAT space is scanned, with a note ---------------------------------------------


@pytest.mark.root
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_a_scan_of_cgnat_space_says_so_in_its_json_notes(tmp_path: Path) -> None:
    # 100.64.0.1 exists only on the loopback of a network namespace made here and wired to
    # nothing: the one probe the sweep sends cannot leave it.
    db = tmp_path / "scan.db"
    script = (
        'ip link set lo up && ip addr add 100.64.0.1/32 dev lo && exec "$0" -m camaudit scan 100.64.0.1 '
        '--sweep-only --ports 1 --no-discovery --json --quiet --fail-on none --db "$1"'
    )
    result = subprocess.run(
        ["unshare", "--net", "sh", "-c", script, sys.executable, str(db)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "complete"
    assert any("100.64.0.1" in note and "RFC 6598" in note and "ambiguous" in note for note in doc["notes"])


@pytest.mark.parametrize(
    "target",
    [
        "::ffff:10.255.255.254-::ffff:11.0.0.1",
        "::ffff:192.0.0.0/120",
        "::ffff:172.31.255.254-::ffff:172.32.0.1",
        "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff-2000::1",
        "64:ff9b:1::aff:ffff-64:ff9b:1::b00:1",
    ],
)
def test_embedded_ipv4_ranges_into_public_space_are_refused(tmp_path: Path, target: str) -> None:
    # Refused before anything is sent: the scope check comes first.
    result = run("scan", target, "--db", str(tmp_path / "scan.db"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert b"--allow-public" in result.stderr
    assert b"Traceback" not in result.stderr
    assert not (tmp_path / "scan.db").exists()


# --- item 7: a credentials file's values are never echoed ------------------------------------

SECRET = "Leak-Me-9981"


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (f'address: "{SECRET}"', "'address'"),
        (f'cidr: "{SECRET}"', "'cidr'"),
        (f'default: "{SECRET}"', "'default'"),
        (f'{SECRET}: x\n    cidr: 10.0.0.0/8', "key 1"),
    ],
)
def test_credentials_errors_name_the_entry_and_field_never_the_value(tmp_path: Path, entry: str, field: str) -> None:
    creds = tmp_path / "creds.yaml"
    creds.write_text(
        "credentials:\n"
        "  - cidr: 10.0.0.0/8\n    username: fine\n    password: 'first-entry-pw'\n"
        f"  - {entry}\n    username: audit\n    password: 'second-entry-pw'\n"
    )
    creds.chmod(0o600)
    result = run("scan", "127.0.0.1", "--credentials", str(creds), "--db", str(tmp_path / "scan.db"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    for secret in (SECRET, "first-entry-pw", "second-entry-pw"):
        assert secret.encode() not in output
    message = result.stderr.decode()
    assert "entry 2" in message and field in message
    assert "Traceback" not in message and message.count("\n") == 1


def test_a_password_in_password_env_is_not_echoed(tmp_path: Path) -> None:
    # A user who writes the password itself where the variable's name belongs.
    creds = tmp_path / "creds.yaml"
    creds.write_text(f"credentials:\n  - default: true\n    username: audit\n    password_env: '{SECRET}'\n")
    creds.chmod(0o600)
    result = run("scan", "127.0.0.1", "--credentials", str(creds), "--db", str(tmp_path / "scan.db"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert SECRET.encode() not in result.stdout + result.stderr
    assert b"entry 1" in result.stderr and b"'password_env'" in result.stderr


# --- item 9: identify - under strict stdin decoding -------------------------------------------


def test_identify_stdin_survives_a_bad_byte_under_strict_decoding() -> None:
    lines = (
        b'{"id": "cam1", "observations": [{"kind": "http_server", "value": "App-webs/"}]}\n'
        b'{"id": "cam\xff2", "observations": [{"kind": "http_server", "value": "DNVRS-Webs\xfe"}]}\n'
        b'{"id": "cam3", "observations": []}\n'
    )
    result = run("identify", "-", stdin=lines, env={"PYTHONIOENCODING": "utf-8:strict"})
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [r["id"] for r in records] == ["cam1", "cam\ufffd2", "cam3"]
    assert records[0]["vendor"] == "hikvision"
    assert all("error" not in r for r in records)


def test_identify_reads_stdin_and_a_file_alike(tmp_path: Path) -> None:
    data = b'{"id": "x\xc3", "observations": [{"kind": "http_server", "value": "App-webs/"}]}\n'
    (tmp_path / "in.jsonl").write_bytes(data)
    from_file = run("identify", str(tmp_path / "in.jsonl"))
    from_stdin = run("identify", "-", stdin=data, env={"PYTHONIOENCODING": "utf-8:strict"})
    assert from_file.returncode == from_stdin.returncode == 0
    assert from_file.stdout == from_stdin.stdout
