"""Dahua CGI replies: pure parsers for ``key=value`` text, bytes in, plain data (or None) out.

Facts: reference/egress.md section 2.3 (``configManager.cgi?action=getConfig&name=<Name>``
answers ``table.<Name>.<key>=<value>`` lines; the Network, NTP, T2UServer, VSP_PaaS, UPnP and
DDNS keys that mean a gateway, a server or a cloud path) and fingerprinting.md section 4.2
(``magicBox.cgi`` answers ``key=value`` lines). A reply that is not key=value text (an HTML error
page, "Error" or garbage) parses to None, which the caller records as "not verified".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_REPLY_BYTES = 256 * 1024
MAX_LINES = 4096

_LINE = re.compile(r"^([A-Za-z_][\w.\[\]\-]*)=(.*)$")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(slots=True)
class CloudConfig:
    """One cloud or remote-server feature as configured (not as connected: see ``registered``)."""

    enabled: bool | None = None
    servers: list[str] = field(default_factory=list)
    #: Dahua exposes no verified read-only API for P2P online status (egress.md section 2.3).
    registered: bool | None = None


def parse_kv(data: bytes | str) -> dict[str, str] | None:
    """``key=value`` lines into a dict; None unless at least one line has that shape."""
    if len(data) > MAX_REPLY_BYTES:
        return None
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    out: dict[str, str] = {}
    for line in text.splitlines()[:MAX_LINES]:
        match = _LINE.match(line.strip())
        if match:
            out[match.group(1)] = match.group(2).strip()[:1024]
    return out or None


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def table(kv: dict[str, str], name: str) -> dict[str, str]:
    """The keys of one config table, with ``table.<name>.`` stripped (``[n].Key`` stays)."""
    prefix = f"table.{name}"
    out = {}
    for key, value in kv.items():
        if key == prefix:
            out[""] = value
        elif key.startswith((prefix + ".", prefix + "[")):
            out[key[len(prefix) :].lstrip(".")] = value
    return out


def network_settings(kv: dict[str, str]) -> tuple[list[str], list[str]] | None:
    """``name=Network``: (gateways, DNS servers) over all interfaces; None if no Network table."""
    rows = table(kv, "Network")
    if not rows:
        return None
    gateways: list[str] = []
    dns: list[str] = []
    for key, value in rows.items():
        last = key.rsplit(".", 1)[-1]
        if last == "DefaultGateway":
            _add(gateways, value)
        elif re.fullmatch(r"DnsServers\[\d+\]", last):
            _add(dns, value)
    return gateways, dns


def ntp_servers(kv: dict[str, str]) -> tuple[bool | None, list[str]] | None:
    """``name=NTP``: (enabled, server addresses) from ``Address`` and ``ServerList[n]`` keys."""
    rows = table(kv, "NTP")
    if not rows:
        return None
    servers: list[str] = []
    for key, value in rows.items():
        if key == "Address" or (key.startswith("ServerList[") and key.endswith("Address")):
            _add(servers, value)
    return parse_bool(rows.get("Enable")), servers


def t2u_server(kv: dict[str, str]) -> CloudConfig | None:
    """``name=T2UServer`` (P2P / Easy4ip): enabled, P2P and register servers."""
    rows = table(kv, "T2UServer")
    if not rows:
        return None
    config = CloudConfig(enabled=parse_bool(rows.get("Enable")))
    for key in ("Address", "RegisterServer", "RegisterServerEx"):
        _add(config.servers, rows.get(key, ""))
    return config


def vsp_paas(kv: dict[str, str]) -> CloudConfig | None:
    """``name=VSP_PaaS`` (cloud platform / DMSS): enabled (or custom-enabled), server."""
    rows = table(kv, "VSP_PaaS")
    if not rows:
        return None
    enabled = parse_bool(rows.get("Enable"))
    custom = parse_bool(rows.get("CustomEnable"))
    config = CloudConfig(enabled=True if custom else enabled)
    _add(config.servers, rows.get("RsServerIP", ""))
    return config


def upnp(kv: dict[str, str]) -> tuple[bool | None, list[dict[str, Any]]] | None:
    """``name=UPnP``: (enabled, configured mappings from ``MapTable[n].*``)."""
    rows = table(kv, "UPnP")
    if not rows:
        return None
    maps: dict[int, dict[str, Any]] = {}
    for key, value in rows.items():
        match = re.fullmatch(r"MapTable\[(\d{1,9})\]\.(\w+)", key)  # int() refuses > 4300 digits
        if match and int(match.group(1)) < 256:
            maps.setdefault(int(match.group(1)), {})[match.group(2)] = value
    mappings = []
    for index in sorted(maps):
        entry = maps[index]
        if "Enable" in entry:
            entry["Enable"] = parse_bool(entry["Enable"])
        mappings.append(entry)
    return parse_bool(rows.get("Enable")), mappings


def ddns(kv: dict[str, str]) -> list[dict[str, Any]] | None:
    """``name=DDNS``: one dict per ``DDNS[n]`` entry; ``Enable`` parsed, other keys verbatim."""
    rows = table(kv, "DDNS")
    if not rows:
        return None
    entries: dict[int, dict[str, Any]] = {}
    for key, value in rows.items():
        match = re.fullmatch(r"\[(\d{1,9})\]\.(\w+)", key)  # int() refuses > 4300 digits
        if match and int(match.group(1)) < 64:
            entries.setdefault(int(match.group(1)), {})[match.group(2)] = value
    out = []
    for index in sorted(entries):
        entry = entries[index]
        if "Enable" in entry:
            entry["Enable"] = parse_bool(entry["Enable"])
        out.append(entry)
    return out


def _add(target: list[str], value: str) -> None:
    value = value.strip()
    if value and value not in {"0.0.0.0", "::"} and value not in target:  # noqa: S104
        target.append(value)
