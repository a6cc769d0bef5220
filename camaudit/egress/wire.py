"""The egress probe's wire formats, pure (bytes in, values out): nonces, the echo line, NTP,
NAT-PMP and SSDP. No sockets here; :mod:`.active` and :mod:`.listener` do the I/O.

Every probe carries its own nonce so that the probe record, the listener's log and any capture
can be joined unambiguously (reference/egress.md section 1.2). A nonce is ``cmx`` followed by 20
lowercase hex digits: a valid DNS label, matched case-insensitively because resolvers may
randomise the case of query names (DNS 0x20), and easy to find in any payload because ``x`` is
not a hex digit.

The listener's answers (the echo line, the DNS TXT record) may end with what the listener serves,
as ``key=value`` tokens after the fields older checks read: ``zone=<zone>`` (``zone=-``: none),
``tcp=<ports>`` and ``udp=<ports>`` (``80,443,8000-8010``; ``-``: none). A check compares them
with its own options and says in its notes where they disagree. Older checks ignore the tokens;
older listeners send none, and a check then says nothing about them.
"""

from __future__ import annotations

import re
import secrets
import struct
from dataclasses import dataclass

NONCE_PREFIX = "cmx"
NONCE_RE = re.compile(rb"cmx[0-9a-f]{20}", re.IGNORECASE)
NONCE_TEXT_RE = re.compile(r"^cmx[0-9a-f]{20}$", re.IGNORECASE)

#: First line of a TCP or UDP probe, and of the listener's answer. An answer counts only when it
#: carries the probe's own nonce (reference/lab.md section 9: only application answers count).
PROBE_MAGIC = b"CAMAUDIT-EGRESS"
ECHO_MAGIC = b"CAMAUDIT-EGRESS-ECHO"
MAX_LINE = 256


def new_nonce() -> str:
    return NONCE_PREFIX + secrets.token_hex(10)


def is_nonce(text: str) -> bool:
    return bool(NONCE_TEXT_RE.match(text))


def find_nonce(data: bytes) -> str | None:
    """The first nonce anywhere in ``data`` (lower case), or None."""
    match = NONCE_RE.search(data[:4096])
    return match.group(0).decode("ascii").lower() if match else None


def probe_line(nonce: str, path: str) -> bytes:
    """``CAMAUDIT-EGRESS <nonce> <path>\\r\\n``: the path is informational for the listener log."""
    return PROBE_MAGIC + b" " + nonce.encode("ascii") + b" " + path.encode("ascii", "replace")[:64] + b"\r\n"


def parse_probe(data: bytes) -> tuple[str, str] | None:
    """(nonce, path) of a probe line, or None when ``data`` is not one."""
    line = data[:MAX_LINE].split(b"\n", 1)[0].strip()
    parts = line.split(b" ")
    if len(parts) < 2 or parts[0] != PROBE_MAGIC:
        return None
    nonce = parts[1].decode("ascii", "replace").lower()
    if not is_nonce(nonce):
        return None
    path = parts[2].decode("ascii", "replace")[:64] if len(parts) > 2 else ""
    return nonce, path


def echo_line(nonce: str, peer: str, facts: ListenerFacts | None = None) -> bytes:
    """The listener's answer: the nonce, the source address it saw (shows NAT), and what the
    listener serves, as far as it fits in :data:`MAX_LINE`."""
    line = ECHO_MAGIC + b" " + nonce.encode("ascii") + b" " + peer.encode("ascii", "replace")[:64]
    if facts is not None:
        tokens = facts.tokens(MAX_LINE - len(line) - 3)
        if tokens:
            line += b" " + tokens.encode("ascii")
    return line + b"\r\n"


def parse_echo(data: bytes, nonce: str) -> str | None:
    """The source address the listener saw, when ``data`` is the echo of ``nonce``; else None."""
    line = data[:MAX_LINE].split(b"\n", 1)[0].strip()
    parts = line.split(b" ")
    if len(parts) < 2 or parts[0] != ECHO_MAGIC:
        return None
    if parts[1].decode("ascii", "replace").lower() != nonce.lower():
        return None
    return parts[2].decode("ascii", "replace") if len(parts) > 2 else ""


def echo_facts(data: bytes, nonce: str) -> ListenerFacts | None:
    """What the listener said it serves, in the echo of ``nonce``; None when it said nothing."""
    if parse_echo(data, nonce) is None:
        return None
    line = data[:MAX_LINE].split(b"\n", 1)[0].strip()
    return parse_facts(line.decode("ascii", "replace"))


# -- what the listener serves ----------------------------------------------------------------------
_MAX_FACT_PORTS = 65535


@dataclass(frozen=True, slots=True)
class ListenerFacts:
    """What a listener serves, as it states it. ``None`` in a field: the listener did not say."""

    zone: str | None = None  # "" when the listener serves no zone
    tcp: frozenset[int] | None = None
    udp: frozenset[int] | None = None

    def tokens(self, limit: int = 255) -> str:
        """``zone=... tcp=... udp=...`` within ``limit`` characters: the port lists are dropped
        before the zone when they do not fit (a check then says nothing about ports)."""
        zone = None if self.zone is None else f"zone={self.zone or '-'}"
        ports = [f"{name}={_port_ranges(value)}" for name, value in (("tcp", self.tcp), ("udp", self.udp))
                 if value is not None]
        for tokens in ([zone, *ports], [zone]):
            text = " ".join(t for t in tokens if t)
            if len(text) <= limit:
                return text
        return ""

    def to_json(self) -> dict[str, object]:
        """``{"zone": "egress.example.org" or None for no zone, "tcp": "80,443", "udp": "-"}``,
        each key present only when the listener said it (the ``listener`` of a path's evidence)."""
        doc: dict[str, object] = {}
        if self.zone is not None:
            doc["zone"] = self.zone or None
        if self.tcp is not None:
            doc["tcp"] = _port_ranges(self.tcp)
        if self.udp is not None:
            doc["udp"] = _port_ranges(self.udp)
        return doc

    @classmethod
    def from_json(cls, doc: object) -> ListenerFacts | None:
        if not isinstance(doc, dict):
            return None
        tokens = [f"{key}={doc[key] or '-'}" for key in ("zone", "tcp", "udp") if key in doc]
        return parse_facts(" ".join(str(t) for t in tokens))


def parse_facts(text: str) -> ListenerFacts | None:
    """The ``zone=``/``tcp=``/``udp=`` tokens anywhere in ``text`` (an echo line, a TXT string);
    None when there are none. A malformed token counts as not said."""
    zone: str | None = None
    ports: dict[str, frozenset[int] | None] = {"tcp": None, "udp": None}
    for token in text[:1024].split():
        key, sep, value = token.partition("=")
        if not sep:
            continue
        if key == "zone" and 0 < len(value) <= 253 and value.isascii():
            zone = "" if value == "-" else value.strip(".").lower()
        elif key in ports:
            ports[key] = _parse_port_ranges(value)
    if zone is None and ports["tcp"] is None and ports["udp"] is None:
        return None
    return ListenerFacts(zone=zone, tcp=ports["tcp"], udp=ports["udp"])


def _port_ranges(ports: frozenset[int]) -> str:
    """``53,123,8000-8010``; ``-`` for none."""
    out: list[str] = []
    run: list[int] = []
    for port in sorted(ports):
        if run and port == run[-1] + 1:
            run.append(port)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)))
        run = [port]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)))
    return ",".join(out) or "-"


def _parse_port_ranges(text: str) -> frozenset[int] | None:
    if text == "-":
        return frozenset()
    ports: set[int] = set()
    for part in text.split(",")[:512]:
        lo_text, _, hi_text = part.partition("-")
        hi_text = hi_text or lo_text
        if not all(t.isascii() and t.isdigit() and len(t) <= 5 for t in (lo_text, hi_text)):
            return None
        lo, hi = int(lo_text), int(hi_text)
        if not 0 < lo <= hi < 65536:
            return None
        ports.update(range(lo, hi + 1))
        if len(ports) > _MAX_FACT_PORTS:
            return None
    return frozenset(ports) if ports else None


# -- NTP (RFC 5905 section 7.3) ------------------------------------------------------------------
NTP_PACKET_LEN = 48


def ntp_request(nonce: str) -> tuple[bytes, bytes]:
    """A client (mode 3) request whose transmit timestamp is 8 bytes of the nonce's hex; a server
    copies it into the reply's origin timestamp, which is how a reply is matched (RFC 5905 8).
    Returns (packet, the 8 timestamp bytes)."""
    stamp = bytes.fromhex(nonce[-16:])
    packet = bytes([0x23]) + bytes(39) + stamp  # LI 0, VN 4, mode 3
    return packet, stamp


def ntp_request_stamp(packet: bytes) -> bytes | None:
    """The transmit timestamp of a client request, or None if ``packet`` is not one."""
    if len(packet) < NTP_PACKET_LEN or packet[0] & 0x07 != 3:
        return None
    return packet[40:48]


def ntp_reply(request: bytes, now_ntp: int) -> bytes | None:
    """A server (mode 4) reply to ``request`` (stratum 2; only the origin timestamp matters)."""
    stamp = ntp_request_stamp(request)
    if stamp is None:
        return None
    version = (request[0] >> 3) & 0x07 or 4
    head = bytes([(version << 3) | 4, 2, 6, 0xEC]) + bytes(8) + b"CAMA"
    ts = struct.pack("!Q", now_ntp)
    return head + ts + stamp + ts + ts


def ntp_reply_matches(reply: bytes, stamp: bytes) -> bool:
    return len(reply) >= NTP_PACKET_LEN and reply[0] & 0x07 == 4 and reply[24:32] == stamp


# -- NAT-PMP (RFC 6886 section 3.2) and PCP (RFC 6887) ---------------------------------------------
NATPMP_PORT = 5351


def natpmp_external_address_request() -> bytes:
    return b"\x00\x00"  # version 0, opcode 0: "what is my external address?"


@dataclass(frozen=True, slots=True)
class PortMapperReply:
    protocol: str  # natpmp | pcp
    result_code: int
    external_address: str | None


def parse_natpmp_reply(data: bytes) -> PortMapperReply | None:
    """A NAT-PMP external-address reply, or a PCP server's answer to it (a PCP server that does
    not speak NAT-PMP answers UNSUPP_VERSION: RFC 6887 section 9). Either proves a port-mapping
    service on the gateway."""
    if len(data) >= 12 and data[0] == 0 and data[1] == 128:
        code = struct.unpack("!H", data[2:4])[0]
        addr = ".".join(str(b) for b in data[8:12]) if code == 0 else None
        return PortMapperReply("natpmp", code, addr)
    if len(data) >= 4 and data[0] == 0 and data[1] & 0x80:
        return PortMapperReply("natpmp", struct.unpack("!H", data[2:4])[0], None)
    if len(data) >= 24 and data[0] == 2 and data[1] & 0x80:
        return PortMapperReply("pcp", data[3], None)
    return None


# -- SSDP (UPnP Device Architecture 1.1 section 1.3) ---------------------------------------------
SSDP_GROUP = "239.255.255.250"
SSDP_PORT = 1900
IGD_TARGET = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"


def ssdp_search(target: str = IGD_TARGET, mx: int = 1) -> bytes:
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        f"HOST: {SSDP_GROUP}:{SSDP_PORT}\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"MX: {mx}\r\n"
        f"ST: {target}\r\n\r\n"
    ).encode("ascii")


def parse_ssdp_response(data: bytes) -> dict[str, str] | None:
    """Headers (upper-case names) of an SSDP search response, or None."""
    try:
        text = data[:2048].decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
        return None
    lines = text.split("\r\n")
    if not lines or not lines[0].upper().startswith("HTTP/1.1 200"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and len(headers) < 32:
            headers[name.strip().upper()] = value.strip()[:512]
    return headers
