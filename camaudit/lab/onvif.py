"""The ONVIF device service of a lab device (POST /onvif/device_service, SOAP 1.2).

Operations: GetSystemDateAndTime, GetHostname, GetServices, GetCapabilities (PRE_AUTH in the
ONVIF default access policy, egress.md 2.1) and GetDeviceInformation, GetScopes,
GetNetworkInterfaces, GetDNS, GetNTP, GetNetworkDefaultGateway, GetNetworkProtocols
(READ_SYSTEM: they need a WS-UsernameToken of the lab credentials). A wrong or missing token
gets a SOAP Fault ``ter:NotAuthorized`` with HTTP 400; an unknown action ``ter:ActionNotSupported``.
Answers follow the ONVIF device WSDL and schema (what onvif-zeep-async parses, lab.md 8.3).
"""

from __future__ import annotations

import time
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .auth import check_username_token
from .context import DeviceContext

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
TDS_NS = "http://www.onvif.org/ver10/device/wsdl"
PATH = "/onvif/device_service"
PRE_AUTH = frozenset({"GetSystemDateAndTime", "GetHostname", "GetServices", "GetCapabilities"})

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<env:Envelope xmlns:env="{SOAP_NS}" xmlns:tds="{TDS_NS}" '
    'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ter="http://www.onvif.org/ver10/error">'
    "<env:Body>{body}</env:Body></env:Envelope>\n"
)


def _fault(code: str, subcode: str, reason: str) -> str:
    return _ENVELOPE.replace("{body}", (
        f"<env:Fault><env:Code><env:Value>env:{code}</env:Value><env:Subcode><env:Value>{subcode}"
        f'</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{escape(reason)}'
        "</env:Text></env:Reason></env:Fault>"
    ))  # fmt: skip


def _host(kind: str, value: str) -> str:
    """A tt:NetworkHost / tt:IPAddress element body for an address or a DNS name."""
    try:
        parts = [int(p) for p in value.split(".")]
        is_ipv4 = len(parts) == 4 and all(0 <= p <= 255 for p in parts)
    except ValueError:
        is_ipv4 = False
    if is_ipv4:
        return f"<tt:Type>IPv4</tt:Type><tt:IPv4Address>{escape(value)}</tt:IPv4Address>"
    if kind == "dns":  # a tt:IPAddress has no DNS-name form
        return ""
    return f"<tt:Type>DNS</tt:Type><tt:DNSname>{escape(value)}</tt:DNSname>"


def _prefix_length(netmask: str) -> int:
    return sum(bin(int(octet)).count("1") for octet in netmask.split("."))


def _xaddr(ctx: DeviceContext) -> str:
    return f"http://{ctx.spec.address}:{ctx.ports.get('http', 80)}{PATH}"


def _answer(ctx: DeviceContext, action: str) -> str | None:
    p, s = ctx.profile, ctx.spec.settings
    onvif = p.service("onvif")
    if action == "GetSystemDateAndTime":
        t = time.gmtime()
        mode = "NTP" if (s.get("ntp") or {}).get("enabled") else "Manual"
        return (
            f"<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>{mode}"
            "</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0"
            "</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time>"
            f"<tt:Hour>{t.tm_hour}</tt:Hour><tt:Minute>{t.tm_min}</tt:Minute><tt:Second>{t.tm_sec}</tt:Second>"
            f"</tt:Time><tt:Date><tt:Year>{t.tm_year}</tt:Year><tt:Month>{t.tm_mon}</tt:Month>"
            f"<tt:Day>{t.tm_mday}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime>"
            "</tds:GetSystemDateAndTimeResponse>"
        )
    if action == "GetHostname":
        return (
            "<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP>"
            f"<tt:Name>{escape(ctx.base['hostname'])}</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>"
        )
    if action == "GetDeviceInformation":
        fields = (
            ("Manufacturer", str(onvif.get("manufacturer", p.vendor))), ("Model", p.model),
            ("FirmwareVersion", p.firmware), ("SerialNumber", ctx.spec.serial),
            ("HardwareId", str(ctx.base["hardware_id"])),
        )  # fmt: skip
        inner = "".join(f"<tds:{k}>{escape(v)}</tds:{k}>" for k, v in fields)
        return f"<tds:GetDeviceInformationResponse>{inner}</tds:GetDeviceInformationResponse>"
    if action == "GetScopes":
        items = "".join(
            f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{escape(sc)}"
            "</tt:ScopeItem></tds:Scopes>"
            for sc in ctx.scopes()
        )
        return f"<tds:GetScopesResponse>{items}</tds:GetScopesResponse>"
    if action == "GetServices":
        return (
            f"<tds:GetServicesResponse><tds:Service><tds:Namespace>{TDS_NS}</tds:Namespace>"
            f"<tds:XAddr>{_xaddr(ctx)}</tds:XAddr><tds:Version><tt:Major>2</tt:Major>"
            "<tt:Minor>60</tt:Minor></tds:Version></tds:Service></tds:GetServicesResponse>"
        )
    if action == "GetCapabilities":
        return (
            "<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device>"
            f"<tt:XAddr>{_xaddr(ctx)}</tt:XAddr></tt:Device></tds:Capabilities></tds:GetCapabilitiesResponse>"
        )
    if action == "GetNetworkInterfaces":
        dhcp = "true" if s.get("dhcp") else "false"
        return (
            '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0">'
            "<tt:Enabled>true</tt:Enabled><tt:Info><tt:Name>eth0</tt:Name>"
            f"<tt:HwAddress>{ctx.spec.mac.lower()}</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>"
            "<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual>"
            f"<tt:Address>{ctx.spec.address}</tt:Address><tt:PrefixLength>{_prefix_length(ctx.spec.netmask)}"
            f"</tt:PrefixLength></tt:Manual><tt:DHCP>{dhcp}</tt:DHCP></tt:Config></tt:IPv4>"
            "</tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>"
        )
    if action == "GetDNS":
        manual = "".join(
            f"<tt:DNSManual>{h}</tt:DNSManual>" for h in (_host("dns", d) for d in s.get("dns") or []) if h
        )
        return (
            "<tds:GetDNSResponse><tds:DNSInformation><tt:FromDHCP>false</tt:FromDHCP>"
            f"{manual}</tds:DNSInformation></tds:GetDNSResponse>"
        )
    if action == "GetNTP":
        ntp = s.get("ntp") or {}
        manual = "".join(f"<tt:NTPManual>{_host('ntp', n)}</tt:NTPManual>" for n in ntp.get("servers") or [])
        return (
            "<tds:GetNTPResponse><tds:NTPInformation><tt:FromDHCP>false</tt:FromDHCP>"
            f"{manual}</tds:NTPInformation></tds:GetNTPResponse>"
        )
    if action == "GetNetworkDefaultGateway":
        gw = s.get("gateway") or ""
        inner = f"<tt:IPv4Address>{escape(gw)}</tt:IPv4Address>" if gw else ""
        return (
            "<tds:GetNetworkDefaultGatewayResponse><tds:NetworkGateway>"
            f"{inner}</tds:NetworkGateway></tds:GetNetworkDefaultGatewayResponse>"
        )
    if action == "GetNetworkProtocols":
        protocols = [("HTTP", ctx.ports.get("http")), ("RTSP", ctx.ports.get("rtsp"))]
        inner = "".join(
            f"<tds:NetworkProtocols><tt:Name>{name}</tt:Name><tt:Enabled>true</tt:Enabled>"
            f"<tt:Port>{port}</tt:Port></tds:NetworkProtocols>"
            for name, port in protocols if port
        )
        return f"<tds:GetNetworkProtocolsResponse>{inner}</tds:GetNetworkProtocolsResponse>"
    return None


def handle(ctx: DeviceContext, body: bytes) -> tuple[str, str]:
    """One SOAP request in, ``(HTTP status, SOAP XML)`` out."""
    try:
        root: Element = fromstring(body)
    except (ParseError, DefusedXmlException, ValueError):
        return "400 Bad Request", _fault("Sender", "ter:WellFormed", "request is not well-formed XML")
    body_el = root.find(f"{{{SOAP_NS}}}Body")
    if root.tag != f"{{{SOAP_NS}}}Envelope" or body_el is None or len(body_el) == 0:
        return "400 Bad Request", _fault("Sender", "ter:InvalidArgVal", "not a SOAP 1.2 envelope")
    action = body_el[0].tag.rpartition("}")[2]
    if action not in PRE_AUTH and not check_username_token(root.find(f"{{{SOAP_NS}}}Header")):
        return "400 Bad Request", _fault("Sender", "ter:NotAuthorized", "Sender not Authorized")
    answer = _answer(ctx, action)
    if answer is None:
        return "400 Bad Request", _fault("Receiver", "ter:ActionNotSupported", f"Action not supported: {action}")
    return "200 OK", _ENVELOPE.replace("{body}", answer)
