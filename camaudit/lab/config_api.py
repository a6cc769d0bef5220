"""The device-configuration answers behind digest auth: Hikvision ISAPI and Dahua CGI.

Paths and the fields egress work reads come from reference/egress.md sections 2.2-2.3 and
fingerprinting.md 4.1-4.2 (ISAPI ``DeviceInfo`` fields from the HIKNEXT fixtures, the
``userCheck`` 401 body, the ``ResponseStatus`` envelope; Dahua ``key=value`` and
``table.<Name>.<key>=<value>`` lines). Element nesting that reference/ does not spell out
(for instance how a UPnP port status is wrapped) is the lab's choice and kept minimal.

Every builder takes the device context and the request query and returns a body, or
``(status, body)`` to override the status.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from .context import DeviceContext

Built = str | tuple[str, str]
Builder = Callable[[DeviceContext, str, str], Built]


def _ns(ctx: DeviceContext) -> str:
    return str(ctx.profile.service("isapi").get("namespace", "http://www.isapi.org/ver20/XMLSchema"))


def _xml(ctx: DeviceContext, root: str, inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} version="2.0" xmlns="{_ns(ctx)}">\n{inner}</{root}>\n'


def _el(name: str, value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>\n"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def isapi_user_check_401(ctx: DeviceContext, path: str, query: str) -> Built:
    # fingerprinting.md 4.1: the body a request without valid credentials gets.
    return _xml(ctx, "userCheck", _el("statusValue", 401) + _el("statusString", "Unauthorized"))


def isapi_user_check(ctx: DeviceContext, path: str, query: str) -> Built:
    return _xml(ctx, "userCheck", _el("statusValue", 200) + _el("statusString", "OK"))


def isapi_not_found(ctx: DeviceContext, path: str, query: str) -> Built:
    return _xml(ctx, "ResponseStatus", _el("requestURL", path))


def isapi_device_info(ctx: DeviceContext, path: str, query: str) -> Built:
    version, _, build = ctx.profile.firmware.partition(" ")
    kind = {"camera": "IPCamera", "nvr": "NVR", "dvr": "DVR"}.get(ctx.profile.device_type, "IPCamera")
    oem = "0" if ctx.profile.brand else "1"
    inner = "".join((
        _el("deviceName", ctx.profile.model), _el("model", ctx.profile.model),
        _el("serialNumber", ctx.spec.serial), _el("macAddress", ctx.spec.mac.lower()),
        _el("firmwareVersion", version), _el("firmwareReleasedDate", build),
        _el("deviceType", kind), _el("manufacturer", "hikvision"), _el("OEMCode", oem),
        _el("systemContact", ctx.profile.brand or "hikvision"),
    ))  # fmt: skip
    return _xml(ctx, "DeviceInfo", inner)


def isapi_network_interfaces(ctx: DeviceContext, path: str, query: str) -> Built:
    s = ctx.spec.settings
    dns = list(s.get("dns") or []) + ["", ""]
    addressing = "dynamic" if s.get("dhcp") else "static"
    inner = (
        "<NetworkInterface>\n" + _el("id", 1) + "<IPAddress>\n" + _el("ipVersion", "v4")
        + _el("addressingType", addressing) + _el("ipAddress", ctx.spec.address)
        + _el("subnetMask", ctx.spec.netmask)
        + f"<DefaultGateway>\n{_el('ipAddress', s.get('gateway', ''))}</DefaultGateway>\n"
        + f"<PrimaryDNS>\n{_el('ipAddress', dns[0])}</PrimaryDNS>\n"
        + f"<SecondaryDNS>\n{_el('ipAddress', dns[1])}</SecondaryDNS>\n"
        + _el("ipV6AddressingType", "ra") + "</IPAddress>\n"
        + f"<Link>\n{_el('MACAddress', ctx.spec.mac.lower())}</Link>\n</NetworkInterface>\n"
    )
    return _xml(ctx, "NetworkInterfaceList", inner)


def _verification_code(ctx: DeviceContext) -> str:
    # A secret on a real device (egress.md 2.5: redact before storing). Lab value, per device.
    return "LAB" + hashlib.sha256(ctx.spec.serial.encode()).hexdigest()[:6].upper()


def isapi_ezviz(ctx: DeviceContext, path: str, query: str) -> Built:
    cloud = ctx.cloud
    server = cloud.get("server", "litedev.hik-connect.com")
    inner = (
        _el("enabled", ctx.cloud_enabled)
        + "<serverAddress>\n" + _el("addressingFormatType", "ipaddress" if _is_ip(server) else "hostname")
        + _el("hostName", server) + "</serverAddress>\n"
        + _el("registerStatus", ctx.cloud_registered)
        + _el("bindStatus", "bind" if ctx.cloud_registered else "unbind")
        + _el("verificationCode", _verification_code(ctx))
    )
    return _xml(ctx, "EZVIZ", inner)


def isapi_time(ctx: DeviceContext, path: str, query: str) -> Built:
    ntp = ctx.spec.settings.get("ntp") or {}
    mode = "NTP" if ntp.get("enabled") else "manual"
    return _xml(ctx, "Time", _el("timeMode", mode) + _el("timeZone", "UTC"))


def isapi_ntp_servers(ctx: DeviceContext, path: str, query: str) -> Built:
    ntp = ctx.spec.settings.get("ntp") or {}
    inner = ""
    for index, server in enumerate(ntp.get("servers") or [], start=1):
        kind = "ipaddress" if _is_ip(server) else "hostname"
        host = _el("ipAddress" if kind == "ipaddress" else "hostName", server)
        inner += ("<NTPServer>\n" + _el("id", index) + _el("addressingFormatType", kind) + host
                  + _el("portNo", 123) + _el("synchronizeInterval", 1440) + "</NTPServer>\n")
    return _xml(ctx, "NTPServerList", inner)


def isapi_upnp(ctx: DeviceContext, path: str, query: str) -> Built:
    upnp = ctx.spec.settings.get("upnp") or {}
    return _xml(ctx, "UPnP", _el("enabled", bool(upnp.get("enabled"))) + _el("name", ctx.profile.model))


def isapi_upnp_ports_status(ctx: DeviceContext, path: str, query: str) -> Built:
    upnp = ctx.spec.settings.get("upnp") or {}
    inner = ""
    for m in upnp.get("mappings") or [] if upnp.get("enabled") else []:
        inner += ("<portStatus>\n" + _el("internalPort", m["internal_port"])
                  + _el("externalPort", m["external_port"]) + _el("protocol", m["protocol"])
                  + _el("externalIPAddress", m["external_address"]) + _el("status", m["status"])
                  + "</portStatus>\n")
    return _xml(ctx, "PortsStatus", inner)


def isapi_online_upgrade_server(ctx: DeviceContext, path: str, query: str) -> Built:
    # connectStatus=true: the device reached Hikvision's upgrade server (egress.md 2.2, [S15]).
    # The lab ties it to the cloud registration state.
    return _xml(ctx, "OnlineUpgradeServer", _el("connectStatus", ctx.cloud_registered))


def _query(query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


def dahua_magicbox(ctx: DeviceContext, path: str, query: str) -> Built:
    cgi = ctx.profile.service("dahua_cgi")
    action = _query(query).get("action", "")
    build = cgi.get("build_date", "")
    if action == "getSoftwareVersion":
        if ctx.profile.brand == "amcrest":  # python-amcrest README layout (fingerprinting.md 5)
            return f"version={ctx.profile.firmware}\r\nBuildDate={build}\r\n"
        return f"version={ctx.profile.firmware},build:{build}\r\n"
    answers = {
        "getSystemInfo": f"deviceType={ctx.profile.model}\r\nserialNumber={ctx.spec.serial}\r\n",
        "getDeviceType": f"type={ctx.profile.model}\r\n",
        "getVendor": f"vendor={cgi.get('vendor', 'Dahua')}\r\n",
        "getMachineName": f"name={ctx.spec.serial}\r\n",
        "getSerialNo": f"sn={ctx.spec.serial}\r\n",
    }
    return answers.get(action, ("400 Bad Request", ""))


def _table(name: str, rows: dict[str, Any]) -> str:
    out = []
    for key, value in rows.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(f"table.{name}.{key}={value}\r\n")
    return "".join(out)


def dahua_config(ctx: DeviceContext, path: str, query: str) -> Built:
    """``configManager.cgi?action=getConfig&name=<Name>`` (egress.md 2.3)."""
    q = _query(query)
    if q.get("action") != "getConfig":
        return ("400 Bad Request", "")
    s = ctx.spec.settings
    cloud = ctx.cloud
    p2p = cloud.get("kind") == "dahua_p2p"
    ntp = s.get("ntp") or {}
    upnp = s.get("upnp") or {}
    name = q.get("name", "")
    if name == "Network":
        rows: dict[str, Any] = {
            "DefaultInterface": "eth0", "Domain": "dahua", "Hostname": ctx.base["hostname"],
            "eth0.DefaultGateway": s.get("gateway", ""), "eth0.DhcpEnable": bool(s.get("dhcp")),
            "eth0.IPAddress": ctx.spec.address, "eth0.SubnetMask": ctx.spec.netmask,
            "eth0.PhysicalAddress": ctx.spec.mac.lower(),
        }  # fmt: skip
        for i, server in enumerate(s.get("dns") or []):
            rows[f"eth0.DnsServers[{i}]"] = server
    elif name == "T2UServer":
        rows = {
            "Enable": p2p and ctx.cloud_enabled, "Address": cloud.get("server", ""),
            "Port": cloud.get("port", 8800), "RegisterServer": cloud.get("register_server", ""),
            "RegisterPort": cloud.get("register_port", 12366), "Type": "dhp2p",
            "UUID": ctx.spec.serial,
        }  # fmt: skip
    elif name == "VSP_PaaS":
        rows = {"Enable": p2p and ctx.cloud_enabled, "CustomEnable": False}
    elif name == "NTP":
        servers = ntp.get("servers") or [""]
        rows = {"Enable": bool(ntp.get("enabled")), "Address": servers[0], "Port": 123,
                "UpdatePeriod": 10, "TimeZone": 0}
    elif name == "UPnP":
        rows = {"Enable": bool(upnp.get("enabled"))}
        for i, m in enumerate(upnp.get("mappings") or []):
            rows.update({f"MapTable[{i}].Enable": True, f"MapTable[{i}].InnerPort": m["internal_port"],
                         f"MapTable[{i}].OuterPort": m["external_port"],
                         f"MapTable[{i}].Protocol": m["protocol"]})
    elif name == "DVRIP":
        rows = {"TCPPort": ctx.port_map.get(37777, 37777), "UDPPort": 37778,
                "RegisterServer.Enable": False}
    else:
        return ("400 Bad Request", "")
    return _table(name, rows)


BUILDERS: dict[str, Builder] = {
    fn.__name__: fn
    for fn in (
        isapi_user_check_401, isapi_user_check, isapi_not_found, isapi_device_info,
        isapi_network_interfaces, isapi_ezviz, isapi_time, isapi_ntp_servers, isapi_upnp,
        isapi_upnp_ports_status, isapi_online_upgrade_server, dahua_magicbox, dahua_config,
    )
}  # fmt: skip
