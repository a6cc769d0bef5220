"""egress check end to end in the namespace lab: the listener in the "internet" namespace, the
check in the camera segment (the scanner namespace), controls from the router namespace (a
vantage with egress), for every egress scenario of camaudit.lab.scenarios.

Everything stays inside this module's ``clab-*`` namespaces; the checks run with the lab guard
on (CAMAUDIT_REQUIRE_LAB_NETNS=1), so any multicast they send must be inside the lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camaudit.credentials import Credential, CredentialStore  # noqa: F401 - used in the device script
from camaudit.egress.run import outcome_from_store, record_scan_verdicts
from camaudit.lab import netns, scenarios
from camaudit.lab.netns import Topology
from camaudit.lab.plan import plan_devices
from camaudit.probes.device_config import DeviceSettings
from camaudit.store import open_store

pytestmark = [pytest.mark.root, pytest.mark.slow]

L4 = netns.INTERNET_LISTENER_ADDR
L6 = netns.INTERNET_LISTENER_ADDR6
RESOLVER = netns.INTERNET_RESOLVER_ADDR
ZONE = "egress.lab"
TCP = "80,443,8555"
UDP = "53,123,8800"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {netns.GUARD_ENV: "1"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    old = os.environ.get(netns.STATE_DIR_ENV)
    os.environ[netns.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("egstate"))
    specs = plan_devices(2, "10.77.0.0/16", "hikvision-ipc=2", 7)
    specs[0].settings["cloud"]["state"] = "registered"
    specs[1].settings["cloud"]["state"] = "off"
    topo = scenarios.start_netns_lab([s.to_json() for s in specs], scenario="closed", lifetime=300)
    topo.extra["egress_specs"] = [s.to_json() for s in specs]
    try:
        yield topo
    finally:
        assert netns.teardown(topo) == []
        if old is None:
            os.environ.pop(netns.STATE_DIR_ENV, None)
        else:
            os.environ[netns.STATE_DIR_ENV] = old


def _scenario(topo: Topology, name: str) -> None:
    scenarios.apply_scenario(topo, name, lifetime=300)
    # The auditor's listener answers at the resolver address too: it stands for the zone's
    # authoritative server that a recursing resolver would reach. Stop the scenario's resolver.
    dns_pid = topo.extra["scenario"]["helpers"].pop("dns")
    topo.stop_process(int(dns_pid))
    # The sensor's IPv6 is as the scenario ships it (on, link-local only): no change here.


def _listener(topo: Topology, tmp: Path, *, v6: bool = False) -> tuple[int, Path]:
    ready = tmp / f"listen-{time.monotonic_ns()}.ready"
    log = tmp / "seen.jsonl"
    binds = ["--bind", L4, "--bind", RESOLVER] + (["--bind", L6] if v6 else [])
    proc = topo.popen("inet", [sys.executable, "-m", "camaudit", "egress", "listen", *binds, "--tcp-ports", TCP,
                               "--udp-ports", UDP, "--dns-zone", ZONE, "--log", str(log), "--duration", "120",
                               "--ready-file", str(ready)],
                      stdout=subprocess.DEVNULL, stderr=(tmp / "listen.err").open("ab"))
    deadline = time.monotonic() + 15
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, (tmp / "listen.err").read_text()
        time.sleep(0.05)
    return proc.pid, log


def _check(topo: Topology, role: str, db: Path, *extra: str, v6: bool = False) -> tuple[int, dict[str, Any]]:
    argv = [sys.executable, "-m", "camaudit", "egress", "check", "--listener", L4, "--resolver", RESOLVER,
            "--dns-zone", ZONE, "--tcp-ports", TCP, "--udp-ports", UDP, "--timeout", "1.5",
            "--no-proxy-discovery", "--ra-wait", "1.5", "--db", str(db), "--json", *extra]
    if v6:
        argv += ["--listener", L6]
    if role == "rtr":
        argv += ["--no-upnp", "--no-natpmp", "--ra-wait", "0"]
    res = subprocess.run(topo.exec_argv(role, argv), capture_output=True, text=True, timeout=90, env=ENV)
    assert res.returncode in (0, 1), res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    return res.returncode, doc


def _allowed(doc: dict[str, Any]) -> set[str]:
    return {p["path"] for p in doc["paths"] if p["result"] == "allowed"}


def _contract(doc: dict[str, Any]) -> None:
    assert doc["verdict"] in ("OPEN", "EXPOSED", "CLOSED", "INCONCLUSIVE")
    assert isinstance(doc["qualifiers"], list) and isinstance(doc["missing"], list)
    for p in doc["paths"]:
        assert p["result"] in ("allowed", "blocked", "unknown")
        assert {"sent", "received", "started_at", "ended_at", "basis"} <= set(p["evidence"])


def test_closed_with_a_control_is_closed(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "closed")
    pid, _ = _listener(lab, tmp_path)
    db = tmp_path / "eg.db"
    try:
        code, control = _check(lab, "rtr", db, "--control")
        assert code == 0 and control["control_passed"] is True
        assert {"tcp/80", "udp/8800", "dns/resolver", "dns/direct", "ntp"} <= _allowed(control)
        code, doc = _check(lab, "scan", db)
    finally:
        lab.stop_process(pid)
    _contract(doc)
    assert doc["verdict"] == "CLOSED", doc["missing"]
    assert code == 0 and doc["missing"] == [] and not _allowed(doc)
    assert doc["controls"] and doc["controls"][0]["passed"]
    assert any("no egress observed on" in q for q in doc["qualifiers"])
    assert any("placement" in q for q in doc["qualifiers"])
    paths = {p["path"]: p for p in doc["paths"]}
    assert paths["ipv6/ra"]["evidence"]["basis"] == "absent"
    assert paths["upnp"]["result"] == "blocked" and paths["natpmp"]["result"] == "blocked"
    # The router's time-exceeded locates the forwarding hop; nothing answers beyond it.
    assert doc["route"]["hops"][0]["address"] == netns.ROUTER_LAN_ADDR
    with open_store(db) as store:
        # a standalone check is an egress run, never a scan (issue 11): its verdict is the run's
        rows = list(store.db.query("select verdict, subject from verdicts where egress_run_id = ?", [doc["run_id"]]))
        assert [r["verdict"] for r in rows] == ["CLOSED"] and doc["scan_id"] is None
        assert store.db.table("egress_tests").count >= 2 * len(doc["paths"]) - 4


def test_the_closed_scenario_as_the_readme_says_is_closed(tmp_path: Path) -> None:
    """`camaudit lab up --netns --scenario closed` prints the listener address and the three
    commands (listener in the lab's internet, control from the router, check from the segment);
    run as printed, through the CLI, the check is CLOSED, qualified as a test network's internet."""
    import queue
    import shlex
    import signal
    import threading

    env = ENV | {netns.STATE_DIR_ENV: str(tmp_path / "state")}
    up = subprocess.Popen([sys.executable, "-m", "camaudit", "lab", "up", "--netns", "--devices", "2", "--seed", "4",
                           "--scenario", "closed"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    listen: subprocess.Popen[str] | None = None
    lines: queue.Queue[str] = queue.Queue()
    assert up.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in up.stdout or []], daemon=True).start()

    def line() -> str:
        try:
            return lines.get(timeout=120)  # bounded: a lab up that prints less must fail, not hang
        except queue.Empty:
            return ""

    try:
        first = line()
        assert "devices up in namespaces" in first, first
        said = line()
        assert f"listener address to use: {L4}" in said and "listener_test_range" in said, said
        commands = {}
        for _ in range(3):
            what, _, command = line().strip().partition(": ")
            commands[what] = command.strip()
        assert set(commands) == {"listener", "control", "check"}, commands

        def argv(command: str) -> list[str]:
            words = [w.replace("/tmp/camaudit-lab", str(tmp_path / "lab")) for w in shlex.split(command)]
            assert words[0] == "camaudit" and "--" in words
            cut = words.index("--")
            return [sys.executable, "-m", "camaudit", *words[1:cut + 1], sys.executable, "-m", "camaudit",
                    *words[cut + 2:]]

        ready = tmp_path / "listen.ready"
        listen = subprocess.Popen([*argv(commands["listener"]), "--duration", "150", "--ready-file", str(ready)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert listen.poll() is None and time.monotonic() < deadline, listen.stderr.read() if listen.stderr else ""
            time.sleep(0.05)
        control = subprocess.run([*argv(commands["control"]), "--json"], capture_output=True, text=True, timeout=150,
                                 env=env)
        assert control.returncode == 0 and json.loads(control.stdout)["control_passed"] is True, control.stderr
        check = subprocess.run([*argv(commands["check"]), "--json"], capture_output=True, text=True, timeout=150,
                               env=env)
        assert check.returncode == 0, check.stderr
        doc = json.loads(check.stdout)
        assert doc["verdict"] == "CLOSED", doc["missing"]
        assert "listener_test_range" in [q["code"] for q in doc["qualifier_codes"]]
        assert next(p for p in doc["paths"] if p["path"] == "ipv6/ra")["evidence"]["basis"] == "absent"
    finally:
        if listen is not None and listen.poll() is None:
            listen.terminate()
            listen.wait(15)
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()


def test_closed_without_a_control_is_inconclusive(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "closed")
    pid, _ = _listener(lab, tmp_path)
    try:
        _, doc = _check(lab, "scan", tmp_path / "eg.db")
    finally:
        lab.stop_process(pid)
    assert doc["verdict"] == "INCONCLUSIVE"
    assert any("positive control" in m for m in doc["missing"])


def test_listener_down_is_never_closed(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "closed")
    db = tmp_path / "eg.db"
    code, control = _check(lab, "rtr", db, "--control")  # no listener anywhere
    assert code == 1 and control["control_passed"] is False
    _, doc = _check(lab, "scan", db)
    assert doc["verdict"] == "INCONCLUSIVE"
    assert any("never got an answer from the listener" in m for m in doc["missing"])


def test_open_is_open(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "open")
    pid, log = _listener(lab, tmp_path)
    try:
        code, doc = _check(lab, "scan", tmp_path / "eg.db")
    finally:
        lab.stop_process(pid)
    assert code == 1 and doc["verdict"] == "OPEN" and doc["exposed"] is False
    assert {"tcp/80", "tcp/443", "tcp/8555", "udp/8800", "icmp", "ntp", "dns/direct", "dns/resolver"} <= _allowed(doc)
    # Every allowed probe's nonce is in the listener's own log, with the camera segment as source.
    seen = {json.loads(line)["nonce"]: json.loads(line)["src"] for line in log.read_text().splitlines()}
    for p in doc["paths"]:
        if p["result"] == "allowed" and p["path"] != "icmp":
            assert seen.get(p["evidence"]["nonce"]) == netns.SCANNER_ADDR, p["path"]


def test_dns_recursion_only_is_open_through_dns(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "dns-recursion-only")
    pid, _ = _listener(lab, tmp_path)
    try:
        _, doc = _check(lab, "scan", tmp_path / "eg.db")
    finally:
        lab.stop_process(pid)
    assert doc["verdict"] == "OPEN"
    assert _allowed(doc) == {"dns/resolver"}
    assert any("OPEN through DNS" in q for q in doc["qualifiers"])


def test_one_udp_port_only_is_open_naming_that_port(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "udp-8800-only")
    pid, _ = _listener(lab, tmp_path)
    try:
        _, doc = _check(lab, "scan", tmp_path / "eg.db")
    finally:
        lab.stop_process(pid)
    assert doc["verdict"] == "OPEN" and _allowed(doc) == {"udp/8800"}
    assert any("egress observed on udp/8800 from" in q for q in doc["qualifiers"])


def test_ipv6_only_is_open_through_ipv6(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "ipv6-only")
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:  # SLAAC from the router's advertisement, as a camera would
        out = lab.run("scan", ["ip", "-6", "-o", "addr", "show", "dev", "scan0", "scope", "global"]).stdout
        if "inet6 2001:db8:77:" in out:
            break
        time.sleep(0.1)
    pid, _ = _listener(lab, tmp_path, v6=True)
    try:
        _, doc = _check(lab, "scan", tmp_path / "eg.db", v6=True)
    finally:
        lab.stop_process(pid)
    allowed = _allowed(doc)
    assert doc["verdict"] == "OPEN" and allowed and all(p.startswith("ipv6/") for p in allowed), allowed
    assert {"ipv6/tcp/80", "ipv6/udp/8800"} <= allowed
    assert any("OPEN through IPv6" in q for q in doc["qualifiers"])


def test_upnp_mapping_is_exposed(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "upnp-mapping")
    pid, _ = _listener(lab, tmp_path)
    db = tmp_path / "eg.db"
    try:
        # As the scenario is (open with NAT): OPEN, and exposed beside it.
        _, doc = _check(lab, "scan", db)
        assert doc["verdict"] == "OPEN" and doc["exposed"] is True
        upnp = next(p for p in doc["paths"] if p["path"] == "upnp")
        mapping = upnp["evidence"]["extra"]["mappings"][0]
        assert mapping["external_port"] == str(scenarios.MAPPING_EXTERNAL_PORT)
        assert mapping["internal_client"] == lab.devices[0].address
        # Now the router forwards nothing out (the IGD still answers): EXPOSED, egress CLOSED.
        lab.run("rtr", ["nft", "-f", "-"], input="flush ruleset\n" + scenarios.nft_ruleset("closed"))
        code, control = _check(lab, "rtr", db, "--control")
        assert control["control_passed"]
        code, doc = _check(lab, "scan", db)
    finally:
        lab.stop_process(pid)
    assert code == 1 and doc["verdict"] == "EXPOSED" and doc["egress"] == "CLOSED", doc["missing"]
    with open_store(db) as store:
        rows = list(store.db.query("select verdict, egress, exposed from verdicts where egress_run_id = ?", [doc["run_id"]]))
    assert [(r["verdict"], r["egress"], r["exposed"]) for r in rows] == [("EXPOSED", "CLOSED", 1)]


DEVICE_SCRIPT = """
import asyncio, json, sys
from camaudit.credentials import Credential, CredentialStore
from camaudit.lab.context import LAB_PASSWORD, LAB_USERNAME
from camaudit.probes.interrogate import interrogate
store = CredentialStore(fallback=Credential(LAB_USERNAME, LAB_PASSWORD))
async def main():
    out = {}
    for addr in sys.argv[1:]:
        report = await interrogate(addr, [80], credentials=store, timeout=3, vendor="hikvision")
        out[addr] = report.settings.to_json()
    print(json.dumps(out))
asyncio.run(main())
"""


def test_a_device_reporting_cloud_registration_is_open(lab: Topology, tmp_path: Path) -> None:
    _scenario(lab, "closed")
    pid, _ = _listener(lab, tmp_path)
    db = tmp_path / "eg.db"
    try:
        _check(lab, "rtr", db, "--control")
        _, doc = _check(lab, "scan", db)
    finally:
        lab.stop_process(pid)
    assert doc["verdict"] == "CLOSED"
    addrs = [d.address for d in lab.devices]
    res = subprocess.run(lab.exec_argv("scan", [sys.executable, "-c", DEVICE_SCRIPT, *addrs]),
                         capture_output=True, text=True, timeout=60, env=ENV)
    assert res.returncode == 0, res.stderr
    settings = {a: DeviceSettings.from_json(s) for a, s in json.loads(res.stdout).items()}
    assert settings[addrs[0]].cloud["hik_connect"]["registered"] is True
    with open_store(db) as store:
        outcome = outcome_from_store(store, doc["run_id"])
        verdicts = record_scan_verdicts(store, doc["scan_id"], outcome, settings)
        rows: dict[tuple[str, str], set[str]] = {}
        for r in store.db.query("select * from verdicts where egress_run_id = ? and current = 1", [doc["run_id"]]):
            # one row per verdict since issue 11: EXPOSED beside an egress word is the exposed column
            rows.setdefault((r["subject_kind"], r["subject"]), set()).update(
                {r["egress"] or r["verdict"]} | ({"EXPOSED"} if r["exposed"] else set()))
    registered, quiet = verdicts[addrs[0]], verdicts[addrs[1]]
    assert registered.verdict == "OPEN"
    assert any("registration with hik_connect" in q for q in registered.qualifier_text)
    # The other device reports nothing, its gateway is the sensor's, the segment is CLOSED.
    assert quiet.verdict == "CLOSED", quiet.missing_text
    # Registered and bound to a cloud account: OPEN, with an EXPOSED row beside it.
    assert registered.exposed and rows[("device", addrs[0])] == {"OPEN", "EXPOSED"}
    assert rows[("device", addrs[1])] == {"CLOSED"}
    assert "OPEN" in rows[("segment", doc["segment"])]  # roll-up: one open device opens the segment


def test_scan_with_a_listener_gives_each_host_its_verdict(lab: Topology, tmp_path: Path) -> None:
    """`camaudit scan --listener` end to end in the segment: sweep, interrogation with the lab's
    credentials, the egress check (a control from the router first), then hosts[].verdict."""
    _scenario(lab, "closed")
    pid, _ = _listener(lab, tmp_path)
    db = tmp_path / "scan.db"
    addrs = [d.address for d in lab.devices]
    try:
        _check(lab, "rtr", db, "--control")
        argv = [sys.executable, "-m", "camaudit", "scan", *addrs, "--db", str(db), "--json", "--ports", "80,554,8000",
                "--no-discovery", "--listener", L4, "--resolver", RESOLVER, "--dns-zone", ZONE,
                "--egress-tcp-ports", TCP, "--egress-udp-ports", UDP, "--fail-on", "critical", "-q"]
        env = ENV | {"CAMAUDIT_USERNAME": "admin", "CAMAUDIT_PASSWORD": "camaudit-lab"}
        res = subprocess.run(lab.exec_argv("scan", argv), capture_output=True, text=True, timeout=180, env=env)
    finally:
        lab.stop_process(pid)
    # The registered Hikvision is a covered maker with egress: a critical finding, exit 1.
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    hosts = {h["address"]: h for h in doc["hosts"]}
    assert hosts[addrs[0]]["verdict"]["verdict"] == "OPEN"
    assert hosts[addrs[1]]["verdict"]["verdict"] == "CLOSED", hosts[addrs[1]]["verdict"]["missing"]
    assert doc["egress"]["verdict"] == "CLOSED"  # the network path from this vantage is closed
    critical = {f["subject"] for f in doc["findings"] if f["severity"] == "critical"}
    assert addrs[0] in critical and addrs[1] not in critical
