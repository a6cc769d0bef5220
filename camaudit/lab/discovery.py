"""Answers to the discovery datagrams: WS-Discovery (UDP 3702), SADP (UDP 37020), DHIP (UDP 37810).

Pure functions: datagram bytes in, reply bytes or None out. A stub that answered every datagram
would answer Hellos and other devices' ProbeMatches too (lab.md section 4), so each answers only
the one request it exists for: a WS-Discovery ``Probe`` (fresh MessageID, RelatesTo = the probe's
MessageID, Types filter), a SADP ``inquiry`` (fingerprinting.md 1.1), a DHIP
``DHDiscover.search`` behind its 32-byte header (fingerprinting.md 2.1).
"""

from __future__ import annotations

import io
import json
import struct
import uuid
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring, iterparse

from .context import DeviceContext

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
WSA_NS = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD_NS = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
PROBE_ACTION = f"{WSD_NS}/Probe"
MATCHES_ACTION = f"{WSD_NS}/ProbeMatches"
#: prefixes profiles use in ``wsd.types``/``wsd.answers`` (fingerprinting.md 3, lab.md 8.5)
PREFIXES = {
    "dn": "http://www.onvif.org/ver10/network/wsdl",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "wsdp": "http://schemas.xmlsoap.org/ws/2006/02/devprof",
}
GROUPS = {"wsd": ("239.255.255.250", 3702), "sadp": ("239.255.255.250", 37020),
          "dhip": ("239.255.255.251", 37810)}
DHIP_MAGIC = b"DHIP"
DHIP_HEADER = 32
MAX_DATAGRAM = 16384


def _qname(text: str, namespaces: dict[str, str]) -> str | None:
    prefix, _, local = text.rpartition(":")
    ns = namespaces.get(prefix) if prefix else namespaces.get("")
    return f"{{{ns}}}{local}" if ns else None


def parse_probe(data: bytes) -> tuple[str, set[str]] | None:
    """A WS-Discovery Probe's MessageID and requested type QNames; None for anything else."""
    if len(data) > MAX_DATAGRAM:
        return None
    namespaces: dict[str, str] = {}
    try:
        root: Element | None = None
        for event, item in iterparse(io.BytesIO(data), events=("start-ns", "start")):
            if event == "start-ns":
                prefix, uri = item
                namespaces.setdefault(prefix, uri)
            elif root is None:
                root = item
        if root is None:
            return None
    except (ParseError, DefusedXmlException, ValueError):
        return None
    header, body = root.find(f"{{{SOAP_NS}}}Header"), root.find(f"{{{SOAP_NS}}}Body")
    if root.tag != f"{{{SOAP_NS}}}Envelope" or header is None or body is None:
        return None
    action = (header.findtext(f"{{{WSA_NS}}}Action") or "").strip()
    message_id = (header.findtext(f"{{{WSA_NS}}}MessageID") or "").strip()
    probe = body.find(f"{{{WSD_NS}}}Probe")
    if action != PROBE_ACTION or not message_id or probe is None:
        return None
    types: set[str] = set()
    for text in (probe.findtext(f"{{{WSD_NS}}}Types") or "").split():
        qname = _qname(text, namespaces)
        types.add(qname or f"?{text}")  # an unresolvable prefix matches nothing
    return message_id, types


def wsd_reply(ctx: DeviceContext, data: bytes, message_number: int = 1) -> bytes | None:
    probe = parse_probe(data)
    wsd = ctx.profile.service("wsd")
    if probe is None or not wsd:
        return None
    message_id, types = probe
    answers = {f"{{{PREFIXES[a.split(':')[0]]}}}{a.split(':')[1]}" for a in wsd.get("answers", [])}
    if types and not types & answers:
        return None
    onvif = ctx.profile.service("onvif")
    endpoint = ctx.render(str(onvif.get("endpoint_uuid", "{uuid}")))
    scopes = ctx.scopes()
    port = ctx.ports.get("http", 80)
    xaddr = f"http://{ctx.spec.address}:{port}" + ("/onvif/device_service" if onvif else f"/{ctx.spec.uuid}")
    ns_decl = " ".join(f'xmlns:{p}="{u}"' for p, u in PREFIXES.items())
    scopes_el = f"<d:Scopes>{escape(' '.join(scopes))}</d:Scopes>" if scopes else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{SOAP_NS}" xmlns:wsa="{WSA_NS}" xmlns:d="{WSD_NS}" {ns_decl}>'
        f"<env:Header><wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
        f"<wsa:RelatesTo>{escape(message_id)}</wsa:RelatesTo>"
        "<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"
        f"<wsa:Action>{MATCHES_ACTION}</wsa:Action>"
        f'<d:AppSequence InstanceId="1" MessageNumber="{message_number}"/></env:Header>'
        "<env:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference>"
        f"<wsa:Address>urn:uuid:{escape(endpoint)}</wsa:Address></wsa:EndpointReference>"
        f"<d:Types>{escape(str(wsd.get('types', '')))}</d:Types>{scopes_el}"
        f"<d:XAddrs>{escape(xaddr)}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>"
        "</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"
    ).encode()


def sadp_reply(ctx: DeviceContext, data: bytes) -> bytes | None:
    """Answer a SADP ``<Probe><Uuid/><Types>inquiry</Types></Probe>``."""
    if len(data) > MAX_DATAGRAM:
        return None
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException, ValueError):
        return None
    if root.tag != "Probe" or (root.findtext("Types") or "").strip() not in ("inquiry", "inquiry_v32"):
        return None
    sadp = ctx.profile.service("sadp")
    overrides = sadp.get("overrides") or {}
    probe_uuid = (root.findtext("Uuid") or "").strip()
    fields = []
    for name, template in sadp.get("fields", []):
        value = ctx.render(str(overrides.get(name, template)), probe_uuid=probe_uuid)
        fields.append(f"<{name}>{escape(value)}</{name}>")
    return ('<?xml version="1.0" encoding="UTF-8"?><ProbeMatch>' + "".join(fields) + "</ProbeMatch>").encode()


def dhip_frame(body: bytes) -> bytes:
    """32-byte DHIP header (fingerprinting.md 2.1) + body."""
    return struct.pack("<I4s8sQQ", DHIP_HEADER, DHIP_MAGIC, b"\0" * 8, len(body), len(body)) + body


def parse_dhip(data: bytes) -> dict[str, object] | None:
    if len(data) < DHIP_HEADER or len(data) > MAX_DATAGRAM or data[4:8] != DHIP_MAGIC:
        return None
    (length,) = struct.unpack_from("<Q", data, 16)
    body = data[DHIP_HEADER : DHIP_HEADER + length]
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return message if isinstance(message, dict) else None


def dhip_reply(ctx: DeviceContext, data: bytes) -> bytes | None:
    """Answer ``DHDiscover.search`` with ``client.notifyDevInfo`` (fields of the HAICAM capture)."""
    message = parse_dhip(data)
    if message is None or message.get("method") != "DHDiscover.search":
        return None
    d = ctx.profile.service("dhip")
    s = ctx.spec.settings
    info = {
        "AlarmInputChannels": d.get("alarm_inputs", 0), "AlarmOutputChannels": d.get("alarm_outputs", 0),
        "DeviceClass": d.get("device_class", "IPC"), "DeviceID": ctx.spec.serial,
        "DeviceType": ctx.profile.model, "Find": d.get("find", "BC"),
        "FindVersion": d.get("find_version", 2), "HttpPort": ctx.ports.get("http", 80),
        "IPv4Address": {"DefaultGateway": s.get("gateway", ""), "DhcpEnable": bool(s.get("dhcp")),
                        "IPAddress": ctx.spec.address, "SubnetMask": ctx.spec.netmask},
        "IPv6Address": {"DefaultGateway": "", "DhcpEnable": False, "IPAddress": "",
                        "LinkLocalAddress": ""},
        "Init": 1, "MachineName": ctx.spec.serial, "Manufacturer": d.get("manufacturer", "Dahua"),
        "Port": ctx.port_map.get(37777, 37777),
        "RemoteVideoInputChannels": d.get("remote_video_inputs", 0), "SerialNo": ctx.spec.serial,
        "UnLoginFuncMask": 0, "Vendor": d.get("vendor", "Dahua"), "Version": ctx.profile.firmware,
        "VideoInputChannels": d.get("video_inputs", 1), "VideoOutputChannels": 0,
    }  # fmt: skip
    reply = {"mac": ctx.spec.mac.lower(), "method": "client.notifyDevInfo", "params": {"deviceInfo": info}}
    return dhip_frame(json.dumps(reply, separators=(",", ":")).encode() + b"\n")


REPLIERS = {"wsd": wsd_reply, "sadp": sadp_reply, "dhip": dhip_reply}
