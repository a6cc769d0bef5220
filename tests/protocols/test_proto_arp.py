"""The ARP frame builder and reply parser (camaudit.protocols.arp): byte layout and hostile replies.

Reference frames are written out byte by byte from RFC 826 and IEEE 802.3, not produced by the
code under test, so a layout mistake in the builder cannot also hide in the expected bytes.
"""

from __future__ import annotations

import pytest

from camaudit.protocols import arp

# "Who has 10.77.0.5? Tell 10.77.255.1", from 02:00:00:00:ff:01, as the wire carries it.
REQUEST = bytes.fromhex(
    "ffffffffffff" "02000000ff01" "0806"        # Ethernet: broadcast, ours, ARP
    "0001" "0800" "06" "04" "0001"              # Ethernet/IPv4, lengths 6 and 4, request
    "02000000ff01" "0a4dff01"                   # sender MAC and IP
    "000000000000" "0a4d0005"                   # target MAC unknown, target IP
) + bytes(18)                                   # padding to Ethernet's 60-byte minimum
# "10.77.0.5 is at 44:19:b6:00:00:05", to us.
REPLY = bytes.fromhex(
    "02000000ff01" "4419b6000005" "0806"
    "0001" "0800" "06" "04" "0002"
    "4419b6000005" "0a4d0005"
    "02000000ff01" "0a4dff01"
)


def test_request_is_the_rfc_826_frame() -> None:
    frame = arp.build_request("02:00:00:00:ff:01", "10.77.255.1", "10.77.0.5")
    assert frame == REQUEST
    assert len(frame) == arp.MIN_FRAME


def test_reply_gives_sender_address_and_mac() -> None:
    assert arp.parse_reply(REPLY) == ("10.77.0.5", "44:19:b6:00:00:05")
    assert arp.parse_reply(REPLY + bytes(18)) == ("10.77.0.5", "44:19:b6:00:00:05")  # padded
    assert arp.parse_reply(bytearray(REPLY)) == ("10.77.0.5", "44:19:b6:00:00:05")


def test_vlan_tagged_reply_is_read() -> None:
    tagged = REPLY[:12] + bytes.fromhex("81000064") + REPLY[12:]
    assert arp.parse_reply(tagged) == ("10.77.0.5", "44:19:b6:00:00:05")


def test_our_own_request_is_not_a_reply() -> None:
    assert arp.parse_reply(REQUEST) is None


def _with(offset: int, value: bytes) -> bytes:
    return REPLY[:offset] + value + REPLY[offset + len(value):]


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        ("empty", b""),
        ("short by one", REPLY[:-1]),
        ("Ethernet header only", REPLY[:14]),
        ("oversize", REPLY + bytes(arp.MAX_FRAME)),
        ("IPv4 ethertype", _with(12, b"\x08\x00")),
        ("RARP ethertype", _with(12, b"\x80\x35")),
        ("hardware type not Ethernet", _with(14, b"\x00\x06")),
        ("protocol not IPv4", _with(16, b"\x86\xdd")),
        ("hardware length 8", _with(18, b"\x08")),
        ("protocol length 16", _with(19, b"\x10")),
        ("opcode request", _with(20, b"\x00\x01")),
        ("opcode RARP reply", _with(20, b"\x00\x04")),
        ("sender MAC broadcast", _with(22, b"\xff" * 6)),
        ("sender MAC multicast", _with(22, b"\x01\x00\x5e\x00\x00\x01")),
        ("sender MAC zero", _with(22, bytes(6))),
        ("sender IP zero", _with(28, bytes(4))),
        ("sender IP broadcast", _with(28, b"\xff" * 4)),
        ("sender IP multicast", _with(28, b"\xef\xff\xff\xfa")),
        ("truncated after VLAN tag", (REPLY[:12] + bytes.fromhex("81000064") + REPLY[12:])[:45]),
        ("VLAN tag around IPv4", REPLY[:12] + bytes.fromhex("810000640800") + REPLY[14:]),
    ],
)
def test_hostile_and_foreign_frames_are_refused(name: str, frame: bytes) -> None:
    assert arp.parse_reply(frame) is None, name


@pytest.mark.parametrize(
    ("mac", "src", "dst"),
    [
        ("02:00:00:00:ff", "10.0.0.1", "10.0.0.2"),
        ("02:00:00:00:ff:zz", "10.0.0.1", "10.0.0.2"),
        ("02:00:00:00:ff:01", "10.1", "10.0.0.2"),  # inet_aton shorthand is refused
        ("02:00:00:00:ff:01", "10.0.0.1", "2001:db8::1"),
        ("02:00:00:00:ff:01", "10.0.0.1", "10.0.0.256"),
    ],
)
def test_builder_refuses_bad_input(mac: str, src: str, dst: str) -> None:
    with pytest.raises(ValueError):
        arp.build_request(mac, src, dst)


def test_mac_spellings() -> None:
    assert arp.mac_bytes("44-19-B6-00-00-05") == bytes.fromhex("4419b6000005")
    assert arp.mac_text(bytes.fromhex("4419b6000005")) == "44:19:b6:00:00:05"
