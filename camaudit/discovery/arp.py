"""ARP sweeps of directly attached segments, on a raw packet socket (Linux ``AF_PACKET``, root).

One socket per interface, bound to it and to the ARP ethertype: requests built by
:func:`camaudit.protocols.arp.build_request` go out at the discovery rate (``[discovery] rate``),
and replies are read as they come, through the pure :func:`camaudit.protocols.arp.parse_reply`
(reply frames are untrusted). The sweep ends as soon as every target has answered, or after a
short wait after the last request that adapts to the round trips seen (:func:`settle_window`),
never later than ``timeout`` after it. The blocking loop runs in an executor thread, one per
interface, so the event loop keeps serving the UDP discovery meanwhile.

This replaced scapy's ``srp`` (issue 15): scapy's import alone took 0.5-0.8 s and ``srp`` always
waits its whole timeout after the last frame (lab.md sections 3 and 12), so a /24 could not take
less than about 1.5 s.

ARP needs raw sockets: without root it is skipped, with one note. ARP does not cross routers:
only targets inside the IPv4 network of a local interface are swept, each on that interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import select
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from ..model import Observation, utc_now
from ..protocols.arp import ETH_P_ARP, build_request, mac_text, parse_reply
from ..protocols.constants import SOURCE_ARP, normalize_mac
from .interfaces import Interface, check_sender_allowed, list_interfaces

log = logging.getLogger(__name__)

NOTE_NO_ROOT = "ARP sweep skipped: needs root"
#: Requests per second when the caller gives no rate (the discovery default, ``[discovery] rate``).
DEFAULT_RATE = 2000.0

# How long to keep listening after the last request when some targets have not answered.
# ARP is answered by the target's kernel: on a wired segment the round trip is well under a
# millisecond, and a device that has not answered after many times the slowest round trip seen
# is almost certainly absent, not slow. So the wait is RTT_FACTOR x the slowest round trip
# observed in this sweep (which also absorbs a busy scanner: its own delays inflate the round
# trips it measures, and so lengthen the wait), but never less than MIN_WAIT (a sleepy
# power-saving or Wi-Fi-bridged device can take a few hundred milliseconds, and with few targets
# there may be no round trip to learn from) and never more than the configured timeout. When
# every target has answered there is nothing to wait for, and the sweep ends at once.
MIN_WAIT = 0.25
RTT_FACTOR = 8.0
#: Frames read per pass before the loop looks at its clock again (a flood cannot starve it).
_READ_BATCH = 256
#: Receive buffer asked for (the kernel caps it at rmem_max): replies of a large segment arrive
#: in a burst while the loop may be sending.
RECEIVE_BUFFER_BYTES = 1 << 20
_PACKET_OUTGOING = 4  # sll_pkttype of frames this host sent (<linux/if_packet.h>)


@dataclass(slots=True)
class ArpResult:
    observations: list[Observation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: address -> MAC, as answered
    answers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SweepStats:
    """What one interface's sweep did (for logs and benchmarks)."""

    sent: int = 0
    answered: int = 0
    #: slowest request-to-reply time seen, seconds (None: nobody answered)
    slowest_rtt: float | None = None
    #: the listening window after the last request that applied (0 when everyone answered first)
    window: float = 0.0
    elapsed: float = 0.0
    ignored_frames: int = 0


def settle_window(slowest_rtt: float | None, timeout: float) -> float:
    """Seconds to keep listening after the last request while targets are still silent:
    RTT_FACTOR x the slowest round trip seen, at least MIN_WAIT, at most ``timeout``."""
    wait = MIN_WAIT if slowest_rtt is None else max(MIN_WAIT, RTT_FACTOR * slowest_rtt)
    return max(0.0, min(wait, timeout))


def plan_sweep(
    addresses: Sequence[str], interfaces: Sequence[Interface]
) -> dict[str, list[str]]:
    """Map each interface name to the target addresses on its attached IPv4 network (the
    interface's own address excluded). Loopback and down interfaces never take part."""
    plan: dict[str, list[str]] = {}
    nets = [
        (i, i.network)
        for i in interfaces
        if i.up and not i.loopback and i.network is not None
    ]
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        if ip.version != 4:
            continue
        for iface, net in nets:
            if ip in net.network and ip != net.ip:
                plan.setdefault(iface.name, []).append(str(ip))
                break
    return plan


async def arp_sweep(
    addresses: Sequence[str],
    *,
    interfaces: Sequence[str] = (),
    timeout: float = 1.0,
    rate: float = DEFAULT_RATE,
) -> ArpResult:
    """ARP-sweep the targets that sit on a directly attached segment (restricted to the named
    interfaces when given). Returns ``mac`` observations, one per answering address."""
    result = ArpResult()
    if os.geteuid() != 0:
        result.notes.append(NOTE_NO_ROOT)
        return result
    check_sender_allowed()
    local = list_interfaces()
    if interfaces:
        local = [i for i in local if i.name in set(interfaces)]
    plan = plan_sweep(addresses, local)
    if not plan:
        result.notes.append("ARP sweep: no target is on a directly attached IPv4 segment")
        return result
    own = {i.name: str(i.network.ip) for i in local if i.network is not None}
    loop = asyncio.get_running_loop()
    jobs = [
        loop.run_in_executor(None, sweep_interface, iface, own[iface], hosts, timeout, rate)
        for iface, hosts in plan.items()
    ]
    for iface, outcome in zip(plan, await asyncio.gather(*jobs, return_exceptions=True), strict=True):
        if isinstance(outcome, BaseException):
            result.notes.append(f"ARP sweep on {iface} failed: {outcome}")
            continue
        pairs, stats = outcome
        log.debug("arp sweep on %s: %s", iface, stats)
        now = utc_now()
        for address, mac_value in pairs:
            mac = normalize_mac(mac_value)
            if mac is None or address in result.answers:
                continue
            result.answers[address] = mac
            result.observations.append(
                Observation(address=address, kind="mac", value=mac, source=SOURCE_ARP, observed_at=now)
            )
    return result


def sweep_interface(
    iface: str,
    src_ip: str,
    hosts: Sequence[str],
    timeout: float,
    rate: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[tuple[str, str]], SweepStats]:
    """The blocking sweep of ``hosts`` on ``iface`` (runs in an executor thread). Returns the
    ``(address, mac)`` answers in arrival order, the first answer of each target only, and what
    the sweep did. Bounded: it returns at most ``len(hosts) / rate + timeout`` seconds (plus
    scheduling delays) after it starts."""
    if not hasattr(socket, "AF_PACKET"):
        raise OSError(errno.EAFNOSUPPORT, "raw packet sockets (AF_PACKET) are Linux-only")
    if rate <= 0 or timeout <= 0:
        raise ValueError("the ARP sweep needs a positive rate and timeout")
    stats = SweepStats()
    answers: list[tuple[str, str]] = []
    if not hosts:
        return answers, stats
    # Protocol 0 at creation: the socket receives nothing until bind() names the interface and
    # the ARP ethertype, so it never sees another interface's frames. (Created with ETH_P_ARP it
    # would listen on every interface at once, and bind() would then wait for the kernel to
    # unhook that listener: about 10 ms more.)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        sock.bind((iface, ETH_P_ARP))
        src_mac = mac_text(sock.getsockname()[4][:6])
        sock.setblocking(False)
        frames = [build_request(src_mac, src_ip, host) for host in hosts]
        pending = set(hosts)
        sent_at: dict[str, float] = {}
        interval = 1.0 / rate
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        start = clock()
        # A hard stop whatever happens (a send queue that never drains, a clock that jumps).
        hard_stop = start + len(hosts) * interval + timeout + 1.0
        last_sent: float | None = None
        index = 0
        while True:
            now = clock()
            while index < len(frames) and start + index * interval <= now:
                try:
                    sock.send(frames[index])
                except (BlockingIOError, InterruptedError):
                    break  # the device's queue is full: try again on the next pass
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise
                    break
                sent_at[hosts[index]] = clock()
                index += 1
                stats.sent = index
            if index == len(frames) and last_sent is None:
                last_sent = clock()
            _read(sock, pending, sent_at, answers, stats, clock)
            now = clock()
            if not pending or now >= hard_stop:
                break
            if last_sent is None:
                wake = start + index * interval
            else:
                stats.window = settle_window(stats.slowest_rtt, timeout)
                wake = last_sent + stats.window
                if now >= wake:
                    break
            poller.poll(max(0.0, min(wake, hard_stop) - now) * 1000.0)
        stats.elapsed = clock() - start
        if not pending:
            stats.window = 0.0
    finally:
        sock.close()
    return answers, stats


def _read(
    sock: socket.socket,
    pending: set[str],
    sent_at: dict[str, float],
    answers: list[tuple[str, str]],
    stats: SweepStats,
    clock: Callable[[], float],
) -> None:
    """Read what is queued (at most _READ_BATCH frames) and record first answers of targets
    already asked. Anything else (our own requests, other hosts' traffic, malformed frames,
    replies from addresses we did not ask, second answers) is counted and dropped."""
    for _ in range(_READ_BATCH):
        try:
            data, addr = sock.recvfrom(2048)
        except (BlockingIOError, InterruptedError):
            return
        if len(addr) > 2 and addr[2] == _PACKET_OUTGOING:
            continue
        parsed = parse_reply(data)
        if parsed is None or parsed[0] not in pending or parsed[0] not in sent_at:
            stats.ignored_frames += 1
            continue
        address, mac = parsed
        rtt = clock() - sent_at[address]
        stats.slowest_rtt = rtt if stats.slowest_rtt is None else max(stats.slowest_rtt, rtt)
        pending.discard(address)
        answers.append((address, mac))
        stats.answered += 1


@lru_cache(maxsize=4096)
def oui_organisation(mac: str) -> str | None:
    """The IEEE registrant of a MAC's OUI, from netaddr's copy of the registry; None when the OUI
    is not registered there (or the MAC is locally administered). Read through
    :func:`camaudit.fingerprint.oui.registrant`, which does not import netaddr: its import
    loads the whole OUI index (about 0.1 s and 11 MB) for the few prefixes a sweep looks up."""
    from ..fingerprint.oui import registrant

    normal = normalize_mac(mac)
    if normal is None:
        return None
    return registrant(normal[:8])  # by OUI: registrant() caches per prefix, a sweep has few
