"""This namespace's network interfaces, read with ioctls, and the lab guard every multicast and ARP
sender calls first. Kept apart from the UDP driver so that the ARP sweep (``camaudit discover
--arp-only``) does not import the discovery protocols' parsers: a fast start is most of its time.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

__all__ = ["Interface", "check_sender_allowed", "list_interfaces"]

# Linux ioctls and interface flags (<linux/sockios.h>, <net/if.h>).
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_IFF_MULTICAST = 0x1000


@dataclass(frozen=True, slots=True)
class Interface:
    """A local network interface and its primary IPv4 network (None when it has no address)."""

    name: str
    index: int
    up: bool
    loopback: bool
    multicast: bool
    network: ipaddress.IPv4Interface | None

    @property
    def usable_for_discovery(self) -> bool:
        return self.up and self.multicast and not self.loopback and self.network is not None


def list_interfaces() -> list[Interface]:
    """This namespace's interfaces, read with ioctls (fast, no subprocess, no scapy)."""
    found: list[Interface] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, name in socket.if_nameindex():
            flags_raw = _ioctl(sock, _SIOCGIFFLAGS, name)
            flags = struct.unpack_from("H", flags_raw, 16)[0] if flags_raw else 0
            addr_raw = _ioctl(sock, _SIOCGIFADDR, name)
            mask_raw = _ioctl(sock, _SIOCGIFNETMASK, name)
            network = None
            if addr_raw and mask_raw:
                addr = socket.inet_ntoa(addr_raw[20:24])
                mask = socket.inet_ntoa(mask_raw[20:24])
                network = ipaddress.IPv4Interface(f"{addr}/{mask}")
            found.append(
                Interface(
                    name=name,
                    index=index,
                    up=bool(flags & _IFF_UP),
                    loopback=bool(flags & _IFF_LOOPBACK),
                    multicast=bool(flags & _IFF_MULTICAST),
                    network=network,
                )
            )
    return found


def _ioctl(sock: socket.socket, request: int, name: str) -> bytes | None:
    try:
        return fcntl.ioctl(sock.fileno(), request, struct.pack("16s16s", name.encode()[:15], b""))
    except OSError:
        return None  # EADDRNOTAVAIL: no IPv4 address; ENODEV: it went away meanwhile


def check_sender_allowed() -> None:
    """Multicast and ARP senders call this first. When ``CAMAUDIT_REQUIRE_LAB_NETNS=1`` (the
    lab and the test suite set it) they refuse to run outside a ``clab-*`` namespace; otherwise
    it does nothing: multicast on a real network is what an audit is for."""
    if os.environ.get("CAMAUDIT_REQUIRE_LAB_NETNS") != "1":
        return
    from ..lab.guard import assert_in_lab_namespace  # the guard alone, not the lab builder

    assert_in_lab_namespace()
