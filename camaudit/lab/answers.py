"""HTTP and RTSP answers of a lab device, built from its profile (pure: request in, bytes out).

Header lines keep the profile's order and case (``http.head``; ``{route}`` marks where a route's
own headers go), because the response shape is evidence (fingerprinting.md 4.2).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import onvif
from .auth import check_authorization
from .config_api import BUILDERS
from .context import DeviceContext, render

MAX_HEAD = 16384
MAX_BODY = 65536


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query


def parse_head(head: bytes) -> Request | None:
    """Request line and headers (names lower-cased); None when it is not a request."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    request = Request(parts[0].upper(), parts[1], parts[2])
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            request.headers[name.strip().lower()] = value.strip()
    return request


def _compose(ctx: DeviceContext, http: dict[str, Any], status: str, route_headers: list[str],
             content_type: str, body: bytes, *, head_only: bool = False) -> bytes:
    values = ctx.values(status=status, content_type=content_type, length=len(body),
                        etag=f"{len(body)}:{zlib.crc32(body):08x}")
    lines = [render(str(http.get("status_line", "HTTP/1.1 {status}")), values)]
    for line in http.get("head", []):
        if line == "{route}":
            lines.extend(render(h, values) for h in route_headers)
        else:
            lines.append(render(line, values))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + (b"" if head_only else body)


def _body(ctx: DeviceContext, spec: dict[str, Any], request: Request) -> tuple[str | None, str]:
    """(status override, body text) of a route or response spec."""
    builder = spec.get("builder")
    if builder:
        built = BUILDERS[builder](ctx, request.path, request.query)
        return (built[0], built[1]) if isinstance(built, tuple) else (None, built)
    return None, ctx.render(str(spec.get("body", "")))


def http_answer(ctx: DeviceContext, request: Request) -> tuple[bytes, bool]:
    """The full HTTP response, and whether its body is XML (for the XML misbehaviours)."""
    http = ctx.profile.service("http")
    head_only = request.method == "HEAD"
    if request.path == onvif.PATH and ctx.profile.service("onvif"):
        if request.method != "POST":
            return _compose(ctx, http, "405 Method Not Allowed", [], "text/plain", b""), False
        status, xml = onvif.handle(ctx, request.body)
        return _compose(ctx, http, status, [], "application/soap+xml; charset=utf-8", xml.encode()), True
    routes: dict[str, Any] = http.get("routes", {})
    route = routes.get(request.path)
    if route is None:
        spec: dict[str, Any] = http.get("not_found", {"status": "404 Not Found", "body": ""})
        status = str(spec.get("status", "404 Not Found"))
    elif route.get("auth") and not check_authorization(request.headers.get("authorization"), request.method):
        spec = http.get("unauthorized", {"status": "401 Unauthorized", "body": ""})
        status = str(spec.get("status", "401 Unauthorized"))
    else:
        spec, status = route, str(route.get("status", "200 OK"))
    override, text = _body(ctx, spec, request)
    content_type = str(spec.get("content_type", "text/html"))
    body = text.encode("utf-8")
    answer = _compose(ctx, http, override or status, [str(h) for h in spec.get("headers", [])],
                      content_type, body, head_only=head_only)
    return answer, "xml" in content_type


def rtsp_answer(ctx: DeviceContext, request: Request) -> bytes:
    """OPTIONS, DESCRIBE (401 without credentials, SDP with them), other methods 405."""
    rtsp = ctx.profile.service("rtsp")
    cseq = request.headers.get("cseq", "")
    values = {"cseq": cseq or "0", "cseq_line": f"CSeq: {cseq}\r\n" if cseq else ""}
    if request.version.upper().startswith("HTTP/"):
        template = rtsp.get("http_probe") or "RTSP/1.0 400 Bad Request\r\n{cseq_line}\r\n"
    elif request.method == "OPTIONS":
        bare = request.target in ("/", "*") and rtsp.get("options_root")
        template = rtsp["options_root"] if bare else rtsp.get("options", "RTSP/1.0 200 OK\r\n{cseq_line}\r\n")
    elif request.method == "DESCRIBE":
        if not check_authorization(request.headers.get("authorization"), "DESCRIBE"):
            template = rtsp.get("unauthorized", "RTSP/1.0 401 Unauthorized\r\n{cseq_line}\r\n")
        else:
            sdp = ctx.render(str(rtsp.get("sdp", "")))
            extra = str(rtsp.get("describe_headers", ""))
            return (
                f"RTSP/1.0 200 OK\r\nCSeq: {values['cseq']}\r\n{extra}Content-Base: {request.target}\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(sdp.encode())}\r\n\r\n{sdp}"
            ).encode()
    else:
        template = "RTSP/1.0 405 Method Not Allowed\r\n{cseq_line}\r\n"
    return ctx.render(str(template), **values).encode()
