"""Stand-in discovery responders for the driver tests (loopback, and inside lab namespaces).

Each responder answers WS-Discovery Probes, SADP inquiries or DHIP searches with bytes built
from tests/data/captures/discovery (the real replies quoted in reference/fingerprinting.md), and
can misbehave on purpose: answer someone else's MessageID, answer twice, truncate, oversize,
send an XML bomb, or use a wrong DHIP header. Like lab.md's fixed camfarm stubs, it answers only
real probes, never other datagrams.

Run as a script inside a namespace (multicast joins by ifindex, lab.md section 4):

    python disc_responders.py --address 10.77.0.1 --iface mv0000 --duration 20 --ready FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures" / "discovery"
# The responders import camaudit's own pure helpers only to *recognise* probes.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from camaudit.protocols import dhip, sadp, wsd  # noqa: E402
from camaudit.protocols.constants import (  # noqa: E402
    DHIP_MULTICAST_V4,
    DHIP_PORT,
    SADP_MULTICAST_V4,
    SADP_PORT,
    WSD_MULTICAST_V4,
    WSD_PORT,
)

PORTS = {"wsd": WSD_PORT, "sadp": SADP_PORT, "dhip": DHIP_PORT}
GROUPS = {"wsd": WSD_MULTICAST_V4, "sadp": SADP_MULTICAST_V4, "dhip": DHIP_MULTICAST_V4}
DEFAULT_TEMPLATES = {"wsd": "wsd_hikvision.xml", "sadp": "sadp_hikvision.xml", "dhip": "dhip_dahua.json"}

XML_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<ProbeMatch><DeviceSN>&lol3;</DeviceSN></ProbeMatch>"
)


def render(template: str, *, address: str, relates_to: str = "", message_id: str | None = None) -> bytes:
    text = (CAPTURES / template).read_text(encoding="utf-8")
    text = text.replace("{{ADDRESS}}", address).replace("{{RELATES_TO}}", relates_to)
    text = text.replace("{{MESSAGE_ID}}", message_id or f"uuid:{uuid.uuid4()}")
    return text.encode("utf-8")


@dataclass
class Responder:
    """One protocol on one address. ``behaviour``: good, foreign, twice, truncated, oversized,
    bomb, badheader, silent."""

    proto: str
    address: str
    behaviour: str = "good"
    template: str | None = None
    #: seconds between a probe and its answer (a slow device, or WS-Discovery's APP_MAX_DELAY)
    delay: float = 0.0
    probes: list[tuple[float, str | None]] = field(default_factory=list)  # (monotonic, id)
    transport: asyncio.DatagramTransport | None = None

    def replies(self, data: bytes) -> list[bytes]:
        if self.proto == "wsd":
            if not wsd.is_probe(data):
                return []
            probe_id = wsd.probe_message_id(data)
            self.probes.append((time.monotonic(), probe_id))
        elif self.proto == "sadp":
            if not sadp.is_inquiry(data):
                return []
            self.probes.append((time.monotonic(), None))
            probe_id = ""
        else:
            if not dhip.is_search(data):
                return []
            self.probes.append((time.monotonic(), None))
            probe_id = ""
        template = self.template or DEFAULT_TEMPLATES[self.proto]
        relates = probe_id or ""
        if self.behaviour == "foreign":
            relates = f"uuid:{uuid.uuid4()}"
        body = render(template, address=self.address, relates_to=relates)
        if self.behaviour == "silent":
            return []
        if self.behaviour == "bomb":
            return [XML_BOMB if self.proto != "dhip" else dhip.frame(XML_BOMB)]
        if self.behaviour == "truncated":
            body = body[: len(body) // 2]
        if self.behaviour == "oversized":
            pad = b" " * 40_000
            body = body.replace(b"</", pad + b"</", 1) if self.proto != "dhip" else body + pad
        if self.proto == "dhip":
            framed = dhip.frame(body + b"\n")
            if self.behaviour == "badheader":
                framed = framed[:4] + b"PIHD" + framed[8:]
            if self.behaviour == "truncated":
                framed = dhip.frame(render(template, address=self.address) + b"\n")[:-40]
            body = framed
        if self.behaviour == "twice":
            # The same datagram twice, then the same evidence under a new reply MessageID.
            again = (
                render(template, address=self.address, relates_to=relates)
                if self.proto == "wsd"
                else body
            )
            return [body, body, again]
        return [body]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder) -> None:
        self.responder = responder

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.responder.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for reply in self.responder.replies(data):
            assert self.responder.transport is not None
            if self.responder.delay:
                asyncio.get_running_loop().call_later(self.responder.delay, self.responder.transport.sendto,
                                                      reply, addr)
            else:
                self.responder.transport.sendto(reply, addr)


def _socket(address: str, port: int, *, iface: str | None, group: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setblocking(False)
    if iface is not None and group is not None:
        # A multicast listener binds the port on any address and joins by ifindex (lab.md 4).
        sock.bind(("0.0.0.0", port))
        index = socket.if_nametoindex(iface)
        mreqn = socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("i", index)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    else:
        sock.bind((address, port))
    return sock


async def start(responder: Responder, *, iface: str | None = None) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    group = GROUPS[responder.proto] if iface else None
    sock = _socket(responder.address, PORTS[responder.proto], iface=iface, group=group)
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(responder), sock=sock)
    return transport


class ResponderThread:
    """Responders in a background loop, so a CLI subprocess can be run against them."""

    def __init__(self, responders: Sequence[Responder]) -> None:
        self.responders = responders
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.transports = [await start(r) for r in self.responders]
            self.ready.set()

        self.loop.run_until_complete(main())
        self.loop.run_forever()
        for t in self.transports:
            t.close()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def __enter__(self) -> ResponderThread:
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _main(args: argparse.Namespace) -> None:
    transports = []
    responders = []
    for proto in ("wsd", "sadp", "dhip"):
        responder = Responder(proto, args.address)
        responders.append(responder)
        transports.append(await start(responder, iface=args.iface))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if args.ready:
        Path(args.ready).write_text("ready", encoding="utf-8")
    try:
        await asyncio.wait_for(stop.wait(), args.duration)
    except TimeoutError:
        pass
    finally:
        for transport in transports:
            transport.close()
    if args.log:
        Path(args.log).write_text(
            json.dumps({r.proto: len(r.probes) for r in responders}), encoding="utf-8"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--iface")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--ready")
    parser.add_argument("--log")
    asyncio.run(_main(parser.parse_args()))
