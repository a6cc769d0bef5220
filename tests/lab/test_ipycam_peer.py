"""A real peer nobody on the team wrote: ipycam, an independent virtual ONVIF camera.

ipycam binds 0.0.0.0 and multicasts a WS-Discovery Hello on start, so it runs ONLY inside a
lab namespace on the lab's bridge (reference/lab.md sections 8.1 and 13), from its own venv
(``bash ci/ipycam-setup.sh``; it pulls opencv). The test skips with the reason when that venv
is missing. It checks that the ONVIF client camaudit uses (onvif-zeep-async, lab.md 8.3) reads
the device information ipycam was configured with, and that camaudit's WS-Discovery parser reads
ipycam's unicast ProbeMatch, which lacks the ProbeMatches wrapper (lab.md 8.1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import defusedxml.ElementTree as DET
import pytest

from camaudit.lab import netns
from camaudit.lab.netns import Topology

pytestmark = pytest.mark.root

IPYCAM_VENV = Path(os.environ.get("CAMAUDIT_IPYCAM_VENV", "/opt/camaudit-peers/ipycam"))
IPYCAM_PY = IPYCAM_VENV / "bin" / "python"
IPYCAM_ADDR = "10.77.200.10"
IPYCAM_MAC = "02:00:00:c8:00:0a"  # locally administered: ipycam claims no maker's OUI

# Values chosen here, so the test proves they travelled through ipycam's ONVIF service.
IDENTITY = {"manufacturer": "LabPeerWorks", "model": "PeerCam-7", "serial_number": "LP-0042",
            "firmware_version": "9.8.7"}

RUNNER = textwrap.dedent("""
    import json, os, sys, time
    # Refuse outside a lab namespace: this process binds 0.0.0.0 and multicasts.
    mine = os.stat("/proc/self/ns/net").st_ino
    assert any(e.name.startswith("clab-") and os.stat(e.path).st_ino == mine
               for e in os.scandir("/run/netns")), "not in a lab namespace"
    import numpy as np
    from ipycam import CameraConfig, IPCamera
    ident = json.loads(sys.argv[3])
    cfg = CameraConfig(local_ip=sys.argv[1], name="lab peer", main_width=320, main_height=240,
                       main_fps=5, sub_width=320, sub_height=240, sub_fps=5, **ident)
    cam = IPCamera(cfg)
    assert cam.start()
    print("READY", flush=True)
    frame = np.zeros((240, 320, 3), dtype=np.uint8)
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        cam.stream(frame)
        time.sleep(0.2)
    cam.stop()
""")

ONVIF_CLIENT = textwrap.dedent("""
    import asyncio, json, sys
    from camaudit.lab.netns import assert_in_lab_namespace
    assert_in_lab_namespace()
    from onvif import ONVIFCamera
    async def main():
        cam = ONVIFCamera(sys.argv[1], 8080, "", "")
        try:
            await asyncio.wait_for(cam.update_xaddrs(), 10)
            dev = await cam.create_devicemgmt_service()
            info = await asyncio.wait_for(dev.GetDeviceInformation(), 10)
            print(json.dumps({k: info[k] for k in
                              ("Manufacturer", "Model", "FirmwareVersion", "SerialNumber")}))
        finally:
            await cam.close()
    asyncio.run(main())
""")

WSD_CLIENT = textwrap.dedent("""
    import json, socket, sys
    from camaudit.lab.netns import assert_in_lab_namespace
    assert_in_lab_namespace()
    from camaudit.protocols import wsd
    probe, mid = wsd.build_probe()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(probe, (sys.argv[1], 3702))
    data, peer = s.recvfrom(65536)
    reply = wsd.parse_reply(data, peer[0], "2026-01-01T00:00:00Z")
    print(json.dumps({"peer": peer[0], "raw": data.decode("utf-8", "replace"),
                      "parsed": reply is not None,
                      "wrapped": reply.wrapped if reply else None,
                      "relates_to_ok": bool(reply and reply.relates_to == mid),
                      "xaddrs": [x for m in reply.matches for x in m.xaddrs] if reply else [],
                      "scopes": [x for m in reply.matches for x in m.scopes] if reply else []}))
""")


@pytest.fixture(scope="module")
def ipycam_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if not IPYCAM_PY.exists():
        pytest.skip(f"ipycam venv missing at {IPYCAM_VENV}: run `bash ci/ipycam-setup.sh`")
    old = os.environ.get(netns.STATE_DIR_ENV)
    os.environ[netns.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("labstate"))
    topo = netns.build_topology([])
    try:
        topo.add_host("ipycam", IPYCAM_ADDR, IPYCAM_MAC)
        logf = tmp_path_factory.mktemp("ipycam") / "ipycam.log"
        with logf.open("wb") as err:
            proc = topo.popen("ipycam", [str(IPYCAM_PY), "-c", RUNNER, IPYCAM_ADDR, "90",
                                         json.dumps(IDENTITY)],
                              stdout=subprocess.PIPE, stderr=err, cwd=str(logf.parent))
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == b"READY", logf.read_text(errors="replace")[-800:]
        _wait_for_port(topo, IPYCAM_ADDR, 8080)
        yield topo
    finally:
        assert netns.teardown(topo) == []
        if old is None:
            os.environ.pop(netns.STATE_DIR_ENV, None)
        else:
            os.environ[netns.STATE_DIR_ENV] = old


def _wait_for_port(topo: Topology, addr: str, port: int) -> None:
    code = ("import socket,sys,time\nend=time.monotonic()+10\nwhile True:\n"
            " try: socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close(); break\n"
            " except OSError:\n  assert time.monotonic() < end; time.sleep(0.1)\n")
    topo.run("scan", [sys.executable, "-c", code, addr, str(port)], timeout=20)


def test_onvif_client_reads_ipycam_device_information(ipycam_lab: Topology) -> None:
    started = time.monotonic()
    out = ipycam_lab.run("scan", [sys.executable, "-c", ONVIF_CLIENT, IPYCAM_ADDR], timeout=40)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info == {"Manufacturer": IDENTITY["manufacturer"], "Model": IDENTITY["model"],
                    "FirmwareVersion": IDENTITY["firmware_version"],
                    "SerialNumber": IDENTITY["serial_number"]}
    assert time.monotonic() - started < 30


def _probe_ipycam(topo: Topology) -> dict[str, object]:
    out = topo.run("scan", [sys.executable, "-c", WSD_CLIENT, IPYCAM_ADDR], timeout=20)
    res: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def test_ipycam_answers_a_unicast_probe_without_the_probematches_wrapper(
        ipycam_lab: Topology) -> None:
    res = _probe_ipycam(ipycam_lab)
    assert res["peer"] == IPYCAM_ADDR
    root = DET.fromstring(str(res["raw"]).encode())
    body = next(el for el in root if el.tag.endswith("}Body"))
    # ipycam's deviations (lab.md 8.1): ProbeMatch straight in the Body, no ProbeMatches
    # wrapper, and (seen here) the singular Action ".../discovery/ProbeMatch".
    assert [el.tag.rsplit("}", 1)[1] for el in body] == ["ProbeMatch"]
    assert "<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatch</wsa:Action>" \
        in str(res["raw"])
    assert f"http://{IPYCAM_ADDR}:8080/onvif/device_service" in str(res["raw"])


def test_camaudit_wsd_parser_reads_ipycams_probe_match(ipycam_lab: Topology) -> None:
    # camaudit's parser accepts both shapes and the singular Action (protocols/wsd.py).
    res = _probe_ipycam(ipycam_lab)
    assert res["parsed"] and res["wrapped"] is False and res["relates_to_ok"]
    assert f"http://{IPYCAM_ADDR}:8080/onvif/device_service" in res["xaddrs"]  # type: ignore[operator]


def test_ipycam_lives_only_in_its_namespace(ipycam_lab: Topology) -> None:
    ns = ipycam_lab.ns("ipycam")
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    recorded = {str(pid) for pid, info in ipycam_lab.processes.items() if info["role"] == "ipycam"}
    assert recorded and recorded <= set(pids)
    # Nothing listens on 8080/3702 in the host's namespace because of it.
    ss = subprocess.run(["ss", "-H", "-lntu"], capture_output=True, text=True).stdout
    assert ":3702 " not in ss


def test_camaudit_scan_reads_ipycam_over_onvif(ipycam_lab: Topology, tmp_path: Path) -> None:
    """camaudit's own ONVIF interrogation (probes/onvif.py), not just the client library, reads
    the identity ipycam was given, and records it as onvif_device_info evidence."""
    db = tmp_path / "peer.db"
    out = ipycam_lab.run(
        "scan",
        [sys.executable, "-m", "camaudit", "scan", IPYCAM_ADDR, "--ports", "8080", "--db", str(db),
         "--json", "--no-discovery", "--fail-on", "none", "-q"],
        timeout=120,
    )
    [host] = json.loads(out.stdout)["hosts"]
    [info] = [json.loads(o["value"]) for o in host["observations"] if o["kind"] == "onvif_device_info"]
    assert info["Manufacturer"] == IDENTITY["manufacturer"]
    assert info["Model"] == IDENTITY["model"]
    assert info["FirmwareVersion"] == IDENTITY["firmware_version"]
    assert info["SerialNumber"] == IDENTITY["serial_number"]
    # An unknown maker stays unknown: a brand string alone names no vendor.
    assert host["identity"]["vendor"] == "unknown"
