"""Loopback mode: plan, up, serve what the manifest says, down without leftovers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring
from lab_helpers import DHIP_PROBE, SADP_PROBE, tcp_ask, udp_ask, wsd_probe

from camaudit.errors import UsageError
from camaudit.lab import plan_devices
from camaudit.lab.discovery import parse_dhip
from camaudit.lab.farm import Farm
from camaudit.lab.profiles import load_profiles
from camaudit.lab.runner import LabThread

PY = sys.executable


def test_plan_is_deterministic_unique_and_vendor_true() -> None:
    a = plan_devices(300, "127.78.0.0/16", "hikvision=30,dahua=30,axis=10,host=5", seed=5)
    b = plan_devices(300, "127.78.0.0/16", "hikvision=30,dahua=30,axis=10,host=5", seed=5)
    c = plan_devices(300, "127.78.0.0/16", "hikvision=30,dahua=30,axis=10,host=5", seed=6)
    assert [d.to_json() for d in a] == [d.to_json() for d in b]
    assert [d.mac for d in a] != [d.mac for d in c]
    assert len({d.address for d in a}) == len({d.mac for d in a}) == len({d.serial for d in a}) == 300
    profiles = load_profiles()
    for d in a:
        p = profiles[d.profile]
        if p.ouis:
            assert d.mac[:8].upper() in p.ouis
        else:
            assert int(d.mac[:2], 16) & 0x02, "no OUI: locally administered"
        if p.serial_format == "hikvision":
            assert re.fullmatch(re.escape(p.model) + r"(01)?20\d{6}[A-Z]{4}\d{9}", d.serial)
        if p.serial_format == "dahua":
            assert re.fullmatch(r"[A-Z0-9]{7}PA[A-Z0-9]{6}", d.serial)
    counts = {v: sum(1 for d in a if profiles[d.profile].vendor == v) for v in ("hikvision", "dahua", "axis")}
    assert counts == {"hikvision": 120, "dahua": 120, "axis": 40}


def test_bad_plans_get_clear_errors() -> None:
    with pytest.raises(UsageError, match="matches no lab profile"):
        plan_devices(5, "127.78.0.0/24", "sony=5")
    with pytest.raises(UsageError, match="holds only"):
        plan_devices(300, "127.78.3.0/24")
    with pytest.raises(UsageError, match="name=weight"):
        plan_devices(5, "127.78.0.0/24", "hikvision")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_up_and_down_leave_nothing_behind() -> None:
    specs = plan_devices(30, "127.78.2.0/24", None, seed=1)
    fds, threads = _open_fds(), threading.active_count()
    with LabThread(specs, port_offset=10000, request_wait=1.0) as lab:
        entry = next(e for e in lab.manifest if "http" in e["services"])
        # a client connection left open must not keep the farm from stopping
        idle = socket.create_connection((entry["address"], entry["services"]["http"]))
        time.sleep(0.2)  # the farm has accepted it and holds it, waiting for a request
        assert _open_fds() > fds + 30
    idle.close()
    assert threading.active_count() == threads
    assert _open_fds() == fds
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((entry["address"], entry["services"]["http"]), timeout=1)
    # every address and port is free again: a second farm binds the same ones
    with LabThread(specs, port_offset=10000) as again:
        assert len(again.manifest) == 30


def test_manifest_matches_what_is_served() -> None:
    specs = plan_devices(40, "127.78.4.0/24", None, seed=2)
    with LabThread(specs, port_offset=10000, request_wait=1.0) as lab:
        manifest = lab.manifest
        keys = {"address", "profile", "vendor", "brand", "device_type", "model", "firmware", "mac"}
        assert all(keys <= set(e) for e in manifest)
        seen = {"sadp": 0, "dhip": 0, "wsd": 0}
        for e in manifest:
            services = e["services"]
            for port in e["ports"]["tcp"]:
                socket.create_connection((e["address"], port), timeout=1).close()
            if "sadp" in services:
                reply = fromstring(udp_ask(e["address"], 37020, SADP_PROBE))
                assert reply.findtext("DeviceDescription") == e["model"]
                assert reply.findtext("MAC") == e["mac"].replace(":", "-")
                assert reply.findtext("DeviceSN") == e["serial"]
                assert reply.findtext("SoftwareVersion") == e["firmware"].replace(" build", "build")
                seen["sadp"] += 1
            if "dhip" in services:
                info = parse_dhip(udp_ask(e["address"], 37810, DHIP_PROBE))
                assert info is not None and info["mac"] == e["mac"]
                dev = info["params"]["deviceInfo"]  # type: ignore[index]
                assert (dev["DeviceType"], dev["Version"], dev["SerialNo"]) == (e["model"], e["firmware"], e["serial"])
                seen["dhip"] += 1
            if "wsd" in services and e["vendor"] != "other":
                probe_id = f"urn:uuid:5e1f0000-0000-4000-8000-{seen['wsd']:012d}"
                match = udp_ask(e["address"], 3702, wsd_probe(probe_id))
                assert match is not None and f"<wsa:RelatesTo>{probe_id}</wsa:RelatesTo>".encode() in match
                assert probe_id.encode() not in match.replace(f">{probe_id}<".encode(), b"")  # fresh MessageID
                assert f"{e['address']}:{services['http']}/onvif/device_service".encode() in match
                seen["wsd"] += 1
        assert all(seen.values()), seen


def test_discovery_stubs_answer_only_real_requests() -> None:
    specs = plan_devices(20, "127.78.5.0/24", "hikvision-ipc=1,host-printer=1", seed=3)
    with LabThread(specs, port_offset=10000) as lab:
        cam = next(e for e in lab.manifest if e["profile"] == "hikvision-ipc")
        printer = next(e for e in lab.manifest if e["profile"] == "host-printer")
        hello = wsd_probe("urn:uuid:1").replace(b"discovery/Probe<", b"discovery/Hello<")
        assert udp_ask(cam["address"], 3702, hello, timeout=0.5) is None
        assert udp_ask(cam["address"], 3702, b"not xml", timeout=0.5) is None
        assert udp_ask(cam["address"], 37020, b"<Probe><Types>update</Types></Probe>", timeout=0.5) is None
        # a printer answers devprof Device probes, never ONVIF NetworkVideoTransmitter ones
        assert udp_ask(printer["address"], 3702, wsd_probe("urn:uuid:2"), timeout=0.5) is None
        assert udp_ask(printer["address"], 3702, wsd_probe("urn:uuid:3", "wsdp:Device")) is not None
        assert udp_ask(cam["address"], 3702, wsd_probe("urn:uuid:4", "wsdp:Device"), timeout=0.5) is None


def _digest_header(method: str, uri: str, challenge: str, user: str = "admin", password: str = "camaudit-lab") -> str:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5(f"{user}:{params['realm']}:{password}"), md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{params['nonce']}:00000001:abcdef:auth:{ha2}")
    return (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}", '
            f'qop=auth, nc=00000001, cnonce="abcdef", response="{response}"')


def test_device_settings_behind_digest_auth() -> None:
    specs = plan_devices(24, "127.78.6.0/24", "hikvision-ipc=1,dahua-ipc=1", seed=4)
    with LabThread(specs, port_offset=10000) as lab:
        hik = next(e for e in lab.manifest if e["profile"] == "hikvision-ipc")
        dahua = next(e for e in lab.manifest if e["profile"] == "dahua-ipc")
        uri = "/ISAPI/System/Network/EZVIZ"
        first = tcp_ask(hik["address"], hik["services"]["http"], f"GET {uri} HTTP/1.1\r\n\r\n".encode())
        assert first.startswith(b"HTTP/1.1 401") and b"<statusValue>401</statusValue>" in first
        challenge = re.search(rb"WWW-Authenticate: (Digest [^\r]+)", first)[1].decode()  # type: ignore[index]
        assert 'realm="IP Camera(C' in challenge
        auth = _digest_header("GET", uri, challenge)
        ok = tcp_ask(hik["address"], hik["services"]["http"], f"GET {uri} HTTP/1.1\r\nAuthorization: {auth}\r\n\r\n".encode())
        registered = hik["settings"]["cloud"]["state"] == "registered"
        assert f"<registerStatus>{str(registered).lower()}</registerStatus>".encode() in ok
        assert f"<hostName>{hik['settings']['cloud']['server']}</hostName>".encode() in ok
        wrong = _digest_header("GET", uri, challenge, password="wrong")
        assert tcp_ask(hik["address"], hik["services"]["http"],
                       f"GET {uri} HTTP/1.1\r\nAuthorization: {wrong}\r\n\r\n".encode()).startswith(b"HTTP/1.1 401")
        basic = base64.b64encode(b"admin:camaudit-lab").decode()
        cfg = tcp_ask(dahua["address"], dahua["services"]["http"],
                      f"GET /cgi-bin/configManager.cgi?action=getConfig&name=Network HTTP/1.1\r\nAuthorization: Basic {basic}\r\n\r\n".encode())
        assert f"table.Network.eth0.DefaultGateway={dahua['settings']['gateway']}".encode() in cfg
        assert b"table.Network.eth0.DnsServers[0]=8.8.8.8" in cfg


def _wait_for(path: Path, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the lab did not come up"
        time.sleep(0.05)


def test_cli_lab_up_serves_until_sigterm(tmp_path: Path) -> None:
    manifest = tmp_path / "lab.json"
    proc = subprocess.Popen(
        [PY, "-m", "camaudit", "lab", "up", "--devices", "25", "--subnet", "127.78.7.0/24", "--seed", "9",
         "--port-offset", "10000", "--manifest", str(manifest)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(manifest, proc, 30)
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert "25 devices up on 127.78.7.0/24" in line
        entries = json.loads(manifest.read_text())
        assert [e["address"] for e in entries] == [d.address for d in plan_devices(25, "127.78.7.0/24", None, 9)]
        e = entries[0]
        socket.create_connection((e["address"], e["ports"]["tcp"][0]), timeout=1).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((e["address"], e["ports"]["tcp"][0]), timeout=1)


def test_cli_refuses_non_loopback_subnet() -> None:
    done = subprocess.run([PY, "-m", "camaudit", "lab", "up", "--subnet", "10.0.0.0/24"],
                          capture_output=True, timeout=30)
    assert done.returncode == 2
    assert b"loopback mode serves only 127.0.0.0/8" in done.stderr and b"Traceback" not in done.stderr


def test_module_entry_point_serves_a_spec_file(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([d.to_json() for d in plan_devices(5, "127.78.8.0/24", "dahua-ipc=1", 1)]))
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([PY, "-m", "camaudit.lab.farm", "--spec", str(spec), "--ready-file", str(ready),
                             "--port-offset", "10000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(ready, proc, 30)
        entries = json.loads(ready.read_text())
        assert len(entries) == 5 and entries[0]["vendor"] == "dahua"
        assert parse_dhip(udp_ask(entries[0]["address"], 37810, DHIP_PROBE) or b"") is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_a_port_in_use_is_a_clear_error() -> None:
    specs = plan_devices(2, "127.78.9.0/24", "host-linux=1", 1)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((specs[1].address, 10080))
    blocker.listen()
    try:
        farm = Farm(specs, port_offset=10000)
        with pytest.raises(UsageError, match="cannot bind lab device 127.78.9.2 port 10080"):
            asyncio.run(farm.start())
        assert not farm._sockets  # what it had bound is released
    finally:
        blocker.close()
