"""Pure wire formats: nonces, the echo line, DNS, NTP, NAT-PMP, SSDP, RA; hostile input included."""

from __future__ import annotations

import os
import struct

import pytest

from camaudit.egress import dns, wire
from camaudit.egress.gateway import parse_router_advertisement, soap_fields, wan_control_url
from camaudit.egress.listener import dns_answer
from camaudit.egress.netio import IcmpError, judge_error, parse_extended_err
from camaudit.egress.storage import parse_log_line
from camaudit.egress.vantage import default_gateway_v4, ipv6_default_route, parse_proxy, resolvers_from


def test_nonce_round_trip_and_echo() -> None:
    n = wire.new_nonce()
    assert wire.is_nonce(n) and wire.is_nonce(n.upper())
    assert wire.parse_probe(wire.probe_line(n, "tcp/443")) == (n, "tcp/443")
    assert wire.parse_echo(wire.echo_line(n, "10.0.0.1"), n) == "10.0.0.1"
    assert wire.parse_echo(wire.echo_line(wire.new_nonce(), "x"), n) is None  # someone else's nonce
    assert wire.find_nonce(b"junk " + n.upper().encode() + b" more") == n
    for bad in (b"", b"CAMAUDIT-EGRESS", b"CAMAUDIT-EGRESS notanonce", b"\xff" * 300, b"HTTP/1.1 200 OK\r\n"):
        assert wire.parse_probe(bad) is None
        assert wire.parse_echo(bad, n) is None


def test_dns_query_answer_round_trip_with_zone() -> None:
    n = wire.new_nonce()
    seen: list[str] = []
    query = dns.build_query(f"{n.upper()}.Egress.Example.org", dns.QTYPE_TXT, 0x1234)  # 0x20 case
    answer = dns_answer(query, "egress.example.org", seen.append)
    assert answer is not None and seen == [n]
    resp = dns.parse_response(answer)
    assert resp is not None and resp.qid == 0x1234 and resp.rcode == 0
    assert any(n in t for t in resp.txt())
    other = dns_answer(dns.build_query("www.example.com", dns.QTYPE_A, 7), "egress.example.org", seen.append)
    assert other is not None and dns.parse_response(other).rcode == dns.RCODE_REFUSED  # type: ignore[union-attr]
    plain = dns_answer(dns.build_query("x.egress.example.org", dns.QTYPE_TXT, 8), "egress.example.org", seen.append)
    assert plain is not None and dns.parse_response(plain).rcode == dns.RCODE_NXDOMAIN  # type: ignore[union-attr]


def test_dns_parser_survives_hostile_messages() -> None:
    loop = struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    assert dns.parse_response(loop) is None  # a pointer to itself: bounded, no hang
    for _ in range(300):
        blob = os.urandom(int.from_bytes(os.urandom(1), "big"))
        dns.parse_query(blob)
        dns.parse_response(blob)
    assert dns.parse_query(b"\x00" * 11) is None
    with pytest.raises(ValueError):
        dns.build_query("a" * 70 + ".example", dns.QTYPE_A, 1)


def test_compressed_response_from_a_resolver() -> None:
    q = dns.build_query("cam.example.org", dns.QTYPE_A, 99)
    question = q[12:]
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + bytes([8, 8, 4, 4])
    msg = struct.pack("!HHHHHH", 99, 0x8180, 1, 1, 0, 0) + question + rr
    resp = dns.parse_response(msg)
    assert resp is not None and resp.name == "cam.example.org" and resp.answers == [(1, "8.8.4.4")]


def test_ntp_echo_and_natpmp_and_ssdp() -> None:
    n = wire.NONCE_PREFIX + "0000" + os.urandom(8).hex()
    packet, stamp = wire.ntp_request(n)
    reply = wire.ntp_reply(packet, 123 << 32)
    assert reply is not None and wire.ntp_reply_matches(reply, stamp)
    assert not wire.ntp_reply_matches(reply, b"\x00" * 8)
    assert wire.ntp_reply(b"\x1b" + bytes(10), 1) is None
    ok = bytes([0, 128, 0, 0, 0, 0, 0, 5, 198, 51, 100, 7])
    r = wire.parse_natpmp_reply(ok)
    assert r is not None and r.external_address == "198.51.100.7" and r.result_code == 0
    assert wire.parse_natpmp_reply(bytes([2, 0x80, 0, 1]) + bytes(20)).protocol == "pcp"  # type: ignore[union-attr]
    assert wire.parse_natpmp_reply(b"\x00") is None
    h = wire.parse_ssdp_response(b"HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1:1/d.xml\r\nST: x\r\n\r\n")
    assert h is not None and h["LOCATION"] == "http://10.0.0.1:1/d.xml"
    assert wire.parse_ssdp_response(b"NOTIFY * HTTP/1.1\r\n\r\n") is None


def test_igd_description_and_soap_parsing() -> None:
    desc = (b'<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><serviceList><service>'
            b"<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>"
            b"<controlURL>/ctl/IPConn</controlURL></service></serviceList></device></root>")
    assert wan_control_url(desc, "http://10.0.0.1:5000/root.xml") == (
        "http://10.0.0.1:5000/ctl/IPConn", "urn:schemas-upnp-org:service:WANIPConnection:1")
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><root>&b;</root>'
    assert wan_control_url(bomb, "http://10.0.0.1/") is None
    fault = b"<Envelope><Body><Fault><faultcode>s:Client</faultcode><errorCode>713</errorCode></Fault></Body></Envelope>"
    assert soap_fields(fault) is None
    assert soap_fields(b"<a><NewExternalIPAddress>1.2.3.4</NewExternalIPAddress></a>") == {
        "NewExternalIPAddress": "1.2.3.4"}


def test_router_advertisement_parsing() -> None:
    ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
    pio = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + bytes.fromhex("20010db8007700000000000000000000")
    parsed = parse_router_advertisement(ra + pio + b"\x01\x00")  # a zero-length option ends parsing
    assert parsed == {"router_lifetime": 1800, "prefixes": ["2001:db8:77::/64"]}
    assert parse_router_advertisement(b"\x86") is None


def test_icmp_error_judgement() -> None:
    cmsg = struct.pack("=IBBBBII", 113, 2, 3, 13, 0, 0, 0) + struct.pack("=HH4s8x", 2, 0, bytes([10, 0, 0, 1]))
    err = parse_extended_err(cmsg)
    assert err == IcmpError(113, 2, 3, 13, "10.0.0.1")
    assert judge_error(err, None, "203.0.113.7")[:2] == ("admin-prohibited", True)
    port = IcmpError(111, 2, 3, 3, "203.0.113.7")
    assert judge_error(port, None, "203.0.113.7")[:2] == ("reset", False)  # the listener's host, or a reject
    internal = IcmpError(113, 2, 3, 1, "10.0.0.1")
    assert judge_error(internal, None, "203.0.113.7")[:2] == ("unreachable", True)
    far = IcmpError(113, 2, 3, 1, "203.0.113.1")
    assert judge_error(far, None, "203.0.113.7")[:2] == ("unreachable", False)  # maybe the listener is down
    assert judge_error(None, None, "x")[0] == "timeout"
    assert judge_error(None, 101, "x")[:2] == ("no-route", True)


def test_local_facts_parsers() -> None:
    route = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" \
            "eth0\t00000000\t0100140A\t0003\t0\t0\t0\t00000000\n"
    assert default_gateway_v4(route) == ("10.20.0.1", "eth0")
    assert resolvers_from("# x\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nsearch x\n") == ["10.0.0.53", "fe80::1"]
    v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 " \
         "00000400 00000000 00000000 00000003 eth0\n"
    assert ipv6_default_route(v6) is True
    assert parse_proxy("http://user:pw@proxy.corp:3128/") == ("proxy.corp", 3128)
    assert parse_proxy("socks5://x:1") is None


def test_listener_log_lines() -> None:
    n = wire.new_nonce()
    entry = parse_log_line(f'{{"at": "2026-01-05T10:00:00+00:00", "nonce": "{n}", "src": "10.0.0.9", "port": 53}}')
    assert entry is not None and entry.nonce == n and entry.port == 53
    for bad in ("", "[]", '{"nonce": "x", "at": "2026-01-05"}', f'{{"nonce": "{n}", "at": "yesterday"}}',
                "x" * 5000):
        assert parse_log_line(bad) is None
