"""Discovery as one call: UDP discovery (unicast, and multicast when asked) plus an optional ARP
sweep, run concurrently. The scan pipeline calls :func:`discover` and merges its observations
into hosts; ``camaudit discover`` prints them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..model import Observation
from .arp import ArpResult, arp_sweep
from .interfaces import list_interfaces

if TYPE_CHECKING:
    from .udp import UdpDiscoveryResult

log = logging.getLogger(__name__)


@dataclass
class DiscoveryResult:
    observations: list[Observation] = field(default_factory=list)  # address = the replying device
    notes: list[str] = field(default_factory=list)
    #: address -> what could not be kept from it (a flood of answers, capped)
    problems: dict[str, list[str]] = field(default_factory=dict)


async def discover(
    addresses: Sequence[str],
    *,
    interfaces: Sequence[str] = (),
    multicast: bool = False,
    arp: bool = False,
    timeout: float = 2.0,
    rate: float = 2000.0,
    on_sent: Callable[[], None] | None = None,
    udp: bool = True,
    on_observation: Callable[[Observation], None] | None = None,
) -> DiscoveryResult:
    """Run WS-Discovery, SADP and DHIP against ``addresses`` (unicast to each), by multicast on
    ``interfaces`` when ``multicast`` is set (default: the interfaces whose IPv4 network holds a
    target), and an ARP sweep of the attached targets when ``arp`` is set (root only).
    ``timeout`` is how long to listen after the last datagram; ``rate`` caps datagrams/s.
    ``on_sent`` is called once, when the first round of datagrams is out (the scan uses the
    wait that follows for work of its own). ``udp=False`` (with ``arp``) runs the ARP sweep
    alone: no WS-Discovery, SADP or DHIP. With ``on_observation``, each observation is handed
    to it as it is made (ARP's when the sweep ends) rather than kept in the result: the scan
    records answers as they come, and does not hold those of thousands of targets."""
    if timeout <= 0:
        raise UsageError("the discovery timeout must be a positive number of seconds")
    if rate <= 0:
        raise UsageError("the discovery rate must be a positive number of packets per second")
    notes: list[str] = []
    if interfaces:
        known = {i.name for i in list_interfaces()}
        for name in interfaces:
            if name not in known:
                raise UsageError(
                    f"no network interface named {name!r} (have: {', '.join(sorted(known))})"
                )
    if not udp and not arp:
        raise UsageError("nothing to discover: UDP discovery is off and ARP was not asked for")
    if not udp:
        # ARP alone: the UDP driver and the protocol parsers are not even imported (a sweep of a
        # /24 takes about 0.13 s at the default rate; their import would add a third to it).
        arp_result = await arp_sweep(addresses, interfaces=interfaces, timeout=min(timeout, 2.0), rate=rate)
        return _merge(None, arp_result, notes, on_observation)
    from .udp import choose_interfaces, udp_discover

    chosen = choose_interfaces(interfaces, addresses, notes=notes) if multicast else []
    if multicast and not chosen and not interfaces:
        notes.append("multicast discovery skipped: no local interface is on a target network")
    # The MACs UDP discovery named, so that ARP's same MAC for an address is not said twice
    # (kept only when there is an ARP sweep: a set a target otherwise, for nothing).
    udp_macs: set[tuple[str, str]] = set()
    relay = on_observation
    if on_observation is not None and arp:
        sink = on_observation

        def relay(obs: Observation) -> None:
            if obs.kind == "mac":
                udp_macs.add((obs.address, obs.value))
            sink(obs)

    udp_task = udp_discover(addresses, interfaces=chosen, timeout=timeout, rate=rate, on_sent=on_sent,
                            on_observation=relay)
    if arp:
        udp_result, arp_result = await asyncio.gather(
            udp_task, arp_sweep(addresses, interfaces=interfaces, timeout=min(timeout, 2.0), rate=rate)
        )
    else:
        udp_result, arp_result = await udp_task, ArpResult()
    return _merge(udp_result, arp_result, notes, on_observation, udp_macs)


def _merge(udp: UdpDiscoveryResult | None, arp: ArpResult, notes: list[str],
           on_observation: Callable[[Observation], None] | None = None,
           udp_macs: set[tuple[str, str]] | None = None) -> DiscoveryResult:
    observations = list(udp.observations) if udp is not None else []
    have = {(o.address, o.kind, o.value) for o in observations}
    have |= {(address, "mac", mac) for address, mac in udp_macs or ()}
    for obs in arp.observations:
        if (obs.address, obs.kind, obs.value) not in have:
            if on_observation is not None:
                on_observation(obs)
            else:
                observations.append(obs)
            have.add((obs.address, obs.kind, obs.value))
    all_notes = []
    for note in notes + (udp.notes if udp is not None else []) + arp.notes:
        if note not in all_notes:
            all_notes.append(note)
    return DiscoveryResult(observations=observations, notes=all_notes,
                           problems={address: list(found) for address, found in (udp.problems if udp else {}).items()})
