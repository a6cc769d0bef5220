"""The raw-socket ARP sweep (camaudit.discovery.arp): its listening window, and, as root, a real
sweep in the namespace lab.

The lab (camaudit.lab.netns) is a bridged segment of namespaces wired to nothing but each other;
the sweep runs inside the scanner namespace through ``ip netns exec`` with the lab guard on, so
no frame is sent from the host's namespace (lab.md section 0). Timing appears only as generous
bounds that tell "ended early" from "waited the whole timeout" (5 s against under 2.5 s).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from camaudit.discovery import arp
from camaudit.lab import netns
from camaudit.lab.netns import LabDevice, Topology

# 20 devices, MACs from the vendor OUIs of lab.md section 2 (Hikvision, Dahua, Axis, Hanwha).
_OUIS = ("44:19:b6", "3c:ef:8c", "ac:cc:8e", "00:09:18")
DEVICES = [LabDevice(f"10.77.0.{i + 1}", f"{_OUIS[i % 4]}:00:01:{i + 1:02x}") for i in range(20)]
SILENT = [f"10.77.0.{i}" for i in range(21, 61)]
TIMEOUT = 5.0

SWEEP = """
import json, sys
from camaudit.discovery.arp import sweep_interface
from camaudit.discovery.udp import check_sender_allowed
from camaudit.lab.netns import SCANNER_ADDR
check_sender_allowed()
answers, stats = sweep_interface("scan0", SCANNER_ADDR, sys.argv[1].split(","), float(sys.argv[2]), 2000.0)
print(json.dumps({"answers": answers, "window": stats.window, "elapsed": stats.elapsed,
                  "sent": stats.sent, "slowest_rtt": stats.slowest_rtt}))
"""


def test_window_adapts_to_round_trips_within_floor_and_timeout() -> None:
    assert arp.settle_window(None, 5.0) == arp.MIN_WAIT  # nothing learnt: the floor
    assert arp.settle_window(0.0005, 5.0) == arp.MIN_WAIT  # a fast LAN: the floor
    assert arp.settle_window(0.1, 5.0) == pytest.approx(arp.RTT_FACTOR * 0.1)
    assert arp.settle_window(2.0, 5.0) == 5.0  # never beyond the timeout
    assert arp.settle_window(None, 0.1) == 0.1


def test_sweep_refuses_a_rate_or_timeout_that_would_not_end() -> None:
    with pytest.raises(ValueError):
        arp.sweep_interface("scan0", "10.77.255.1", ["10.77.0.1"], 1.0, 0.0)
    with pytest.raises(ValueError):
        arp.sweep_interface("scan0", "10.77.255.1", ["10.77.0.1"], 0.0, 100.0)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    old = os.environ.get(netns.STATE_DIR_ENV)
    os.environ[netns.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("labstate"))
    topo = netns.build_topology(DEVICES)
    try:
        yield topo
    finally:
        assert netns.teardown(topo) == []
        if old is None:
            os.environ.pop(netns.STATE_DIR_ENV, None)
        else:
            os.environ[netns.STATE_DIR_ENV] = old


def _sweep(topo: Topology, targets: list[str]) -> dict[str, Any]:
    argv = ["env", f"{netns.GUARD_ENV}=1", sys.executable, "-c", SWEEP, ",".join(targets), str(TIMEOUT)]
    out = topo.run("scan", argv, timeout=60)
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return doc


@pytest.mark.root
def test_every_device_answers_with_its_mac_and_the_sweep_ends_at_once(lab: Topology) -> None:
    doc = _sweep(lab, [d.address for d in DEVICES])
    assert sorted(map(tuple, doc["answers"])) == sorted((d.address, d.mac) for d in DEVICES)
    assert doc["sent"] == len(DEVICES)
    assert doc["window"] == 0.0  # everyone answered: nothing left to wait for
    assert doc["elapsed"] < TIMEOUT / 2


@pytest.mark.root
def test_silent_targets_cost_a_bounded_window_not_the_timeout(lab: Topology) -> None:
    doc = _sweep(lab, [d.address for d in DEVICES] + SILENT)
    assert sorted(map(tuple, doc["answers"])) == sorted((d.address, d.mac) for d in DEVICES)
    assert doc["sent"] == len(DEVICES) + len(SILENT)
    assert arp.MIN_WAIT <= doc["window"] <= TIMEOUT
    assert doc["window"] == pytest.approx(arp.settle_window(doc["slowest_rtt"], TIMEOUT))
    assert arp.MIN_WAIT <= doc["elapsed"] < TIMEOUT / 2  # it waited, but not the whole timeout


@pytest.mark.root
def test_discover_arp_only_reports_the_lab_devices(lab: Topology) -> None:
    argv = ["env", f"{netns.GUARD_ENV}=1", sys.executable, "-m", "camaudit", "discover",
            "10.77.0.0/26", "--arp-only", "--timeout", str(TIMEOUT), "--json"]
    out = lab.run("scan", argv, timeout=60)
    doc = json.loads(out.stdout)
    found = {d["address"]: (d["mac"], d["answered"]) for d in doc["devices"]}
    assert found == {d.address: (d.mac, ["arp"]) for d in DEVICES}
    assert doc["notes"] == []
