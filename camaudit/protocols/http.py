"""HTTP/1.x request builder and response parser, sans I/O (bytes in, model or None out).

The parser is lenient because camera web servers are: bare ``\\n`` line ends, folded header lines,
header lines without a colon, upper-case header names (Dahua, fingerprinting.md section 4.2) and
missing reason phrases are all accepted. It is also bounded: header count, title length and body
size are capped, and a response cut short (truncated, oversized, slow) still yields what arrived,
flagged incomplete. The raw status line and header block are kept byte for byte, because their
shape (header case and order) is itself evidence (DESIGN.md section 3, ``http_headers``).

The RTSP parser (``camaudit.protocols.rtsp``) reuses the head parser here: RTSP/1.0 borrows
HTTP/1.1's message syntax (RFC 2326 section 6).
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import html
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import mmh3

#: Header lines kept from one response; real devices send 5-20 (fingerprinting.md 4.2 samples).
MAX_HEADERS = 200
#: Characters kept from a <title>; camera titles are short ("WEB SERVICE", fingerprinting.md 4.2).
MAX_TITLE = 256
#: Status codes that carry no body (RFC 9110 section 6.4.1).
_NO_BODY_STATUS = frozenset({204, 304})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"^(HTTP|RTSP)/(\d{1,2}\.\d{1,2})[ \t]+(\d{3})(?:[ \t]+([^\r\n]*))?\r?$")
_TITLE = re.compile(r"<title\b[^>]*>(.*?)(?:</title\s*>|<|$)", re.IGNORECASE | re.DOTALL)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.I)
_SPACE = re.compile(r"\s+")
_BOM = b"\xef\xbb\xbf"
#: chunk-size = 1*HEXDIG (RFC 9112 section 7.1); 16 digits already exceed any body we read.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
#: Python codecs that are no character set a web page can use: they raise on ordinary bytes even
#: with errors="replace" (undefined, idna, punycode) or interpret backslashes (the escapes).
_NOT_CHARSETS = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape"})


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """A status line and header block, as parsed; ``raw`` is exactly what arrived (maybe cut)."""

    protocol: str  # "HTTP/1.1", "RTSP/1.0", ...
    status: int
    reason: str
    #: (name, value) in original case and order; folded lines are joined with a space.
    headers: tuple[tuple[str, str], ...]
    #: The status line and header lines as received, without the final blank line.
    raw: bytes
    #: False when the blank line ending the head never arrived (truncated or oversized).
    complete: bool

    def get(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every header called ``name`` (any case), in order: WWW-Authenticate may repeat."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def content_length(self) -> int | None:
        """The Content-Length when it is one clean non-negative number, else None."""
        values = {v.strip() for v in self.get_all("Content-Length")}
        if len(values) != 1:
            return None
        (text,) = values
        # isascii: "4²" (Latin-1 0xB2 in a header) passes isdigit() but int() refuses it.
        if not (text.isascii() and text.isdigit()) or len(text) > 15:
            return None
        return int(text)

    @property
    def chunked(self) -> bool:
        encoding = self.get("Transfer-Encoding")
        return encoding is not None and "chunked" in encoding.lower()

    def text(self) -> str:
        """The raw head decoded as Latin-1 (every byte maps to one character, nothing lost)."""
        return self.raw.decode("latin-1").replace("\x00", "\ufffd")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One HTTP response: the head, the (de-chunked) body as far as it arrived."""

    head: ResponseHead
    body: bytes
    #: True when the body ended where its framing said (Content-Length, last chunk).
    body_complete: bool

    @property
    def status(self) -> int:
        return self.head.status

    @property
    def content_type(self) -> str:
        return (self.head.get("Content-Type") or "").strip()


# --- requests --------------------------------------------------------------------------------


def host_header(address: str, port: int, *, default_port: int) -> str:
    """The Host header value for an address literal: IPv6 gets brackets; default ports are dropped."""
    host = f"[{address}]" if ":" in address else address
    return host if port == default_port else f"{host}:{port}"


def build_get(
    address: str, port: int, path: str = "/", *, tls: bool = False, user_agent: str = "camaudit"
) -> bytes:
    """A plain HTTP/1.1 GET that asks the server to close the connection after answering."""
    if not path.startswith("/") or any(c in path for c in "\r\n \t\x00"):
        raise ValueError(f"unsafe request path {path!r}")
    host = host_header(address, port, default_port=443 if tls else 80)
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {user_agent}",
        "Accept: */*",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


# --- response heads --------------------------------------------------------------------------


def find_head_end(data: bytes, start: int = 0) -> tuple[int, int] | None:
    """``(end of the header lines, start of the body)`` or None when no blank line arrived yet."""
    match = _HEAD_END.search(data, max(0, start))
    if match is None:
        return None
    return match.start(), match.end()


def parse_head(data: bytes, *, protocols: tuple[str, ...] = ("HTTP",)) -> ResponseHead | None:
    """Parse a status line and headers from the start of ``data``.

    Returns None when ``data`` does not start with a status line of one of ``protocols``. When the
    head is cut (no blank line), the complete header lines are parsed, the last partial one is
    dropped, and ``complete`` is False.
    """
    bounds = find_head_end(data)
    if bounds is None:
        raw, complete = data, False
    else:
        raw, complete = data[: bounds[0]], True
    lines = raw.split(b"\n")
    match = _STATUS_LINE.match(lines[0])
    if match is None or match.group(1).decode("ascii") not in protocols:
        return None
    protocol = f"{match.group(1).decode('ascii')}/{match.group(2).decode('ascii')}"
    status = int(match.group(3))
    reason = (match.group(4) or b"").decode("latin-1").strip()
    header_lines = lines[1:]
    if not complete and header_lines and not data.endswith(b"\n"):
        header_lines = header_lines[:-1]  # the last line was cut mid-way
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        text = line.rstrip(b"\r").decode("latin-1")
        if not text:
            continue
        if text[0] in " \t" and headers:
            # obs-fold (RFC 9112 section 5.2): a continuation of the previous header.
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {text.strip()}".strip())
            continue
        name, sep, value = text.partition(":")
        if not sep or not name.strip() or len(headers) >= MAX_HEADERS:
            continue
        headers.append((name.strip(), value.strip()))
    return ResponseHead(protocol, status, reason, tuple(headers), raw, complete)


# --- bodies ----------------------------------------------------------------------------------


def decode_chunked(data: bytes) -> tuple[bytes, bool]:
    """De-chunk leniently: ``(body so far, True when the last chunk arrived)``.

    A chunk-size line that is not hex ends decoding; the bytes after it are appended as they are,
    because a misbehaving server that claimed chunking but did not chunk still sent a body.
    """
    out = bytearray()
    pos = 0
    while pos < len(data):
        line_end = data.find(b"\n", pos)
        if line_end < 0:
            return bytes(out), False
        size = chunk_size(data[pos:line_end])
        if size is None:
            out += data[pos:]
            return bytes(out), False
        if size == 0:
            return bytes(out), True
        start = line_end + 1
        out += data[start : start + size]
        if start + size > len(data):
            return bytes(out), False
        pos = start + size
        # The CRLF after the chunk data; tolerate a bare LF or nothing.
        if data[pos : pos + 2] == b"\r\n":
            pos += 2
        elif data[pos : pos + 1] == b"\n":
            pos += 1
    return bytes(out), False


def chunk_size(line: bytes) -> int | None:
    """The size on a chunk-size line (extensions after ``;`` ignored), or None when it is not
    hex digits. Strict on purpose: ``int(text, 16)`` also takes ``-4``, ``+4``, ``0x4`` and
    ``4_0``, and a negative size would walk the decoder backwards, for ever."""
    text = line.split(b";", 1)[0].strip()
    return int(text, 16) if _CHUNK_SIZE.fullmatch(text) else None


def body_framing(head: ResponseHead) -> str:
    """How the body ends: ``none``, ``length``, ``chunked`` or ``close`` (RFC 9112 section 6.3)."""
    if 100 <= head.status < 200 or head.status in _NO_BODY_STATUS:
        return "none"
    if head.chunked:
        return "chunked"
    if head.content_length is not None:
        return "length"
    return "close"


def parse_response(data: bytes, *, eof: bool = False) -> HttpResponse | None:
    """Parse a whole (or cut) HTTP response. ``eof``: the server closed, so a ``close``-framed
    body is complete. None when ``data`` is not HTTP."""
    head = parse_head(data, protocols=("HTTP",))
    if head is None:
        return None
    if not head.complete:
        return HttpResponse(head, b"", False)
    bounds = find_head_end(data)
    assert bounds is not None
    raw_body = data[bounds[1] :]
    framing = body_framing(head)
    if framing == "none":
        return HttpResponse(head, b"", True)
    if framing == "chunked":
        body, done = decode_chunked(raw_body)
        return HttpResponse(head, body, done)
    if framing == "length":
        length = head.content_length or 0
        return HttpResponse(head, raw_body[:length], len(raw_body) >= length)
    return HttpResponse(head, raw_body, eof)


class MessageFramer:
    """Says, as bytes arrive, when a response is complete, in time linear in its size.

    For the read loop of a probe: ``feed()`` each chunk; it returns True once the head and the body
    its framing announces have arrived. ``rtsp=True`` applies RTSP's rule that a message without
    Content-Length has no body (RFC 2326 section 4.3), where HTTP would read until close.
    """

    def __init__(self, *, rtsp: bool = False) -> None:
        self._rtsp = rtsp
        self._prefixes = (b"RTSP/", b"HTTP/") if rtsp else (b"HTTP/",)
        self._buf = bytearray()
        self._scanned = 0
        self.head: ResponseHead | None = None
        self.body_start = -1
        self._framing = ""
        self._chunk_pos = 0
        self._done = False

    @property
    def until_close(self) -> bool:
        """True once the head arrived and the body runs until the server closes."""
        return self.head is not None and self._framing == "close"

    @property
    def foreign(self) -> bool:
        """True once the first bytes show this is not the expected protocol at all."""
        start = bytes(self._buf[:5])
        return bool(start) and not any(p.startswith(start) for p in self._prefixes)

    def feed(self, data: bytes) -> bool:
        self._buf += data
        if self._done:
            return True
        if self.body_start < 0:
            bounds = find_head_end(bytes(self._buf[max(0, self._scanned - 3) :]))
            if bounds is None:
                self._scanned = len(self._buf)
                return False
            offset = max(0, self._scanned - 3)
            self.body_start = offset + bounds[1]
            protocols = ("RTSP", "HTTP") if self._rtsp else ("HTTP",)
            self.head = parse_head(bytes(self._buf[: self.body_start]), protocols=protocols)
            if self.head is None:
                self._framing = "close"
            elif self._rtsp:
                self._framing = "length" if self.head.content_length else "none"
            else:
                self._framing = body_framing(self.head)
            self._chunk_pos = self.body_start
        self._done = self._check()
        return self._done

    def _check(self) -> bool:
        if self._framing == "none":
            return True
        if self._framing == "length":
            assert self.head is not None
            return len(self._buf) - self.body_start >= (self.head.content_length or 0)
        if self._framing == "chunked":
            return self._advance_chunks()
        return False

    def _advance_chunks(self) -> bool:
        buf = self._buf
        while True:
            line_end = buf.find(b"\n", self._chunk_pos)
            if line_end < 0:
                return False
            line = bytes(buf[self._chunk_pos : line_end])
            if not line.split(b";", 1)[0].strip():
                self._chunk_pos = line_end + 1  # the CRLF after a chunk's data
                continue
            size = chunk_size(line)
            if size is None:
                self._framing = "close"  # not really chunked: read until the server closes
                return False
            if size == 0:
                return True
            end = line_end + 1 + size
            if end > len(buf):
                return False
            self._chunk_pos = end


# --- content ---------------------------------------------------------------------------------


def charset_of(content_type: str | None, body: bytes = b"") -> str | None:
    """The declared charset (header first, then a <meta> tag) when Python can decode text with it
    leniently. A device may name any Python codec: non-text ones (``hex``, ``rot13``) and the
    ones that refuse ``errors="replace"`` or are not character sets at all (``undefined``,
    ``idna``, ``punycode``, ``unicode_escape``) are skipped, as an unknown name is."""
    candidates = []
    if content_type:
        found = _CHARSET.search(content_type)
        if found:
            candidates.append(found.group(1))
    meta = _META_CHARSET.search(body[:2048])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "replace"))
    for name in candidates:
        try:
            codec = codecs.lookup(name).name
            b"a".decode(codec, errors="replace")  # LookupError for a non-text codec (b"" skips it)
        except (LookupError, UnicodeError):
            continue
        if codec not in _NOT_CHARSETS:
            return codec
    return None


def decode_text(body: bytes, content_type: str | None = None) -> str:
    """Decode a body leniently: BOM, then declared charset, then UTF-8, never raising."""
    if body.startswith(_BOM):
        return body[len(_BOM) :].decode("utf-8", errors="replace")
    charset = charset_of(content_type, body) or "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except (LookupError, UnicodeError, ValueError):  # a codec that still refuses: last resort
        return body.decode("utf-8", errors="replace")


def extract_title(body: bytes, content_type: str | None = None, *, limit: int = MAX_TITLE) -> str | None:
    """The text of the first <title>: entities decoded, whitespace collapsed, cut to ``limit``.

    None when the body has no <title>; "" for an empty one (Amcrest pages have ``<title></title>``,
    fingerprinting.md corpus nmap-amcrest-http-shape). A title left open ends at the next tag.
    """
    text = decode_text(body, content_type)
    match = _TITLE.search(text)
    if match is None:
        return None
    raw = match.group(1)[: limit * 8]
    title = _SPACE.sub(" ", html.unescape(raw)).strip()
    return title[:limit]


def looks_like_html(content_type: str, body: bytes) -> bool:
    """True for HTML pages: many devices answer any path, /favicon.ico too, with their index page."""
    if "html" in content_type.lower():
        return True
    start = body.lstrip(_BOM + b" \t\r\n")[:64].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<meta"))


def favicon_hashes(data: bytes) -> tuple[str, str]:
    """``(mmh3, md5)`` of favicon bytes: the Shodan hash is MurmurHash3 (x86, 32-bit, signed) of
    the base64 text with a newline every 76 characters, i.e. ``base64.encodebytes`` (the form
    nuclei's favicon hashes use, fingerprinting.md section 4)."""
    digest = mmh3.hash(base64.encodebytes(data))
    return str(digest), hashlib.md5(data, usedforsecurity=False).hexdigest()


def redirect_path(
    location: str | None, address: str, port: int, *, tls: bool = False
) -> str | None:
    """The path to follow when ``location`` points back to the same host, port and scheme.

    Relative locations (``/index.asp``, ``doc/page/login.asp``) are same-host. Anything naming
    another host, port or scheme is not followed: camaudit only talks to the address it was given.
    """
    if not location:
        return None
    location = location.strip()
    # Non-ASCII: the request line is ASCII (build_get), and guessing an encoding for the path
    # would send the device a request it never named.
    if any(c in location for c in "\r\n\x00 \t") or len(location) > 2048 or not location.isascii():
        return None
    try:
        parts = urlsplit(location)  # ValueError on a broken IPv6 literal ("http://[::1/")
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        if parts.scheme.lower() != ("https" if tls else "http"):
            return None
        try:
            host, other_port = parts.hostname, parts.port
        except ValueError:
            return None
        if host is None or host.lower() != address.lower():
            return None
        if (other_port or (443 if tls else 80)) != port:
            return None
    path = parts.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return path + (f"?{parts.query}" if parts.query else "")


def is_redirect(status: int) -> bool:
    return status in _REDIRECT_STATUS
