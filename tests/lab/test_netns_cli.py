"""``camaudit lab up --netns`` / ``lab exec`` / ``lab down`` as a user runs them.

The lab comes up in namespaces, its manifest matches what answers on the segment (ARP MACs and
multicast answers), ``exec`` runs in the scanner namespace, and ``down`` leaves no namespace,
process or state behind. Everything stays inside this run's ``clab-*`` namespaces.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from camaudit.lab import netns

pytestmark = pytest.mark.root

CAMAUDIT = [sys.executable, "-m", "camaudit"]
CONTRACT_KEYS = {"address", "profile", "vendor", "brand", "device_type", "model", "firmware", "mac"}

ARP_SCRIPT = textwrap.dedent("""
    import json, sys
    from scapy.all import ARP, Ether, srp
    ans, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=sys.argv[1].split(",")),
                 iface="scan0", timeout=1, verbose=0)
    print(json.dumps(sorted([r[ARP].psrc, r[ARP].hwsrc] for _, r in ans)))
""")


def _camaudit(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CAMAUDIT, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def test_lab_up_netns_exec_and_down(tmp_path: Path) -> None:
    env = {**os.environ, netns.STATE_DIR_ENV: str(tmp_path / "state")}
    manifest = tmp_path / "lab.json"
    up = subprocess.Popen([*CAMAUDIT, "lab", "up", "--netns", "--devices", "8", "--seed", "3",
                           "--scenario", "closed", "--manifest", str(manifest)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    run_id = ""
    try:
        assert up.stdout is not None
        ready = up.stdout.readline()
        assert "devices up in namespaces" in ready, ready + (up.stderr.read() if up.stderr else "")
        run_id = ready.split("(run ")[1].split(",")[0].split(";")[0]
        names = [n for n in netns.list_lab_namespaces() if n.startswith(f"clab-{run_id}-")]
        assert sorted(n.rsplit("-", 1)[1] for n in names) == ["cams", "inet", "lab", "rtr", "scan"]

        entries = json.loads(manifest.read_text())
        assert len(entries) == 8 and all(CONTRACT_KEYS <= set(e) for e in entries)
        assert all(e["address"].startswith("10.77.") for e in entries)

        # exec runs in the scanner namespace, with the lab guard demanded.
        res = _camaudit("lab", "exec", "--", sys.executable, "-c",
                        "import os; from camaudit.lab.netns import assert_in_lab_namespace as a; "
                        "print(a(), os.environ['CAMAUDIT_REQUIRE_LAB_NETNS'])", env=env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [f"clab-{run_id}-scan", "1"]

        # The manifest matches what is served: every address answers ARP with its MAC.
        addrs = ",".join(e["address"] for e in entries)
        res = _camaudit("lab", "exec", "--", sys.executable, "-c", ARP_SCRIPT, addrs, env=env)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout.strip().splitlines()[-1]) == sorted(
            [e["address"], e["mac"].lower()] for e in entries)

        # The closed scenario: the internet namespace is not reachable from the segment.
        res = _camaudit("lab", "exec", "--", "ping", "-c1", "-W1", netns.INTERNET_LISTENER_ADDR,
                        env=env)
        assert res.returncode == 1

        res = _camaudit("lab", "down", env=env)
        assert res.returncode == 0 and run_id in res.stdout, res.stderr
        assert up.wait(timeout=15) == 0
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=15)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
    assert not [n for n in netns.list_lab_namespaces() if n.startswith(f"clab-{run_id}-")]
    assert not list((tmp_path / "state").glob("*.json"))
    res = _camaudit("lab", "exec", "--", "true", env=env)
    assert res.returncode == 2 and "no namespace lab is running" in res.stderr


def test_lab_up_netns_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    env = {**os.environ, netns.STATE_DIR_ENV: str(tmp_path / "state")}
    up = subprocess.Popen([*CAMAUDIT, "lab", "up", "--netns", "--devices", "3"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert up.stdout is not None
    ready = up.stdout.readline()
    run_id = ready.split("(run ")[1].split(";")[0]
    pids = [int(p) for p in json.loads(
        (tmp_path / "state" / f"{run_id}.json").read_text())["processes"]]
    assert pids
    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=15) == 0
    assert not [n for n in netns.list_lab_namespaces() if n.startswith(f"clab-{run_id}-")]
    deadline = time.monotonic() + 3
    while any(netns.pid_alive(p, None) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(netns.pid_alive(p, None) for p in pids)


def test_scenario_without_netns_and_unknown_scenario_are_usage_errors(tmp_path: Path) -> None:
    env = {**os.environ, netns.STATE_DIR_ENV: str(tmp_path / "state")}
    res = _camaudit("lab", "up", "--scenario", "open", env=env)
    assert res.returncode == 2 and "--scenario needs --netns" in res.stderr
    before = netns.list_lab_namespaces()
    res = _camaudit("lab", "up", "--netns", "--devices", "2", "--scenario", "half-open", env=env)
    assert res.returncode == 2 and "unknown egress scenario" in res.stderr
    assert netns.list_lab_namespaces() == before
