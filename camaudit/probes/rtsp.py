"""RTSP probe: OPTIONS, then DESCRIBE, each on its own connection, never with credentials.

Evidence: ``rtsp_response`` (the raw answer to each request: status line, headers, SDP),
``rtsp_server`` and every ``rtsp_www_authenticate`` verbatim (fingerprinting.md 4.2-4.3: Dahua
``Dahua Rtsp Server`` / ``Basic realm="device"``, Hikvision ``Digest realm="Hikvision"`` and the
IMKH SDP lines). A 401 to DESCRIBE is the normal answer and is evidence, not a problem.
"""

from __future__ import annotations

import logging

from ..protocols.http import MessageFramer
from ..protocols.rtsp import build_describe, build_options, parse_response, rtsp_url
from . import USER_AGENT, Deadline, PortContext, close, describe_failure, read_until, send

log = logging.getLogger(__name__)

SOURCE = "rtsp"


async def probe_rtsp(ctx: PortContext) -> None:
    """OPTIONS then, if the port answered RTSP, DESCRIBE on the root URL."""
    url = rtsp_url(ctx.address, ctx.port)
    if await _ask(ctx, "OPTIONS", build_options(url, 1, user_agent=USER_AGENT)):
        await _ask(ctx, "DESCRIBE", build_describe(url, 2, user_agent=USER_AGENT))


async def _ask(ctx: PortContext, method: str, request: bytes) -> bool:
    """One request, one response; True when a whole response came back."""
    deadline = Deadline(ctx.config.timeout)
    prefix = "" if method == "OPTIONS" else f"RTSP {method}: "
    stream = await ctx.connect(deadline)
    if stream is None:
        return False
    reader, writer = stream
    try:
        error = await send(writer, request, deadline)
        if error is not None:
            ctx.problem(prefix + error)
            return False
        framer = MessageFramer(rtsp=True)
        result = await read_until(
            reader,
            deadline,
            ctx.config.max_response_bytes,
            framer.feed,
            foreign=lambda: framer.foreign,
        )
    finally:
        await close(writer)
    response = parse_response(result.data)
    if response is None:
        partial = b"RTSP/".startswith(result.data[:5]) or b"HTTP/".startswith(result.data[:5])
        if result.data and not partial:
            ctx.problem(f"{prefix}answered {len(result.data)} bytes that are not RTSP")
        else:
            ctx.problem(prefix + describe_failure(result, ctx.config, "RTSP response"))
        return False
    challenges = response.head.get_all("WWW-Authenticate")
    record_rtsp(ctx, response.text(), response.head.get("Server"), challenges)
    if result.why == "complete":
        return True
    if result.why == "limit" and not response.head.complete:
        ctx.problem(f"{prefix}RTSP headers over {ctx.config.max_response_bytes} bytes, cut")
    else:
        ctx.problem(prefix + describe_failure(result, ctx.config, "RTSP response"))
    return False  # a broken answer: a second request would only repeat it


def record_rtsp(ctx: PortContext, raw: str, server: str | None, challenges: list[str]) -> None:
    ctx.observe("rtsp_response", raw, SOURCE)
    if server:
        ctx.observe("rtsp_server", server, SOURCE)
    for challenge in challenges:
        ctx.observe("rtsp_www_authenticate", challenge, SOURCE)


def record_rtsp_answer(ctx: PortContext, data: bytes) -> None:
    """An RTSP answer that came back to an HTTP request (an RTSP server on an unlisted port)."""
    response = parse_response(data)
    if response is not None:
        challenges = response.head.get_all("WWW-Authenticate")
        record_rtsp(ctx, response.text(), response.head.get("Server"), challenges)
