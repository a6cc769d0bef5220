"""One asyncio datagram driver for the three UDP discovery protocols (WS-Discovery, SADP, DHIP).

What it does, per protocol:

* unicast to every target address (multicast does not cross routers), paced at ``rate``
  datagrams per second over all protocols;
* multicast on the chosen interfaces, only when asked: one socket per interface, with
  ``IP_MULTICAST_IF`` by ifindex and TTL 1 (lab.md section 4), loopback of our own datagrams off;
* the SOAP-over-UDP 1.1 Appendix I repeat schedule (constants.py), repeats carrying the same
  MessageID so that responders answer once;
* correlation (a ProbeMatch counts only when its ``RelatesTo`` is one of our fresh MessageIDs)
  and de-duplication (identical datagrams, repeated reply MessageIDs, and identical evidence);
* every reply becomes :class:`camaudit.model.Observation` s: ``onvif_probe_match`` / ``sadp`` /
  ``dhip`` with the raw reply, ``mac`` when the reply names one, and ``open_port`` ``udp/N``.

The unicast targets are taken in windows (WINDOW_TARGETS), each with its own sockets and state,
which go when it closes; a few windows are open at once (OPEN_WINDOWS), so that what discovery
holds does not grow with the number of targets.

The total time is bounded: sending takes about (datagrams / rate) and each window then listens
for ``timeout`` seconds after its last datagram, less for unicast alone once every target has
answered (SETTLE_SECONDS) or refused every protocol by ICMP (:mod:`.refusals`). No repeat is
sent once every unicast target answered or refused each protocol. What waits in a socket behind a
busy event loop is read as it comes (READ_PER_TURN) and before the socket closes. Device bytes go
only to the pure parsers in
:mod:`camaudit.protocols`, which never raise on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import ipaddress
import logging
import random
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import UsageError
from ..model import Observation, utc_now
from ..protocols import dhip, sadp, wsd
from ..protocols.constants import (
    DHIP_MULTICAST_V4,
    DHIP_PORT,
    MULTICAST_TTL,
    MULTICAST_UDP_REPEAT,
    SADP_MULTICAST_V4,
    SADP_PORT,
    SOURCE_DHIP,
    SOURCE_SADP,
    SOURCE_WSD,
    UDP_MAX_DELAY,
    UDP_MIN_DELAY,
    UDP_UPPER_DELAY,
    UNICAST_UDP_REPEAT,
    WSD_HOST_PROBE_TYPES,
    WSD_MULTICAST_V4,
    WSD_PORT,
)
from . import refusals
from .interfaces import Interface, check_sender_allowed, list_interfaces  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = ("wsd", "sadp", "dhip")

#: WS-Discovery Probes sent to each destination: one per type, because a device matches a Probe
#: only when it is of *every* listed type (WS-Discovery 2005/04 section 5.1), and older ONVIF
#: firmware announces only ``dn:NetworkVideoTransmitter``.
WSD_PROBE_TYPE_SETS: tuple[str, ...] = ("dn:NetworkVideoTransmitter", "tds:Device")
#: What a unicast target is asked: the camera types, then whether it is a WS-Discovery host that
#: is no camera (WSD_HOST_PROBE_TYPES), so that discovery need not wait for it.
WSD_UNICAST_TYPE_SETS: tuple[str, ...] = (*WSD_PROBE_TYPE_SETS, WSD_HOST_PROBE_TYPES)

#: Replies beyond this many are dropped unread: a flood must not grow memory without bound.
MAX_REPLIES = 100_000

#: Distinct answers kept from one address per protocol (and MACs it may name). A device answers
#: a discovery probe once, or a few times with the same evidence; one that sends more (2,153
#: ProbeMatches from one address in 2 s, issue 10) is flooding, and the rest is dropped with a
#: problem recorded for that address.
MAX_ANSWERS_PER_ADDRESS = 5
#: Unicast-only discovery ends before its listening window is over once every target has
#: answered and nobody has spoken for this long, or for SETTLE_RTTS times the slowest first
#: answer if that is longer (issue 15: a one-host scan spent 2 s listening for nothing).
#: WS-Discovery lets a device delay its ProbeMatch by up to APP_MAX_DELAY (500 ms, lab.md
#: section 8.4 saw the whole 0-500 ms spread), so the quiet period starts above that. A
#: target that answered one protocol answers its others as fast: a late second answer comes
#: from the device's own delay, which the quiet period covers.
SETTLE_SECONDS = 0.6
SETTLE_RTTS = 4.0
#: Receive buffer asked for each discovery socket (bytes; the kernel caps it at rmem_max).
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
#: Datagrams read from a socket in one turn of the event loop. A datagram transport reads one a
#: turn, and a scan's loop is busy beside discovery (the probe stage parses and identifies): at
#: one a turn, answers queued behind a busy loop were still unread when the window closed, and
#: a large sweep's last cameras lost their discovery evidence (issue 15). Bounded so that one
#: socket's backlog does not hold the loop up either.
READ_PER_TURN = 32
#: What is read, at most, from each socket once the window is over: answers that arrived in time
#: but waited behind a busy loop. Bounded because a flood could refill the socket as fast.
READ_AT_CLOSE = 20_000
#: Unicast targets are taken this many at a time (issue 15). A window's targets are sent their
#: rounds and listened to by sockets and a collector of its own, and what discovery knows of them
#: (when each was sent to, what answered or refused, the digests of what was heard) goes when
#: the window closes. The next window starts sending once this one sends no more, so that the
#: rate holds across windows and their listening overlaps the next ones' sending, as the early
#: targets of one long sweep were listened to while the later ones were sent to. At most
#: OPEN_WINDOWS are open at once, so that memory does not grow with the number of targets. Each
#: target is listened to for ``timeout`` after its window's last datagram at least, as a target
#: of a small scan is.
WINDOW_TARGETS = 256
#: Windows open at once, at most: one sending, the others listening. A window sends for about
#: 0.6 s at the default rate (five datagrams a target) and listens up to ``timeout`` (2 s by
#: default) after it, so four keep the sending going while the earlier ones listen.
OPEN_WINDOWS = 4
#: Larger than any UDP datagram.
DATAGRAM_MAX = 65_536

_NAME = {"wsd": "WS-Discovery", "sadp": "SADP", "dhip": "DHIP"}

_KIND = {"wsd": "onvif_probe_match", "sadp": "sadp", "dhip": "dhip"}
#: Each protocol's bit in the per-address masks of protocols answered and refused: an int a
#: target, not a set (issue 15: two sets a target were a fifth of what discovery held).
_BIT = {"wsd": 1, "sadp": 2, "dhip": 4}
_SOURCE = {"wsd": SOURCE_WSD, "sadp": SOURCE_SADP, "dhip": SOURCE_DHIP}
_PORT = {"wsd": WSD_PORT, "sadp": SADP_PORT, "dhip": DHIP_PORT}
_GROUP = {"wsd": WSD_MULTICAST_V4, "sadp": SADP_MULTICAST_V4, "dhip": DHIP_MULTICAST_V4}


# --- interfaces (listed by .interfaces, which the ARP sweep imports alone) -----------------------


def choose_interfaces(
    names: Sequence[str], addresses: Sequence[str], *, notes: list[str] | None = None
) -> list[Interface]:
    """The interfaces to multicast on: the named ones, or by default every multicast-capable,
    non-loopback interface whose IPv4 network holds a target address. A named interface that
    does not exist is a usage error; one that cannot multicast is skipped with a note."""
    notes = notes if notes is not None else []
    available = {i.name: i for i in list_interfaces()}
    if names:
        chosen = []
        for name in names:
            iface = available.get(name)
            if iface is None:
                raise UsageError(
                    f"no network interface named {name!r} (have: {', '.join(sorted(available))})"
                )
            if not iface.usable_for_discovery:
                notes.append(
                    f"interface {name} skipped for multicast: it is down, loopback, "
                    "not multicast-capable or has no IPv4 address"
                )
                continue
            chosen.append(iface)
        return chosen
    targets = _v4_ints(addresses)
    chosen = []
    for iface in available.values():
        if not iface.usable_for_discovery or iface.network is None:
            continue
        net = iface.network.network
        lo, hi = int(net.network_address), int(net.broadcast_address)
        if any(lo <= t <= hi for t in targets):
            chosen.append(iface)
    return chosen


def _v4_ints(addresses: Iterable[str]) -> list[int]:
    values = []
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        if ip.version == 4:
            values.append(int(ip))
    return values


# --- the driver ---------------------------------------------------------------------------------


@dataclass(slots=True)
class UdpDiscoveryResult:
    observations: list[Observation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    datagrams_sent: int = 0
    replies: int = 0
    ignored: int = 0  # datagrams: malformed, oversized, hostile, foreign MessageID, non-camera
    ignored_sources: set[str] = field(default_factory=set)
    #: address -> what could not be kept from it (a flood over MAX_ANSWERS_PER_ADDRESS)
    problems: dict[str, list[str]] = field(default_factory=dict)


class _MessageIds:
    """The ids of a run's probes, made from a counter and never kept (issue 15: a sweep of
    thousands of targets kept three MessageIDs a target for correlating their answers).

    Each id is a random (version 4) UUID of the run whose last 32 bits count the ids issued:
    ``uuid:`` and its canonical text, as :func:`camaudit.protocols.wsd.new_message_id` makes
    them. An answer correlates when its RelatesTo is such a text with the run's 96 random bits
    and a number that was issued: as hard to forge as a fresh UUID, for whoever cannot see the
    probe (and who can, could copy its id anyway)."""

    __slots__ = ("_base", "issued")

    _LOW = 0xFFFF_FFFF

    def __init__(self) -> None:
        self._base = uuid.uuid4().int & ~self._LOW
        self.issued = 0

    def block(self, count: int) -> int:
        """Reserve ``count`` consecutive numbers; the first."""
        first = self.issued
        if first + count > self._LOW:
            raise UsageError("too many discovery probes for one run")
        self.issued += count
        return first

    def uuid_text(self, number: int) -> str:
        return str(uuid.UUID(int=self._base | number))

    def number(self, message_id: str | None) -> int | None:
        """The number of one of our ids, or None for any other text."""
        if not message_id or not message_id.startswith("uuid:") or len(message_id) != 41:
            return None
        try:
            value = uuid.UUID(message_id[5:])
        except ValueError:
            return None
        if str(value) != message_id[5:] or value.int & ~self._LOW != self._base:
            return None
        number = value.int & self._LOW
        return number if number < self.issued else None


@dataclass(slots=True)
class _Group:
    """The destinations of one protocol on one socket: a multicast group, or the unicast targets
    of one address family. The schedule is these groups, walked when sending: nothing is kept
    per destination (issue 15), and each destination's ids are numbers of the run's
    :class:`_MessageIds` (``first_id`` + its index x ``ids_each``), so that repeats reuse them."""

    transport: asyncio.DatagramTransport
    receiver: _Receiver
    proto: str
    addresses: Sequence[str]
    port: int
    ids: _MessageIds
    first_id: int
    #: the WS-Discovery Types of each Probe to a destination (one Probe each); () for SADP, DHIP
    type_sets: tuple[str, ...]
    repeats: int

    @property
    def ids_each(self) -> int:
        """Ids a destination takes: one per WS-Discovery Probe, one per SADP inquiry (its Uuid),
        none for DHIP."""
        return len(self.type_sets) if self.proto == "wsd" else 1 if self.proto == "sadp" else 0

    def host_probe(self, number: int) -> bool:
        """Whether ``number`` is the id of a WSD_HOST_PROBE_TYPES Probe of this group."""
        offset = number - self.first_id
        if self.proto != "wsd" or not 0 <= offset < len(self.addresses) * self.ids_each:
            return False
        return self.type_sets[offset % self.ids_each] == WSD_HOST_PROBE_TYPES

    def payloads(self, index: int) -> list[bytes]:
        """The datagrams for destination ``index``."""
        first = self.first_id + index * self.ids_each
        if self.proto == "wsd":
            return [wsd.build_probe(types, message_id=f"uuid:{self.ids.uuid_text(first + n)}")[0]
                    for n, types in enumerate(self.type_sets)]
        if self.proto == "sadp":
            return [sadp.build_probe(self.ids.uuid_text(first).upper())[0]]
        return [_DHIP_PROBE]

    def send(self, payload: bytes, addr: tuple[str, int]) -> None:
        receiver = self.receiver
        if receiver.sock is None:
            self.transport.sendto(payload, addr)
            return
        try:
            refusals.send(receiver.sock, payload, addr, receiver.refused)
        except (BlockingIOError, InterruptedError):
            self.transport.sendto(payload, addr)  # the socket's buffer is full: queue it
        except OSError as exc:
            # This datagram itself could not go (no route, a broadcast address): said once per
            # kind like any send error, and not waited for when it cannot go again either.
            if exc.errno in refusals.REFUSING_ERRNOS:
                receiver.refused(addr[0])
            receiver.collector.send_error(receiver.label, exc)


_DHIP_PROBE = dhip.build_probe()[0]


class _Receiver(asyncio.DatagramProtocol):
    """Hands one socket's replies to the collector. ``sock`` is set on unicast sockets that hear
    ICMP errors (:mod:`.refusals`): their refused destinations are told to the collector.
    ``reading`` is the socket itself, from which what waits is read (:meth:`read_waiting`)."""

    def __init__(self, collector: _Collector, proto: str, label: str, sock: socket.socket | None,
                 reading: socket.socket) -> None:
        self.collector = collector
        self.proto = proto
        self.label = label
        self.sock = sock
        self.reading = reading

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.collector.handle(self.proto, data, addr)
        self.read_waiting(READ_PER_TURN)

    def read_waiting(self, limit: int) -> None:
        """Read up to ``limit`` datagrams that wait in the socket, as the transport would, one
        turn of the event loop each, had the loop the time."""
        for _ in range(limit):
            try:
                data, addr = self.reading.recvfrom(DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error waiting in the socket: said as the transport would
                self.error_received(exc)
                continue
            self.collector.handle(self.proto, data, addr)

    def error_received(self, exc: Exception) -> None:
        if self.sock is not None and isinstance(exc, OSError) and exc.errno in refusals.REFUSING_ERRNOS:
            refusals.read(self.sock, self.refused)
            return
        self.collector.send_error(self.label, exc)

    def refused(self, address: str) -> None:
        refused = self.collector.refused
        refused[address] = refused.get(address, 0) | _BIT[self.proto]


#: (de-duplication key, observation value, MACs the reply names)
_Parsed = tuple[tuple[str, ...], str, list[str | None]]


class _Collector:
    """Correlates, de-duplicates and turns replies into observations."""

    def __init__(self, result: UdpDiscoveryResult,
                 on_observation: Callable[[Observation], None] | None = None) -> None:
        self.result = result
        #: Where each observation goes as it is made; None: into ``result.observations``.
        self.on_observation = on_observation
        #: the run's probe ids, and the groups they were issued to
        self.ids = _MessageIds()
        self.groups: list[_Group] = []
        #: 16-byte digests of what was seen (datagrams, reply MessageIDs, device evidence and
        #: observations), each kind hashed under its own label (:func:`_digest`): not the
        #: texts, which an answer handed on as it comes would otherwise keep alive (issue 15)
        self.seen: set[bytes] = set()
        self.errors: dict[str, str] = {}
        #: (address, protocol) -> distinct answers kept, answers dropped over the cap
        self.kept: dict[tuple[str, str], int] = {}
        self.dropped: dict[tuple[str, str], int] = {}
        #: (address, protocol) -> MACs named in the answers kept (a tuple: one MAC, mostly)
        self.macs: dict[tuple[str, str], tuple[str, ...]] = {}
        #: address -> loop time of its first usable answer; loop time of the latest answer
        self.answered_at: dict[str, float] = {}
        #: address -> protocols it answered (_BIT)
        self.answered: dict[str, int] = {}
        self.last_answer = 0.0
        #: address -> protocols whose datagrams to it an ICMP error refused (nothing listens; _BIT)
        self.refused: dict[str, int] = {}

    def all_heard(self, targets: set[str], protocols: set[str]) -> bool:
        """Whether every target answered, or refused every one of ``protocols``: nobody is
        still waited for."""
        refused = self.refused
        answered = self.answered_at
        if len(answered) + len(refused) < len(targets):
            return False  # cheap: a large sweep checks this every 50 ms
        wanted = _mask(protocols)
        return all(a in answered or refused.get(a, 0) & wanted == wanted for a in targets)

    def nothing_to_repeat(self, targets: set[str], protocols: set[str]) -> bool:
        """Whether every target answered or refused each one of ``protocols``: a repeat, which is
        there for datagrams lost on the way, would only be answered again."""
        answered = self.answered
        refused = self.refused
        if len(answered) + len(refused) < len(targets):
            return False
        wanted = _mask(protocols)
        return bool(targets) and all((answered.get(a, 0) | refused.get(a, 0)) & wanted == wanted for a in targets)

    def send_error(self, label: str, exc: Exception) -> None:
        # Unreachable networks and refused ports are routine in a sweep; say each kind once.
        if isinstance(exc, OSError) and exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH):
            return
        if isinstance(exc, OSError) and exc.strerror:  # "network is unreachable", not "[Errno 101] ..."
            self.errors.setdefault(label, f"{exc.strerror[0].lower()}{exc.strerror[1:]} for some targets")
        else:
            self.errors.setdefault(label, str(exc))

    def handle(self, proto: str, data: bytes, addr: tuple[str | object, ...]) -> None:
        result = self.result
        source = str(addr[0]).split("%", 1)[0]
        per_address = (source, proto)
        if self.kept.get(per_address, 0) >= MAX_ANSWERS_PER_ADDRESS:
            # A flooding address: dropped unread, before parsing and before it counts towards the
            # run's MAX_REPLIES, so that it can neither slow the loop down (and overflow the
            # socket buffer) nor use up the budget that its neighbours' answers need.
            self.dropped[per_address] = self.dropped.get(per_address, 0) + 1
            return
        if result.replies >= MAX_REPLIES:
            return
        result.replies += 1
        src_port = addr[1] if len(addr) > 1 and isinstance(addr[1], int) else None
        digest = _digest("datagram", proto, source, data=data)
        if digest in self.seen:
            return  # the same datagram again: a device answering our repeat, or twice
        self.seen.add(digest)
        now = utc_now()
        parsed = (self._wsd if proto == "wsd" else self._sadp if proto == "sadp" else self._dhip)(
            data, source, now
        )
        if parsed is None:
            return
        self._heard(source, proto)
        key, value, macs = parsed
        full_key = _digest("evidence", source, proto, *key)
        if full_key in self.seen:
            return  # the same device evidence again (a second answer with a new MessageID)
        if self.kept.get(per_address, 0) >= MAX_ANSWERS_PER_ADDRESS:
            self.dropped[per_address] = self.dropped.get(per_address, 0) + 1
            return  # a flood: each further answer would become observations in the store
        self.kept[per_address] = self.kept.get(per_address, 0) + 1
        self.seen.add(full_key)
        self._add(source, _KIND[proto], value, _PORT[proto], _SOURCE[proto], now)
        named = self.macs.get(per_address, ())
        for mac in macs:
            if not mac or mac in named:
                continue
            if len(named) >= MAX_ANSWERS_PER_ADDRESS:
                self.dropped[per_address] = self.dropped.get(per_address, 0) + 1
                break  # one address naming ever more MACs is a flood too
            named = self.macs[per_address] = (*named, mac)
            self._add(source, "mac", mac, None, _SOURCE[proto], now)
        if src_port == _PORT[proto]:
            self._add(source, "open_port", f"udp/{src_port}", src_port, _SOURCE[proto], now)

    def _heard(self, source: str, proto: str) -> None:
        """``source`` answered one of our ``proto`` probes: it is not waited for any longer."""
        self.answered[source] = self.answered.get(source, 0) | _BIT[proto]
        now_loop = time.monotonic()
        self.answered_at.setdefault(source, now_loop)
        self.last_answer = now_loop

    def _wsd(self, data: bytes, source: str, now: str) -> _Parsed | None:
        reply = wsd.parse_reply(data, source, now)
        if reply is None:
            self._ignore(source)
            return None
        number = self.ids.number(reply.relates_to)
        if number is None:
            log.debug("wsd: %s: RelatesTo %r is not one of our probes", source, reply.relates_to)
            self._ignore(source)
            return None
        if reply.message_id:
            reply_key = _digest("reply", source, reply.message_id)
            if reply_key in self.seen:
                return None
            self.seen.add(reply_key)
        matches = reply.camera_matches
        if not matches:
            # A WS-Discovery host that is no camera (a Windows host, a printer): no evidence, but
            # heard. The answer that the host probe asks for is no reply to ignore.
            self._heard(source, "wsd")
            if not any(group.host_probe(number) for group in self.groups):
                self._ignore(source)
            return None
        key = tuple(
            "|".join((m.endpoint or "", " ".join(m.scopes), " ".join(m.xaddrs))) for m in matches
        )
        return key, reply.raw, [m.mac for m in matches]

    def _sadp(self, data: bytes, source: str, now: str) -> _Parsed | None:
        reply = sadp.parse_reply(data, source, now)
        if reply is None:
            self._ignore(source)
            return None
        return (reply.serial or "", reply.mac or "", reply.firmware or ""), reply.raw, [reply.mac]

    def _dhip(self, data: bytes, source: str, now: str) -> _Parsed | None:
        reply = dhip.parse_reply(data, source, now)
        if reply is None:
            self._ignore(source)
            return None
        return (reply.serial or "", reply.mac or "", reply.firmware or ""), reply.body, [reply.mac]

    def _ignore(self, source: str) -> None:
        self.result.ignored += 1
        self.result.ignored_sources.add(source)

    def _add(self, address: str, kind: str, value: str, port: int | None, src: str, now: str) -> None:
        key = _digest("observation", address, kind, str(port), value)
        if key in self.seen:
            return
        self.seen.add(key)
        obs = Observation(address=address, kind=kind, value=value, port=port, source=src, observed_at=now)
        if self.on_observation is not None:
            self.on_observation(obs)
        else:
            self.result.observations.append(obs)


def _mask(protocols: Iterable[str]) -> int:
    mask = 0
    for proto in protocols:
        mask |= _BIT[proto]
    return mask


def _digest(label: str, *parts: str, data: bytes = b"") -> bytes:
    """16 bytes that stand for ``parts`` (and ``data``) under ``label``: what the duplicate
    checks keep instead of the texts (a sweep of thousands of targets, issue 15). Each part is
    length-prefixed, so that no two different lists of parts hash alike."""
    h = hashlib.blake2b(digest_size=16, person=label.encode()[:16])
    for part in parts:
        encoded = part.encode("utf-8", "surrogatepass")
        h.update(len(encoded).to_bytes(4, "big"))
        h.update(encoded)
    h.update(data)
    return h.digest()


def _open_socket(family: int, *, iface: Interface | None = None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        # Answers wait in the socket while the event loop is busy elsewhere (discovery runs
        # beside the probe stage, issue 15): the usual 208 KB default holds about 150 answers,
        # fewer than a large segment sends in a moment. The kernel caps it at net.core.rmem_max.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        if iface is not None:
            # ip_mreqn {multiaddr, address, ifindex}: pick the interface by index (lab.md 4).
            mreqn = socket.inet_aton("0.0.0.0") * 2 + struct.pack("i", iface.index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, MULTICAST_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
    except OSError:
        sock.close()
        raise
    return sock


def _new_group(transport: asyncio.DatagramTransport, receiver: _Receiver, proto: str, addresses: Sequence[str],
               ids: _MessageIds, wsd_types: tuple[str, ...], repeats: int) -> _Group:
    """A group of destinations, with the block of ids they take (:attr:`_Group.ids_each` each),
    which starts at the ids issued so far."""
    group = _Group(transport, receiver, proto, addresses, _PORT[proto], ids, ids.issued,
                   wsd_types if proto == "wsd" else (), repeats)
    ids.block(len(addresses) * group.ids_each)
    return group


async def udp_discover(
    addresses: Sequence[str],
    *,
    interfaces: Sequence[Interface] = (),
    protocols: Sequence[str] = PROTOCOLS,
    timeout: float = 2.0,
    rate: float = 2000.0,
    on_sent: Callable[[], None] | None = None,
    on_observation: Callable[[Observation], None] | None = None,
    window: int = WINDOW_TARGETS,
) -> UdpDiscoveryResult:
    """Probe ``addresses`` by unicast and, on each of ``interfaces``, by multicast (pass none
    for unicast only); listen ``timeout`` seconds after the last datagram, or less when every
    unicast target has answered (see SETTLE_SECONDS). The unicast targets are taken ``window``
    at a time (WINDOW_TARGETS). ``on_sent()`` is called once, when the first round of datagrams
    is out. With ``on_observation``, each observation is handed to it as it is made and not
    kept in the result."""
    if timeout <= 0 or rate <= 0:
        raise UsageError("discovery timeout and rate must be positive")
    if window < 1:
        raise UsageError("the discovery window must hold at least one target")
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise UsageError(f"unknown discovery protocol(s): {', '.join(sorted(unknown))}")
    for text in addresses:  # every bad address is refused before anything is sent
        _parse_target(text)
    if interfaces:
        check_sender_allowed()
    loop = asyncio.get_running_loop()
    result = UdpDiscoveryResult()
    errors: dict[str, str] = {}
    open_windows: list[asyncio.Task[None]] = []  # the one sending and those listening, OPEN_WINDOWS at most
    try:
        for first in range(0, max(len(addresses), 1), window):
            # The multicast groups go with the first window: they are sent to once per run.
            window_done_sending = loop.create_future()
            task = asyncio.create_task(_discover_window(
                result, errors, addresses[first:first + window], interfaces if not first else (), protocols,
                timeout, rate, on_sent if not first else None, on_observation, window_done_sending,
            ))
            open_windows.append(task)
            # The next window starts once this one sends no more (the rate holds across them)
            # and there is room for it.
            await window_done_sending
            await _close_finished(open_windows)
            while len(open_windows) >= OPEN_WINDOWS:
                await asyncio.wait(open_windows, return_when=asyncio.FIRST_COMPLETED)
                await _close_finished(open_windows)
        while open_windows:
            await asyncio.wait(open_windows, return_when=asyncio.FIRST_COMPLETED)
            await _close_finished(open_windows)
    finally:
        for task in open_windows:
            task.cancel()
        await asyncio.gather(*open_windows, return_exceptions=True)
    for label, message in errors.items():
        result.notes.append(f"{label}: {message}")
    if result.ignored_sources:
        count = len(result.ignored_sources)
        result.notes.append(
            f"discovery replies from {count} address{'' if count == 1 else 'es'} ignored "
            "(malformed, oversized, not a camera, or not answering our probes)"
        )
    log.debug(
        "udp discovery: %d datagrams sent, %d replies, %d ignored, %d observations",
        result.datagrams_sent,
        result.replies,
        result.ignored,
        len(result.observations),
    )
    return result


async def _close_finished(windows: list[asyncio.Task[None]]) -> None:
    """Take the finished windows off ``windows``, raising the failure of one that failed."""
    for task in [task for task in windows if task.done()]:
        windows.remove(task)
        await task


async def _discover_window(
    result: UdpDiscoveryResult,
    errors: dict[str, str],
    addresses: Sequence[str],
    interfaces: Sequence[Interface],
    protocols: Sequence[str],
    timeout: float,
    rate: float,
    on_sent: Callable[[], None] | None,
    on_observation: Callable[[Observation], None] | None,
    done_sending: asyncio.Future[None],
) -> None:
    """One window of :func:`udp_discover`: its targets (and the multicast groups, for the first)
    are sent their rounds and listened to by sockets and a collector of its own, which go when
    it closes. ``done_sending`` is set once it sends no more (or has failed)."""
    loop = asyncio.get_running_loop()
    collector = _Collector(result, on_observation)
    transports: list[asyncio.DatagramTransport] = []
    receivers: list[_Receiver] = []
    v4, v6 = _split_families(addresses)
    groups = collector.groups
    try:
        for proto in protocols:
            for iface in interfaces:
                label = f"{proto} multicast on {iface.name}"
                try:
                    sock = _open_socket(socket.AF_INET, iface=iface)
                except OSError as exc:
                    _note_once(result, f"{label} not possible: {exc.strerror or exc}")
                    continue
                transport, receiver = await _endpoint(loop, sock, _Receiver(collector, proto, label, None, sock))
                transports.append(transport)
                receivers.append(receiver)
                groups.append(_new_group(transport, receiver, proto, [_GROUP[proto]], collector.ids,
                                         WSD_PROBE_TYPE_SETS, MULTICAST_UDP_REPEAT))
            for family, family_addresses in ((socket.AF_INET, v4), (socket.AF_INET6, v6)):
                if not family_addresses:
                    continue
                label = f"{proto} unicast"
                try:
                    sock = _open_socket(family)
                except OSError as exc:  # e.g. IPv6 targets on a host with IPv6 turned off
                    family_name = "IPv6" if family == socket.AF_INET6 else "IPv4"
                    _note_once(result, f"{label} over {family_name} not possible: {exc.strerror or exc}")
                    continue
                hears_refusals = refusals.enable(sock, family)
                transport, receiver = await _endpoint(
                    loop, sock, _Receiver(collector, proto, label, sock if hears_refusals else None, sock)
                )
                transports.append(transport)
                receivers.append(receiver)
                groups.append(_new_group(transport, receiver, proto, family_addresses, collector.ids,
                                         WSD_UNICAST_TYPE_SETS, UNICAST_UDP_REPEAT))
        delay = random.uniform(UDP_MIN_DELAY, UDP_MAX_DELAY)
        sent_at: dict[str, float] = {}
        # Multicast has no known set of answerers: its whole window is listened to.
        targets = set() if interfaces else {*v4, *v6}
        wanted = set(protocols)
        for index in range(1 + max(UNICAST_UDP_REPEAT, MULTICAST_UDP_REPEAT)):
            sends = [g for g in groups if g.repeats >= index]
            if not sends:
                continue
            if index:
                # SOAP-over-UDP 1.1 Appendix I: wait T, repeat, double T up to UDP_UPPER_DELAY.
                await _sleep_unless_done(collector, targets, wanted, delay)
                if collector.nothing_to_repeat(targets, wanted):
                    # Every target answered or refused (ICMP) each protocol: the repeat would
                    # only be answered again (a host alone waited up to 250 ms for it, issue 15).
                    break
                delay = min(delay * 2, UDP_UPPER_DELAY)
                # Otherwise the whole round is repeated, refused destinations included: the
                # listening window counts from the last datagram, and a shorter repeat would end
                # it sooner (answers of a busy segment come late: issue 15).
            result.datagrams_sent += await _paced_send(sends, rate, sent_at)
            if on_sent is not None and index == 0:
                on_sent()
        if not done_sending.done():
            done_sending.set_result(None)
        await _listen(collector, targets, wanted, sent_at, timeout)
        for receiver in receivers:  # answers that came in time, but behind a busy event loop
            receiver.read_waiting(READ_AT_CLOSE)
    finally:
        for transport in transports:
            transport.close()
        # The groups and the receivers refer to the collector and it to them: without this
        # cycle, what the window knew goes as it closes, not at some later garbage collection.
        groups.clear()
        if not done_sending.done():
            done_sending.set_result(None)
    for label, message in collector.errors.items():
        errors.setdefault(label, message)
    for (address, proto), dropped in collector.dropped.items():
        result.problems.setdefault(address, []).append(flood_problem(proto, dropped))


def _note_once(result: UdpDiscoveryResult, note: str) -> None:
    if note not in result.notes:
        result.notes.append(note)


def flood_problem(proto: str, dropped: int) -> str:
    """The problem recorded for an address whose discovery answers were capped."""
    return (f"{_NAME[proto]} discovery: answers capped at {MAX_ANSWERS_PER_ADDRESS} from this address; "
            f"{dropped} more dropped (a device answers a probe a few times at most: this one flooded)")


async def _endpoint(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, receiver: _Receiver
) -> tuple[asyncio.DatagramTransport, _Receiver]:
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: receiver, sock=sock)
    except BaseException:
        sock.close()
        raise
    return transport, receiver


async def _sleep_unless_done(collector: _Collector, targets: set[str], protocols: set[str], seconds: float) -> None:
    """Sleep ``seconds``, or less once every unicast target answered or refused each protocol
    (then no repeat is due: the caller ends the rounds)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if collector.nothing_to_repeat(targets, protocols):
            return
        await asyncio.sleep(min(left, 0.02))


async def _listen(
    collector: _Collector, targets: set[str], protocols: set[str], sent_at: dict[str, float], timeout: float
) -> None:
    """Listen ``timeout`` seconds after the last datagram, or less when every one of ``targets``
    (unicast destinations) has answered, or refused every protocol by ICMP (:mod:`.refusals`),
    and the answers have settled (SETTLE_SECONDS)."""
    last_sent = time.monotonic()
    end = last_sent + timeout
    answered_at = collector.answered_at
    while True:
        now = time.monotonic()
        if now >= end:
            return
        if targets and collector.all_heard(targets, protocols):
            answered = [a for a in targets if a in answered_at]
            if not answered:
                return  # every target refused every protocol: nobody is going to answer
            slowest = max(answered_at[a] - sent_at.get(a, answered_at[a]) for a in answered)
            quiet = max(SETTLE_SECONDS, SETTLE_RTTS * slowest)
            settled = max(last_sent, collector.last_answer) + quiet
            if now >= settled:
                return
            await asyncio.sleep(min(end, settled) - now)
        else:
            await asyncio.sleep(min(end - now, 0.05))


async def _paced_send(groups: Sequence[_Group], rate: float, sent_at: dict[str, float]) -> int:
    """Send to every destination of ``groups``, at most ``rate`` datagrams per second, yielding
    to the loop between small batches so that replies are read while a large sweep is still
    going out. ``sent_at`` gets the time of the first datagram to each address."""
    loop = asyncio.get_running_loop()
    batch = max(1, int(rate / 100))
    start = loop.time()
    sent = 0
    next_pause = batch
    for group in groups:
        for index, address in enumerate(group.addresses):
            if group.transport.is_closing():
                break
            addr = (address, group.port)
            for payload in group.payloads(index):
                group.send(payload, addr)
                sent += 1
            sent_at.setdefault(address, time.monotonic())
            if sent >= next_pause:
                next_pause = sent + batch
                await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    # The last batch also takes its share of time, so that back-to-back rounds keep the rate.
    wait = start + sent / rate - loop.time()
    if wait > 0:
        await asyncio.sleep(wait)
    return sent


def _parse_target(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError as exc:
        raise UsageError(f"{text!r} is not an IP address") from exc
    if ip.is_multicast or (ip.version == 4 and text == "255.255.255.255"):
        raise UsageError(f"{text} is a multicast or broadcast address, not a device")
    return ip


def _split_families(addresses: Sequence[str]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for text in addresses:
        ip = _parse_target(text)
        (v4 if ip.version == 4 else v6).append(str(ip))
    return v4, v6
