"""`camaudit fleet init|trust|key|status` and `camaudit bundle verify`, run as a user would (a
subprocess of the real entry point): files, exit codes, one-line errors, no secret printed."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from fleet_support import Fleet, free_port

from camaudit.fleet.bundle import build_bundle, write_bundle
from camaudit.fleet.config import load_central, load_site
from camaudit.fleet.keys import load_or_create_key
from camaudit.fleet.nats import Job, connect, provision, publish_job, put_heartbeat


def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "camaudit", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, input=stdin)


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def init(tmp_path: Path, *sites: str, server: str = "nats://127.0.0.1:4222") -> Path:
    directory = tmp_path / "fleet"
    args = [a for s in sites for a in ("--site", s)]
    result = run("fleet", "init", str(directory), *args, "--server", server)
    assert result.returncode == 0, result.stderr
    return directory


def secrets_of(directory: Path) -> list[str]:
    found = [tomllib.loads((directory / "central.toml").read_text())["fleet"]["password"]]
    found += [tomllib.loads(p.read_text())["fleet"]["password"] for p in directory.glob("site-*.toml")]
    return found


def test_init_writes_the_three_kinds_of_file_0600_and_prints_no_secret(tmp_path: Path) -> None:
    directory = tmp_path / "fleet"
    result = run("fleet", "init", "--dir", str(directory), "--site", "pool", "--site", "works-yard",
                 "--server", "nats://central.example.org:4222")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["central.toml", "nats-server.conf", "site-pool.toml", "site-works-yard.toml"]
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    passwords = secrets_of(directory)
    assert len(set(passwords)) == 3 and all(len(p) >= 40 for p in passwords)
    for secret in passwords:
        assert secret not in result.stdout and secret not in result.stderr
    central = load_central(directory / "central.toml")
    assert sorted(central.sites) == ["pool", "works-yard"] and central.server == "nats://central.example.org:4222"
    pool = load_site(directory / "site-pool.toml")
    assert pool.site == "pool" and pool.user == "site-pool"
    # A site file holds that site's password only.
    site_text = (directory / "site-pool.toml").read_text()
    assert passwords[0] not in site_text and load_site(directory / "site-works-yard.toml").password not in site_text
    conf = (directory / "nats-server.conf").read_text()
    assert 'listen: "0.0.0.0:4222"' in conf and "jetstream {" in conf
    assert '"user": "site-works-yard"' in conf and '"$KV.camaudit-heartbeats.works-yard.>"' in conf


def test_init_never_overwrites_a_fleet(tmp_path: Path) -> None:
    directory = init(tmp_path, "pool")
    before = (directory / "central.toml").read_bytes()
    error = one_line_error(run("fleet", "init", str(directory), "--site", "pool"), 2)
    assert "already exists; fleet init never overwrites" in error
    assert (directory / "central.toml").read_bytes() == before


@pytest.mark.parametrize(("args", "message"), [
    (["--site", "Pool.A"], "site name 'Pool.A' is not allowed"),
    (["--site", "a>"], "is not allowed"),
    (["--site", "pool", "--site", "pool"], "each --site may be given once"),
    (["--site", "pool", "--server", "http://x:80"], "is not a NATS server URL"),
    (["--site", "pool", "--server", "nats://x:99999"], "is not a NATS server URL"),
    (["--site", "pool", "--listen", "4222"], "is not HOST:PORT"),
    (["--site", "pool", "--listen", 'x" }:4222'], "is not HOST:PORT"),
])
def test_init_refuses_bad_input_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    assert message in one_line_error(run("fleet", "init", str(tmp_path / "f"), *args), 2)
    assert not (tmp_path / "f" / "central.toml").exists()


def test_key_then_trust_then_verify(tmp_path: Path) -> None:
    directory = init(tmp_path, "pool", "yard")
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    (agent_dir / "site-pool.toml").write_bytes((directory / "site-pool.toml").read_bytes())
    os.chmod(agent_dir / "site-pool.toml", 0o600)
    made = run("fleet", "key", "--fleet", str(agent_dir / "site-pool.toml"))
    assert made.returncode == 0 and "made a new signing key" in made.stderr
    again = run("fleet", "key", "--fleet", str(agent_dir / "site-pool.toml"))
    assert again.stdout == made.stdout and "made a new" not in again.stderr
    assert stat.S_IMODE((agent_dir / "agent-ed25519.key").stat().st_mode) == 0o600
    (tmp_path / "pool.pub").write_text(made.stdout)
    trusted = run("fleet", "trust", str(directory), "--site", "pool", str(tmp_path / "pool.pub"))
    assert trusted.returncode == 0 and "is now trusted for site pool" in trusted.stdout
    assert "was already trusted" in run("fleet", "trust", str(directory), "--site", "pool", "-",
                                        stdin=made.stdout).stdout
    assert "already trusted for site 'pool'" in one_line_error(
        run("fleet", "trust", str(directory), "--site", "yard", str(tmp_path / "pool.pub")), 2)
    assert "not in this fleet" in one_line_error(
        run("fleet", "trust", str(directory), "--site", "lake", str(tmp_path / "pool.pub")), 2)
    assert stat.S_IMODE((directory / "central.toml").stat().st_mode) == 0o600

    key = load_or_create_key(agent_dir / "agent-ed25519.key")
    path = write_bundle(tmp_path / "run.bundle", build_bundle(
        _database(tmp_path), key, kind="scan", site="pool", segments=["10.1.0.0/24"], agent_id="agent-7",
        agent_version="0.1.0", job_id=None, started_at="2026-12-04T01:00:00+00:00",
        finished_at="2026-12-04T01:02:00+00:00", counts={"scans": 1}))
    valid = run("bundle", "verify", str(path), "--fleet", str(directory / "central.toml"))
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.startswith("valid bundle from site pool, agent agent-7") and valid.stdout.count("\n") == 1
    document = json.loads(run("bundle", "verify", str(path), "--fleet", str(directory / "central.toml"),
                              "--json").stdout)
    assert document["valid"] is True and document["site"] == "pool" and document["signer"] == key.fingerprint

    altered = tmp_path / "altered.bundle"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    altered.write_bytes(bytes(data))
    refused = run("bundle", "verify", str(altered), "--fleet", str(directory / "central.toml"))
    assert "bundle refused:" in one_line_error(refused, 2) and refused.stdout == ""
    as_json = run("bundle", "verify", str(altered), "--fleet", str(directory / "central.toml"), "--json")
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["valid"] is False

    # Signed by yard's agent but claiming pool: refused, and the reason names yard.
    yard_key = load_or_create_key(tmp_path / "yard.key")
    run("fleet", "trust", str(directory), "--site", "yard", "-", stdin=yard_key.public_text)
    forged = write_bundle(tmp_path / "forged.bundle", build_bundle(
        _database(tmp_path), yard_key, kind="scan", site="pool", segments=[], agent_id="agent-8",
        agent_version="0.1.0", job_id=None, started_at="2026-12-04T01:00:00+00:00",
        finished_at="2026-12-04T01:02:00+00:00", counts={}))
    error = one_line_error(run("bundle", "verify", str(forged), "--fleet", str(directory / "central.toml")), 2)
    assert "a key trusted for site 'yard'" in error


def test_trust_refuses_a_pipe_or_binary_without_waiting(tmp_path: Path) -> None:
    directory = init(tmp_path, "pool")
    pipe = tmp_path / "key.pipe"
    os.mkfifo(pipe)
    (tmp_path / "binary.pub").write_bytes(b"\xff\xfe\x00")
    for keyfile, message in [(pipe, "is not a regular file"),
                             (tmp_path / "binary.pub", "is not text"), (tmp_path / "none.pub", "cannot read")]:
        error = one_line_error(run("fleet", "trust", str(directory), "--site", "pool", str(keyfile)), 2)
        assert message in error


def test_verify_with_a_site_file_instead_of_central_says_so(tmp_path: Path) -> None:
    directory = init(tmp_path, "pool")
    error = one_line_error(run("bundle", "verify", str(tmp_path / "x"), "--fleet",
                               str(directory / "site-pool.toml")), 2)
    assert "this command needs central.toml" in error
    error = one_line_error(run("bundle", "verify", str(tmp_path / "x"), "--fleet", str(tmp_path / "none.toml")), 2)
    assert "no fleet file at" in error


def test_status_shows_each_sites_agents_and_waiting_jobs(fleet: Fleet) -> None:
    async def prepare() -> None:
        central = await connect(fleet.central)
        js = central.jetstream(timeout=10)
        await provision(js, ["pool", "yard"], fleet.central.limits)
        await publish_job(js, Job(kind="scan", site="yard"))
        site = await connect(fleet.sites["pool"])
        await put_heartbeat(site.jetstream(timeout=10), "pool", "agent-1", "0.1.0")
        await site.close()
        await central.close()

    asyncio.run(asyncio.wait_for(prepare(), 60))
    result = run("fleet", "status", "--fleet", str(fleet.directory / "central.toml"), "--json")
    assert result.returncode == 0, result.stderr
    sites = {row["site"]: row for row in json.loads(result.stdout)["sites"]}
    assert [a["agent_id"] for a in sites["pool"]["agents"]] == ["agent-1"]
    assert sites["pool"]["agents"][0]["version"] == "0.1.0" and sites["pool"]["agents"][0]["stale"] is False
    assert sites["yard"]["agents"] == [] and sites["yard"]["pending_jobs"] == 1
    text = run("fleet", "status", "--fleet", str(fleet.directory / "central.toml"))
    assert "agent-1" in text.stdout and "no agent has reported" in text.stdout


def test_status_with_wrong_credentials_or_no_server_is_one_line(tmp_path: Path, fleet: Fleet) -> None:
    central = fleet.directory / "central.toml"
    central.write_text(central.read_text().replace(fleet.central.password, "wrong-password"))
    error = one_line_error(run("fleet", "status", "--fleet", str(central)), 2)
    assert "refused the credentials of the centre" in error and "wrong-password" not in error
    port = free_port()
    directory = init(tmp_path / "unreachable", "pool", server=f"nats://127.0.0.1:{port}")
    error = one_line_error(run("fleet", "status", "--fleet", str(directory / "central.toml")), 3)
    assert "cannot reach the NATS server" in error


def _database(tmp_path: Path) -> bytes:
    path = tmp_path / f"run-{os.urandom(4).hex()}.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE scans (id TEXT PRIMARY KEY, site TEXT)")
        db.execute("INSERT INTO scans VALUES (?, 'pool')", (os.urandom(8).hex(),))
    db.close()
    return path.read_bytes()
