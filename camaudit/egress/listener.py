"""``egress listen``: the cooperating listener on the outside vantage.

Answers TCP and UDP probes by echoing their nonce, answers DNS for ``<nonce>.<zone>`` with a TXT
record carrying the nonce (as the zone's authoritative server, and directly: a direct query for
``<nonce>.<any name>`` is answered whatever zone the listener serves, so that a check run without
the listener's ``--dns-zone`` still tests direct DNS), answers NTP client
requests (echoing the origin timestamp), and, as root, watches ICMP echo requests through a raw
socket (the kernel answers them). Echo lines and TXT answers also say what the listener serves
(its zone and the ports bound on that address, :class:`.wire.ListenerFacts`), so that a check can
say where its options disagree with the listener. Every nonce seen is logged as one JSON line with source address
and time: ``egress import-log`` merges that log into the store, so that one-way egress (the probe
arrived, the answer was blocked) is proven too (reference/egress.md sections 1.2 and 7.1).

Hostile input is normal: reads are bounded in size and time, connections in number, answers
per source in rate (a UDP echo must not become an amplifier), and nothing a peer sends can make
the listener raise.

To answer on every TCP port with one socket, redirect them with nftables on the listener host
(egress.md 7.1), for example ``nft add rule ip nat prerouting tcp dport 1-65535 redirect to :443``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

from ..errors import UsageError
from ..model import utc_now
from . import dns, wire

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256
READ_TIMEOUT = 5.0
PER_SOURCE_RATE = 50  # answers per second per source address
NTP_EPOCH_OFFSET = 2208988800


@dataclass(slots=True)
class ListenerConfig:
    binds: list[str]
    tcp_ports: list[int]
    udp_ports: list[int]
    dns_zone: str | None = None
    log_path: str | None = None
    icmp: bool = True
    duration: float | None = None
    ready_file: str | None = None


@dataclass(slots=True)
class _Limiter:
    """Per-source token bucket, with a bounded table (peers choose their addresses)."""

    rate: float = PER_SOURCE_RATE
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def allow(self, source: str) -> bool:
        now = time.monotonic()
        tokens, last = self.buckets.get(source, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        if len(self.buckets) > 4096:
            self.buckets.clear()
        if tokens < 1:
            self.buckets[source] = (tokens, now)
            return False
        self.buckets[source] = (tokens - 1, now)
        return True


class NonceLog:
    """JSON lines, one per nonce seen, flushed as written."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fh: TextIO | None = None
        self.count = 0
        if path:
            try:
                self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the listener
            except OSError as exc:
                raise UsageError(f"cannot write the listener log {path}: {exc.strerror}") from exc

    def record(self, kind: str, nonce: str, src: str, dst: str, proto: str, port: int | None, path: str = "") -> None:
        line = {"at": utc_now(), "kind": kind, "nonce": nonce, "src": src, "dst": dst, "proto": proto,
                "port": port, "path": path}
        self.count += 1
        log.info("nonce %s via %s/%s from %s", nonce, proto, port, src)
        if self._fh is not None:
            self._fh.write(json.dumps(line, sort_keys=True) + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def dns_answer(query: bytes, zone: str | None, log_it: Callable[[str], None],
               facts: wire.ListenerFacts | None = None) -> bytes | None:
    """The listener's DNS answer (pure apart from ``log_it``): a TXT record with the nonce (and
    ``facts``, as far as they fit) for ``<nonce>.<anything>``, authoritative inside ``zone``;
    NXDOMAIN for other names in the zone, REFUSED for other names outside it. A nonce name
    outside the zone is a direct query (the check's ``dns/direct``, whose name carries the zone
    of *its* options, or none): answering it keeps direct DNS testable whatever the two agree on."""
    q = dns.parse_query(query)
    if q is None:
        return None
    first = q.name.split(".", 1)[0]
    nonce = first.lower() if wire.is_nonce(first) else None
    in_zone = zone is None or q.name == zone or q.name.endswith("." + zone)
    if nonce is not None:
        log_it(nonce)
    if nonce is None:
        if not in_zone:
            return dns.build_response(q, rcode=dns.RCODE_REFUSED, authoritative=False)
        return dns.build_response(q, rcode=dns.RCODE_NXDOMAIN)
    txt = f"camaudit-egress {nonce}"
    if facts is not None and (tokens := facts.tokens(dns.MAX_TXT - len(txt) - 1)):
        txt += " " + tokens
    return dns.build_response(q, txt=txt, authoritative=in_zone)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: Listener, addr: str, port: int) -> None:
        self.server, self.addr, self.port = server, addr, port
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # _SelectorDatagramTransport is not a DatagramTransport subclass in 3.11: cast.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            reply = self.server.handle_datagram(data[:4096], str(addr[0]), self.addr, self.port)
        except Exception:  # a peer must never stop the listener
            log.debug("udp datagram from %s not handled", addr[0], exc_info=True)
            return
        if reply is not None and self.transport is not None and self.server.limiter.allow(str(addr[0])):
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp %s:%d: %s", self.addr, self.port, exc)


class Listener:
    """The running listener: its sockets, its log, its counters."""

    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        self.zone = config.dns_zone.strip(".").lower() if config.dns_zone else None
        self.log = NonceLog(config.log_path)
        self.limiter = _Limiter()
        self.served: list[str] = []
        self.failed: list[str] = []
        self._servers: list[Any] = []
        #: What each bind address serves, said in every answer given on it (set by start()).
        self.facts: dict[str, wire.ListenerFacts] = {}
        self._raw: list[socket.socket] = []
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    # -- protocol handling (no sockets) ----------------------------------------------------
    def handle_datagram(self, data: bytes, src: str, dst: str, port: int) -> bytes | None:
        probe = wire.parse_probe(data)
        if probe is not None:
            self.log.record("udp", probe[0], src, dst, "udp", port, probe[1])
            return wire.echo_line(probe[0], src, self.facts.get(dst))
        if port == 53:
            return dns_answer(data, self.zone, lambda n: self.log.record("dns", n, src, dst, "udp", port),
                              self.facts.get(dst))
        if port == 123 and (stamp := wire.ntp_request_stamp(data)) is not None:
            self.log.record("ntp", wire.NONCE_PREFIX + "0000" + stamp.hex(), src, dst, "udp", port)
            return wire.ntp_reply(data, int(time.time() + NTP_EPOCH_OFFSET) << 32)
        return None

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dst: str, port: int) -> None:
        peer = writer.get_extra_info("peername")
        src = str(peer[0]) if peer else "?"
        if self._slots.locked():
            writer.close()
            return
        async with self._slots:
            try:
                first = await asyncio.wait_for(reader.read(wire.MAX_LINE), READ_TIMEOUT)
                if port == 53 and len(first) >= 2 and not first.startswith(wire.PROBE_MAGIC):
                    size = struct.unpack("!H", first[:2])[0]
                    body = first[2:]
                    if size <= dns.MAX_MESSAGE:
                        while len(body) < size:
                            chunk = await asyncio.wait_for(reader.read(size - len(body)), READ_TIMEOUT)
                            if not chunk:
                                break
                            body += chunk
                        answer = dns_answer(body[:size], self.zone,
                                            lambda n: self.log.record("dns", n, src, dst, "tcp", port),
                                            self.facts.get(dst))
                        if answer is not None:
                            writer.write(struct.pack("!H", len(answer)) + answer)
                else:
                    while b"\n" not in first and len(first) < wire.MAX_LINE:
                        chunk = await asyncio.wait_for(reader.read(wire.MAX_LINE), READ_TIMEOUT)
                        if not chunk:
                            break
                        first += chunk
                    probe = wire.parse_probe(first)
                    if probe is not None:
                        self.log.record("tcp", probe[0], src, dst, "tcp", port, probe[1])
                        writer.write(wire.echo_line(probe[0], src, self.facts.get(dst)))
                    elif (nonce := wire.find_nonce(first)) is not None:
                        self.log.record("tcp", nonce, src, dst, "tcp", port)
                await asyncio.wait_for(writer.drain(), READ_TIMEOUT)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                pass
            except Exception:  # a peer must never stop the listener
                log.debug("tcp connection from %s not handled", src, exc_info=True)
            finally:
                writer.close()

    def _tcp_handler(self, addr: str, port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._tcp_client(reader, writer, addr, port)
        return handle

    def _udp_factory(self, addr: str, port: int) -> Callable[[], _Udp]:
        return lambda: _Udp(self, addr, port)

    # -- ICMP (root) ---------------------------------------------------------------------------
    def _icmp_readable(self, sock: socket.socket, v6: bool) -> None:
        with contextlib.suppress(OSError):
            for _ in range(64):
                data, peer = sock.recvfrom(2048)
                icmp = data if v6 else data[(data[0] & 0x0F) * 4 :] if data else b""
                if len(icmp) >= 8 and icmp[0] == (128 if v6 else 8):
                    nonce = wire.find_nonce(icmp[8:])
                    if nonce is not None:
                        dst = "" if v6 else socket.inet_ntoa(data[16:20])
                        self.log.record("icmp", nonce, str(peer[0]), dst, "icmpv6" if v6 else "icmp", None)

    def _start_icmp(self, loop: asyncio.AbstractEventLoop) -> None:
        families = {socket.AF_INET6 if ":" in b else socket.AF_INET for b in self.config.binds}
        for fam in families:
            v6 = fam == socket.AF_INET6
            try:
                sock = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
            except OSError:
                self.failed.append("icmpv6" if v6 else "icmp")
                continue
            if v6:
                # ICMP6_FILTER: pass only echo requests (type 128) to this socket.
                blocked = [0xFFFFFFFF] * 8
                blocked[128 >> 5] &= ~(1 << (128 & 31))
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_ICMPV6, 1, struct.pack("8I", *blocked))
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._icmp_readable, sock, v6)
            self._raw.append(sock)
            self.served.append("icmpv6" if v6 else "icmp")

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for addr in self.config.binds:
            for port in self.config.tcp_ports:
                try:
                    server = await asyncio.start_server(self._tcp_handler(addr, port), addr, port, reuse_address=True)
                    self._servers.append(server)
                    self.served.append(f"tcp/{port}@{addr}")
                except OSError as exc:
                    self.failed.append(f"tcp/{port}@{addr}: {exc.strerror}")
            for port in self.config.udp_ports:
                try:
                    transport, _ = await loop.create_datagram_endpoint(
                        self._udp_factory(addr, port), local_addr=(addr, port))
                    self._servers.append(transport)
                    self.served.append(f"udp/{port}@{addr}")
                except OSError as exc:
                    self.failed.append(f"udp/{port}@{addr}: {exc.strerror}")
        for addr in self.config.binds:
            bound = {proto: frozenset(p for p in ports if f"{proto}/{p}@{addr}" in self.served)
                     for proto, ports in (("tcp", self.config.tcp_ports), ("udp", self.config.udp_ports))}
            self.facts[addr] = wire.ListenerFacts(zone=self.zone or "", tcp=bound["tcp"], udp=bound["udp"])
        if self.config.icmp:
            self._start_icmp(loop)
        if not any(s.startswith(("tcp/", "udp/")) for s in self.served):
            raise UsageError("the listener could not bind any port: " + "; ".join(self.failed[:5]))
        for failure in self.failed:
            log.warning("not served: %s", failure)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._raw:
            loop.remove_reader(sock.fileno())
            sock.close()
        for server in self._servers:
            server.close()
        self.log.close()


async def serve(config: ListenerConfig, *, stop: asyncio.Event | None = None,
                on_ready: Callable[[Listener], None] | None = None) -> Listener:
    """Run the listener until ``stop`` is set, ``duration`` passes, or the task is cancelled."""
    listener = Listener(config)
    await listener.start()
    if config.ready_file:
        _write_ready(config.ready_file)
    if on_ready is not None:
        on_ready(listener)
    stop = stop or asyncio.Event()
    try:
        if config.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), config.duration)
        else:
            await stop.wait()
    finally:
        await listener.close()
    return listener


def _write_ready(path: str) -> None:
    Path(path).write_text(str(os.getpid()), encoding="ascii")


def default_binds(binds: Sequence[str]) -> list[str]:
    return list(binds) or ["0.0.0.0"]
