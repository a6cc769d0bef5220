"""``egress pcap``: passive evidence from a capture (reference/egress.md sections 3.2 and 4).

The capture is streamed with scapy's raw reader (one frame at a time, never a packet list), and
each frame's headers are parsed here with struct, so memory stays flat on a capture of any size:
the only state is the bounded flow table and the bounded table of pending DNS queries.

For every device address: flows to and from non-internal addresses (camaudit's address-class
table, never ``ipaddress.is_private``), each marked ``attempted`` (only the device spoke, or the
far side answered only with a RST or an ICMP error) or ``established`` (the far side answered:
a SYN/ACK or data, a UDP datagram back, an echo reply), and DNS queries for vendor-cloud names
(signatures/egress/cloud_endpoints.yaml) with what came back. A one-way SPAN makes established
flows look attempted: the result says which directions were seen.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import logging
import socket
import struct
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DependencyError, InputError
from ..scope import AddressClass, IPNetwork, classify
from . import dns
from .results import DnsLookup, Flow, PassiveResult

log = logging.getLogger(__name__)

MAX_FLOWS = 100_000
MAX_PENDING_DNS = 10_000
MAX_LOOKUPS = 10_000
_NON_INTERNAL = {AddressClass.EXTERNAL: "external", AddressClass.AMBIGUOUS: "ambiguous",
                 AddressClass.ANOMALY: "anomaly"}

# Link types (tcpdump.org linktypes)
DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_RAW_ALT, DLT_LINUX_SLL, DLT_IPV4, DLT_IPV6, DLT_LINUX_SLL2 = 0, 1, 101, 12, 113, 228, 229, 276


@dataclass(frozen=True, slots=True)
class Packet:
    src: str
    dst: str
    proto: str  # tcp | udp | icmp | other
    sport: int | None
    dport: int | None
    flags: int  # TCP flags, or ICMP type for ICMP
    payload: bytes


def _ip(data: bytes) -> Packet | None:
    """An IPv4 or IPv6 packet's addresses, transport ports, TCP flags and payload."""
    if not data:
        return None
    version = data[0] >> 4
    if version == 4:
        if len(data) < 20:
            return None
        ihl = (data[0] & 0x0F) * 4
        if ihl < 20 or len(data) < ihl:
            return None
        if struct.unpack("!H", data[6:8])[0] & 0x1FFF:  # a non-first fragment: no transport header
            return None
        proto = data[9]
        src, dst = socket.inet_ntop(socket.AF_INET, data[12:16]), socket.inet_ntop(socket.AF_INET, data[16:20])
        body = data[ihl:]
    elif version == 6:
        if len(data) < 40:
            return None
        proto = data[6]
        src, dst = socket.inet_ntop(socket.AF_INET6, data[8:24]), socket.inet_ntop(socket.AF_INET6, data[24:40])
        body = data[40:]
        for _ in range(8):  # skip hop-by-hop, routing, destination options
            if proto in (0, 43, 60) and len(body) >= 2:
                proto, body = body[0], body[(body[1] + 1) * 8 :]
            else:
                break
    else:
        return None
    if proto == 6 and len(body) >= 20:
        sport, dport = struct.unpack("!HH", body[:4])
        offset = (body[12] >> 4) * 4
        return Packet(src, dst, "tcp", sport, dport, body[13], body[offset:] if offset >= 20 else b"")
    if proto == 17 and len(body) >= 8:
        sport, dport = struct.unpack("!HH", body[:4])
        return Packet(src, dst, "udp", sport, dport, 0, body[8:])
    if proto in (1, 58) and len(body) >= 4:
        return Packet(src, dst, "icmp", None, None, body[0], body[4:])
    return Packet(src, dst, "other", None, None, 0, b"")


def parse_frame(data: bytes, linktype: int) -> Packet | None:
    """The IP packet inside one captured frame, or None (ARP, truncated, unknown link type)."""
    if linktype == DLT_EN10MB:
        if len(data) < 14:
            return None
        etype, pos = struct.unpack("!H", data[12:14])[0], 14
        for _ in range(2):  # 802.1Q / 802.1ad tags
            if etype in (0x8100, 0x88A8) and len(data) >= pos + 4:
                etype, pos = struct.unpack("!H", data[pos + 2 : pos + 4])[0], pos + 4
        return _ip(data[pos:]) if etype in (0x0800, 0x86DD) else None
    if linktype in (DLT_RAW, DLT_RAW_ALT, DLT_IPV4, DLT_IPV6):
        return _ip(data)
    if linktype == DLT_LINUX_SLL:
        return _ip(data[16:]) if len(data) > 16 and data[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == DLT_LINUX_SLL2:
        return _ip(data[20:]) if len(data) > 20 and data[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == DLT_NULL:
        return _ip(data[4:]) if len(data) > 4 else None
    return None


class CloudNames:
    """Vendor-cloud DNS names; ``*.x`` matches x and every name under it."""

    def __init__(self, entries: Iterable[dict[str, Any]]) -> None:
        self.exact: dict[str, tuple[str, str]] = {}
        self.suffixes: list[tuple[str, str, str]] = []
        for e in entries:
            name = str(e.get("name", "")).lower().strip(".")
            vendor = str(e.get("vendor", ""))
            if name.startswith("*."):
                self.suffixes.append((name[2:], name, vendor))
            elif name:
                self.exact[name] = (name, vendor)

    def match(self, qname: str) -> tuple[str, str] | None:
        q = qname.lower().strip(".")
        if q in self.exact:
            return self.exact[q]
        for suffix, pattern, vendor in self.suffixes:
            if q == suffix or q.endswith("." + suffix):
                return pattern, vendor
        return None


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="microseconds")


class Analyzer:
    """Feeds on frames; keeps only bounded tables. ``result()`` gives the PassiveResult."""

    def __init__(self, devices: Sequence[IPNetwork], names: CloudNames, source: str) -> None:
        self.devices = list(devices)
        self.names = names
        self.source = source
        self.packets = 0
        self.first: float | None = None
        self.last: float | None = None
        self.flows: dict[tuple[str, str, str, int | None], dict[str, Any]] = {}
        self.dropped_flows = 0
        self.pending: OrderedDict[tuple[str, str, int], DnsLookup] = OrderedDict()
        self.lookups: list[DnsLookup] = []
        self.directions = {"out": 0, "in": 0}
        self._class_cache: dict[str, str | None] = {}
        self._dev_cache: dict[str, bool] = {}

    def _is_device(self, addr: str) -> bool:
        hit = self._dev_cache.get(addr)
        if hit is None:
            try:
                ip = ipaddress.ip_address(addr)
                hit = any(ip.version == n.version and ip in n for n in self.devices)
            except ValueError:
                hit = False
            if len(self._dev_cache) < 65536:
                self._dev_cache[addr] = hit
        return hit

    def _remote_class(self, addr: str) -> str | None:
        if addr in self._class_cache:
            return self._class_cache[addr]
        try:
            cls: str | None = _NON_INTERNAL.get(classify(addr).cls)
        except ValueError:
            cls = None
        if len(self._class_cache) < 65536:
            self._class_cache[addr] = cls
        return cls

    def feed(self, frame: bytes, linktype: int, ts: float) -> None:
        self.packets += 1
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)
        pkt = parse_frame(frame, linktype)
        if pkt is None:
            return
        src_dev, dst_dev = self._is_device(pkt.src), self._is_device(pkt.dst)
        if not src_dev and not dst_dev:
            return
        if pkt.proto in ("udp", "tcp"):
            if src_dev and pkt.dport == 53:
                self._dns_out(pkt, ts)
            if dst_dev and pkt.sport == 53:
                self._dns_in(pkt)
        if src_dev and (cls := self._remote_class(pkt.dst)) is not None:
            self._flow(pkt.src, pkt.dst, pkt.proto, pkt.dport, cls, ts, outbound=True, pkt=pkt)
        elif dst_dev and (cls := self._remote_class(pkt.src)) is not None:
            self._flow(pkt.dst, pkt.src, pkt.proto, pkt.sport, cls, ts, outbound=False, pkt=pkt)

    def _flow(self, device: str, remote: str, proto: str, port: int | None, cls: str, ts: float, *,
              outbound: bool, pkt: Packet) -> None:
        key = (device, remote, proto, port)
        flow = self.flows.get(key)
        if flow is None:
            if len(self.flows) >= MAX_FLOWS:
                self.dropped_flows += 1
                return
            flow = {"first": ts, "last": ts, "out": 0, "in": 0, "answered": False, "inbound_first": not outbound,
                    "class": cls}
            self.flows[key] = flow
        flow["last"] = max(flow["last"], ts)
        self.directions["out" if outbound else "in"] += 1
        if outbound:
            flow["out"] += 1
            return
        flow["in"] += 1
        # An answer from the far side: a SYN/ACK or data (not a bare RST), any UDP back, an echo reply.
        if proto == "tcp":
            syn_ack = pkt.flags & 0x12 == 0x12
            if not pkt.flags & 0x04 and (syn_ack or pkt.payload):
                flow["answered"] = True
        elif proto == "udp" or (proto == "icmp" and pkt.flags in (0, 129)):
            flow["answered"] = True

    def _dns_out(self, pkt: Packet, ts: float) -> None:
        payload = pkt.payload[2:] if pkt.proto == "tcp" else pkt.payload
        q = dns.parse_query(payload)
        if q is None:
            return
        match = self.names.match(q.name)
        if match is None:
            return
        lookup = DnsLookup(device=pkt.src, resolver=pkt.dst, qname=q.name, cloud=match[0], vendor=match[1], at=_iso(ts))
        if len(self.lookups) < MAX_LOOKUPS:
            self.lookups.append(lookup)
        self.pending[(pkt.src, pkt.dst, q.qid)] = lookup
        while len(self.pending) > MAX_PENDING_DNS:
            self.pending.popitem(last=False)

    def _dns_in(self, pkt: Packet) -> None:
        payload = pkt.payload[2:] if pkt.proto == "tcp" else pkt.payload
        resp = dns.parse_response(payload)
        if resp is None:
            return
        lookup = self.pending.pop((pkt.dst, pkt.src, resp.qid), None)
        if lookup is None:
            return
        lookup.answered = True
        for rtype, value in resp.answers:
            if rtype in (dns.QTYPE_A, dns.QTYPE_AAAA) and self._remote_class(value) == "external":
                if value not in lookup.external_answers and len(lookup.external_answers) < 8:
                    lookup.external_answers.append(value)

    def result(self) -> PassiveResult:
        flows = []
        for (device, remote, proto, port), f in self.flows.items():
            if f["inbound_first"] and not f["out"]:
                state = "inbound-only"
            else:
                state = "established" if f["answered"] and f["out"] else "attempted"
            flows.append(Flow(device=device, remote=remote, proto=proto, port=port, state=state,
                              first_seen=_iso(f["first"]), last_seen=_iso(f["last"]), packets_out=f["out"],
                              packets_in=f["in"], remote_class=f["class"]))
        flows.sort(key=lambda f: (f.device, f.first_seen))
        notes = []
        if self.dropped_flows:
            notes.append(f"flow table full: {self.dropped_flows} packets of further flows were not tracked")
        if self.directions["out"] and not self.directions["in"]:
            notes.append("only device-to-outside packets were seen: a one-way capture makes established flows "
                         "look attempted")
        return PassiveResult(
            source=self.source, start=_iso(self.first) if self.first is not None else None,
            end=_iso(self.last) if self.last is not None else None, packets=self.packets,
            devices=[str(n) for n in self.devices], flows=flows, lookups=self.lookups, notes=notes,
        )


def _names() -> CloudNames:
    from .check import cloud_endpoints

    return CloudNames(cloud_endpoints().get("names") or [])


def analyse_pcap(path: str | Path, devices: Sequence[IPNetwork], *, names: CloudNames | None = None) -> PassiveResult:
    """Stream a pcap or pcapng file and return its passive evidence."""
    try:
        from scapy.error import Scapy_Exception
        from scapy.utils import RawPcapReader
    except ImportError as exc:  # pragma: no cover - scapy is a core dependency
        raise DependencyError("reading captures needs scapy (pip install scapy)") from exc
    path = Path(path)
    analyzer = Analyzer(devices, names or _names(), str(path))
    try:
        reader = RawPcapReader(str(path))
    except (OSError, Scapy_Exception, EOFError, ValueError) as exc:
        raise InputError(f"{path} is not a readable pcap or pcapng capture: {exc}") from exc
    try:
        nano = bool(getattr(reader, "nano", False))
        base_linktype = int(getattr(reader, "linktype", DLT_EN10MB))
        for data, meta in reader:
            m: Any = meta
            if hasattr(m, "sec"):
                ts = m.sec + m.usec / (1e9 if nano else 1e6)
                linktype = base_linktype
            else:  # pcapng
                ts = ((m.tshigh << 32) | m.tslow) / float(m.tsresol or 1_000_000)
                linktype = int(m.linktype)
            analyzer.feed(data, linktype, ts)
    except Scapy_Exception as exc:
        raise InputError(f"{path}: the capture is damaged after {analyzer.packets} packets: {exc}") from exc
    finally:
        reader.close()
    return analyzer.result()


def capture_live(iface: str, duration: float, devices: Sequence[IPNetwork], *,
                 names: CloudNames | None = None) -> PassiveResult:
    """Capture on ``iface`` for ``duration`` seconds (root) and analyse as it goes, storing nothing."""
    import os

    if os.geteuid() != 0:
        raise DependencyError("a live capture needs root (or capture with tcpdump and give the file)")
    from scapy.sendrecv import sniff

    analyzer = Analyzer(devices, names or _names(), f"live:{iface}")

    def feed(p: Any) -> None:
        analyzer.feed(bytes(p), DLT_EN10MB if p.__class__.__name__ == "Ether" else DLT_RAW, float(p.time))

    try:
        sniff(iface=iface, timeout=duration, store=False, prn=feed)
    except OSError as exc:
        raise InputError(f"cannot capture on {iface}: {exc.strerror or exc}") from exc
    return analyzer.result()
