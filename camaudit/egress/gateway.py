"""Inbound exposure and IPv6 on the segment: UPnP IGD (SSDP), NAT-PMP/PCP on the gateway, and
IPv6 router advertisements (reference/egress.md sections 1.2 and 1.4 rows 5 and 9).

Read-only: the IGD is asked only Get* actions (GetExternalIPAddress, GetGenericPortMappingEntry);
NAT-PMP only "what is my external address". SSDP and the router solicitation are multicast on
the sensor's own segment (TTL/hop limit 1 and 255 link-local); camaudit's lab guard applies.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import struct
import time
import urllib.parse
from typing import Any

import defusedxml.ElementTree as DET

from ..model import utc_now
from ..scope import AddressClass, classify
from . import wire
from .active import Timing, _udp_exchange
from .results import ALLOWED, BLOCKED, UNKNOWN, PathResult

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 65536
MAX_MAPPINGS = 32
_WAN_SERVICES = ("urn:schemas-upnp-org:service:WANIPConnection:", "urn:schemas-upnp-org:service:WANPPPConnection:")


def _sender_guard() -> None:
    # The lab's positive guard: with CAMAUDIT_REQUIRE_LAB_NETNS=1 multicast is sent only from
    # inside a lab namespace (tests, `camaudit lab exec`); a no-op in real audits.
    from ..lab.guard import check_sender_allowed

    check_sender_allowed()


def _local_host(url: str) -> str | None:
    """The host of ``url`` when it is an internal or local address (never fetch from outside)."""
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(ip) if classify(ip).cls in (AddressClass.INTERNAL, AddressClass.LOCAL, AddressClass.ANOMALY) else None


def _http(url: str, timeout: float, body: bytes | None = None, action: str | None = None) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    method = "POST" if body is not None else "GET"
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nUser-Agent: camaudit-egress\r\n"
    if body is not None:
        head += f'Content-Type: text/xml; charset="utf-8"\r\nSOAPAction: "{action}"\r\nContent-Length: {len(body)}\r\n'
    data = b""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))
        while len(data) < MAX_DESCRIPTION and (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            chunk = conn.recv(8192)
            if not chunk:
                break
            data += chunk
    head_b, _, payload = data.partition(b"\r\n\r\n")
    status = head_b.split(b"\r\n", 1)[0].split(b" ")
    code = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
    return code, payload[:MAX_DESCRIPTION]


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def wan_control_url(description: bytes, location: str) -> tuple[str, str] | None:
    """(control URL, service type) of the WANIPConnection/WANPPPConnection service, or None."""
    try:
        root = DET.fromstring(description)
    except Exception:  # defusedxml raises several types for hostile XML
        return None
    for service in root.iter():
        if _local(service.tag) != "service":
            continue
        fields = {_local(c.tag): (c.text or "").strip() for c in service}
        stype = fields.get("serviceType", "")
        if stype.startswith(_WAN_SERVICES) and fields.get("controlURL"):
            return urllib.parse.urljoin(location, fields["controlURL"]), stype
    return None


def soap_fields(body: bytes) -> dict[str, str] | None:
    """Leaf values of a SOAP response body; None for a fault or garbage."""
    try:
        root = DET.fromstring(body)
    except Exception:
        return None
    leaves = {_local(el.tag): (el.text or "").strip()[:256] for el in root.iter() if len(el) == 0}
    if "faultcode" in leaves or "errorCode" in leaves:
        return None
    return leaves


def _soap(control: str, stype: str, action: str, args: str, timeout: float) -> dict[str, str] | None:
    body = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            f'<u:{action} xmlns:u="{stype}">{args}</u:{action}></s:Body></s:Envelope>').encode()
    try:
        code, payload = _http(control, timeout, body, f"{stype}#{action}")
    except OSError:
        return None
    return soap_fields(payload) if code == 200 else None


def read_igd(location: str, timeout: float) -> dict[str, Any]:
    """What an IGD says about itself: external address and port mappings (Get* actions only)."""
    info: dict[str, Any] = {"location": location, "mappings": []}
    try:
        code, desc = _http(location, timeout)
    except OSError as exc:
        info["error"] = f"description not readable: {exc}"
        return info
    found = wan_control_url(desc, location) if code == 200 else None
    if found is None:
        info["error"] = f"no WAN connection service in the description (HTTP {code})"
        return info
    control, stype = found
    ext = _soap(control, stype, "GetExternalIPAddress", "", timeout)
    info["external_address"] = (ext or {}).get("NewExternalIPAddress")
    for index in range(MAX_MAPPINGS):
        entry = _soap(control, stype, "GetGenericPortMappingEntry",
                      f"<NewPortMappingIndex>{index}</NewPortMappingIndex>", timeout)
        if entry is None:
            break
        info["mappings"].append({
            "protocol": entry.get("NewProtocol"), "external_port": entry.get("NewExternalPort"),
            "internal_client": entry.get("NewInternalClient"), "internal_port": entry.get("NewInternalPort"),
            "enabled": entry.get("NewEnabled"), "description": entry.get("NewPortMappingDescription"),
            "remote_host": entry.get("NewRemoteHost"),
        })
    return info


def probe_upnp(gateway: str | None, timing: Timing, wait: float) -> PathResult:
    """SSDP search for an InternetGatewayDevice (multicast on the segment, and unicast to the
    gateway), then read each IGD's mappings. An IGD on the segment is an inbound path."""
    started = utc_now()
    search = wire.ssdp_search()
    try:
        _sender_guard()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:
        return PathResult(path="upnp", result=UNKNOWN, basis="error", detail=f"cannot search for an IGD: {exc}")
    replies: dict[str, dict[str, str]] = {}
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        targets = [(wire.SSDP_GROUP, wire.SSDP_PORT)] + ([(gateway, wire.SSDP_PORT)] if gateway else [])
        for target in targets:
            with contextlib.suppress(OSError):
                sock.sendto(search, target)
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0 and len(replies) < 16:
            sock.settimeout(left)
            try:
                data, peer = sock.recvfrom(2048)
            except (TimeoutError, OSError):
                break
            headers = wire.parse_ssdp_response(data)
            if headers and headers.get("LOCATION") and "internetgatewaydevice" in headers.get("ST", "").lower():
                replies.setdefault(headers["LOCATION"], {**headers, "_peer": peer[0]})
    finally:
        sock.close()
    base: dict[str, Any] = {"proto": "udp", "dst": wire.SSDP_GROUP, "port": wire.SSDP_PORT, "started_at": started,
            "sent": f"SSDP M-SEARCH ST: {wire.IGD_TARGET}"}
    if not replies:
        return PathResult(path="upnp", result=BLOCKED, basis="absent", conclusive=True, ended_at=utc_now(),
                          detail=f"no UPnP IGD answered an SSDP search in {wait:g} s", **base)
    igds = []
    for location, headers in list(replies.items())[:4]:
        if _local_host(location) is None:
            igds.append({"location": location, "peer": headers["_peer"], "error": "not fetched: not a local address"})
            continue
        info = read_igd(location, timing.timeout)
        info.update(peer=headers["_peer"], server=headers.get("SERVER"))
        igds.append(info)
    mappings = [m for igd in igds for m in igd.get("mappings", [])]
    detail = (f"UPnP IGD on the segment at {', '.join(i['location'] for i in igds)}"
              + (f" (external address {igds[0].get('external_address')})" if igds[0].get("external_address") else "")
              + f"; {len(mappings)} port mapping(s)")
    return PathResult(path="upnp", result=ALLOWED, basis="echo", ended_at=utc_now(), detail=detail,
                      received=f"{len(replies)} SSDP answer(s)", extra={"igds": igds, "mappings": mappings},
                      **base)


def probe_natpmp(gateway: str | None, timing: Timing) -> PathResult:
    """NAT-PMP "external address" request to the gateway (RFC 6886 3.2); any NAT-PMP or PCP
    answer shows a port-mapping service that devices could use to open inbound access."""
    if not gateway:
        return PathResult(path="natpmp", result=BLOCKED, basis="absent", conclusive=True,
                          detail="no default gateway on this sensor to ask")
    started = utc_now()
    data, basis, _conclusive, detail = _udp_exchange(
        gateway, wire.NATPMP_PORT, wire.natpmp_external_address_request(), timing,
        lambda d: wire.parse_natpmp_reply(d) is not None)
    base: dict[str, Any] = {"proto": "udp", "dst": gateway, "port": wire.NATPMP_PORT, "started_at": started,
            "sent": "NAT-PMP external address request"}
    reply = wire.parse_natpmp_reply(data) if data else None
    if reply is not None:
        what = f"{reply.protocol} answered with result code {reply.result_code}"
        if reply.external_address:
            what += f", external address {reply.external_address}"
        return PathResult(path="natpmp", result=ALLOWED, basis="echo", ended_at=utc_now(), received=what,
                          detail=f"a port-mapping service ({reply.protocol}) answers on the gateway {gateway}",
                          extra={"protocol": reply.protocol, "result_code": reply.result_code,
                                 "external_address": reply.external_address}, **base)
    why = "the gateway refused it (port unreachable)" if basis == "reset" else f"no answer ({detail})"
    return PathResult(path="natpmp", result=BLOCKED, basis="absent", conclusive=True, ended_at=utc_now(),
                      detail=f"no NAT-PMP/PCP service on {gateway}: {why}", **base)


# -- IPv6 router advertisements (RFC 4861 section 4.2) ---------------------------------------------


def parse_router_advertisement(data: bytes) -> dict[str, Any] | None:
    """Router lifetime and prefixes of an RA (ICMPv6 type 134, as a raw socket returns it)."""
    if len(data) < 16 or data[0] != 134:
        return None
    lifetime = struct.unpack("!H", data[6:8])[0]
    prefixes: list[str] = []
    pos = 16
    while pos + 2 <= len(data) and len(prefixes) < 16:
        otype, olen = data[pos], data[pos + 1] * 8
        if olen == 0 or pos + olen > len(data):
            break
        if otype == 3 and olen == 32:
            plen = data[pos + 2]
            prefix = ipaddress.IPv6Address(data[pos + 16 : pos + 32])
            with contextlib.suppress(ValueError):
                prefixes.append(str(ipaddress.IPv6Network(f"{prefix}/{plen}", strict=False)))
        pos += olen
    return {"router_lifetime": lifetime, "prefixes": prefixes}


def is_global_prefix(prefix: str) -> bool:
    try:
        return ipaddress.IPv6Network(prefix).subnet_of(ipaddress.IPv6Network("2000::/3"))
    except (ValueError, TypeError):
        return False


def listen_router_advertisements(interfaces: list[str], wait: float) -> list[dict[str, Any]] | None:
    """Send a router solicitation on each interface and collect RAs for ``wait`` seconds.
    None when this cannot be done (not root, or IPv6 off)."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    except OSError:
        return None
    found: list[dict[str, Any]] = []
    try:
        _sender_guard()
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        solicitation = struct.pack("!BBHI", 133, 0, 0, 0)
        for iface in interfaces:
            with contextlib.suppress(OSError):
                sock.sendto(solicitation, ("ff02::2", 0, 0, socket.if_nametoindex(iface)))
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0 and len(found) < 8:
            sock.settimeout(left)
            try:
                data, peer = sock.recvfrom(2048)
            except (TimeoutError, OSError):
                break
            ra = parse_router_advertisement(data)
            if ra is not None:
                ra["router"] = peer[0]
                found.append(ra)
    finally:
        sock.close()
    return found


def no_ipv6(detail: str, basis: str = "absent") -> PathResult:
    result = BLOCKED if basis == "absent" else UNKNOWN
    return PathResult(path="ipv6/ra", result=result, basis=basis, conclusive=basis == "absent", detail=detail)
