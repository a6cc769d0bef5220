"""WS-Discovery (ONVIF) Probe builder and ProbeMatch parser, free of I/O.

Formats: reference/fingerprinting.md section 3 (SOAP 1.2 envelope, WS-Addressing 2004/08,
WS-Discovery 2005/04; ProbeMatch fields and the scope conventions of real devices).
Quirks handled: ipycam puts ``<d:ProbeMatch>`` straight in the Body with no ``ProbeMatches``
wrapper (lab.md section 8.1), and names its Action ``.../ProbeMatch``: both shapes are accepted.

Every reply is untrusted: size-capped before parsing, parsed with defusedxml (no DTD, no
entities), and anything unexpected yields None rather than an exception. Correlation
(``RelatesTo`` against our own MessageID) is the driver's job; the parsed reply carries both ids.
"""

from __future__ import annotations

import logging
import re
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 - only for ParseError/Element types; parsing is defusedxml
from dataclasses import dataclass
from urllib.parse import unquote
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _safe_fromstring

from ..model import bounded_text
from .constants import (
    NS_DEVPROF,
    NS_ONVIF_DEVICE,
    NS_ONVIF_NETWORK,
    NS_SOAP12,
    NS_WSA,
    NS_WSD,
    WSD_ACTION_PROBE,
    WSD_ACTION_PROBE_MATCHES,
    WSD_CAMERA_TYPES,
    WSD_MAX_LEN,
    WSD_PROBE_TYPES,
    WSD_TO_DISCOVERY,
    normalize_mac,
)

log = logging.getLogger(__name__)

#: Bounds on what one reply may contribute (a hostile device could list thousands of scopes).
MAX_MATCHES = 16
MAX_SCOPES = 64
MAX_XADDRS = 16
MAX_FIELD = 2048

_ONVIF_SCOPE_PREFIX = "onvif://www.onvif.org/"
#: ipycam 1.3.0 sends the singular ``.../discovery/ProbeMatch`` Action (its
#: static/soap/probe_match.xml), beside the unwrapped body (lab.md 8.1).
_MATCH_ACTIONS = frozenset({WSD_ACTION_PROBE_MATCHES, WSD_ACTION_PROBE_MATCHES.removesuffix("es")})
_CAMERA_QNAMES = frozenset(
    {f"{{{NS_ONVIF_NETWORK}}}NetworkVideoTransmitter", f"{{{NS_ONVIF_DEVICE}}}Device"}
)
assert {q.rsplit("}", 1)[1] for q in _CAMERA_QNAMES} == WSD_CAMERA_TYPES
_XMLNS_RE = re.compile(rb"""xmlns:([A-Za-z_][\w.\-]*)\s*=\s*["']([^"'<>]{0,512})["']""")


@dataclass(frozen=True, slots=True)
class ProbeMatch:
    """One ProbeMatch: a device's endpoint, types, scopes and service addresses."""

    endpoint: str | None
    types: tuple[str, ...]
    scopes: tuple[str, ...]
    xaddrs: tuple[str, ...]
    metadata_version: str | None
    #: ``types`` with their prefixes resolved, in Clark notation (``{namespace}local``); a type
    #: whose prefix the reply does not declare stays as its bare local name.
    qualified_types: tuple[str, ...] = ()

    def scope_values(self, key: str) -> list[str]:
        """Values of ``onvif://www.onvif.org/<key>/<value>`` scopes, URL-decoded; the key is
        matched case-insensitively (Hikvision writes ``MAC``, others ``mac``)."""
        wanted = key.lower() + "/"
        values = []
        for scope in self.scopes:
            if scope[: len(_ONVIF_SCOPE_PREFIX)].lower() != _ONVIF_SCOPE_PREFIX:
                continue
            rest = scope[len(_ONVIF_SCOPE_PREFIX) :]
            if rest.lower().startswith(wanted):
                values.append(unquote(rest[len(wanted) :]))
        return values

    @property
    def name(self) -> str | None:
        return _first(self.scope_values("name"))

    @property
    def hardware(self) -> str | None:
        return _first(self.scope_values("hardware"))

    @property
    def location(self) -> str | None:
        return _first(self.scope_values("location"))

    @property
    def mac(self) -> str | None:
        for value in self.scope_values("mac"):
            mac = normalize_mac(value)
            if mac:
                return mac
        return None

    @property
    def is_camera(self) -> bool:
        """True when Types name an ONVIF NetworkVideoTransmitter or ONVIF device. Printers and
        Windows hosts answer WS-Discovery too (fingerprinting.md section 3), and a Windows host's
        ``wsdp:Device`` shares the local name ``Device``: so the namespace decides, and only
        ``NetworkVideoTransmitter`` is trusted when the reply leaves its prefix undeclared."""
        return any(t in _CAMERA_QNAMES or t == "NetworkVideoTransmitter" for t in self.qualified_types)

    def to_json(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "types": list(self.types),
            "scopes": list(self.scopes),
            "xaddrs": list(self.xaddrs),
            "metadata_version": self.metadata_version,
            "name": self.name,
            "hardware": self.hardware,
            "mac": self.mac,
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class WsdReply:
    """A parsed ProbeMatches message."""

    source: str
    received_at: str
    message_id: str | None
    relates_to: str | None
    action: str | None
    wrapped: bool  # False for ipycam's ProbeMatch-without-ProbeMatches shape
    matches: tuple[ProbeMatch, ...]
    raw: str  # the reply as received, decoded leniently and bounded

    @property
    def camera_matches(self) -> tuple[ProbeMatch, ...]:
        return tuple(m for m in self.matches if m.is_camera)


def new_message_id() -> str:
    """A fresh ``uuid:`` MessageID: responders drop repeated ids (lab.md section 4)."""
    return f"uuid:{uuid.uuid4()}"


def build_probe(types: str = WSD_PROBE_TYPES, message_id: str | None = None) -> tuple[bytes, str]:
    """A WS-Discovery Probe (WS-Discovery 2005/04 section 5.2) for ``types``, returned with
    its MessageID. The ``dn``, ``tds`` and ``wsdp`` prefixes are declared on the envelope
    (fingerprinting.md section 3: ``dn:NetworkVideoTransmitter tds:Device``; lab.md 8.5)."""
    message_id = message_id or new_message_id()
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:a="{NS_WSA}" xmlns:d="{NS_WSD}"'
        f' xmlns:dn="{NS_ONVIF_NETWORK}" xmlns:tds="{NS_ONVIF_DEVICE}" xmlns:wsdp="{NS_DEVPROF}">'
        "<s:Header>"
        f'<a:Action s:mustUnderstand="1">{WSD_ACTION_PROBE}</a:Action>'
        f"<a:MessageID>{escape(message_id)}</a:MessageID>"
        f"<a:ReplyTo><a:Address>{NS_WSA}/role/anonymous</a:Address></a:ReplyTo>"
        f'<a:To s:mustUnderstand="1">{WSD_TO_DISCOVERY}</a:To>'
        "</s:Header>"
        f"<s:Body><d:Probe><d:Types>{escape(types)}</d:Types></d:Probe></s:Body>"
        "</s:Envelope>"
    )
    return text.encode("utf-8"), message_id


def parse_reply(data: bytes, source: str, now: str) -> WsdReply | None:
    """Parse a ProbeMatches message (wrapped or not). None for anything else: other message
    types, malformed, truncated, oversized or hostile XML. Never raises on device bytes."""
    if not data or len(data) > WSD_MAX_LEN:
        log.debug("wsd: %s: %d bytes, outside 1..%d", source, len(data), WSD_MAX_LEN)
        return None
    root = _parse_xml(data, source)
    if root is None or _local(root.tag) != "Envelope":
        return None
    header = _child(root, "Header")
    body = _child(root, "Body")
    if body is None:
        return None
    action = _text(_child(header, "Action")) if header is not None else None
    if action is not None and action not in _MATCH_ACTIONS:
        return None
    wrapper = _child(body, "ProbeMatches")
    container = wrapper if wrapper is not None else body
    elements = [el for el in container if _local(el.tag) == "ProbeMatch"][:MAX_MATCHES]
    if not elements:
        return None
    prefixes = _prefix_map(data)
    matches = tuple(_probe_match(el, prefixes) for el in elements)
    return WsdReply(
        source=source,
        received_at=now,
        message_id=_text(_child(header, "MessageID")) if header is not None else None,
        relates_to=_text(_child(header, "RelatesTo")) if header is not None else None,
        action=action,
        wrapped=wrapper is not None,
        matches=matches,
        raw=bounded_text(data),
    )


def is_probe(data: bytes) -> bool:
    """True for a WS-Discovery Probe message (used by stand-in responders and to ignore our
    own looped-back multicast)."""
    if not data or len(data) > WSD_MAX_LEN:
        return False
    root = _parse_xml(data, "probe")
    if root is None or _local(root.tag) != "Envelope":
        return False
    body = _child(root, "Body")
    return body is not None and _child(body, "Probe") is not None


def probe_message_id(data: bytes) -> str | None:
    """The MessageID of a Probe (for responders that must set RelatesTo)."""
    root = _parse_xml(data, "probe") if data and len(data) <= WSD_MAX_LEN else None
    header = _child(root, "Header") if root is not None else None
    return _text(_child(header, "MessageID")) if header is not None else None


# --- helpers -------------------------------------------------------------------------------------


def _parse_xml(data: bytes, source: str) -> ET.Element | None:
    try:
        root: ET.Element = _safe_fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError, LookupError, UnicodeError, RecursionError) as exc:
        # LookupError: expat asks Python's codecs for the encoding the prolog names, so an
        # unknown one (``encoding="x-bogus"``) or a non-text codec (``hex``) raises it.
        log.debug("wsd: %s: unusable XML (%s)", source, type(exc).__name__)
        return None
    return root


def _local(tag: object) -> str:
    # Comments and processing instructions have non-string tags.
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _child(parent: ET.Element | None, name: str) -> ET.Element | None:
    if parent is None:
        return None
    for el in parent:
        if _local(el.tag) == name:
            return el
    return None


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    text = el.text.strip()
    return text[:MAX_FIELD] if text else None


def _tokens(el: ET.Element | None, limit: int) -> tuple[str, ...]:
    text = (el.text or "") if el is not None else ""
    return tuple(tok[:MAX_FIELD] for tok in text.split()[:limit])


def _prefix_map(data: bytes) -> dict[str, str]:
    """Namespace prefixes declared anywhere in the reply. ElementTree drops the declarations,
    yet Types are QNames whose prefixes must be resolved; the (rare) redefinition of a prefix
    in a nested element resolves to its last declaration, which is good enough for a hint."""
    return {
        m.group(1).decode("ascii"): m.group(2).decode("utf-8", "replace")
        for m in _XMLNS_RE.finditer(data)
    }


def _qualify(qname: str, prefixes: dict[str, str]) -> str:
    prefix, sep, local = qname.rpartition(":")
    if not sep:
        return qname
    ns = prefixes.get(prefix)
    return f"{{{ns}}}{local}" if ns is not None else local


def _probe_match(el: ET.Element, prefixes: dict[str, str]) -> ProbeMatch:
    epr = _child(el, "EndpointReference")
    types = _tokens(_child(el, "Types"), MAX_SCOPES)
    return ProbeMatch(
        endpoint=_text(_child(epr, "Address")),
        types=types,
        scopes=_tokens(_child(el, "Scopes"), MAX_SCOPES),
        xaddrs=_tokens(_child(el, "XAddrs"), MAX_XADDRS),
        metadata_version=_text(_child(el, "MetadataVersion")),
        qualified_types=tuple(_qualify(t, prefixes) for t in types),
    )


def _first(values: list[str]) -> str | None:
    return values[0][:MAX_FIELD] if values else None
