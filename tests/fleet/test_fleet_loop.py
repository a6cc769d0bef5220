"""The fleet end to end on loopback (issue 12): a real nats-server on 127.0.0.1, `central serve`
and `agent run` as subprocesses, the agent scanning the loopback lab (127.77.13.0/24, this
module's block). A job goes out, its bundle comes back and is merged; the merger SIGKILLed in the
middle of a merge loses nothing and doubles nothing; a redelivered bundle changes nothing; an
altered bundle and one signed by the other site's key are refused.

Every process is started here and stopped by its PID.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_support import Fleet

from camaudit.fleet.config import load_central, load_site, trust_key
from camaudit.fleet.keys import load_or_create_key
from camaudit.fleet.nats import bundle_present, connect, put_bundle
from camaudit.lab import plan_devices
from camaudit.lab.netns import GUARD_ENV
from camaudit.lab.runner import LabThread

SUBNET = "127.77.13.0/24"
CLI = [sys.executable, "-m", "camaudit"]
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("CAMAUDIT_")} | {
    GUARD_ENV: "1", "CAMAUDIT_USERNAME": "admin", "CAMAUDIT_PASSWORD": "camaudit-lab"}
LIMIT = 240.0  # seconds: generous (a loaded machine); bounds a hang only
FAST_LIMITS = {"job_ack_wait": "5.0", "heartbeat_interval": "1.0", "retry_initial": "0.2", "retry_max": "2.0"}


def set_limits(path: Path) -> None:
    text = path.read_text()
    for name, value in FAST_LIMITS.items():
        text = re.sub(rf"^{name} = .*$", f"{name} = {value}", text, flags=re.MULTILINE)
    path.write_text(text)


def wait_for(what: str, check: Callable[[], Any], limit: float = LIMIT) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Process:
    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        handle = open(log, "ab")  # noqa: SIM115 - the process writes to it until stopped
        self.process = subprocess.Popen([*CLI, *args], stdout=handle, stderr=subprocess.STDOUT, env=env)
        handle.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        return int(self.process.returncode)


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet
    finally:
        conn.close()


def digest(db: Path) -> str:
    conn = sqlite3.connect(db, timeout=30)
    try:
        h = hashlib.sha256()
        for (table,) in conn.execute("select name from sqlite_master where type = 'table' order by name"):
            for row in sorted(repr(tuple(r)) for r in conn.execute(f'select * from "{table}"')):  # noqa: S608
                h.update(f"{table}:{row}\n".encode())
        return h.hexdigest()
    finally:
        conn.close()


@pytest.fixture
def lab() -> Iterator[list[dict[str, Any]]]:
    specs = plan_devices(3, subnet=SUBNET, mix="hikvision=1,dahua=1,axis=1", seed=13)
    with LabThread(specs) as running:
        yield running.manifest


@pytest.fixture
def prepared(fleet: Fleet) -> Fleet:
    for path in (fleet.directory / "central.toml", fleet.directory / "site-pool.toml",
                 fleet.directory / "site-yard.toml"):
        set_limits(path)
    for site in ("pool", "yard"):
        # Each site's agent has its own key (in the field, on its own machine).
        site_toml = fleet.directory / f"site-{site}.toml"
        site_toml.write_text(re.sub(r"^key_file = .*$", f'key_file = "agent-{site}.key"', site_toml.read_text(),
                                    flags=re.MULTILINE))
        fleet.sites[site] = load_site(site_toml)
        key = load_or_create_key(load_site(fleet.directory / f"site-{site}.toml").key_file)
        trust_key(fleet.directory, site, key.public_text)
    fleet.central = load_central(fleet.directory / "central.toml")
    return fleet


def scan_args(lab: list[dict[str, Any]]) -> list[str]:
    ports = sorted({p for e in lab for p in e["ports"]["tcp"]})
    return [*(e["address"] for e in lab), "--ports", ",".join(map(str, ports)), "--no-discovery"]


async def _publish_bundle(fleet: Fleet, site: str, bundle_id: str, data: bytes) -> None:
    """Announce a bundle as the site's agent does (a fresh notice id: the server would drop a
    repeated one as a duplicate before the merger saw it)."""
    client = await connect(fleet.sites[site])
    try:
        await put_bundle(client.jetstream(timeout=30), site, bundle_id, data, message_id=f"{bundle_id}.{time.time_ns()}")
    finally:
        await client.close()


async def _present(fleet: Fleet, site: str, bundle_id: str) -> bool:
    client = await connect(fleet.sites[site])
    try:
        return await bundle_present(client.jetstream(timeout=30), site, bundle_id)
    finally:
        await client.close()


def test_a_job_goes_out_and_its_bundle_is_merged_once_whatever_happens(prepared: Fleet, lab: list[dict[str, Any]],
                                                                       tmp_path: Path) -> None:
    fleet = prepared
    central_db, agent_db = tmp_path / "central.db", tmp_path / "agent.db"
    central_toml, pool_toml = fleet.directory / "central.toml", fleet.directory / "site-pool.toml"
    processes: list[Process] = []
    try:
        # The merger holds its transaction open, so that it can be killed in the middle of a merge.
        centre = Process(["central", "serve", "--fleet", str(central_toml), "--db", str(central_db)],
                         tmp_path / "central-1.log", ENV | {"CAMAUDIT_TEST_MERGE_PAUSE": "60"})
        processes.append(centre)
        agent = Process(["agent", "run", "--fleet", str(pool_toml), "--db", str(agent_db)], tmp_path / "agent.log", ENV)
        processes.append(agent)
        queued = subprocess.run([*CLI, "fleet", "scan", "--fleet", str(central_toml), "--site", "pool",
                                 *scan_args(lab), "--json"], capture_output=True, text=True, timeout=120, env=ENV)
        assert queued.returncode == 0, queued.stderr
        job_id = json.loads(queued.stdout)["job_id"]
        wait_for("the merge to start", lambda: "holding the merge open" in centre.text())
        time.sleep(1)
        assert centre.stop(signal.SIGKILL) == -signal.SIGKILL
        # Killed mid-merge: nothing of the bundle is in the central store.
        assert rows(central_db, "select count(*) from scans") == [(0,)]
        assert rows(central_db, "select count(*) from bundles") == [(0,)]

        centre = Process(["central", "serve", "--fleet", str(central_toml), "--db", str(central_db)],
                         tmp_path / "central-2.log", ENV)
        processes.append(centre)
        wait_for("the redelivered bundle to be merged", lambda: rows(central_db, "select count(*) from bundles where "
                                                                                "finalised_at is not null") == [(1,)])
        ledger = rows(central_db, "select bundle_id, site, kind, run_id, job_id from bundles")
        assert len(ledger) == 1
        bundle_id, site, kind, scan_id, ledger_job = ledger[0]
        assert (site, kind, ledger_job) == ("pool", "scan", job_id)
        assert rows(central_db, "select id, site, status from scans") == [(scan_id, "pool", "complete")]
        assert rows(central_db, "select count(*) from identities where scan_id = ?", (scan_id,)) == [(len(lab),)]
        assert rows(central_db, "select count(*) from assessments where scan_id = ?", (scan_id,)) == [(1,)]
        # The agent learns its bundle was merged: the centre removed it from the bucket.
        wait_for("the agent to mark its bundle merged",
                 lambda: rows(agent_db, "select state from outbox where bundle_id = ?", (bundle_id,)) == [("merged",)])
        assert "sent to the centre" in agent.text()

        # A second job, waited for: {"job_id", "scan_id", "site", "merged": true}.
        waited = subprocess.run([*CLI, "fleet", "scan", "--fleet", str(central_toml), "--site", "pool",
                                 *scan_args(lab), "--wait", "--timeout", str(LIMIT), "--json"],
                                capture_output=True, text=True, timeout=LIMIT + 60, env=ENV)
        assert waited.returncode == 0, waited.stderr
        answer = json.loads(waited.stdout)
        assert answer["merged"] is True and answer["site"] == "pool" and answer["scan_id"] != scan_id
        assert rows(central_db, "select count(*) from scans where site = 'pool'") == [(2,)]
        first_bundle = rows(agent_db, "select bundle from outbox where bundle_id = ?", (bundle_id,))[0][0]

        # The same bundle announced again (a redelivery): nothing changes.
        wait_for("the second bundle to leave the bucket", lambda: not asyncio.run(
            _present(fleet, "pool", rows(central_db, "select bundle_id from bundles order by merged_at desc")[0][0])))
        before = digest(central_db)
        asyncio.run(_publish_bundle(fleet, "pool", bundle_id, bytes(first_bundle)))
        wait_for("the redelivered bundle to be acknowledged",
                 lambda: not asyncio.run(_present(fleet, "pool", bundle_id)))
        assert digest(central_db) == before

        # Refused: a bundle altered by one byte, one signed by the other site's key.
        altered = bytearray(first_bundle)
        altered[-50] ^= 0x01
        asyncio.run(_publish_bundle(fleet, "pool", hashlib.sha256(b"x" + altered).hexdigest(), bytes(altered)))
        wait_for("the altered bundle to be refused", lambda: "was altered" in centre.text())
        from camaudit.fleet.bundle import build_bundle
        from camaudit.store import bundles as stored_bundles
        from camaudit.store import open_store

        with open_store(agent_db) as store:
            database = stored_bundles.export_run(store, scan_id=scan_id).database
        yard_key = load_or_create_key(fleet.sites["yard"].key_file)
        counts = json.loads(rows(central_db, "select counts from bundles where bundle_id = ?", (bundle_id,))[0][0])
        forged = build_bundle(database, yard_key, kind="scan", site="pool", segments=[], agent_id="yard-agent",
                              agent_version="0", job_id=None, started_at="2026-01-01T00:00:00+00:00",
                              finished_at="2026-01-01T00:00:01+00:00", counts=counts)
        asyncio.run(_publish_bundle(fleet, "pool", hashlib.sha256(forged).hexdigest(), forged))
        wait_for("the forged bundle to be refused", lambda: "a key trusted for site 'yard'" in centre.text())
        assert digest(central_db) == before
        assert "Traceback" not in centre.text() + agent.text()
    finally:
        for process in reversed(processes):
            process.stop()


def test_fleet_scan_failures_are_one_line(prepared: Fleet, tmp_path: Path) -> None:
    central_toml = prepared.directory / "central.toml"

    def fleet_scan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "fleet", "scan", "--fleet", str(central_toml), *args], capture_output=True,
                              text=True, timeout=120, env=ENV)

    unknown = fleet_scan("--site", "lake", "127.77.13.1")
    assert unknown.returncode == 2 and "site 'lake' is not in this fleet" in unknown.stderr
    assert unknown.stderr.count("\n") == 1
    # No agent of site yard runs: --wait says so after --timeout, exit 3.
    nobody = fleet_scan("--site", "yard", "127.77.13.1", "--wait", "--timeout", "3")
    assert nobody.returncode == 3, nobody.stderr
    assert "no live agent of site yard picked up job" in nobody.stderr and nobody.stderr.count("\n") == 1
    prepared.server.stop()
    down = fleet_scan("--site", "pool", "127.77.13.1")
    assert down.returncode == 3 and "cannot reach the NATS server" in down.stderr and "Traceback" not in down.stderr


def test_the_agent_keeps_waiting_for_an_unreachable_server_and_says_so(prepared: Fleet, tmp_path: Path) -> None:
    prepared.server.stop()
    agent = Process(["agent", "run", "--fleet", str(prepared.directory / "site-pool.toml"), "--db",
                     str(tmp_path / "agent.db")], tmp_path / "agent.log", ENV)
    try:
        wait_for("the agent to say it retries", lambda: agent.text().count("retrying in") >= 2, limit=60)
        assert agent.process.poll() is None
    finally:
        assert agent.stop() == 0
    assert "Traceback" not in agent.text()


def test_bundles_made_while_the_server_is_down_are_sent_when_it_returns(prepared: Fleet, lab: list[dict[str, Any]],
                                                                        tmp_path: Path) -> None:
    from fleet_support import start_server

    from camaudit.fleet.export import export_bundle
    from camaudit.store import bundles as stored_bundles
    from camaudit.store import open_store

    fleet = prepared
    central_db, agent_db = tmp_path / "central.db", tmp_path / "agent.db"
    # A run the agent finished while cut off: in its outbox, pending.
    done = subprocess.run([*CLI, "scan", *scan_args(lab), "--site", "pool", "--db", str(agent_db), "--json", "-q",
                           "--fail-on", "none"], capture_output=True, text=True, timeout=LIMIT, env=ENV)
    assert done.returncode == 0, done.stderr
    with open_store(agent_db) as store:
        exported = export_bundle(store, load_or_create_key(fleet.sites["pool"].key_file), scan_ref="latest",
                                 site="pool")
        stored_bundles.add_to_outbox(store, bundle_id=exported.bundle_id, site="pool", kind="scan",
                                     run_id=exported.run_id, job_id=None, bundle=exported.bundle)
    fleet.server.stop()
    processes = [
        Process(["central", "serve", "--fleet", str(fleet.directory / "central.toml"), "--db", str(central_db)],
                tmp_path / "central.log", ENV),
        Process(["agent", "run", "--fleet", str(fleet.directory / "site-pool.toml"), "--db", str(agent_db)],
                tmp_path / "agent.log", ENV),
    ]
    centre, agent = processes
    try:
        wait_for("the agent to say it keeps its bundle", lambda: "keeping 1 bundle(s) in the outbox" in agent.text())
        assert rows(agent_db, "select state from outbox") == [("pending",)]
        fleet.server = start_server(fleet.directory / "nats-server.conf", fleet.server.port,
                                    tmp_path / "nats-server-2.log")
        wait_for("the bundle to be merged", lambda: rows(central_db, "select run_id, site from bundles where "
                                                                     "finalised_at is not null"))
        assert rows(central_db, "select id, site from scans") == [(exported.run_id, "pool")]
        wait_for("the agent to mark it merged", lambda: rows(agent_db, "select state from outbox") == [("merged",)])
    finally:
        codes = [p.stop() for p in reversed(processes)]
    assert codes == [0, 0], centre.text()[-2000:] + agent.text()[-2000:]
    assert "Traceback" not in centre.text() + agent.text()


def test_fleet_egress_runs_the_check_at_the_site_and_merges_its_run(prepared: Fleet, tmp_path: Path) -> None:
    """Every probe stays on loopback: the listener on 127.77.13.250, every probe towards the
    host's own network off (no UPnP, NAT-PMP, proxy discovery, router solicitation wait, TTL
    steps or ICMP; the resolver is the listener)."""
    fleet = prepared
    listener_address, tcp, udp = "127.77.13.250", "18453", "18810"
    ready = tmp_path / "ready"
    listener = Process(["egress", "listen", "--bind", listener_address, "--tcp-ports", tcp, "--udp-ports", udp,
                        "--log", str(tmp_path / "seen.jsonl"), "--no-icmp", "--duration", "300", "--ready-file",
                        str(ready)], tmp_path / "listener.log", ENV)
    central_db, agent_db = tmp_path / "central.db", tmp_path / "agent.db"
    processes = [listener]
    try:
        wait_for("the listener", ready.exists, limit=60)
        processes.append(Process(["central", "serve", "--fleet", str(fleet.directory / "central.toml"), "--db",
                                  str(central_db)], tmp_path / "central.log", ENV))
        processes.append(Process(["agent", "run", "--fleet", str(fleet.directory / "site-pool.toml"), "--db",
                                  str(agent_db)], tmp_path / "agent.log", ENV))
        waited = subprocess.run(
            [*CLI, "fleet", "egress", "--fleet", str(fleet.directory / "central.toml"), "--site", "pool",
             "--listener", listener_address, "--resolver", listener_address, "--tcp-ports", tcp, "--udp-ports", udp,
             "--no-upnp", "--no-natpmp", "--no-proxy-discovery", "--ra-wait", "0", "--max-hops", "0",
             "--skip", "icmp", "--probe-timeout", "1", "--wait", "--timeout", str(LIMIT), "--json"],
            capture_output=True, text=True, timeout=LIMIT + 60, env=ENV)
        assert waited.returncode == 0, waited.stderr + processes[-1].text()[-2000:]
        answer = json.loads(waited.stdout)
        assert answer["merged"] is True and answer["site"] == "pool"
        run_id = answer["egress_run_id"]
        assert rows(central_db, "select id, site, scan_id from egress_runs") == [(run_id, "pool", None)]
        assert rows(central_db, "select count(*) from egress_tests where run_id = ?", (run_id,))[0][0] > 0
        assert rows(central_db, "select kind, run_id from bundles") == [("egress", run_id)]
        assert rows(central_db, "select count(*) from verdicts where egress_run_id = ?", (run_id,)) == [(1,)]
    finally:
        for process in reversed(processes):
            process.stop()


def test_a_schedule_fired_twice_for_one_slot_queues_one_job(prepared: Fleet) -> None:
    central_toml = prepared.directory / "central.toml"

    def fire(slot: str) -> dict[str, Any]:
        done = subprocess.run([*CLI, "fleet", "scan", "--fleet", str(central_toml), "--site", "yard", "127.77.13.1",
                               "--schedule", "nightly", "--slot", slot, "--json"], capture_output=True, text=True,
                              timeout=120, env=ENV)
        assert done.returncode == 0, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    first, again, next_night = fire("2026-12-04"), fire("2026-12-04"), fire("2026-12-05")
    assert first["queued"] is True and next_night["queued"] is True
    assert again["queued"] is False and again["duplicate"] is True

    async def pending() -> int:
        from camaudit.fleet import subjects

        client = await connect(prepared.central)
        try:
            info = await client.jetstream(timeout=30).consumer_info(subjects.JOBS_STREAM, subjects.site_consumer("yard"))
            return int(info.num_pending or 0)
        finally:
            await client.close()

    assert asyncio.run(pending()) == 2
    half = subprocess.run([*CLI, "fleet", "scan", "--fleet", str(central_toml), "--site", "yard", "127.77.13.1",
                           "--schedule", "nightly"], capture_output=True, text=True, timeout=120, env=ENV)
    assert half.returncode == 2 and "--schedule and --slot go together" in half.stderr
    # What the units of `camaudit schedule --fleet` run: the slot is the one the firing falls in.
    twice = [subprocess.run([*CLI, "fleet", "scan", "--fleet", str(central_toml), "--site", "yard", "127.77.13.1",
                             "--schedule", "weekly-audit", "--every", "weekly", "--json"], capture_output=True,
                            text=True, timeout=120, env=ENV) for _ in range(2)]
    assert [t.returncode for t in twice] == [0, 0], [t.stderr for t in twice]
    assert json.loads(twice[0].stdout)["queued"] is True
    assert json.loads(twice[1].stdout)["duplicate"] is True


def test_wrong_credentials_end_the_agent_and_the_centre_with_one_line(prepared: Fleet, tmp_path: Path) -> None:
    for name, command in (("site-pool.toml", "agent"), ("central.toml", "central")):
        wrong = tmp_path / name
        wrong.write_text(re.sub(r'^password = ".*"$', 'password = "not-the-password"',
                                (prepared.directory / name).read_text(), flags=re.MULTILINE))
        os.chmod(wrong, 0o600)
        if command == "agent":
            wrong.write_text(wrong.read_text().replace('key_file = "agent-pool.key"',
                                                       f'key_file = "{prepared.directory / "agent-pool.key"}"'))
        args = ["agent", "run"] if command == "agent" else ["central", "serve"]
        done = subprocess.run([*CLI, *args, "--fleet", str(wrong), "--db", str(tmp_path / f"{command}.db")],
                              capture_output=True, text=True, timeout=120, env=ENV)
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("camaudit: error:")]
        assert len(lines) == 1 and "refused the credentials" in lines[0], done.stderr
        assert "Traceback" not in done.stderr
