"""Egress scenarios for the namespace lab: the router's rules and the internet's services.

A scenario decides what the router namespace (the camera segment's gateway, 10.77.255.254)
forwards to the "internet" namespace, and which small services run there, so that an egress
check run from the camera segment (the scanner or camera namespace) can be tested against a
known truth (reference/egress.md sections 1 and 7.5, reference/lab.md section 9):

============== =================================================================================
closed         the router forwards nothing (nft forward policy drop: silent, like a firewall)
open           the router forwards everything from the segment to the internet
dns-recursion-only  only UDP and TCP 53 to the internet's resolver (203.0.113.53) pass; it
               answers any name ("recurses") and logs every query name (the auditor zone's log);
               names under egress.lab it forwards over UDP to the listener address, the zone's server
udp-8800-only  only UDP to port 8800 passes
ipv6-only      IPv4 is dropped; the router advertises 2001:db8:77::/64 (RA) and forwards IPv6
upnp-mapping   open with NAT to 203.0.113.1, a DNAT port mapping (203.0.113.1:8000 -> first
               device :80), and a UPnP IGD on the segment (SSDP + WANIPConnection) reporting it
============== =================================================================================

The helpers (``dns``, ``igd``, ``ra``, ``canary``) are small asyncio servers run as
``python -m camaudit.lab.scenarios ROLE ...`` inside the right namespace, started with
:meth:`Topology.popen` (recorded by PID), bounded by ``--max-seconds`` and exiting when the
owner process is gone. They answer only what they are asked and never send unprompted, except
the router advertisement, which only exists inside the lab segment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import defusedxml.ElementTree as DET

from ..errors import UsageError
from . import guard, netns
from .netns import LabError, Topology

log = logging.getLogger(__name__)

#: The zone the lab's resolver (203.0.113.53) delegates to the listener address (198.51.100.10):
#: names under it are forwarded there, as a recursive resolver would reach the zone's server.
LAB_DNS_ZONE = "egress.lab"

SCENARIOS: dict[str, str] = {
    "closed": "the router forwards nothing (silent drop)",
    "open": "the router forwards everything",
    "dns-recursion-only": "only DNS (UDP+TCP 53) to the internet's recursive resolver passes",
    "udp-8800-only": "only UDP port 8800 passes",
    "ipv6-only": "IPv4 blocked; the router advertises a global IPv6 prefix and forwards IPv6",
    "upnp-mapping": "open with NAT, one port mapping, and a UPnP IGD on the segment reporting it",
}

IGD_HTTP_PORT = 49152
SSDP_GROUP = "239.255.255.250"
SSDP_PORT = 1900
MAPPING_EXTERNAL_PORT = 8000
_NFT_TABLES = "table inet clab\ntable ip clabnat\n"


def _forward_rules(name: str, mapped: tuple[str, int] | None) -> list[str]:
    lan = 'iifname "lan0" oifname "wan0"'
    if name == "closed":
        return []
    if name == "open":
        return [f"{lan} accept"]
    if name == "dns-recursion-only":
        dst = f"ip daddr {netns.INTERNET_RESOLVER_ADDR}"
        return [f"{lan} {dst} udp dport 53 accept", f"{lan} {dst} tcp dport 53 accept"]
    if name == "udp-8800-only":
        return [f"{lan} udp dport 8800 accept"]
    if name == "ipv6-only":
        return [f"{lan} meta nfproto ipv6 accept"]
    if name == "upnp-mapping":
        assert mapped is not None
        return [f"{lan} accept",
                f'iifname "wan0" ip daddr {mapped[0]} tcp dport {mapped[1]} ct status dnat accept']
    raise UsageError(f"unknown egress scenario {name!r}; known: {', '.join(SCENARIOS)}")


def nft_ruleset(name: str, mapped: tuple[str, int] | None = None) -> str:
    """The router's complete nftables ruleset for scenario ``name``."""
    rules = "".join(f"    {r}\n" for r in _forward_rules(name, mapped))
    text = (
        "table inet clab {\n  chain forward {\n"
        "    type filter hook forward priority 0; policy drop;\n"
        # Only answers come back on an established flow. Outbound packets must match the
        # current scenario's rules every time: a flow left established by the previous
        # scenario (conntrack outlives a ruleset change) must not carry on under this one.
        '    iifname "wan0" oifname "lan0" ct state established,related accept\n'
        '    iifname "lan0" oifname "wan0" ct status dnat ct state established accept\n'
        f"{rules}  }}\n}}\n"
    )
    if name == "upnp-mapping" and mapped is not None:
        text += (
            "table ip clabnat {\n"
            "  chain prerouting {\n    type nat hook prerouting priority -100;\n"
            f'    iifname "wan0" ip daddr {netns.ROUTER_PUBLIC_ADDR} tcp dport '
            f"{MAPPING_EXTERNAL_PORT} dnat to {mapped[0]}:{mapped[1]}\n  }}\n"
            "  chain postrouting {\n    type nat hook postrouting priority 100;\n"
            f'    oifname "wan0" ip saddr {netns.CAMERA_SUBNET} snat to {netns.ROUTER_PUBLIC_ADDR}\n'
            "  }\n}\n"
        )
    return text


def apply_scenario(topo: Topology, name: str, *, lifetime: float = 3600.0) -> dict[str, Any]:
    """Switch ``topo`` (built with ``egress=True``) to scenario ``name``: router rules, IPv6
    state and helper services. Returns what a test or an egress check needs to know."""
    if name not in SCENARIOS:
        raise UsageError(f"unknown egress scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if not topo.egress:
        raise UsageError("this lab was built without the router and internet namespaces")
    clear_scenario(topo)
    run_dir = topo.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    mapped = (topo.devices[0].address, 80) if name == "upnp-mapping" and topo.devices else None
    if name == "upnp-mapping" and mapped is None:
        raise UsageError("the upnp-mapping scenario needs at least one lab device")
    # Rules first, then forwarding on: no window in which the router forwards unfiltered.
    topo.run("rtr", ["nft", "-f", "-"], input="flush ruleset\n" + nft_ruleset(name, mapped))
    netns.sysctl(topo, "rtr", ["net.ipv4.ip_forward=1"])
    info: dict[str, Any] = {
        "scenario": name,
        "gateway": netns.ROUTER_LAN_ADDR,
        "listener": netns.INTERNET_LISTENER_ADDR,
        "resolver": netns.INTERNET_RESOLVER_ADDR,
        "dns_zone": LAB_DNS_ZONE,
        "dns_log": str(run_dir / "dns.jsonl"),
    }
    helpers: dict[str, int] = {}
    helpers["dns"] = _start_helper(topo, "inet", "dns", lifetime, [
        "--bind", netns.INTERNET_RESOLVER_ADDR, "--answer", netns.INTERNET_LISTENER_ADDR,
        "--forward-zone", LAB_DNS_ZONE, "--log", info["dns_log"]])
    if name != "ipv6-only":
        # The sensor as a real one is: IPv6 on (link-local only, accepting advertisements), so
        # that "no router advertises a prefix" is observed (ipv6/ra absent), not a gap that
        # keeps the closed scenario INCONCLUSIVE. Nothing in these scenarios advertises one.
        _sensor_ipv6_on(topo)
    if name == "ipv6-only":
        _ipv6_on(topo)
        helpers["ra"] = _start_helper(topo, "rtr", "ra", lifetime, [
            "--iface", "lan0", "--prefix", netns.SEGMENT_PREFIX6])
        info.update(prefix6=netns.SEGMENT_PREFIX6, listener6=netns.INTERNET_LISTENER_ADDR6)
    if name == "upnp-mapping" and mapped is not None:
        helpers["igd"] = _start_helper(topo, "rtr", "igd", lifetime, [
            "--iface", "lan0", "--lan-addr", netns.ROUTER_LAN_ADDR,
            "--external-addr", netns.ROUTER_PUBLIC_ADDR,
            "--mapping", f"TCP:{MAPPING_EXTERNAL_PORT}:{mapped[0]}:{mapped[1]}"])
        info.update(igd_location=f"http://{netns.ROUTER_LAN_ADDR}:{IGD_HTTP_PORT}/rootDesc.xml",
                    external_addr=netns.ROUTER_PUBLIC_ADDR,
                    mapping={"protocol": "TCP", "external_port": MAPPING_EXTERNAL_PORT,
                             "internal_client": mapped[0], "internal_port": mapped[1]})
    topo.extra["scenario"] = {"name": name, "helpers": helpers, "info": info}
    topo.save()
    return info


def clear_scenario(topo: Topology) -> None:
    """Undo the current scenario: stop its helpers, drop all forwarding, turn IPv6 back off."""
    current = topo.extra.pop("scenario", None)
    if current:
        for pid in current.get("helpers", {}).values():
            topo.stop_process(int(pid))
        if current.get("name") == "ipv6-only":
            _ipv6_off(topo)
    if topo.egress:
        netns.sysctl(topo, "rtr", ["net.ipv4.ip_forward=0"])
        topo.run("rtr", ["nft", "flush", "ruleset"])
    topo.save()


def start_netns_lab(specs: list[dict[str, Any]], *, scenario: str | None = None,
                    lifetime: float = 86400.0) -> Topology:
    """Build the namespace lab for farm device ``specs`` (``DeviceSpec.to_json()``), serve them
    from the farm in the camera namespace, and with ``scenario`` add the router and internet
    namespaces in that egress scenario. Everything is removed again if any step fails."""
    if scenario is not None and scenario not in SCENARIOS:
        raise UsageError(f"unknown egress scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    topo = netns.build_topology(netns.devices_from_specs(specs), egress=scenario is not None)
    try:
        netns.start_farm(topo, specs)
        if scenario is not None:
            apply_scenario(topo, scenario, lifetime=lifetime)
    except BaseException:
        netns.teardown(topo)
        raise
    return topo


def _start_helper(topo: Topology, role: str, helper: str, lifetime: float, args: list[str]) -> int:
    ready = topo.run_dir / f"{helper}.ready"
    with contextlib.suppress(FileNotFoundError):
        ready.unlink()
    argv = [sys.executable, "-m", "camaudit.lab.scenarios", helper, "--ready-file", str(ready),
            "--owner-pid", str(os.getpid()), "--max-seconds", f"{lifetime:g}", *args]
    logf = (topo.run_dir / f"{helper}.log").open("ab")
    proc = topo.popen(role, argv, stdout=logf, stderr=logf)
    logf.close()
    deadline = time.monotonic() + 10.0
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            topo.stop_process(proc.pid)
            tail = (topo.run_dir / f"{helper}.log").read_text(errors="replace")[-300:]
            raise LabError(f"lab {helper} helper did not start: {tail.strip() or 'no output'}")
        time.sleep(0.02)
    return proc.pid


def _ipv6_on(topo: Topology) -> None:
    # accept_dad=0 before enabling: addresses are usable at once (no 1-2 s tentative phase).
    netns.sysctl(topo, "rtr", [
        "net.ipv6.conf.lan0.accept_dad=0", "net.ipv6.conf.wan0.accept_dad=0",
        "net.ipv6.conf.lo.disable_ipv6=0",
        "net.ipv6.conf.lan0.disable_ipv6=0", "net.ipv6.conf.wan0.disable_ipv6=0",
        "net.ipv6.conf.all.forwarding=1"])
    netns.ip_batch(topo, "rtr", [
        f"addr add {netns.ROUTER_LAN_ADDR6}/64 dev lan0 nodad",
        f"addr add {netns.ROUTER_WAN_ADDR6}/64 dev wan0 nodad",
        f"route add {netns.INTERNET_LISTENER_ADDR6}/128 via {netns.INET_WAN_ADDR6}"])
    netns.sysctl(topo, "inet", [
        "net.ipv6.conf.up0.accept_dad=0", "net.ipv6.conf.lo.disable_ipv6=0",
        "net.ipv6.conf.up0.disable_ipv6=0"])
    netns.ip_batch(topo, "inet", [
        f"addr add {netns.INET_WAN_ADDR6}/64 dev up0 nodad",
        f"addr add {netns.INTERNET_LISTENER_ADDR6}/128 dev lo",
        f"route add {netns.SEGMENT_PREFIX6} via {netns.ROUTER_WAN_ADDR6}"])
    # The scanner autoconfigures from the router's advertisement, as a camera would.
    netns.sysctl(topo, "scan", [
        "net.ipv6.conf.scan0.accept_dad=0", "net.ipv6.conf.scan0.accept_ra=1",
        "net.ipv6.conf.scan0.autoconf=1", "net.ipv6.conf.lo.disable_ipv6=0",
        "net.ipv6.conf.scan0.disable_ipv6=0"])


def _sensor_ipv6_on(topo: Topology) -> None:
    netns.sysctl(topo, "scan", [
        "net.ipv6.conf.scan0.accept_dad=0", "net.ipv6.conf.scan0.accept_ra=1",
        "net.ipv6.conf.lo.disable_ipv6=0", "net.ipv6.conf.scan0.disable_ipv6=0"])


def lab_egress_commands(info: dict[str, Any], run_id: str | None = None) -> list[tuple[str, str]]:
    """How to verify egress in a running scenario as the README says: the listener in the
    lab's internet, a positive control from the router (a vantage with egress), then the check
    from the camera segment. (what, command) pairs, for ``lab up`` to print."""
    lab = "camaudit lab exec" + (f" --run-id {run_id}" if run_id else "")
    listener, resolver, zone = info["listener"], info["resolver"], info.get("dns_zone", LAB_DNS_ZONE)
    common = f"--listener {listener} --resolver {resolver} --dns-zone {zone}"
    return [
        ("listener", f"{lab} --in inet -- camaudit egress listen --bind {listener} --dns-zone {zone} "
                     "--log /tmp/camaudit-lab-seen.jsonl"),
        ("control", f"{lab} --in rtr -- camaudit egress check {common} --control --no-upnp --no-natpmp "
                    "--ra-wait 0 --db /tmp/camaudit-lab.db"),
        ("check", f"{lab} -- camaudit egress check {common} --db /tmp/camaudit-lab.db"),
    ]


def _ipv6_off(topo: Topology) -> None:
    for role, ifaces in (("scan", ("scan0", "lo")), ("inet", ("up0", "lo")),
                         ("rtr", ("lan0", "wan0", "lo"))):
        netns.sysctl(topo, role, [f"net.ipv6.conf.{i}.disable_ipv6=1" for i in ifaces])
    netns.sysctl(topo, "rtr", ["net.ipv6.conf.all.forwarding=0"])


# =============================================================================================
# Helper services (run inside a lab namespace via `python -m camaudit.lab.scenarios ROLE`)
# =============================================================================================
MAX_DATAGRAM = 1500
MAX_HTTP_REQUEST = 16384


def dns_answer(query: bytes, answer_v4: str) -> tuple[bytes, str, int] | None:
    """A recursive resolver's reply to ``query``: any A name resolves to ``answer_v4``; other
    types get NOERROR with no data. Returns (reply, qname, qtype), or None for garbage."""
    if len(query) < 17 or len(query) > 512:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    pos, labels = 12, list[str]()
    while True:
        if pos >= len(query):
            return None
        n = query[pos]
        if n == 0:
            pos += 1
            break
        if n > 63 or pos + 1 + n > len(query) or len(labels) >= 127:
            return None
        labels.append(query[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(query):
        return None
    qtype, qclass = struct.unpack("!HH", query[pos:pos + 4])
    question = query[12:pos + 4]
    # QR, opcode from query, RD copied, RA set: a recursive resolver answering.
    rflags = 0x8000 | (flags & 0x7900) | 0x0080
    answers = b""
    if qtype == 1 and qclass == 1:
        answers = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4)
                   + ipaddress.IPv4Address(answer_v4).packed)
    header = struct.pack("!HHHHHH", qid, rflags, 1, 1 if answers else 0, 0, 0)
    return header + question + answers, ".".join(labels).lower(), qtype


def _in_zone(qname: str, zone: str) -> bool:
    return bool(zone) and (qname == zone or qname.endswith("." + zone))


async def _forward_udp(query: bytes, server: str, timeout: float = 0.8) -> bytes | None:
    """Ask ``server`` (the zone's own server, in the lab's internet) and return its reply, as a
    recursive resolver does; None when it does not answer in time."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[bytes] = loop.create_future()

    class _Once(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
            if not reply.done() and len(data) <= MAX_DATAGRAM:
                reply.set_result(data)

        def error_received(self, exc: Exception) -> None:
            # Nothing serves the zone (port unreachable): answer as before, at once.
            if not reply.done():
                reply.set_exception(exc if isinstance(exc, OSError) else OSError(str(exc)))

    transport, _ = await loop.create_datagram_endpoint(_Once, remote_addr=(server, 53))
    try:
        transport.sendto(query)
        return await asyncio.wait_for(reply, timeout)
    except (TimeoutError, OSError):
        return None
    finally:
        transport.close()


class _DnsUdp(asyncio.DatagramProtocol):
    def __init__(self, answer: str, record: Callable[[str, str, str, int], None], zone: str = "") -> None:
        self.answer, self.record, self.zone = answer, record, zone
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # _SelectorDatagramTransport is not a DatagramTransport subclass in 3.11: cast.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        res = dns_answer(data, self.answer)
        if res is None or self.transport is None:
            return
        self.record("udp", addr[0], res[1], res[2])
        if _in_zone(res[1], self.zone) and len(self.pending) < 64:
            task = asyncio.get_running_loop().create_task(self._recurse(data, res[0], addr))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
            return
        self.transport.sendto(res[0], addr)

    async def _recurse(self, query: bytes, fallback: bytes, addr: tuple[Any, ...]) -> None:
        reply = await _forward_udp(query, self.answer)
        if self.transport is not None:
            self.transport.sendto(reply if reply is not None else fallback, addr)


async def _serve_dns(args: argparse.Namespace) -> list[Any]:
    logpath = Path(args.log)

    def record(proto: str, client: str, qname: str, qtype: int) -> None:
        line = json.dumps({"time": time.time(), "proto": proto, "client": client,
                           "qname": qname, "qtype": qtype})
        with logpath.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(lambda: _DnsUdp(args.answer, record, args.forward_zone),
                                                 local_addr=(args.bind, 53))

    async def tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))[0]
            query = await asyncio.wait_for(reader.readexactly(size), 5)
            res = dns_answer(query, args.answer)
            if res is not None:
                record("tcp", writer.get_extra_info("peername")[0], res[1], res[2])
                writer.write(struct.pack("!H", len(res[0])) + res[0])
                await writer.drain()
        writer.close()

    tcp = await asyncio.start_server(tcp_client, args.bind, 53)
    return [udp, tcp]


def _mcast_socket(iface: str, group: str, port: int) -> socket.socket:
    """A UDP socket on ``port`` that joined ``group`` on ``iface`` by ifindex (lab.md 4)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("", port))
    mreqn = socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack(
        "@i", socket.if_nametoindex(iface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    sock.setblocking(False)
    return sock


IGD_TYPES = (
    "upnp:rootdevice",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:device:WANDevice:1",
    "urn:schemas-upnp-org:device:WANConnectionDevice:1",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
)
_WANIP = "urn:schemas-upnp-org:service:WANIPConnection:1"


def ssdp_reply(request: bytes, location: str, udn: str) -> list[bytes]:
    """The IGD's SSDP answers to an M-SEARCH (UPnP Device Architecture 1.1, 1.3.3)."""
    try:
        text = request[:MAX_DATAGRAM].decode("ascii")
    except UnicodeDecodeError:
        return []
    lines = text.split("\r\n")
    if not lines or not lines[0].upper().startswith("M-SEARCH * HTTP/1.1"):
        return []
    headers = {k.strip().upper(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if headers.get("MAN", "").strip('"') != "ssdp:discover":
        return []
    st = headers.get("ST", "")
    targets = list(IGD_TYPES) if st == "ssdp:all" else [st] if st in IGD_TYPES else []
    return [(
        "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\n"
        f"LOCATION: {location}\r\nSERVER: Linux UPnP/1.1 camaudit-lab-igd/1.0\r\n"
        f"ST: {t}\r\nUSN: {udn}::{t}\r\n\r\n").encode() for t in targets]


def igd_description(udn: str) -> str:
    dev = "urn:schemas-upnp-org:device"
    return (
        '<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0">'
        "<specVersion><major>1</major><minor>0</minor></specVersion><device>"
        f"<deviceType>{dev}:InternetGatewayDevice:1</deviceType>"
        "<friendlyName>camaudit lab router</friendlyName><manufacturer>camaudit lab</manufacturer>"
        f"<modelName>lab-igd</modelName><UDN>{udn}</UDN><deviceList><device>"
        f"<deviceType>{dev}:WANDevice:1</deviceType><UDN>{udn}-wan</UDN><deviceList><device>"
        f"<deviceType>{dev}:WANConnectionDevice:1</deviceType><UDN>{udn}-wanconn</UDN>"
        f"<serviceList><service><serviceType>{_WANIP}</serviceType>"
        "<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>"
        "<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL>"
        "<SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>"
        "</device></deviceList></device></deviceList></device></root>\n"
    )


def igd_control(action: str, body: bytes, external: str,
                mapping: dict[str, Any]) -> tuple[int, str]:
    """Answer one WANIPConnection SOAP action, read-only: (HTTP status, SOAP envelope)."""
    args: dict[str, str] = {}
    with contextlib.suppress(Exception):
        root = DET.fromstring(body)
        for el in root.iter():
            if len(el) == 0 and isinstance(el.tag, str):
                args[el.tag.rsplit("}", 1)[-1]] = (el.text or "").strip()
    entry = {
        "NewRemoteHost": "", "NewExternalPort": str(mapping["external_port"]),
        "NewProtocol": mapping["protocol"], "NewInternalPort": str(mapping["internal_port"]),
        "NewInternalClient": mapping["internal_client"], "NewEnabled": "1",
        "NewPortMappingDescription": "camera", "NewLeaseDuration": "0",
    }
    out: dict[str, str] | None = None
    fault = (401, "Invalid Action")
    if action == "GetExternalIPAddress":
        out = {"NewExternalIPAddress": external}
    elif action == "GetStatusInfo":
        out = {"NewConnectionStatus": "Connected", "NewLastConnectionError": "ERROR_NONE",
               "NewUptime": "1000"}
    elif action == "GetGenericPortMappingEntry":
        if args.get("NewPortMappingIndex") == "0":
            out = entry
        else:
            fault = (713, "SpecifiedArrayIndexInvalid")
    elif action == "GetSpecificPortMappingEntry":
        if (args.get("NewExternalPort") == entry["NewExternalPort"]
                and args.get("NewProtocol", "").upper() == entry["NewProtocol"]):
            out = {k: v for k, v in entry.items()
                   if k not in ("NewRemoteHost", "NewExternalPort", "NewProtocol")}
        else:
            fault = (714, "NoSuchEntryInArray")
    elif action in ("AddPortMapping", "DeletePortMapping", "AddAnyPortMapping"):
        fault = (606, "Action not authorized")  # the lab IGD is read-only
    env = ('<?xml version="1.0"?>\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
           ' s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>')
    if out is not None:
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in out.items())
        return 200, f'{env}<u:{action}Response xmlns:u="{_WANIP}">{inner}</u:{action}Response></s:Body></s:Envelope>'
    return 500, (f"{env}<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"
                 '<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">'
                 f"<errorCode>{fault[0]}</errorCode><errorDescription>{fault[1]}</errorDescription>"
                 "</UPnPError></detail></s:Fault></s:Body></s:Envelope>")


async def _serve_igd(args: argparse.Namespace) -> list[Any]:
    proto, ext_port, client, int_port = args.mapping.split(":")
    mapping = {"protocol": proto.upper(), "external_port": int(ext_port),
               "internal_client": client, "internal_port": int(int_port)}
    udn = f"uuid:{uuid.uuid5(uuid.NAMESPACE_URL, args.lan_addr)}"
    location = f"http://{args.lan_addr}:{IGD_HTTP_PORT}/rootDesc.xml"
    loop = asyncio.get_running_loop()

    class Ssdp(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # _SelectorDatagramTransport is not a DatagramTransport subclass in 3.11: cast.
            self.transport = cast(asyncio.DatagramTransport, transport)

        def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
            for reply in ssdp_reply(data, location, udn)[:8]:
                self.transport.sendto(reply, addr)

    ssdp, _ = await loop.create_datagram_endpoint(
        Ssdp, sock=_mcast_socket(args.iface, SSDP_GROUP, SSDP_PORT))

    async def http_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            if len(head) > MAX_HTTP_REQUEST:
                raise ValueError("oversized")
            lines = head.decode("latin-1").split("\r\n")
            method, path = (lines[0].split(" ") + ["", ""])[:2]
            hdrs = {k.strip().lower(): v.strip()
                    for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            length = min(int(hdrs.get("content-length", "0") or 0), MAX_HTTP_REQUEST)
            body = await asyncio.wait_for(reader.readexactly(length), 5) if length else b""
            ctype = 'text/xml; charset="utf-8"'
            if method == "GET" and path == "/rootDesc.xml":
                status, text = 200, igd_description(udn)
            elif method == "POST" and path == "/ctl/IPConn":
                action = hdrs.get("soapaction", "").strip('"').rsplit("#", 1)[-1]
                status, text = igd_control(action, body, args.external_addr, mapping)
            else:
                status, text, ctype = 404, "not found\n", "text/plain"
            payload = text.encode()
            reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}[status]
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(payload)}\r\nConnection: close\r\n"
                         "Server: Linux UPnP/1.1 camaudit-lab-igd/1.0\r\n\r\n".encode() + payload)
            await writer.drain()
        writer.close()

    http = await asyncio.start_server(http_client, args.lan_addr, IGD_HTTP_PORT)
    return [ssdp, http]


def router_advertisement(prefix: str, mac: str, lifetime: int = 1800) -> bytes:
    """An ICMPv6 Router Advertisement (RFC 4861 4.2) with one on-link, autonomous prefix; the
    kernel fills in the checksum on a raw ICMPv6 socket."""
    net = ipaddress.IPv6Network(prefix)
    ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, lifetime, 0, 0)
    pio = struct.pack("!BBBBIII", 3, 4, net.prefixlen, 0xC0, 86400, 14400, 0) + net.network_address.packed
    sll = struct.pack("!BB", 1, 1) + bytes.fromhex(mac.replace(":", ""))
    return ra + pio + sll


async def _serve_ra(args: argparse.Namespace) -> list[Any]:
    ifindex = socket.if_nametoindex(args.iface)
    mac = _read_text(f"/sys/class/net/{args.iface}/address").strip()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)  # RFC 4861: hop limit 255
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    packet = router_advertisement(args.prefix, mac)

    async def advertise() -> None:
        while True:
            with contextlib.suppress(OSError):
                sock.sendto(packet, ("ff02::1", 0, 0, ifindex))
            await asyncio.sleep(1.0)

    return [asyncio.get_running_loop().create_task(advertise()), sock]


async def _serve_canary(args: argparse.Namespace) -> list[Any]:
    """An "internet" listener for lab tests: TCP ports answer ``CANARY <port>`` and close; UDP
    ports echo what they get, prefixed with ``CANARY``. Bind specific addresses for UDP: a
    wildcard socket answers from the outgoing interface's address, which the router's conntrack
    does not match to the flow, so the echo would be dropped."""
    servers: list[Any] = []
    loop = asyncio.get_running_loop()
    for spec in args.ports.split(","):
        proto, _, port_s = spec.partition("/")
        port = int(port_s)
        if proto == "tcp":
            async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             port: int = port) -> None:
                writer.write(f"CANARY {port}\n".encode())
                with contextlib.suppress(Exception):
                    await writer.drain()
                writer.close()
            for addr in args.bind.split(","):
                servers.append(await asyncio.start_server(banner, addr, port))
        elif proto == "udp":
            class Echo(asyncio.DatagramProtocol):
                def connection_made(self, transport: asyncio.BaseTransport) -> None:
                    # _SelectorDatagramTransport is not a DatagramTransport subclass in 3.11: cast.
                    self.transport = cast(asyncio.DatagramTransport, transport)

                def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
                    self.transport.sendto(b"CANARY " + data[:512], addr)
            for addr in args.bind.split(","):
                t, _ = await loop.create_datagram_endpoint(Echo, local_addr=(addr, port))
                servers.append(t)
        else:
            raise SystemExit(f"bad port spec {spec!r}: tcp/N or udp/N")
    return servers


def _read_text(path: str) -> str:
    return Path(path).read_text(encoding="ascii")


def _write_text(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="ascii")


_SERVE = {"dns": _serve_dns, "igd": _serve_igd, "ra": _serve_ra, "canary": _serve_canary}


async def _run_helper(args: argparse.Namespace) -> None:
    keep = await _SERVE[args.role](args)  # referenced until the loop ends
    if args.ready_file:
        _write_text(args.ready_file, str(os.getpid()))
    deadline = time.monotonic() + args.max_seconds
    start = netns.proc_start_time(args.owner_pid) if args.owner_pid else None
    while time.monotonic() < deadline:
        if args.owner_pid and not netns.pid_alive(args.owner_pid, start):
            log.info("owner %d gone; exiting", args.owner_pid)
            return
        await asyncio.sleep(0.5)
    del keep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m camaudit.lab.scenarios",
                                     description="a lab egress helper service (lab namespaces only)")
    parser.add_argument("role", choices=sorted(_SERVE))
    parser.add_argument("--ready-file", default="")
    parser.add_argument("--owner-pid", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--answer", default=netns.INTERNET_LISTENER_ADDR)
    parser.add_argument("--log", default="/dev/null")
    parser.add_argument("--forward-zone", default="", help="dns: forward names under this zone to --answer")
    parser.add_argument("--iface", default="lan0")
    parser.add_argument("--prefix", default=netns.SEGMENT_PREFIX6)
    parser.add_argument("--lan-addr", default=netns.ROUTER_LAN_ADDR)
    parser.add_argument("--external-addr", default=netns.ROUTER_PUBLIC_ADDR)
    parser.add_argument("--mapping", default="TCP:8000:10.77.0.1:80")
    parser.add_argument("--ports", default="tcp/80,tcp/443,udp/8800,udp/53")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # These helpers bind wildcard addresses and (igd, ra) multicast: never in the host namespace.
    guard.assert_in_lab_namespace()
    asyncio.run(_run_helper(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
