"""Dahua DHIP discovery (``DHDiscover.search`` on UDP 37810) builder and parser, free of I/O.

Format: reference/fingerprinting.md section 2.1. A 32-byte header, then UTF-8 JSON:

    offset size content
    0x00   4    header size, little-endian, 0x20        [US Dahua2Header; RROLLER; HAICAM dump]
    0x04   4    magic ``DHIP``
    0x08   8    session / request id, zero for discovery
    0x10   8    body length, little-endian (RROLLER: u64; US: u32 + 4 zero bytes, same bytes)
    0x18   8    body length again

Bare JSON without the header gets no answer from devices [RROLLER], so the header is always sent.
The reply is ``client.notifyDevInfo`` with a top-level ``mac`` and ``params.deviceInfo``
(real capture of an IPC-HDW1431T1-S4 [HAICAM]). Vendor/Manufacturer strings are unreliable
(``Private`` on a genuine Dahua): they are kept as evidence, never trusted here.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass, field
from typing import Any

from ..model import bounded_text
from .constants import (
    DHIP_HEADER_SIZE,
    DHIP_MAGIC,
    DHIP_MAX_LEN,
    DHIP_REPLY_METHOD,
    DHIP_SEARCH_METHOD,
    normalize_mac,
)

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<I4sQQQ")
assert _HEADER.size == DHIP_HEADER_SIZE

MAX_FIELD = 1024


@dataclass(frozen=True, slots=True)
class DhipReply:
    """A parsed ``client.notifyDevInfo``. ``info`` is ``params.deviceInfo`` as sent (JSON)."""

    source: str
    received_at: str
    method: str
    mac_text: str | None
    info: dict[str, Any] = field(default_factory=dict)
    body: str = ""  # the JSON body, decoded leniently and bounded: the `dhip` observation value

    def get(self, name: str) -> str | None:
        value = self.info.get(name)
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            return None
        return _field_text(value)

    def _nested(self, outer: str, inner: str) -> str | None:
        block = self.info.get(outer)
        if not isinstance(block, dict):
            return None
        value = block.get(inner)
        if value is None or isinstance(value, dict | list):
            return None
        return _field_text(value)

    @property
    def mac(self) -> str | None:
        return normalize_mac(self.mac_text)

    @property
    def device_class(self) -> str | None:
        """``IPC``, ``NVR``, ``VTO``, ``VTH`` ... [HAICAM, RROLLER]."""
        return self.get("DeviceClass")

    @property
    def model(self) -> str | None:
        return self.get("DeviceType")

    @property
    def serial(self) -> str | None:
        return self.get("SerialNo")

    @property
    def firmware(self) -> str | None:
        return self.get("Version")

    @property
    def vendor(self) -> str | None:
        return self.get("Vendor")

    @property
    def manufacturer(self) -> str | None:
        return self.get("Manufacturer")

    @property
    def machine_name(self) -> str | None:
        return self.get("MachineName")

    @property
    def http_port(self) -> int | None:
        return _port(self.info.get("HttpPort"))

    @property
    def port(self) -> int | None:
        """Dahua's private TCP port (37777 on the real capture)."""
        return _port(self.info.get("Port"))

    @property
    def ipv4(self) -> str | None:
        return self._nested("IPv4Address", "IPAddress")

    @property
    def gateway(self) -> str | None:
        return self._nested("IPv4Address", "DefaultGateway")

    @property
    def ipv4_mask(self) -> str | None:
        return self._nested("IPv4Address", "SubnetMask")

    def to_json(self) -> dict[str, object]:
        return {
            "device_class": self.device_class,
            "model": self.model,
            "serial": self.serial,
            "firmware": self.firmware,
            "vendor": self.vendor,
            "manufacturer": self.manufacturer,
            "mac": self.mac,
            "ipv4": self.ipv4,
            "gateway": self.gateway,
            "http_port": self.http_port,
            "port": self.port,
        }


def frame(body: bytes, session: int = 0) -> bytes:
    """Wrap a JSON body in the 32-byte DHIP header."""
    return _HEADER.pack(DHIP_HEADER_SIZE, DHIP_MAGIC, session, len(body), len(body)) + body


def build_probe() -> tuple[bytes, str]:
    """The ``DHDiscover.search`` request (RROLLER/HAICAM use ``uni: 1``), framed. DHIP discovery
    carries no message id: the second element is ``""``, kept for symmetry with wsd and sadp."""
    body = json.dumps(
        {"method": DHIP_SEARCH_METHOD, "params": {"mac": "", "uni": 1}}, separators=(",", ":")
    )
    return frame((body + "\n").encode("utf-8")), ""


def parse_reply(data: bytes, source: str, now: str) -> DhipReply | None:
    """Parse a framed ``client.notifyDevInfo``. None for a wrong or missing header, a length
    that the datagram does not hold, a search request (ours or another tool's), bad JSON, or
    anything oversized. Never raises on device bytes."""
    if len(data) < DHIP_HEADER_SIZE or len(data) > DHIP_MAX_LEN:
        log.debug("dhip: %s: %d bytes, outside %d..%d", source, len(data), DHIP_HEADER_SIZE, DHIP_MAX_LEN)
        return None
    size, magic, _session, length, length2 = _HEADER.unpack_from(data)
    if size != DHIP_HEADER_SIZE or magic != DHIP_MAGIC:
        log.debug("dhip: %s: not a DHIP header", source)
        return None
    available = len(data) - DHIP_HEADER_SIZE
    if length == 0 or length > available:
        log.debug("dhip: %s: body length %d, datagram holds %d", source, length, available)
        return None
    if length2 not in (0, length) and (length2 & 0xFFFFFFFF) != length:
        # US writes a u32 + 4 reserved bytes; anything else disagreeing is not a DHIP reply.
        return None
    return parse_body(data[DHIP_HEADER_SIZE : DHIP_HEADER_SIZE + length], source, now)


def parse_body(body: bytes | str, source: str, now: str) -> DhipReply | None:
    """Parse the JSON body alone (the ``dhip`` observation value holds just this)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if len(text) > DHIP_MAX_LEN:
        return None
    try:
        doc = json.loads(text.strip().rstrip("\x00"))
    except (ValueError, RecursionError) as exc:
        log.debug("dhip: %s: unusable JSON (%s)", source, type(exc).__name__)
        return None
    if not isinstance(doc, dict) or doc.get("method") != DHIP_REPLY_METHOD:
        return None
    params = doc.get("params")
    info = params.get("deviceInfo") if isinstance(params, dict) else None
    if not isinstance(info, dict):
        return None
    mac = doc.get("mac")
    if not isinstance(mac, str):
        mac = info.get("MAC") if isinstance(info.get("MAC"), str) else None
    return DhipReply(
        source=source,
        received_at=now,
        method=DHIP_REPLY_METHOD,
        mac_text=mac[:64] if mac else None,
        info=info,
        body=bounded_text(text.strip()),
    )


def is_search(data: bytes) -> bool:
    """True for a framed ``DHDiscover.search`` request (used by stand-in responders)."""
    if len(data) < DHIP_HEADER_SIZE or len(data) > DHIP_MAX_LEN:
        return False
    size, magic, _session, length, _ = _HEADER.unpack_from(data)
    if size != DHIP_HEADER_SIZE or magic != DHIP_MAGIC or length > len(data) - DHIP_HEADER_SIZE:
        return False
    try:
        doc = json.loads(data[DHIP_HEADER_SIZE : DHIP_HEADER_SIZE + length])
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("method") == DHIP_SEARCH_METHOD


def _field_text(value: object) -> str | None:
    """A field as text for the model. A JSON escape such as ``"\\ud800"`` decodes to a lone
    surrogate, which no UTF-8 writer (the store, the reports, the terminal) can encode: it
    becomes ``?`` here, so the device's text cannot crash what records it."""
    text = str(value).strip()[:MAX_FIELD].encode("utf-8", "replace").decode("utf-8")
    return text or None


def _port(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()[:6])
    if isinstance(value, int) and 0 < value < 65536:
        return value
    return None
