"""RTSP/1.0 OPTIONS and DESCRIBE requests and response parsing, sans I/O (RFC 2326).

camaudit sends OPTIONS and DESCRIBE without credentials: a ``401`` with its ``WWW-Authenticate``
realm is evidence in itself (``Basic realm="device"`` on Dahua, ``Digest realm="Hikvision"`` or
``realm="IP Camera(21388)"`` on Hikvision; fingerprinting.md sections 4.1-4.3). The headers and
an SDP body (``s=Media Presentation`` + ``a=Media_header:MEDIAINFO=494D4B48...`` on Hikvision,
``a=packetization-supported:DH`` on Dahua) are kept verbatim for the signature engine.

Some servers on RTSP ports answer with an HTTP status line instead (the Axis sample in
corpus/fingerprints.json ``nmap-neg-axis-rtsp``: ``HTTP/1.0 501 Not Implemented``); the parser
accepts that too, because the answer is still evidence about the device.
"""

from __future__ import annotations

from dataclasses import dataclass

from .http import ResponseHead, find_head_end, host_header, parse_head

#: SDP lines kept from one description; a camera describes a few tracks in 20-60 lines.
MAX_SDP_LINES = 500


@dataclass(frozen=True, slots=True)
class RtspResponse:
    """One RTSP response: head, body (an SDP for DESCRIBE) as far as it arrived."""

    head: ResponseHead
    body: bytes
    body_complete: bool
    #: The response bytes as received: head, blank line, body (cut at Content-Length).
    raw: bytes

    @property
    def status(self) -> int:
        return self.head.status

    @property
    def cseq(self) -> int | None:
        value = (self.head.get("CSeq") or "").split(" ", 1)[0].strip()
        # isascii: "²" and other Unicode digits pass isdigit() but int() refuses them.
        return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None

    @property
    def sdp(self) -> list[tuple[str, str]] | None:
        """The SDP body as (type, value) lines, when the body is one."""
        content_type = (self.head.get("Content-Type") or "").lower()
        if "sdp" not in content_type and not self.body.startswith(b"v=0"):
            return None
        return parse_sdp(self.body)

    def text(self) -> str:
        """Status line, headers and body as received, decoded as Latin-1 (lossless)."""
        return self.raw.decode("latin-1").replace("\x00", "\ufffd")


def rtsp_url(address: str, port: int, path: str = "/") -> str:
    """``rtsp://host:port/path``; 554 is RTSP's default port (RFC 2326 section 3.2)."""
    return f"rtsp://{host_header(address, port, default_port=554)}{path}"


def _request(method: str, url: str, cseq: int, user_agent: str, extra: list[str]) -> bytes:
    if any(c in url for c in "\r\n \t\x00"):
        raise ValueError(f"unsafe RTSP URL {url!r}")
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", f"User-Agent: {user_agent}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def build_options(url: str, cseq: int = 1, *, user_agent: str = "camaudit") -> bytes:
    """An OPTIONS request (RFC 2326 section 10.1): answered without credentials on most cameras."""
    return _request("OPTIONS", url, cseq, user_agent, [])


def build_describe(url: str, cseq: int = 2, *, user_agent: str = "camaudit") -> bytes:
    """A DESCRIBE request (RFC 2326 section 10.2) asking for SDP, with no credentials."""
    return _request("DESCRIBE", url, cseq, user_agent, ["Accept: application/sdp"])


def parse_response(data: bytes) -> RtspResponse | None:
    """Parse an RTSP (or HTTP-shaped) response. None when ``data`` is neither.

    A response without Content-Length has no body (RFC 2326 section 4.3); the body is cut to
    Content-Length and flagged incomplete when fewer bytes arrived.
    """
    head = parse_head(data, protocols=("RTSP", "HTTP"))
    if head is None:
        return None
    if not head.complete:
        return RtspResponse(head, b"", False, data)
    bounds = find_head_end(data)
    assert bounds is not None
    length = head.content_length or 0
    body = data[bounds[1] : bounds[1] + length]
    return RtspResponse(head, body, len(body) >= length, data[: bounds[1] + length])


def parse_sdp(body: bytes) -> list[tuple[str, str]]:
    """SDP ``x=value`` lines (RFC 8866 section 5), in order; malformed lines are skipped."""
    lines: list[tuple[str, str]] = []
    for raw in body.decode("utf-8", errors="replace").splitlines():
        if len(raw) < 2 or raw[1] != "=" or not raw[0].isalpha():
            continue
        lines.append((raw[0], raw[2:].strip()))
        if len(lines) >= MAX_SDP_LINES:
            break
    return lines
