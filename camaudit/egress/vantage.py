"""Facts about the sensor this check runs on: address, gateway, resolvers, proxy, IPv6 state.

Recorded with every run as the placement control (reference/egress.md section 1.3): a verdict is
only as good as the match between the sensor's network position and the cameras'. Read from the
kernel (/proc), /etc/resolv.conf and the environment; nothing here sends a packet.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROC_ROUTE = Path("/proc/net/route")
PROC_IF_INET6 = Path("/proc/net/if_inet6")
PROC_IPV6_ROUTE = Path("/proc/net/ipv6_route")
RESOLV_CONF = Path("/etc/resolv.conf")


@dataclass(slots=True)
class Vantage:
    hostname: str
    interface: str | None = None
    addresses: list[str] = field(default_factory=list)
    network: str | None = None  # the interface's network (CIDR): the segment by default
    mac: str | None = None
    gateway: str | None = None
    resolvers: list[str] = field(default_factory=list)
    ipv6_enabled: bool = False
    ipv6_global: list[str] = field(default_factory=list)
    ipv6_default_route: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname, "interface": self.interface, "addresses": self.addresses,
            "network": self.network, "mac": self.mac, "gateway": self.gateway, "resolvers": self.resolvers,
            "ipv6_enabled": self.ipv6_enabled, "ipv6_global": self.ipv6_global,
            "ipv6_default_route": self.ipv6_default_route,
        }  # fmt: skip


def default_gateway_v4(text: str | None = None) -> tuple[str, str] | None:
    """(gateway, interface) of the IPv4 default route, from /proc/net/route."""
    if text is None:
        try:
            text = PROC_ROUTE.read_text(encoding="ascii")
        except OSError:
            return None
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or cols[1] != "00000000" or cols[7] != "00000000":
            continue
        try:
            gw = socket.inet_ntoa(int(cols[2], 16).to_bytes(4, "little"))
        except (ValueError, OSError):
            continue
        return gw, cols[0]
    return None


def resolvers_from(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            with contextlib.suppress(ValueError):
                found.append(str(ipaddress.ip_address(parts[1].split("%", 1)[0])))
    return found[:3]


def system_resolvers() -> list[str]:
    try:
        return resolvers_from(RESOLV_CONF.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []


def ipv6_global_addresses(text: str | None = None) -> list[tuple[str, str]]:
    """(address, interface) of every global-scope IPv6 address in 2000::/3."""
    if text is None:
        try:
            text = PROC_IF_INET6.read_text(encoding="ascii")
        except OSError:
            return []
    out = []
    for line in text.splitlines():
        cols = line.split()
        if len(cols) < 6 or cols[3] != "00":
            continue
        try:
            addr = ipaddress.IPv6Address(int(cols[0], 16))
        except ValueError:
            continue
        if addr in ipaddress.IPv6Network("2000::/3"):
            out.append((str(addr), cols[5]))
    return out


def ipv6_default_route(text: str | None = None) -> bool:
    if text is None:
        try:
            text = PROC_IPV6_ROUTE.read_text(encoding="ascii")
        except OSError:
            return False
    for line in text.splitlines():
        cols = line.split()
        if len(cols) >= 10 and cols[0] == "0" * 32 and cols[1] == "00" and cols[4] != "0" * 32 and cols[9] != "lo":
            return True
    return False


def ipv6_enabled_interfaces() -> list[str]:
    """Non-loopback interfaces on which IPv6 is not disabled."""
    base = Path("/proc/sys/net/ipv6/conf")
    out = []
    with contextlib.suppress(OSError):
        for entry in sorted(base.iterdir()):
            if entry.name in ("all", "default", "lo"):
                continue
            with contextlib.suppress(OSError):
                if (entry / "disable_ipv6").read_text().strip() == "0":
                    out.append(entry.name)
    return out


def source_address_for(dst: str) -> str | None:
    """The address this host would send from towards ``dst`` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.connect((dst, 9))
        return str(sock.getsockname()[0])
    except OSError:
        return None
    finally:
        sock.close()


def _interface_of(address: str) -> tuple[str | None, str | None]:
    """(interface, network CIDR) holding ``address``, from ``ip -j addr``."""
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=5, check=False).stdout
        data = json.loads(out or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None, None
    for link in data if isinstance(data, list) else []:
        for info in link.get("addr_info") or []:
            if info.get("local") == address:
                net = ipaddress.ip_network(f"{address}/{info.get('prefixlen', 32)}", strict=False)
                return str(link.get("ifname")), str(net)
    return None, None


def gather(listener: str | None, *, resolvers: list[str] | None = None, gateway: str | None = None) -> Vantage:
    """Everything this module knows about the sensor, towards ``listener``."""
    vantage = Vantage(hostname=socket.gethostname())
    route = default_gateway_v4()
    vantage.gateway = gateway or (route[0] if route else None)
    vantage.resolvers = list(resolvers) if resolvers is not None else system_resolvers()
    src = source_address_for(listener) if listener else None
    if src is None and vantage.gateway:
        src = source_address_for(vantage.gateway)
    if src:
        vantage.addresses.append(src)
        vantage.interface, vantage.network = _interface_of(src)
    elif route:
        vantage.interface = route[1]
    if vantage.interface:
        with contextlib.suppress(OSError):
            vantage.mac = Path(f"/sys/class/net/{vantage.interface}/address").read_text().strip()
    enabled = ipv6_enabled_interfaces()
    vantage.ipv6_enabled = bool(enabled)
    vantage.ipv6_global = [a for a, _ in ipv6_global_addresses()]
    vantage.ipv6_default_route = ipv6_default_route()
    return vantage


def proxy_from_environment() -> tuple[str, int] | None:
    """An HTTP proxy named in the usual environment variables, as (host, port)."""
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        parsed = parse_proxy(value)
        if parsed:
            return parsed
    return None


def parse_proxy(value: str) -> tuple[str, int] | None:
    text = value.strip()
    if "://" in text:
        scheme, text = text.split("://", 1)
        if scheme.lower() not in ("http", "https"):
            return None
    text = text.rsplit("@", 1)[-1].split("/", 1)[0]
    host, sep, port = text.rpartition(":")
    if not sep:
        return (text, 8080) if text else None
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None
