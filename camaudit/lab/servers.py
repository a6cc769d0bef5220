"""The asyncio side of a lab device: TCP connection handlers, UDP protocols and misbehaviours.

TCP handlers wait up to ``request_wait`` seconds for a request before closing: a stub that
closed after 2 s made ``nmap -sV`` call the port tcpwrapped; 10 s fixed it (lab.md section 5).

Misbehaviours (robustness tests; ``DeviceSpec.behaviour``):

=========  ==================================================================================
slow       every answer (TCP and UDP) leaves ``slow_delay`` seconds (30 s) after the request
truncated  half of each answer is sent, then the connection closes (UDP: half a datagram)
oversized  a 200 status announcing a 64 MiB body and streaming 8 MiB of it (UDP: ~64 KB)
malformed  XML answers (ONVIF, ISAPI, SADP, WS-Discovery) are cut mid-element and garbled
xml_bomb   XML answers are replaced by a "billion laughs" entity-expansion document
reset      every TCP connection is reset (RST) on accept; UDP requests get no answer
=========  ==================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import cast

from .answers import MAX_BODY, MAX_HEAD, http_answer, parse_head, rtsp_answer
from .context import DeviceContext
from .discovery import REPLIERS

log = logging.getLogger(__name__)

OVERSIZE_ANNOUNCED = 64 * 1024 * 1024
OVERSIZE_SENT = 8 * 1024 * 1024
XML_BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "' + (f"&lol{i - 1};" if i > 1 else "&lol;") * 10 + '">\n' for i in range(1, 10)
    )
    + "]>\n<lolz>&lol9;</lolz>\n"
).encode()


def malform(payload: bytes) -> bytes:
    """Cut an XML payload mid-element and garble what follows."""
    start = payload.find(b"<")
    cut = start + max(1, (len(payload) - start) * 2 // 3)
    return payload[:cut] + b"<<&&\x00 </unclosed"


def _xml_misbehaviour(behaviour: str | None, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    if behaviour == "malformed":
        body = malform(body)
    elif behaviour == "xml_bomb":
        body = XML_BOMB
    else:
        return head, body
    # Keep the HTTP framing honest about the new body length.
    lines = [
        line if not line.lower().startswith(b"content-length:") else b"Content-Length: " + str(len(body)).encode()
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines), body


class TcpService:
    """One TCP service of one device; ``handle`` is the asyncio ``start_server`` callback."""

    def __init__(self, ctx: DeviceContext, service: str, tracker: set[asyncio.StreamWriter],
                 request_wait: float, slow_delay: float) -> None:
        self.ctx = ctx
        self.service = service
        self.tracker = tracker
        self.request_wait = request_wait
        self.slow_delay = slow_delay

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tracker.add(writer)
        try:
            if self.ctx.spec.behaviour == "reset":
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    # SO_LINGER with a zero timeout turns close() into a RST.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except Exception:  # a lab device must never take the farm down
            log.exception("lab device %s %s failed", self.ctx.spec.address, self.service)
        finally:
            self.tracker.discard(writer)
            if self.ctx.spec.behaviour == "truncated":
                writer.transport.abort()  # no orderly FIN: the answer just stops
            else:
                writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.request_wait)
        if len(head) > MAX_HEAD:
            return None
        request = parse_head(head[:-4])
        length = 0
        if request is not None:
            with contextlib.suppress(ValueError):
                length = min(int(request.headers.get("content-length", "0")), MAX_BODY)
        body = await asyncio.wait_for(reader.readexactly(length), self.request_wait) if length else b""
        return head[:-4], body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        behaviour = self.ctx.spec.behaviour
        if self.service == "silent":
            # Accept and hold, like a binary protocol waiting for its client's first message.
            await asyncio.wait_for(reader.read(4096), self.request_wait)
            return
        if self.service == "hik_sdk":
            # Hikvision SDK port: nmap's probe gets the 16-byte reply of corpus nmap-hik-sdk8000.
            data = await asyncio.wait_for(reader.read(4096), self.request_wait)
            if data:
                await self._send(writer, bytes.fromhex(self.ctx.profile.service("hik_sdk")["reply_hex"]))
            return
        # RTSP keeps the connection for several requests (OPTIONS then DESCRIBE), HTTP answers one.
        for _ in range(8 if self.service == "rtsp" else 1):
            got = await self._read_request(reader)
            if got is None:
                return
            head, body = got
            request = parse_head(head)
            if request is None:
                return
            request.body = body
            if self.service == "rtsp":
                answer = rtsp_answer(self.ctx, request)
                is_xml = False
            else:
                answer, is_xml = http_answer(self.ctx, request)
            if behaviour == "oversized":
                await self._oversized(writer)
                return
            if is_xml and behaviour in ("malformed", "xml_bomb"):
                top, _, rest = answer.partition(b"\r\n\r\n")
                top, rest = _xml_misbehaviour(behaviour, top, rest)
                answer = top + b"\r\n\r\n" + rest
            await self._send(writer, answer)
            if behaviour == "truncated":
                return

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if self.ctx.spec.behaviour == "slow":
            await asyncio.sleep(self.slow_delay)
        if self.ctx.spec.behaviour == "truncated":
            data = data[: max(1, len(data) // 2)]
        writer.write(data)
        await writer.drain()

    async def _oversized(self, writer: asyncio.StreamWriter) -> None:
        proto = b"RTSP/1.0" if self.service == "rtsp" else b"HTTP/1.1"
        writer.write(proto + b" 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                     + str(OVERSIZE_ANNOUNCED).encode() + b"\r\n\r\n")
        chunk = b"A" * 65536
        for _ in range(OVERSIZE_SENT // len(chunk)):
            writer.write(chunk)
            await writer.drain()


class UdpService(asyncio.DatagramProtocol):
    """One discovery service (wsd, sadp, dhip) of one device.

    ``reply_via`` is the device's unicast transport: answers to multicast requests received on a
    separate group socket still leave from the device's own address.
    """

    def __init__(self, ctx: DeviceContext, service: str, slow_delay: float,
                 pending: set[asyncio.TimerHandle],
                 reply_via: Callable[[], asyncio.DatagramTransport | None] | None = None) -> None:
        self.ctx = ctx
        self.service = service
        self.slow_delay = slow_delay
        self.pending = pending
        self.reply_via = reply_via
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        behaviour = self.ctx.spec.behaviour
        if behaviour == "reset":
            return
        try:
            if self.service == "wsd":
                reply = REPLIERS["wsd"](self.ctx, data, self.answered + 1)  # type: ignore[call-arg]
            else:
                reply = REPLIERS[self.service](self.ctx, data)
        except Exception:
            log.exception("lab device %s %s failed on a datagram", self.ctx.spec.address, self.service)
            return
        if reply is None:
            return
        self.answered += 1
        if behaviour == "truncated":
            reply = reply[: max(1, len(reply) // 2)]
        elif behaviour == "oversized":
            reply = reply + b" " * (65000 - len(reply))
        elif behaviour in ("malformed", "xml_bomb") and self.service != "dhip":
            reply = malform(reply) if behaviour == "malformed" else XML_BOMB
        transport = self.reply_via() if self.reply_via else self.transport
        if transport is None:
            return
        if behaviour == "slow":
            loop = asyncio.get_running_loop()
            handle = loop.call_later(self.slow_delay, self._send_later, transport, reply, addr)
            self.pending.add(handle)
        else:
            transport.sendto(reply, addr)

    def _send_later(self, transport: asyncio.DatagramTransport, reply: bytes, addr: tuple[str | int, int]) -> None:
        if not transport.is_closing():
            transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("lab device %s %s: %s", self.ctx.spec.address, self.service, exc)
