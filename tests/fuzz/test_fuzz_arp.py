"""Properties of the ARP frame functions (camaudit.protocols.arp).

Contract: any received frame parses to ``(ip, mac)`` or None, never an exception, in bounded time;
what it returns is a dotted-quad address and a unicast MAC. Round trip: a reply built from any
sender address and unicast MAC reads back as exactly that pair, and a request never reads as a reply.
"""

from __future__ import annotations

import ipaddress
import struct

from fuzzkit import bounded, fuzz_bytes
from hypothesis import given
from hypothesis import strategies as st

from camaudit.protocols import arp

_REQUEST = arp.build_request("02:00:00:00:ff:01", "10.77.255.1", "10.77.0.5")
_REPLY = bytes.fromhex("02000000ff014419b60000050806000108000604000244" "19b60000050a4d000502000000ff010a4dff01")
SEEDS = [_REQUEST, _REPLY, _REPLY + bytes(18), _REPLY[:12] + b"\x81\x00\x00\x64" + _REPLY[12:]]
TOKENS = (b"\x08\x06", b"\x81\x00", b"\x00\x02", b"\x00\x01", b"\xff" * 6, b"\x00" * 6, b"\x06\x04")

_unicast_mac = st.binary(min_size=6, max_size=6).filter(lambda b: not b[0] & 1 and any(b))
_ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))


@given(fuzz_bytes(SEEDS, max_size=2048, tokens=TOKENS))
def test_parse_reply_never_raises(frame: bytes) -> None:
    parsed = bounded(arp.parse_reply, frame)
    if parsed is not None:
        address, mac = parsed
        ip = ipaddress.IPv4Address(address)
        assert not ip.is_multicast and str(ip) not in ("0.0.0.0", "255.255.255.255")
        raw = arp.mac_bytes(mac)
        assert not raw[0] & 1 and any(raw)
        assert len(frame) <= arp.MAX_FRAME


@given(_unicast_mac, _ipv4, st.binary(max_size=64))
def test_reply_round_trip(sha: bytes, spa: str, padding: bytes) -> None:
    frame = struct.pack("!6s6sHHHBBH6s4s6s4s", b"\x02" + bytes(5), sha, arp.ETH_P_ARP, 1, 0x0800, 6, 4,
                        arp.ARP_OP_REPLY, sha, ipaddress.IPv4Address(spa).packed, b"\x02" + bytes(5),
                        bytes(4)) + padding
    first = int(spa.split(".")[0])
    expected = None if spa == "0.0.0.0" or first >= 224 else (spa, arp.mac_text(sha))
    assert arp.parse_reply(frame) == expected


@given(_unicast_mac, _ipv4, _ipv4)
def test_request_layout_and_never_a_reply(sha: bytes, src: str, dst: str) -> None:
    frame = arp.build_request(arp.mac_text(sha), src, dst)
    assert len(frame) == arp.MIN_FRAME
    assert frame[:6] == arp.BROADCAST_MAC and frame[6:12] == sha and frame[22:28] == sha
    assert frame[28:32] == ipaddress.IPv4Address(src).packed
    assert frame[38:42] == ipaddress.IPv4Address(dst).packed
    assert arp.parse_reply(frame) is None
