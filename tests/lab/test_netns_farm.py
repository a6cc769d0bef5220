"""The device farm inside the namespace lab: real ARP and real multicast discovery.

Devices are planned from the lab profiles (vendor OUIs), served by one farm process in the camera
namespace on per-device macvlans, and discovered from the scanner namespace: ARP answers carry
each device's own MAC, and multicast WS-Discovery, SADP and DHIP probes are answered by exactly
the devices whose profiles speak them. Skips while ``camaudit.lab.farm`` does not exist.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from camaudit.lab import netns
from camaudit.lab.netns import Topology

pytestmark = pytest.mark.root

if importlib.util.find_spec("camaudit.lab.farm") is None:
    pytest.skip("camaudit.lab.farm is not there yet", allow_module_level=True)

from camaudit.lab.plan import plan_devices  # noqa: E402
from camaudit.lab.profiles import load_profiles  # noqa: E402

COUNT = 12
# Every discovery family present whatever the seed: the mix names them.
MIX = "hikvision=4,dahua=4,axis=1,hanwha=1,host=2"

ARP_SCRIPT = textwrap.dedent("""
    import json, sys
    from camaudit.lab.netns import assert_in_lab_namespace
    assert_in_lab_namespace()
    from scapy.all import ARP, Ether, srp
    ans, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=sys.argv[1].split(",")),
                 iface="scan0", timeout=1, verbose=0)
    print(json.dumps(sorted([r[ARP].psrc, r[ARP].hwsrc] for _, r in ans)))
""")

# One multicast probe per protocol from the scanner; answers collected for 2 s, parsed with
# camaudit's own protocol parsers.
MCAST_SCRIPT = textwrap.dedent("""
    import json, socket, time
    from camaudit.lab.netns import assert_in_lab_namespace
    assert_in_lab_namespace()
    from camaudit.protocols import dhip, sadp, wsd
    from camaudit.protocols.constants import (DHIP_MULTICAST_V4, DHIP_PORT, SADP_MULTICAST_V4,
                                              SADP_PORT, WSD_MULTICAST_V4, WSD_PORT)
    kinds = {"wsd": (wsd, WSD_MULTICAST_V4, WSD_PORT), "sadp": (sadp, SADP_MULTICAST_V4, SADP_PORT),
             "dhip": (dhip, DHIP_MULTICAST_V4, DHIP_PORT)}
    socks = {}
    for name, (mod, group, port) in kinds.items():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        s.bind(("10.77.255.1", 0)); s.setblocking(False)
        s.sendto(mod.build_probe()[0], (group, port)); socks[name] = s
    found = {k: {} for k in kinds}
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        for name, s in socks.items():
            try:
                data, peer = s.recvfrom(65536)
            except BlockingIOError:
                continue
            parsed = kinds[name][0].parse_reply(data, peer[0], "2026-01-01T00:00:00Z")
            found[name][peer[0]] = parsed is not None
        time.sleep(0.01)
    print(json.dumps(found))
""")


@pytest.fixture(scope="module")
def farm_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Topology, list[Any]]]:
    old = os.environ.get(netns.STATE_DIR_ENV)
    os.environ[netns.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("labstate"))
    specs = plan_devices(COUNT, "10.77.0.0/16", MIX, seed=7)
    topo = netns.build_topology(netns.devices_from_specs([s.to_json() for s in specs]))
    try:
        netns.start_farm(topo, [s.to_json() for s in specs])
        yield topo, specs
    finally:
        assert netns.teardown(topo) == []
        if old is None:
            os.environ.pop(netns.STATE_DIR_ENV, None)
        else:
            os.environ[netns.STATE_DIR_ENV] = old


def test_farm_devices_answer_arp_with_their_profile_ouis(farm_lab: tuple[Topology, list[Any]]) -> None:
    topo, specs = farm_lab
    out = topo.run("scan", [sys.executable, "-c", ARP_SCRIPT, ",".join(s.address for s in specs)])
    replies = json.loads(out.stdout.strip().splitlines()[-1])
    assert replies == sorted([s.address, s.mac.lower()] for s in specs)
    profiles = load_profiles()
    for spec in specs:
        ouis = [o.lower() for o in profiles[spec.profile].ouis]
        assert not ouis or spec.mac[:8].lower() in ouis


def test_multicast_discovery_reaches_the_devices_that_speak_it(
        farm_lab: tuple[Topology, list[Any]]) -> None:
    topo, specs = farm_lab
    out = topo.run("scan", [sys.executable, "-c", MCAST_SCRIPT], timeout=30)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    profiles = load_profiles()
    probe_types = {"dn:NetworkVideoTransmitter", "tds:Device"}  # what wsd.build_probe asks for

    def speaks(spec: Any, kind: str) -> bool:
        profile = profiles[spec.profile]
        if kind not in profile.udp:
            return False
        # A WS-Discovery responder answers only Probes for its own types (lab.md 8.5: wsdd).
        return kind != "wsd" or bool(probe_types & set(profile.services["wsd"]["answers"]))

    # The mix holds a WS-Discovery printer: on the wire, yet silent to a camera probe.
    silent = {s.address for s in specs if "wsd" in profiles[s.profile].udp and not speaks(s, "wsd")}
    assert silent
    for kind in ("wsd", "sadp", "dhip"):
        expected = {s.address for s in specs if speaks(s, kind)}
        assert expected, f"the mix has no {kind} device"
        assert set(found[kind]) == expected, kind
        assert all(found[kind].values()), f"{kind}: a reply camaudit's parser rejects"
