"""Hikvision SADP (UDP/XML variant) inquiry builder and ProbeMatch parser, free of I/O.

Format: reference/fingerprinting.md section 1.1. The inquiry is
``<Probe><Uuid>{UUID}</Uuid><Types>inquiry</Types></Probe>`` [US sender(); HAICAM; HIKTOOLING];
the reply is an XML document whose root is ``<ProbeMatch>``, with the fields of the real
DS-2CD2385G1-I capture [HAICAM]. Quirks: firmware spells ``false`` as ``flase`` (HCPlatformEnable,
DeviceLock), and values may carry stray whitespace, so booleans and numbers are read leniently.
Only the inquiry is ever built: SADP's configuration commands are out of bounds for an audit.
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 - only for ParseError/Element types; parsing is defusedxml
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _safe_fromstring

from ..model import bounded_text
from .constants import SADP_INQUIRY_TYPE, SADP_MAX_LEN, normalize_mac

log = logging.getLogger(__name__)

MAX_FIELDS = 128
MAX_FIELD = 1024

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "flase", "0", "no", "off"})  # "flase": real firmware, sic
#: What parsing device XML can raise. LookupError: expat asks Python's codecs for the encoding
#: the prolog names, so an unknown one (``encoding="x-bogus"``) or a non-text codec raises it.
_XML_FAILURES = (ET.ParseError, DefusedXmlException, ValueError, LookupError, UnicodeError, RecursionError)


@dataclass(frozen=True, slots=True)
class SadpReply:
    """A parsed SADP ProbeMatch. ``fields`` keeps every element as sent (trimmed, bounded), so
    fields of firmware not yet seen are not lost; the properties read the documented ones."""

    source: str
    received_at: str
    fields: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if value else None

    @property
    def uuid(self) -> str | None:
        return self.get("Uuid")

    @property
    def model(self) -> str | None:
        return self.get("DeviceDescription")

    @property
    def device_type_code(self) -> str | None:
        return self.get("DeviceType")

    @property
    def serial(self) -> str | None:
        return self.get("DeviceSN")

    @property
    def firmware(self) -> str | None:
        return self.get("SoftwareVersion")

    @property
    def dsp_version(self) -> str | None:
        return self.get("DSPVersion")

    @property
    def mac(self) -> str | None:
        return normalize_mac(self.get("MAC"))

    @property
    def ipv4(self) -> str | None:
        return self.get("IPv4Address")

    @property
    def ipv4_mask(self) -> str | None:
        return self.get("IPv4SubnetMask")

    @property
    def gateway(self) -> str | None:
        return self.get("IPv4Gateway")

    @property
    def ipv6(self) -> str | None:
        return self.get("IPv6Address")

    @property
    def ipv6_gateway(self) -> str | None:
        return self.get("IPv6Gateway")

    @property
    def dns(self) -> tuple[str, ...]:
        """DNS servers, from any field whose name contains ``DNS``: the captures in the
        reference carry none, so no field name is assumed."""
        return tuple(v for k, v in self.fields.items() if "dns" in k.lower() and v)

    @property
    def dhcp(self) -> bool | None:
        return parse_bool(self.get("DHCP"))

    @property
    def activated(self) -> bool | None:
        """False means the device was never initialised: no admin password is set."""
        return parse_bool(self.get("Activated"))

    @property
    def http_port(self) -> int | None:
        return parse_port(self.get("HttpPort"))

    @property
    def command_port(self) -> int | None:
        """The Hikvision SDK port (8000 on the real capture)."""
        return parse_port(self.get("CommandPort"))

    @property
    def sdk_over_tls_port(self) -> int | None:
        return parse_port(self.get("SDKOverTLSPort"))

    @property
    def oem_code(self) -> str | None:
        return self.get("DetailOEMCode")

    @property
    def hc_platform_supported(self) -> bool | None:
        """Hik-Connect cloud platform support (egress relevance, fingerprinting.md 1.1)."""
        return parse_bool(self.get("SupportHCPlatform"))

    @property
    def hc_platform_enabled(self) -> bool | None:
        return parse_bool(self.get("HCPlatformEnable"))

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "serial": self.serial,
            "firmware": self.firmware,
            "mac": self.mac,
            "ipv4": self.ipv4,
            "gateway": self.gateway,
            "dns": list(self.dns),
            "activated": self.activated,
            "http_port": self.http_port,
            "command_port": self.command_port,
            "oem_code": self.oem_code,
            "hc_platform_supported": self.hc_platform_supported,
            "hc_platform_enabled": self.hc_platform_enabled,
        }


def build_probe(probe_uuid: str | None = None) -> tuple[bytes, str]:
    """The SADP inquiry (fingerprinting.md section 1.1), returned with its Uuid (upper case,
    as HIKTOOLS sends it)."""
    probe_uuid = (probe_uuid or str(uuid.uuid4())).upper()
    text = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Probe><Uuid>{probe_uuid}</Uuid><Types>{SADP_INQUIRY_TYPE}</Types></Probe>"
    )
    return text.encode("utf-8"), probe_uuid


def parse_reply(data: bytes, source: str, now: str) -> SadpReply | None:
    """Parse a SADP ProbeMatch. None for an inquiry (ours or another tool's), for malformed,
    truncated, oversized or hostile XML, and for a ProbeMatch that names no device."""
    if not data or len(data) > SADP_MAX_LEN:
        log.debug("sadp: %s: %d bytes, outside 1..%d", source, len(data), SADP_MAX_LEN)
        return None
    try:
        root: ET.Element = _safe_fromstring(data.strip(), forbid_dtd=True)
    except _XML_FAILURES as exc:
        log.debug("sadp: %s: unusable XML (%s)", source, type(exc).__name__)
        return None
    if _local(root.tag) != "ProbeMatch":
        return None
    fields: dict[str, str] = {}
    for el in root:
        name = _local(el.tag)
        if not name or name in fields:
            continue
        fields[name[:64]] = (el.text or "").strip()[:MAX_FIELD]
        if len(fields) >= MAX_FIELDS:
            break
    if not any(fields.get(k) for k in ("DeviceSN", "MAC", "DeviceDescription")):
        return None
    return SadpReply(source=source, received_at=now, fields=fields, raw=bounded_text(data))


def is_inquiry(data: bytes) -> bool:
    """True for a SADP inquiry (used by stand-in responders)."""
    if not data or len(data) > SADP_MAX_LEN:
        return False
    try:
        root = _safe_fromstring(data.strip(), forbid_dtd=True)
    except _XML_FAILURES:
        return False
    if _local(root.tag) != "Probe":
        return False
    types = root.find("Types")
    return types is not None and (types.text or "").strip().startswith(SADP_INQUIRY_TYPE)


def parse_bool(value: str | None) -> bool | None:
    """Lenient boolean: ``true``/``false`` in any case and spacing, and firmware's ``flase``."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_port(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
