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
#: Interim (1xx) responses skipped before the final one; a device sending more is broken or
#: hostile, and its answer ends there (RFC 9110 section 15.2 allows several, real servers send 1-2).
MAX_INTERIM = 8

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"^(HTTP|RTSP)/(\d{1,2}\.\d{1,2})[ \t]+(\d{3})(?:[ \t]+([^\r\n]*))?\r?$")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.I)
_TITLE_OPEN = re.compile(r"<title\b", re.IGNORECASE)
#: A chunk size is hex digits only (RFC 9112 section 7.1): no sign, no "0x", no inner spaces, no
#: "_" (all of which ``int(text, 16)`` accepts). 16 digits reach 2**64, far past any byte limit.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_SPACE = re.compile(r"\s+")
_BOM = b"\xef\xbb\xbf"
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
    #: What was wrong with the framing, in words ("" when nothing): a chunk size that is not hex,
    #: too many interim responses. The bytes are kept as they came either way.
    problem: str = ""
    #: Interim (1xx) responses that came before this one and were skipped.
    interim: int = 0

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


def is_interim(status: int) -> bool:
    """True for a 1xx response that precedes the real answer (100 Continue, 102, 103 Early
    Hints); 101 Switching Protocols is final (RFC 9110 section 15.2)."""
    return 100 <= status < 200 and status != 101


def chunk_size(line: bytes) -> int | None:
    """The size on a chunk-size line (extensions after ``;`` ignored), or None unless it is 1 to
    16 hex digits (optionally followed by spaces): ``-5``, ``+5``, `` 5``, ``0x5`` are not sizes."""
    size_text = line.rstrip(b"\r").split(b";", 1)[0].rstrip(b" \t")
    if _CHUNK_SIZE.fullmatch(size_text) is None:
        return None
    return int(size_text, 16)


def _dechunk(data: bytes) -> tuple[bytes, bool, bytes | None]:
    """``(body so far, last chunk arrived, the bad size line or None)``; linear in ``data``."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        line_end = data.find(b"\n", pos)
        if line_end < 0:
            return bytes(out), False, None
        size = chunk_size(data[pos:line_end])
        if size is None:
            out += data[pos:]
            return bytes(out), False, data[pos:line_end]
        if size == 0:
            return bytes(out), True, None
        start = line_end + 1
        out += data[start : start + size]
        if start + size > len(data):
            return bytes(out), False, None
        next_pos = start + size
        # The CRLF after the chunk data; tolerate a bare LF or nothing.
        if data[next_pos : next_pos + 2] == b"\r\n":
            next_pos += 2
        elif data[next_pos : next_pos + 1] == b"\n":
            next_pos += 1
        # Sizes are never negative, so every turn consumes at least a line end and one byte.
        assert next_pos > pos, "chunk decoding must move forward"
        pos = next_pos
    return bytes(out), False, None


def decode_chunked(data: bytes) -> tuple[bytes, bool]:
    """De-chunk leniently: ``(body so far, True when the last chunk arrived)``.

    A chunk-size line that is not hex ends decoding; the bytes after it are appended as they are,
    because a misbehaving server that claimed chunking but did not chunk still sent a body.
    """
    body, done, _ = _dechunk(data)
    return body, done


def _bad_size_problem(line: bytes) -> str:
    shown = line.rstrip(b"\r")[:24].decode("latin-1")
    return f"chunked body with an invalid chunk size {shown!r}; kept the bytes as they came"


def skip_interim(data: bytes) -> tuple[int, int, int]:
    """``(start of the final response, interim responses before it, start of the last of them)``:
    1xx heads are skipped, at most MAX_INTERIM + 1 of them (more means no answer is coming)."""
    start = last = 0
    count = 0
    while count <= MAX_INTERIM:
        bounds = find_head_end(data, start)
        if bounds is None:
            break
        head = parse_head(data[start : bounds[1]], protocols=("HTTP",))
        if head is None or not is_interim(head.status):
            break
        assert bounds[1] > start, "each interim head consumes bytes"
        last, start = start, bounds[1]
        count += 1
    return start, count, last


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
    body is complete. None when ``data`` is not HTTP. Interim (1xx) responses before the final one
    are skipped; after more than MAX_INTERIM of them the last is returned, with a problem."""
    start, interim, last = skip_interim(data)
    if interim > MAX_INTERIM:
        head = parse_head(data[last:start], protocols=("HTTP",))
        assert head is not None  # skip_interim parsed it
        problem = f"more than {MAX_INTERIM} interim (1xx) responses and no final answer"
        return HttpResponse(head, b"", False, problem, interim)
    data = data[start:]
    head = parse_head(data, protocols=("HTTP",))
    if head is None:
        return None
    if not head.complete:
        return HttpResponse(head, b"", False, interim=interim)
    bounds = find_head_end(data)
    assert bounds is not None
    raw_body = data[bounds[1] :]
    framing = body_framing(head)
    if framing == "none":
        return HttpResponse(head, b"", True, interim=interim)
    if framing == "chunked":
        body, done, bad = _dechunk(raw_body)
        problem = _bad_size_problem(bad) if bad is not None else ""
        return HttpResponse(head, body, done, problem, interim)
    if framing == "length":
        length = head.content_length or 0
        return HttpResponse(head, raw_body[:length], len(raw_body) >= length, interim=interim)
    return HttpResponse(head, raw_body, eof, interim=interim)


class MessageFramer:
    """Says, as bytes arrive, when a response is complete, in time linear in its size.

    For the read loop of a probe: ``feed()`` each chunk; it returns True once the head and the body
    its framing announces have arrived. ``rtsp=True`` applies RTSP's rule that a message without
    Content-Length has no body (RFC 2326 section 4.3), where HTTP would read until close. HTTP
    interim (1xx) responses are skipped; after more than MAX_INTERIM of them the framer gives up
    (True, ``too_many_interim``). Every loop here consumes input on every turn, or stops.
    """

    def __init__(self, *, rtsp: bool = False) -> None:
        self._rtsp = rtsp
        self._prefixes = (b"RTSP/", b"HTTP/") if rtsp else (b"HTTP/",)
        self._buf = bytearray()
        self._scanned = 0
        #: Where the current (final, as far as we know) response starts: after any interim ones.
        self._head_start = 0
        self.head: ResponseHead | None = None
        self.body_start = -1
        self._framing = ""
        self._chunk_pos = 0
        self._done = False
        self.interim = 0
        self.too_many_interim = False
        #: The chunk-size line that was not hex digits, when one came (the body is then read
        #: until the server closes).
        self.bad_chunk_size: bytes | None = None

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
        while self.body_start < 0:
            search_from = max(self._head_start, self._scanned - 3)
            match = _HEAD_END.search(self._buf, search_from)
            if match is None:
                self._scanned = len(self._buf)
                return False
            end = match.end()
            protocols = ("RTSP", "HTTP") if self._rtsp else ("HTTP",)
            head = parse_head(bytes(self._buf[self._head_start : end]), protocols=protocols)
            if head is not None and not self._rtsp and is_interim(head.status):
                # 100 Continue, 102 Processing, 103 Early Hints: the answer is still to come.
                assert end > self._head_start, "each interim head consumes bytes"
                self.interim += 1
                self._head_start = self._scanned = end
                if self.interim > MAX_INTERIM:
                    self.head = head
                    self.too_many_interim = True
                    self._done = True
                    return True
                continue
            self.head = head
            self.body_start = end
            if head is None:
                self._framing = "close"
            elif self._rtsp:
                self._framing = "length" if head.content_length else "none"
            else:
                self._framing = body_framing(head)
            self._chunk_pos = end
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
            if not line.strip():
                self._chunk_pos = line_end + 1  # the CRLF after a chunk's data
                continue
            size = chunk_size(line)
            if size is None:
                # "-5", "+5", "0x5", 20 hex digits: not a size. Not really chunked, then: read
                # until the server closes; the parse says what was wrong.
                self.bad_chunk_size = line
                self._framing = "close"
                return False
            if size == 0:
                return True
            end = line_end + 1 + size
            if end > len(buf):
                return False
            assert end > self._chunk_pos, "chunk framing must move forward"
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
    # Plain searches, each moving forward only: linear in the page. (A single regex with
    # ``<title\b[^>]*>`` retried its ``[^>]*`` at every "<title" of a page that never closes the
    # tag, quadratic: about 1 s on 64 KiB of "<title ".) If the first "<title" has no ">" after
    # it, no later one has either, so the first is the only candidate.
    opening = _TITLE_OPEN.search(text)
    if opening is None:
        return None
    tag_end = text.find(">", opening.end())
    if tag_end < 0:
        return None
    start = tag_end + 1
    # The title ends at "</title>" or, left open, at the next tag: either way the next "<".
    end = text.find("<", start, start + limit * 8)
    raw = text[start : end if end >= 0 else start + limit * 8]
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


def location_is_well_formed(location: str) -> bool:
    """True when ``location`` can be read as a URL at all: no control characters or spaces, not
    huge, brackets closed (``http://[::1`` is not), a port that is a number in range."""
    location = location.strip()
    if any(c in location for c in "\r\n\x00 \t") or len(location) > 2048:
        return False
    # The request line is ASCII (build_get): guessing an encoding for a non-ASCII path would send
    # the device a request it never named.
    if not location.isascii():
        return False
    try:
        parts = urlsplit(location)
        parts.hostname, parts.port  # noqa: B018  (both parse lazily and raise ValueError)
    except ValueError:
        return False
    return True


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
    if not location_is_well_formed(location):
        return None
    parts = urlsplit(location)  # cannot raise: location_is_well_formed parsed it
    if parts.scheme or parts.netloc:
        if parts.scheme.lower() != ("https" if tls else "http"):
            return None
        host, other_port = parts.hostname, parts.port  # both checked by location_is_well_formed
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
