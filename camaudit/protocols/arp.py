"""ARP (RFC 826) over Ethernet: the request frame camaudit sends and the reply it reads, free of I/O.

``build_request`` makes the broadcast "who has TARGET? tell SRC" frame (Ethernet II, ethertype
0x0806, hardware type 1, protocol type 0x0800), padded to Ethernet's 60-byte minimum.
``parse_reply`` reads a received frame: reply frames are untrusted (any device on the segment,
or anyone spoofing one, can send anything), so it returns the sender's ``(ip, mac)`` only for a
well-formed IPv4-over-Ethernet ARP *reply* whose sender MAC is a unicast address, and None for
anything else (short, malformed, another ethertype, a request, oversize), never raising.
"""

from __future__ import annotations

import socket
import struct

ETH_P_ARP = 0x0806
ETH_P_IPV4 = 0x0800
#: 802.1Q and 802.1ad tags: a frame may reach a packet socket still tagged (no offload).
_VLAN_TAGS = (0x8100, 0x88A8)
ARP_HTYPE_ETHERNET = 1
ARP_OP_REQUEST = 1
ARP_OP_REPLY = 2
BROADCAST_MAC = b"\xff" * 6
#: Ethernet's minimum frame without the FCS. Most drivers pad short frames themselves; padding
#: here costs 18 zero bytes and removes the question for those that do not.
MIN_FRAME = 60
#: Nothing longer is an ARP frame on Ethernet (1500-byte payload + header + one VLAN tag); a
#: longer "reply" is hostile or broken and is dropped without being read.
MAX_FRAME = 1522

_ETH = struct.Struct("!6s6sH")  # destination, source, ethertype
_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa


def mac_bytes(mac: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or with ``-``) -> 6 bytes; ValueError otherwise."""
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def mac_text(raw: bytes) -> str:
    """6 bytes -> ``aa:bb:cc:dd:ee:ff`` (DESIGN.md section 3's spelling)."""
    return ":".join(f"{b:02x}" for b in raw)


def build_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    """The broadcast ARP request asking who has ``target_ip``, from ``src_mac``/``src_ip``.
    Inputs are ours (the interface's own addresses and a planned target): bad ones raise
    ValueError (``OSError`` from inet_aton is turned into it)."""
    sha = mac_bytes(src_mac)
    try:
        spa = socket.inet_aton(src_ip)
        tpa = socket.inet_aton(target_ip)
    except OSError:
        raise ValueError(f"not IPv4 addresses: {src_ip!r}, {target_ip!r}") from None
    # inet_aton accepts shorthand ("10.1" is 10.0.0.1); insist on the dotted quad we were given.
    if socket.inet_ntoa(spa) != src_ip or socket.inet_ntoa(tpa) != target_ip:
        raise ValueError(f"not dotted-quad IPv4 addresses: {src_ip!r}, {target_ip!r}")
    frame = _ETH.pack(BROADCAST_MAC, sha, ETH_P_ARP) + _ARP.pack(
        ARP_HTYPE_ETHERNET, ETH_P_IPV4, 6, 4, ARP_OP_REQUEST, sha, spa, b"\x00" * 6, tpa
    )
    return frame.ljust(MIN_FRAME, b"\x00")


def parse_reply(frame: bytes | bytearray | memoryview) -> tuple[str, str] | None:
    """``(sender ip, sender mac)`` of an ARP reply frame, or None for anything else.

    Accepted: Ethernet II with ethertype ARP (after at most one VLAN tag), hardware type
    Ethernet, protocol IPv4, address lengths 6 and 4, opcode reply, a unicast sender MAC that is
    not all zeros, and a sender IP that is not 0.0.0.0 or a broadcast/multicast address.
    Trailing bytes (padding) are ignored; frames over :data:`MAX_FRAME` are refused."""
    view = memoryview(frame)
    if len(view) > MAX_FRAME or len(view) < _ETH.size + _ARP.size:
        return None
    _dst, _src, ethertype = _ETH.unpack_from(view, 0)
    offset = _ETH.size
    if ethertype in _VLAN_TAGS:
        if len(view) < offset + 4 + _ARP.size:
            return None
        (ethertype,) = struct.unpack_from("!H", view, offset + 2)
        offset += 4
    if ethertype != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, _tha, _tpa = _ARP.unpack_from(view, offset)
    if (htype, ptype, hlen, plen, op) != (ARP_HTYPE_ETHERNET, ETH_P_IPV4, 6, 4, ARP_OP_REPLY):
        return None
    if sha[0] & 1 or sha == b"\x00" * 6:  # group bit set (multicast, broadcast) or no address
        return None
    if spa == b"\x00" * 4 or spa[0] >= 224:  # unspecified, multicast, class E and broadcast
        return None
    return socket.inet_ntoa(spa), mac_text(sha)
