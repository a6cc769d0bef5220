"""HTTP(S) probe: GET /, at most one same-host redirect, GET /favicon.ico.

Evidence recorded (DESIGN.md section 3): ``http_headers`` (the raw status line and header block of
the first response, Latin-1, so header case and order survive: Dahua's upper-case
``CONTENT-LENGTH``, fingerprinting.md 4.2), ``http_server``, every ``http_www_authenticate``
verbatim, ``http_title`` and ``http_body`` (of the page reached), and ``favicon_mmh3`` /
``favicon_md5`` when /favicon.ico answers 200 with a non-empty body that is not an HTML page.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from ..protocols.http import (
    MAX_INTERIM,
    HttpResponse,
    MessageFramer,
    build_get,
    decode_text,
    extract_title,
    favicon_hashes,
    is_redirect,
    location_is_well_formed,
    looks_like_html,
    parse_response,
    redirect_path,
)
from . import (
    IDLE_AFTER_HEAD,
    USER_AGENT,
    Deadline,
    PortContext,
    ReadResult,
    close,
    describe_failure,
    read_until,
    send,
)

log = logging.getLogger(__name__)

SOURCE = "http"
FAVICON_PATH = "/favicon.ico"

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
BannerHandler = Callable[[PortContext, bytes], None]


async def probe_http(
    ctx: PortContext,
    *,
    stream: Stream | None = None,
    tls_context: ssl.SSLContext | None = None,
    deadline: Deadline | None = None,
    banner_wait: float = 0.0,
    on_banner: BannerHandler | None = None,
) -> None:
    """Ask ``ctx``'s port for ``/`` and record what the answer shows.

    ``stream``: an already open connection (the TLS probe passes its handshaken one).
    ``tls_context``: speak HTTPS on any further connection. ``deadline``: for the first exchange,
    when the caller already spent part of it. ``banner_wait``: first listen that long for a
    server-speaks-first banner; if one comes, hand it to ``on_banner`` and send no HTTP.
    """
    deadline = deadline or Deadline(ctx.config.timeout)
    tls = tls_context is not None
    if stream is None:
        stream = await ctx.connect(deadline, tls=tls_context, quiet=not ctx.expected)
        if stream is None:
            return
    reader, writer = stream
    try:
        if banner_wait > 0:
            from .banner import read_banner

            banner = await read_banner(reader, writer, deadline, first_wait=banner_wait)
            if banner.data:
                if on_banner is not None:
                    on_banner(ctx, banner.data)
                return
            if banner.why != "timeout":  # closed or reset before saying anything
                if ctx.expected:
                    ctx.problem(describe_failure(banner, ctx.config))
                return
        result = await _exchange(ctx, reader, writer, "/", deadline, tls=tls)
    finally:
        await close(writer)
    first = _interpret(ctx, result, "/")
    if first is None:
        return
    record_head(ctx, first)
    if not first.head.complete or first.interim > MAX_INTERIM:
        return  # a broken answer: asking the same server again would only repeat it
    page = first
    location = first.head.get("Location")
    target = redirect_path(location, ctx.address, ctx.port, tls=tls)
    if is_redirect(first.status) and location and not location_is_well_formed(location):
        # Not followed; the page that redirected still has its title, body and favicon.
        ctx.problem(f"redirect to a malformed Location {location.strip()[:80]!r}; not followed")
    elif is_redirect(first.status) and target is not None and target != "/":
        followed = await fetch(ctx, target, tls_context)
        if followed is not None:
            page = followed
    record_content(ctx, page)
    await probe_favicon(ctx, tls_context)


async def fetch(ctx: PortContext, path: str, tls_context: ssl.SSLContext | None) -> HttpResponse | None:
    """One more GET on a fresh connection; problems are said with the path."""
    deadline = Deadline(ctx.config.timeout)
    try:
        stream = await ctx.connect(deadline, tls=tls_context, quiet=True)
    except ssl.SSLError as exc:
        ctx.problem(f"{path}: TLS handshake failed ({exc.reason or exc})")
        return None
    if stream is None:
        ctx.problem(f"{path}: could not connect again")
        return None
    reader, writer = stream
    try:
        result = await _exchange(ctx, reader, writer, path, deadline, tls=tls_context is not None)
    finally:
        await close(writer)
    return _interpret(ctx, result, path)


async def probe_favicon(ctx: PortContext, tls_context: ssl.SSLContext | None) -> None:
    """Hash /favicon.ico the way Shodan and nuclei do (fingerprinting.md 4.1-4.2 list hashes)."""
    response = await fetch(ctx, FAVICON_PATH, tls_context)
    if response is None or response.status != 200 or not response.body:
        return
    if looks_like_html(response.content_type, response.body):
        return  # many devices answer every path with their index page
    if not response.body_complete:
        ctx.problem(f"{FAVICON_PATH}: incomplete or over {ctx.config.max_response_bytes} bytes, not hashed")
        return
    mmh3_hash, md5_hash = favicon_hashes(response.body)
    ctx.observe("favicon_mmh3", mmh3_hash, SOURCE)
    ctx.observe("favicon_md5", md5_hash, SOURCE)


async def _exchange(
    ctx: PortContext,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    path: str,
    deadline: Deadline,
    *,
    tls: bool,
) -> ReadResult:
    request = build_get(ctx.address, ctx.port, path, tls=tls, user_agent=USER_AGENT)
    error = await send(writer, request, deadline)
    if error is not None:
        return ReadResult(b"", "reset" if "reset" in error else "error", error)
    framer = MessageFramer()

    def idle() -> float | None:
        return IDLE_AFTER_HEAD if framer.until_close else None

    return await read_until(
        reader,
        deadline,
        ctx.config.max_response_bytes,
        framer.feed,
        foreign=lambda: framer.foreign,
        idle=idle,
    )


def _interpret(
    ctx: PortContext, result: ReadResult, path: str
) -> HttpResponse | None:
    """Parse what a read produced and say, in a problem line, what went wrong with it."""
    data = result.data
    prefix = "" if path == "/" else f"{path}: "
    response = parse_response(data, eof=result.why in ("eof", "idle"))
    if response is None:
        # An answer cut before its status line was complete still looks like the start of HTTP.
        partial_http = b"HTTP/".startswith(data[:5])
        if path == "/" and data.startswith(b"RTSP/"):
            from .rtsp import record_rtsp_answer

            record_rtsp_answer(ctx, data)  # an RTSP server on a port we did not expect it on
        elif not ctx.expected and not (data and partial_http):
            # Silence or non-HTTP bytes on a port of unknown protocol is normal; the start of an
            # HTTP answer that never finished is worth saying.
            log.debug("%s tcp/%d: no HTTP answer (%s, %d bytes)", ctx.address, ctx.port,
                      result.why, len(data))  # fmt: skip
        elif data and not partial_http:
            ctx.problem(f"{prefix}answered {len(data)} bytes that are not HTTP")
        else:
            ctx.problem(prefix + describe_failure(result, ctx.config))
        return None
    if response.problem:
        ctx.problem(prefix + response.problem)
    if not response.head.complete:
        if result.why == "limit":
            ctx.problem(f"{prefix}response headers over {ctx.config.max_response_bytes} bytes, cut")
        else:
            ctx.problem(prefix + describe_failure(result, ctx.config, "response headers"))
    elif response.problem or result.why in ("complete", "idle", "limit") or response.body_complete:
        pass  # "limit" with a whole head: a big page, of which we keep the first bytes
    else:
        ctx.problem(prefix + describe_failure(result, ctx.config))
    return response


def record_head(ctx: PortContext, response: HttpResponse) -> None:
    """Evidence from the status line and headers of the first response."""
    ctx.observe("http_headers", response.head.text(), SOURCE)
    server = response.head.get("Server")
    if server:
        ctx.observe("http_server", server, SOURCE)
    for challenge in response.head.get_all("WWW-Authenticate"):
        ctx.observe("http_www_authenticate", challenge, SOURCE)


def record_content(ctx: PortContext, response: HttpResponse) -> None:
    """Evidence from the body of the page reached: its title and its first characters."""
    if not response.body:
        return
    content_type = response.content_type
    title = extract_title(response.body, content_type)
    if title:
        ctx.observe("http_title", title, SOURCE)
    limit = ctx.config.body_bytes
    text = decode_text(response.body[: limit * 4], content_type)
    if response.body.startswith(b"\xef\xbb\xbf"):
        text = "\ufeff" + text  # a UTF-8 BOM before the page is part of its shape (Dahua, 4.2)
    text = text[:limit]
    ctx.observe("http_body", text.replace("\x00", "\ufffd"), SOURCE)
