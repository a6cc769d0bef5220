"""A tiny DNS message builder and parser for nonce names (RFC 1035 section 4), pure and bounded.

Only what the egress probe and its listener need: one question, A/AAAA/TXT answers, name
compression when parsing (resolvers compress their answers), and nothing else. Malformed input
yields None, never an exception: every message here may come from a hostile network.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

QTYPE_A = 1
QTYPE_TXT = 16
QTYPE_AAAA = 28
QCLASS_IN = 1

RCODE_NOERROR = 0
RCODE_NXDOMAIN = 3
RCODE_REFUSED = 5

MAX_MESSAGE = 4096
#: One TXT character-string (RFC 1035 section 3.3): build_response sends one.
MAX_TXT = 255
_MAX_LABELS = 127
_MAX_POINTERS = 32


@dataclass(frozen=True, slots=True)
class Question:
    qid: int
    flags: int
    name: str  # lower case, no trailing dot
    qtype: int
    qclass: int
    raw: bytes  # the question section as received (echoed verbatim in a reply)


@dataclass(slots=True)
class Response:
    qid: int
    rcode: int
    name: str
    answers: list[tuple[int, str]] = field(default_factory=list)  # (type, text value)

    def txt(self) -> list[str]:
        return [v for t, v in self.answers if t == QTYPE_TXT]


def encode_name(name: str) -> bytes | None:
    out = b""
    for label in name.strip(".").split("."):
        raw = label.encode("ascii", "replace")
        if not raw or len(raw) > 63:
            return None
        out += bytes([len(raw)]) + raw
    if len(out) + 1 > 255:
        return None
    return out + b"\x00"


def build_query(name: str, qtype: int, qid: int, *, recursion: bool = True) -> bytes:
    encoded = encode_name(name)
    if encoded is None:
        raise ValueError(f"not a valid DNS name: {name!r}")
    flags = 0x0100 if recursion else 0
    return struct.pack("!HHHHHH", qid & 0xFFFF, flags, 1, 0, 0, 0) + encoded + struct.pack("!HH", qtype, QCLASS_IN)


def _read_name(msg: bytes, pos: int) -> tuple[str, int] | None:
    """(name, position after the name in place), following compression pointers, bounded."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg) or jumps >= _MAX_POINTERS:
                return None
            if end is None:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            jumps += 1
            continue
        if n & 0xC0:
            return None
        if n == 0:
            pos += 1
            break
        if pos + 1 + n > len(msg) or len(labels) >= _MAX_LABELS:
            return None
        labels.append(msg[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    return ".".join(labels).lower(), end if end is not None else pos


def parse_query(msg: bytes) -> Question | None:
    """The one question of a query message, or None (a response, several questions, garbage)."""
    if len(msg) < 17 or len(msg) > MAX_MESSAGE:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    got = _read_name(msg, 12)
    if got is None:
        return None
    name, pos = got
    if pos + 4 > len(msg):
        return None
    qtype, qclass = struct.unpack("!HH", msg[pos : pos + 4])
    return Question(qid, flags, name, qtype, qclass, msg[12 : pos + 4])


def build_response(
    question: Question, *, rcode: int = RCODE_NOERROR, txt: str | None = None, a: str | None = None,
    ttl: int = 0, authoritative: bool = True,
) -> bytes:
    """A reply to ``question``: a TXT and/or A answer, or an empty reply with ``rcode``. TTL 0 so
    that a resolver never answers a later probe from its cache."""
    flags = 0x8000 | (question.flags & 0x7900) | (0x0400 if authoritative else 0) | (rcode & 0x0F)
    answers = b""
    count = 0
    if rcode == RCODE_NOERROR:
        if txt is not None and question.qtype in (QTYPE_TXT, 255):
            data = txt.encode("ascii", "replace")[:MAX_TXT]
            rdata = bytes([len(data)]) + data
            answers += b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_TXT, QCLASS_IN, ttl, len(rdata)) + rdata
            count += 1
        if a is not None and question.qtype in (QTYPE_A, 255):
            answers += b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_A, QCLASS_IN, ttl, 4) + ipaddress.IPv4Address(a).packed
            count += 1
    header = struct.pack("!HHHHHH", question.qid, flags, 1, count, 0, 0)
    return header + question.raw + answers


def parse_response(msg: bytes) -> Response | None:
    """A reply's id, rcode, question name and its A/AAAA/TXT answers, or None."""
    if len(msg) < 12 or len(msg) > 65535:
        return None
    qid, flags, qdcount, ancount = struct.unpack("!HHHH", msg[:8])
    if not flags & 0x8000 or qdcount > 4 or ancount > 64:
        return None
    pos = 12
    name = ""
    for _ in range(qdcount):
        got = _read_name(msg, pos)
        if got is None or got[1] + 4 > len(msg):
            return None
        name, pos = got[0], got[1] + 4
    resp = Response(qid, flags & 0x0F, name)
    for _ in range(ancount):
        got = _read_name(msg, pos)
        if got is None or got[1] + 10 > len(msg):
            return resp
        pos = got[1]
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[pos : pos + 10])
        pos += 10
        rdata = msg[pos : pos + rdlen]
        if len(rdata) < rdlen:
            return resp
        pos += rdlen
        if rtype == QTYPE_A and rdlen == 4:
            resp.answers.append((rtype, str(ipaddress.IPv4Address(rdata))))
        elif rtype == QTYPE_AAAA and rdlen == 16:
            resp.answers.append((rtype, str(ipaddress.IPv6Address(rdata))))
        elif rtype == QTYPE_TXT:
            parts, i = [], 0
            while i < len(rdata):
                n = rdata[i]
                parts.append(rdata[i + 1 : i + 1 + n].decode("ascii", "replace"))
                i += 1 + n
            resp.answers.append((rtype, "".join(parts)))
    return resp
