"""Hikvision ISAPI replies: pure parsers, bytes in, plain data (or None) out.

Facts: reference/egress.md section 2.2 (endpoints and the fields that mean a cloud path or a
registration), fingerprinting.md section 4.1 (``DeviceInfo`` in the ``hikvision.com/ver20`` or
``isapi.org/ver20`` namespace; the ``ResponseStatus`` error envelope). Elements are matched by
local name, because firmware uses either namespace. Every reply is untrusted: defusedxml, a size
cap, and None instead of an exception on anything malformed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405  (only for the Element type; parsing is defusedxml)
from dataclasses import dataclass, field
from typing import Any

from defusedxml import ElementTree as SafeET

#: ISAPI documents are a few KiB; anything far larger is not a reply we understand.
MAX_DOCUMENT_BYTES = 512 * 1024
ISAPI_NAMESPACES = ("http://www.hikvision.com/ver20/XMLSchema", "http://www.isapi.org/ver20/XMLSchema")

#: DeviceInfo fields kept for identification (fingerprinting.md section 4.1, HIKNEXT fixtures).
DEVICE_INFO_FIELDS = (
    "deviceName",
    "model",
    "serialNumber",
    "macAddress",
    "firmwareVersion",
    "firmwareReleasedDate",
    "deviceType",
    "manufacturer",
    "OEMCode",
)

_TRUE = frozenset({"true", "1", "yes", "on", "enable", "enabled"})
# Hikvision firmware spells false as "flase" in places (fingerprinting.md section 1.1).
_FALSE = frozenset({"false", "flase", "0", "no", "off", "disable", "disabled"})


@dataclass(slots=True)
class NetworkSettings:
    gateways: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    #: per interface: addressing type, IPv6 addressing type (``ra`` = router advertisements)
    interfaces: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class PlatformStatus:
    """A cloud or platform link the device reports on (EZVIZ/Hik-Connect, Ehome, upgrade server)."""

    enabled: bool | None = None
    registered: bool | None = None
    bound: bool | None = None
    servers: list[str] = field(default_factory=list)


def parse_document(data: bytes | str) -> ET.Element | None:
    """Parse one XML reply safely; None when it is too big, malformed or dangerous."""
    if len(data) > MAX_DOCUMENT_BYTES:
        return None
    try:
        root = SafeET.fromstring(data)
    except Exception:  # noqa: BLE001  (ParseError, DTD/entity refusals, encoding errors: all "not ISAPI")
        return None
    return root if isinstance(root, ET.Element) else None


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def is_isapi(root: ET.Element) -> bool:
    """True when the root element is in one of the ISAPI namespaces."""
    return any(root.tag.startswith("{" + ns + "}") for ns in ISAPI_NAMESPACES)


def parse_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def parse_response_status(data: bytes | str) -> dict[str, str] | None:
    """The ``ResponseStatus`` envelope ISAPI returns on errors (statusCode, statusString, subStatusCode)."""
    root = parse_document(data)
    if root is None or local(root.tag) != "ResponseStatus":
        return None
    return {k: v for k in ("statusCode", "statusString", "subStatusCode") if (v := _text(root, k))}


def parse_device_info(data: bytes | str) -> dict[str, str] | None:
    """``/ISAPI/System/deviceInfo``: the identifying fields present, or None if not a DeviceInfo."""
    root = parse_document(data)
    if root is None or local(root.tag) != "DeviceInfo":
        return None
    return {name: value for name in DEVICE_INFO_FIELDS if (value := _text(root, name))}


def parse_network_interfaces(data: bytes | str) -> NetworkSettings | None:
    """``/ISAPI/System/Network/interfaces``: gateways, DNS servers and addressing per interface."""
    root = parse_document(data)
    if root is None or local(root.tag) not in {"NetworkInterfaceList", "NetworkInterface"}:
        return None
    interfaces = [root] if local(root.tag) == "NetworkInterface" else _children(root, "NetworkInterface")
    result = NetworkSettings()
    for iface in interfaces:
        for ip in _descendants(iface, "IPAddress"):
            for gw in _children(ip, "DefaultGateway"):
                _extend(result.gateways, _addresses(gw))
            for name in ("PrimaryDNS", "SecondaryDNS"):
                for dns in _children(ip, name):
                    _extend(result.dns, _addresses(dns))
            summary = {
                "id": _text(iface, "id"),
                "addressingType": _text(ip, "addressingType"),
                "ipAddress": _text(ip, "ipAddress"),
                "ipV6AddressingType": _text(ip, "ipV6AddressingType"),
            }
            result.interfaces.append({k: v for k, v in summary.items() if v})
        if _descendants(iface, "Wireless"):
            result.interfaces.append({"id": _text(iface, "id") or "", "wireless": "present"})
    return result


def parse_platform(data: bytes | str, root_name: str) -> PlatformStatus | None:
    """``/ISAPI/System/Network/EZVIZ`` (root ``EZVIZ``) or ``.../Ehome`` (root ``Ehome``).

    ``registerStatus=true`` means the device reached and registered with the platform: conclusive
    egress (egress.md section 1.4 row 4). ``bindStatus=bind``: bound to a cloud account.
    """
    root = parse_document(data)
    if root is None or local(root.tag).lower() != root_name.lower():
        return None
    status = PlatformStatus(
        enabled=parse_bool(_text(root, "enabled")),
        registered=parse_bool(_text(root, "registerStatus")),
    )
    bind = _text(root, "bindStatus")
    if bind is not None:
        status.bound = {"bind": True, "unbind": False}.get(bind.strip().lower(), parse_bool(bind))
    for server in _children(root, "serverAddress"):
        _extend(status.servers, _addresses(server))
    _extend(status.servers, [a for a in (_text(root, "hostName"), _text(root, "ipAddress")) if a])
    return status


def parse_online_upgrade_server(data: bytes | str) -> PlatformStatus | None:
    """``/ISAPI/System/onlineUpgrade/server``: ``connectStatus=true`` = connected to the upgrade server."""
    root = parse_document(data)
    if root is None:
        return None
    value = _text(root, "connectStatus")
    if value is None:
        return None
    return PlatformStatus(registered=parse_bool(value))


def parse_ntp_servers(data: bytes | str) -> list[str] | None:
    """``/ISAPI/System/time/ntpServers``: host names or addresses of the configured servers."""
    root = parse_document(data)
    if root is None or local(root.tag) not in {"NTPServerList", "NTPServer"}:
        return None
    servers = [root] if local(root.tag) == "NTPServer" else _children(root, "NTPServer")
    out: list[str] = []
    for server in servers:
        kind = (_text(server, "addressingFormatType") or "").lower()
        preferred = {"hostname": "hostName", "ipaddress": "ipAddress"}.get(kind)
        values = [_text(server, preferred)] if preferred else []
        values += [_text(server, "hostName"), _text(server, "ipAddress"), _text(server, "ipv6Address")]
        first = next((v for v in values if v), None)
        if first:
            _extend(out, [first])
    return out


def parse_ddns(data: bytes | str) -> list[dict[str, Any]] | None:
    """``/ISAPI/System/Network/DDNS``: per entry enabled, provider, server address, domain."""
    root = parse_document(data)
    if root is None or local(root.tag) not in {"DDNSList", "DDNS"}:
        return None
    entries = [root] if local(root.tag) == "DDNS" else _children(root, "DDNS")
    out = []
    for entry in entries:
        servers: list[str] = []
        for server in _children(entry, "serverAddress"):
            _extend(servers, _addresses(server))
        item: dict[str, Any] = {
            "enabled": parse_bool(_text(entry, "enabled")),
            "provider": _text(entry, "provider"),
            "servers": servers,
            "domain": _text(entry, "domain"),
        }
        out.append({k: v for k, v in item.items() if v not in (None, [])})
    return out


def parse_upnp(data: bytes | str) -> bool | None:
    """``/ISAPI/System/Network/UPnP``: whether UPnP is enabled."""
    root = parse_document(data)
    if root is None or local(root.tag) != "UPnP":
        return None
    return parse_bool(_text(root, "enabled"))


def parse_upnp_port_status(data: bytes | str) -> list[dict[str, str]] | None:
    """``/ISAPI/System/Network/UPnP/ports/status``: one record per port, fields as reported.

    The shape of this reply is not in our references beyond "mapping status per port", so each
    record is every leaf field of a repeated element, kept verbatim for the verdict and report.
    """
    root = parse_document(data)
    if root is None:
        return None
    records = []
    for element in root.iter():
        leaves = [child for child in element if len(child) == 0]
        if leaves and len(leaves) == len(element) and element is not root:
            records.append({local(c.tag): (c.text or "").strip()[:256] for c in leaves})
    return records[:256]


def _text(element: ET.Element, name: str | None) -> str | None:
    if name is None:
        return None
    for child in element:
        if local(child.tag) == name:
            value = (child.text or "").strip()
            return value[:1024] if value else None
    return None


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if local(child.tag) == name]


def _descendants(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element.iter() if local(child.tag) == name and child is not element]


def _addresses(element: ET.Element) -> list[str]:
    """Address leaves inside a ``DefaultGateway``/``PrimaryDNS``/``serverAddress`` element."""
    values = [
        (child.text or "").strip()
        for child in element.iter()
        if local(child.tag) in {"ipAddress", "ipv6Address", "ipV6Address", "hostName"}
    ]
    return [v[:255] for v in values if v and v not in {"0.0.0.0", "::"}]  # noqa: S104


def _extend(target: list[str], values: list[str]) -> None:
    for value in values:
        if value not in target:
            target.append(value)
