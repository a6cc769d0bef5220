"""ARP sweeps of directly attached segments, through scapy (imported lazily: it takes 0.5-0.8 s).

scapy's ``arping`` reads global ``conf.verb``, writes a module-level cache and prints, so this
adapter calls ``srp`` itself with an explicit ``iface``, ``timeout`` and ``verbose=0``, on a host
list (``pdst`` as a /24 would include the network and broadcast addresses, which never answer,
and ``A-B`` strings are not ranges for ARP.pdst in scapy 2.8: lab.md section 3). The blocking call
runs in an executor so the event loop keeps serving the UDP discovery meanwhile.

ARP needs raw sockets: without root it is skipped, with one note. ARP does not cross routers:
only targets inside the IPv4 network of a local interface are swept, each on that interface.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from ..model import Observation, utc_now
from ..protocols.constants import SOURCE_ARP, normalize_mac
from .udp import Interface, check_sender_allowed, list_interfaces

log = logging.getLogger(__name__)

NOTE_NO_ROOT = "ARP sweep skipped: needs root"
#: scapy's srp can pace its own sends; beyond this many hosts per second it is throttled.
DEFAULT_RATE = 2000.0


@dataclass(slots=True)
class ArpResult:
    observations: list[Observation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: address -> MAC, as answered
    answers: dict[str, str] = field(default_factory=dict)


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
    loop = asyncio.get_running_loop()
    jobs = [
        loop.run_in_executor(None, _srp, iface, hosts, timeout, rate) for iface, hosts in plan.items()
    ]
    for iface, outcome in zip(plan, await asyncio.gather(*jobs, return_exceptions=True), strict=True):
        if isinstance(outcome, BaseException):
            if isinstance(outcome, ImportError):
                result.notes.append("ARP sweep skipped: scapy is not installed (pip install scapy)")
                break
            result.notes.append(f"ARP sweep on {iface} failed: {outcome}")
            continue
        now = utc_now()
        for address, mac_text in outcome:
            mac = normalize_mac(mac_text)
            if mac is None or address in result.answers:
                continue
            result.answers[address] = mac
            result.observations.append(
                Observation(address=address, kind="mac", value=mac, source=SOURCE_ARP, observed_at=now)
            )
    return result


def _srp(iface: str, hosts: list[str], timeout: float, rate: float) -> list[tuple[str, str]]:
    """The blocking scapy call (runs in an executor). Answers are read from the ARP payload."""
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp

    request = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=hosts)
    answered, _ = srp(
        request, iface=iface, timeout=timeout, verbose=0, inter=1.0 / rate, retry=0
    )
    pairs: list[tuple[str, str]] = []
    for _sent, received in answered:
        arp = received[ARP]
        pairs.append((str(arp.psrc), str(arp.hwsrc)))
    return pairs


@lru_cache(maxsize=4096)
def oui_organisation(mac: str) -> str | None:
    """The IEEE registrant of a MAC's OUI, from netaddr's bundled registry; None when the OUI
    is not registered there (or the MAC is locally administered)."""
    try:
        from netaddr import EUI
        from netaddr.core import NotRegisteredError
    except ImportError:  # pragma: no cover - netaddr is a core dependency
        return None
    try:
        org = EUI(mac).oui.registration().org
    except (NotRegisteredError, ValueError, TypeError, IndexError, KeyError):
        return None
    return str(org).strip() or None
