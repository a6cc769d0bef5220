"""Egress scenarios: each one's forwarding behaves as its name says, seen from the segment.

A canary in the lab's "internet" namespace answers TCP with a banner and echoes UDP; a probe run
in the scanner namespace (a sensor on the camera segment) counts only application answers as
egress (lab.md section 9). Everything stays inside this module's ``clab-*`` namespaces.
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

import pytest

from camaudit.lab import netns, scenarios
from camaudit.lab.netns import LabDevice, Topology

pytestmark = pytest.mark.root

DEVICES = [LabDevice("10.77.0.1", "44:19:b6:00:00:01"), LabDevice("10.77.0.2", "3c:ef:8c:00:00:02")]

# Runs in the scanner namespace: every path at once, 1 s timeouts, JSON out. A path is "open"
# only when the far side answered (banner, echo, DNS answer with our id).
PROBE_SCRIPT = textwrap.dedent("""
    import json, socket, struct, sys
    from concurrent.futures import ThreadPoolExecutor
    from camaudit.lab.netns import assert_in_lab_namespace
    assert_in_lab_namespace()
    L, R, NONCE = sys.argv[1], sys.argv[2], sys.argv[3]
    L6 = sys.argv[4] if len(sys.argv) > 4 else None
    def tcp(addr, port, fam=socket.AF_INET):
        s = socket.socket(fam); s.settimeout(1)
        try:
            s.connect((addr, port)); return s.recv(64).decode().strip()
        except OSError as e:
            return None
        finally:
            s.close()
    def udp(addr, port, payload=NONCE.encode()):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        try:
            s.sendto(payload, (addr, port)); return s.recv(600)
        except OSError:
            return None
        finally:
            s.close()
    def query(qid):
        q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        for label in (NONCE, "egress", "lab"):
            q += bytes([len(label)]) + label.encode()
        return q + b"\\0" + struct.pack("!HH", 1, 1)
    def dns_udp():
        r = udp(R, 53, query(0x1234))
        return socket.inet_ntoa(r[-4:]) if r and r[:2] == b"\\x12\\x34" else None
    def dns_tcp():
        s = socket.socket(); s.settimeout(1)
        try:
            s.connect((R, 53)); q = query(0x4321); s.sendall(struct.pack("!H", len(q)) + q)
            r = s.recv(600)
            return socket.inet_ntoa(r[-4:]) if r[2:4] == b"\\x43\\x21" else None
        except OSError:
            return None
        finally:
            s.close()
    def u(port):
        r = udp(L, port)
        return r.decode() if r else None
    jobs = {"tcp80": lambda: tcp(L, 80), "udp8800": lambda: u(8800), "udp9999": lambda: u(9999),
            "dns_udp": dns_udp, "dns_tcp": dns_tcp}
    if L6:
        jobs["tcp6"] = lambda: tcp(L6, 80, socket.AF_INET6)
    with ThreadPoolExecutor(len(jobs)) as ex:
        futs = {k: ex.submit(f) for k, f in jobs.items()}
    print(json.dumps({k: f.result() for k, f in futs.items()}))
""")

OPEN = {"tcp80": "CANARY 80", "udp8800": "CANARY {n}", "udp9999": "CANARY {n}",
        "dns_udp": netns.INTERNET_LISTENER_ADDR, "dns_tcp": netns.INTERNET_LISTENER_ADDR}
EXPECTED = {
    "closed": set(),
    "open": set(OPEN),
    "dns-recursion-only": {"dns_udp", "dns_tcp"},
    "udp-8800-only": {"udp8800"},
    "ipv6-only": set(),
    "upnp-mapping": set(OPEN),
}


@pytest.fixture(scope="module")
def egress_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    old = os.environ.get(netns.STATE_DIR_ENV)
    os.environ[netns.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("labstate"))
    topo = netns.build_topology(DEVICES, egress=True)
    try:
        # Bound to the canary address itself: a wildcard UDP socket would answer from the
        # interface address, which conntrack does not match to the flow.
        _start_canary(topo, "inet", netns.INTERNET_LISTENER_ADDR, "tcp/80,udp/8800,udp/9999")
        # Device 10.77.0.1 serves TCP 80 (the upnp-mapping target).
        _start_canary(topo, "cams", DEVICES[0].address, "tcp/80")
        yield topo
    finally:
        assert netns.teardown(topo) == []
        if old is None:
            os.environ.pop(netns.STATE_DIR_ENV, None)
        else:
            os.environ[netns.STATE_DIR_ENV] = old


def _start_canary(topo: Topology, role: str, bind: str, ports: str) -> int:
    topo.run_dir.mkdir(parents=True, exist_ok=True)
    ready = topo.run_dir / f"canary-{role}-{len(topo.processes)}.ready"
    proc = topo.popen(role, [sys.executable, "-m", "camaudit.lab.scenarios", "canary",
                             "--bind", bind, "--ports", ports, "--ready-file", str(ready),
                             "--owner-pid", str(os.getpid()), "--max-seconds", "120"])
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "canary did not start"
        time.sleep(0.02)
    return proc.pid


def _probe(topo: Topology, nonce: str, v6: bool = False) -> dict[str, str | None]:
    argv = [sys.executable, "-c", PROBE_SCRIPT, netns.INTERNET_LISTENER_ADDR,
            netns.INTERNET_RESOLVER_ADDR, nonce]
    if v6:
        argv.append(netns.INTERNET_LISTENER_ADDR6)
    out = topo.run("scan", argv, timeout=20).stdout
    result: dict[str, str | None] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_scenario_forwarding_matches_its_name(egress_lab: Topology, name: str) -> None:
    info = scenarios.apply_scenario(egress_lab, name, lifetime=120)
    nonce = f"n{name.replace('-', '')[:20]}"
    res = _probe(egress_lab, nonce)
    opened = {k for k, v in res.items() if v is not None}
    assert opened == EXPECTED[name], res
    for key in opened:
        assert res[key] == OPEN[key].format(n=nonce)
    logged = [json.loads(line)["qname"] for line in Path(info["dns_log"]).read_text().splitlines()
              ] if Path(info["dns_log"]).exists() else []
    # The resolver's log is the auditor's proof that DNS left the segment, and only then.
    assert (f"{nonce}.egress.lab" in logged) == ("dns_udp" in EXPECTED[name])


def test_ipv6_only_advertises_a_global_prefix_and_forwards_ipv6(egress_lab: Topology) -> None:
    scenarios.apply_scenario(egress_lab, "ipv6-only", lifetime=120)
    _start_canary(egress_lab, "inet", netns.INTERNET_LISTENER_ADDR6, "tcp/80")
    deadline = time.monotonic() + 8
    addr = ""
    while time.monotonic() < deadline and not addr:
        out = egress_lab.run("scan", ["ip", "-6", "-o", "addr", "show", "dev", "scan0",
                                      "scope", "global"]).stdout
        addr = out.split("inet6 ")[1].split("/")[0] if "inet6 " in out else ""
        time.sleep(0.1)
    assert addr.startswith("2001:db8:77:"), "no SLAAC address from the router advertisement"
    routes = egress_lab.run("scan", ["ip", "-6", "route", "show", "default"]).stdout
    assert "via fe80::" in routes and "proto ra" in routes
    res = _probe(egress_lab, "nsix", v6=True)
    assert res["tcp6"] == "CANARY 80"
    assert {k for k, v in res.items() if v is not None} == {"tcp6"}
    # Leaving the scenario takes the advertised prefix and route away again; the sensor keeps
    # IPv6 on its link (as shipped, so that "no advertisement" is observed, not a gap).
    scenarios.apply_scenario(egress_lab, "closed", lifetime=120)
    out = egress_lab.run("scan", ["ip", "-6", "-o", "addr", "show", "dev", "scan0", "scope", "global"]).stdout
    assert out.strip() == ""
    assert egress_lab.run("scan", ["ip", "-6", "route", "show", "default"]).stdout.strip() == ""


M_SEARCH = textwrap.dedent("""
    import socket, sys, json, urllib.request
    from camaudit.lab.netns import assert_in_lab_namespace
    assert_in_lab_namespace()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    msg = ("M-SEARCH * HTTP/1.1\\r\\nHOST: 239.255.255.250:1900\\r\\nMAN: \\"ssdp:discover\\"\\r\\n"
           "MX: 1\\r\\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\\r\\n\\r\\n")
    s.sendto(msg.encode(), ("239.255.255.250", 1900))
    reply, peer = s.recvfrom(2048)
    hdr = {k.strip().upper(): v.strip() for k, _, v in
           (l.partition(":") for l in reply.decode().split("\\r\\n")[1:] if l)}
    desc = urllib.request.urlopen(hdr["LOCATION"], timeout=2).read().decode()
    def soap(action, args=""):
        body = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                f'<s:Body><u:{action} xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">'
                f'{args}</u:{action}></s:Body></s:Envelope>')
        base = hdr["LOCATION"].rsplit("/", 1)[0]
        req = urllib.request.Request(base + "/ctl/IPConn", data=body.encode(), headers={
            "SOAPAction": f'"urn:schemas-upnp-org:service:WANIPConnection:1#{action}"',
            "Content-Type": "text/xml"})
        try:
            return urllib.request.urlopen(req, timeout=2).read().decode()
        except urllib.error.HTTPError as e:
            return "HTTP%d %s" % (e.code, e.read().decode())
    print(json.dumps({"peer": peer[0], "st": hdr["ST"], "desc": desc,
                      "ext": soap("GetExternalIPAddress"),
                      "entry0": soap("GetGenericPortMappingEntry", "<NewPortMappingIndex>0</NewPortMappingIndex>"),
                      "entry1": soap("GetGenericPortMappingEntry", "<NewPortMappingIndex>1</NewPortMappingIndex>")}))
""")


def test_upnp_mapping_igd_reports_the_mapping_that_really_exists(egress_lab: Topology) -> None:
    info = scenarios.apply_scenario(egress_lab, "upnp-mapping", lifetime=120)
    res = json.loads(egress_lab.run("scan", [sys.executable, "-c", M_SEARCH]).stdout.splitlines()[-1])
    assert res["peer"] == netns.ROUTER_LAN_ADDR
    assert res["st"] == "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
    assert "WANIPConnection:1" in res["desc"] and "/ctl/IPConn" in res["desc"]
    assert f"<NewExternalIPAddress>{netns.ROUTER_PUBLIC_ADDR}</NewExternalIPAddress>" in res["ext"]
    assert "<NewExternalPort>8000</NewExternalPort>" in res["entry0"]
    assert f"<NewInternalClient>{DEVICES[0].address}</NewInternalClient>" in res["entry0"]
    assert res["entry1"].startswith("HTTP500") and "<errorCode>713</errorCode>" in res["entry1"]
    # The mapping is real: from the internet, the router's public port reaches the device.
    code = ("import socket,sys; s=socket.create_connection((sys.argv[1], 8000), timeout=2); "
            "print(s.recv(64).decode().strip())")
    out = egress_lab.run("inet", [sys.executable, "-c", code, info["external_addr"]]).stdout
    assert out.strip() == "CANARY 80"


def test_switching_scenarios_stops_the_previous_helpers(egress_lab: Topology) -> None:
    scenarios.apply_scenario(egress_lab, "upnp-mapping", lifetime=120)
    helpers = dict(egress_lab.extra["scenario"]["helpers"])
    assert set(helpers) == {"dns", "igd"}
    scenarios.apply_scenario(egress_lab, "closed", lifetime=120)
    for pid in helpers.values():
        assert not netns.pid_alive(pid, None)
    rules = egress_lab.run("rtr", ["nft", "list", "ruleset"]).stdout
    assert "policy drop" in rules and "clabnat" not in rules


def test_unknown_scenario_is_a_usage_error(egress_lab: Topology) -> None:
    with pytest.raises(netns.UsageError, match="unknown egress scenario"):
        scenarios.apply_scenario(egress_lab, "half-open")


def test_dns_answer_is_bounded_and_correct() -> None:
    q = bytes.fromhex("abcd01000001000000000000") + b"\x03cam\x03lab\x00" + b"\x00\x01\x00\x01"
    res = scenarios.dns_answer(q, "198.51.100.10")
    assert res is not None
    reply, qname, qtype = res
    assert (qname, qtype) == ("cam.lab", 1)
    assert reply[:2] == b"\xab\xcd" and reply[-4:] == bytes([198, 51, 100, 10])
    assert scenarios.dns_answer(b"\x00" * 11, "198.51.100.10") is None
    assert scenarios.dns_answer(q[:-3], "198.51.100.10") is None
    assert scenarios.dns_answer(q[:12] + b"\x7f" + b"a" * 40, "198.51.100.10") is None


def test_ssdp_reply_answers_only_igd_searches() -> None:
    def search(st: str) -> bytes:
        return (f'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
                f"MX: 1\r\nST: {st}\r\n\r\n").encode()
    assert len(scenarios.ssdp_reply(search("ssdp:all"), "http://x/", "uuid:1")) == 5
    assert scenarios.ssdp_reply(search("urn:schemas-upnp-org:device:MediaServer:1"), "u", "i") == []
    assert scenarios.ssdp_reply(b"NOTIFY * HTTP/1.1\r\n\r\n", "u", "i") == []
    assert scenarios.ssdp_reply(b"\xff\xfe" * 40, "u", "i") == []


def test_helpers_refuse_to_run_in_the_host_namespace() -> None:
    res = subprocess.run([sys.executable, "-m", "camaudit.lab.scenarios", "canary",
                          "--bind", "127.79.0.1", "--ports", "tcp/18080", "--max-seconds", "1"],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode != 0 and "not inside a lab network namespace" in res.stderr
