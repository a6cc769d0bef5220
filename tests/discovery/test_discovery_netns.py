"""Discovery in the namespace lab (root): real multicast across a bridge, real ARP, and ipycam.

The lab (camaudit.lab.netns) is a bridged segment of namespaces wired to nothing but each other;
camaudit runs inside the scanner namespace through ``ip netns exec`` with the lab guard on
(CAMAUDIT_REQUIRE_LAB_NETNS=1), and every responder runs inside a lab namespace. Nothing here
sends from the host's namespace (lab.md section 0).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camaudit.lab import netns
from camaudit.lab.netns import LabDevice, Topology

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
RESPONDER = HERE / "disc_responders.py"
IPYCAM_RUNNER = HERE / "ipycam_run.py"
# Vendor OUIs from reference/lab.md section 2: Hikvision, Dahua.
DEVICES = [LabDevice("10.77.0.1", "44:19:b6:00:00:01"), LabDevice("10.77.0.2", "3c:ef:8c:00:00:02")]
IPYCAM_ADDR = "10.77.200.10"


def _wait_for(path: Path, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"responder exited early with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError("responder did not become ready")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    tmp = tmp_path_factory.mktemp("netns-disc")
    topo = netns.build_topology(DEVICES)
    try:
        ready = tmp / "ready"
        # One stand-in device (WS-Discovery, SADP, DHIP) on mv0000, joined to the groups by
        # ifindex; the second device has no discovery service and only answers ARP.
        proc = topo.popen(
            "cams",
            [sys.executable, str(RESPONDER), "--address", DEVICES[0].address, "--iface", "mv0000",
             "--duration", "120", "--ready", str(ready)],
        )
        _wait_for(ready, proc, 15)
        yield topo
    finally:
        netns.teardown(topo)


def discover_in_lab(topo: Topology, *args: str, role: str = "scan") -> dict[str, Any]:
    argv = ["env", "CAMAUDIT_REQUIRE_LAB_NETNS=1", sys.executable, "-m", "camaudit", "discover",
            *args, "--json"]
    proc = topo.run(role, argv, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_multicast_reaches_devices_that_unicast_cannot(lab: Topology) -> None:
    # 10.77.0.200 holds nobody: only the multicast probes (on scan0, chosen because its network
    # holds the target) can bring the device at 10.77.0.1 to answer.
    doc = discover_in_lab(lab, "10.77.0.200", "--timeout", "1")
    (device,) = doc["devices"]
    assert device["address"] == "10.77.0.1"
    assert sorted(device["answered"]) == ["dhip", "onvif", "sadp"]
    assert device["model"] == "DS-2CD2385G1-I"  # from SADP
    assert doc["notes"] == []


def test_without_multicast_an_empty_address_finds_nothing(lab: Topology) -> None:
    doc = discover_in_lab(lab, "10.77.0.200", "--no-multicast", "--interface", "scan0", "--timeout", "0.5")
    assert doc["devices"] == []


def test_explicit_interface_and_unicast_together(lab: Topology) -> None:
    doc = discover_in_lab(lab, "10.77.0.1", "--interface", "scan0", "--timeout", "1")
    (device,) = doc["devices"]
    # Unicast and multicast both reached it; each protocol's evidence is recorded once.
    kinds = [o["kind"] for o in device["observations"]]
    assert kinds.count("sadp") == kinds.count("dhip") == kinds.count("onvif_probe_match") == 1


def test_arp_sweep_reports_each_mac_and_its_registrant(lab: Topology) -> None:
    doc = discover_in_lab(lab, "10.77.0.1-3", "--arp", "--no-multicast", "--timeout", "1")
    devices = {d["address"]: d for d in doc["devices"]}
    assert set(devices) == {"10.77.0.1", "10.77.0.2"}
    dahua = devices["10.77.0.2"]
    assert dahua["answered"] == ["arp"] and dahua["mac"] == "3c:ef:8c:00:00:02"
    assert "Dahua" in dahua["oui"]
    arp_macs = [o["value"] for o in devices["10.77.0.1"]["observations"]
                if o["kind"] == "mac" and o["source"] == "discovery.arp"]
    assert arp_macs == ["44:19:b6:00:00:01"]
    assert doc["notes"] == []


def test_the_lab_guard_refuses_multicast_outside_a_lab_namespace() -> None:
    # With the guard on, a sender outside clab-* must refuse before sending anything. The check
    # runs in a fresh, empty namespace of its own (not a clab-* one, not the host's).
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    code = (
        "import asyncio; from camaudit.discovery.udp import Interface, udp_discover\n"
        "iface = Interface('lo', 1, True, False, True, None)\n"
        "asyncio.run(udp_discover(['10.77.0.1'], interfaces=[iface], timeout=0.1))\n"
    )
    proc = subprocess.run(
        ["unshare", "--net", "env", "CAMAUDIT_REQUIRE_LAB_NETNS=1", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0 and "not inside a lab network namespace" in proc.stderr


def _ipycam_python() -> str | None:
    """ipycam pulls opencv, so it lives in a venv of its own: the one ``ci/ipycam-setup.sh``
    makes (``$CAMAUDIT_IPYCAM_VENV``, default /opt/camaudit-peers/ipycam, as in
    tests/lab/test_ipycam_peer.py), or any python named by ``$CAMAUDIT_IPYCAM_PYTHON``."""
    candidates = [
        os.environ.get("CAMAUDIT_IPYCAM_PYTHON", ""),
        str(Path(os.environ.get("CAMAUDIT_IPYCAM_VENV", "/opt/camaudit-peers/ipycam")) / "bin" / "python"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    probe = subprocess.run([sys.executable, "-c", "import ipycam"], capture_output=True, timeout=60)
    return sys.executable if probe.returncode == 0 else None


@pytest.mark.slow
def test_ipycam_answers_unicast_and_multicast(lab: Topology, tmp_path: Path) -> None:
    python = _ipycam_python()
    if python is None:
        pytest.skip("ipycam venv missing: run `bash ci/ipycam-setup.sh` or set CAMAUDIT_IPYCAM_VENV")
    if "ipycam" not in lab.namespaces:
        lab.add_host("ipycam", IPYCAM_ADDR, "02:00:00:00:c8:0a")
    out = (tmp_path / "ipycam.log").open("wb")
    proc = lab.popen("ipycam", [python, str(IPYCAM_RUNNER), IPYCAM_ADDR, "60"], stdout=out,
                     stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while b"ready" not in (tmp_path / "ipycam.log").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, "ipycam did not start"
            time.sleep(0.1)
        unicast = discover_in_lab(lab, IPYCAM_ADDR, "--no-multicast", "--timeout", "1")
        (device,) = unicast["devices"]
        assert device["address"] == IPYCAM_ADDR and device["answered"] == ["onvif"]
        assert device["name"] == "LabCam"
        value = next(o["value"] for o in device["observations"] if o["kind"] == "onvif_probe_match")
        assert "ProbeMatches" not in value  # ipycam's unwrapped ProbeMatch, parsed all the same
        multicast = discover_in_lab(lab, "10.77.200.11", "--timeout", "1")
        assert IPYCAM_ADDR in {d["address"] for d in multicast["devices"]}
    finally:
        lab.stop_process(proc.pid)
        out.close()
