"""Dahua DHIP DHDiscover builder and client.notifyDevInfo parser (fingerprinting.md 2.1)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from camaudit.protocols import dhip

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures" / "discovery"
NOW = "2026-01-01T00:00:00.000000+00:00"


def body() -> bytes:
    text = (CAPTURES / "dhip_dahua.json").read_text(encoding="utf-8")
    return text.replace("{{ADDRESS}}", "10.77.0.3").encode()


def test_search_request_layout() -> None:
    data, message_id = dhip.build_probe()
    assert message_id == ""
    size, magic, session, length, length2 = struct.unpack_from("<I4sQQQ", data)
    assert (size, magic, session) == (32, b"DHIP", 0)
    assert data[:8] == bytes.fromhex("2000000044484950")  # HAICAM header dump
    assert length == length2 == len(data) - 32
    doc = json.loads(data[32:])
    assert doc == {"method": "DHDiscover.search", "params": {"mac": "", "uni": 1}}
    assert data.endswith(b"\n")
    assert dhip.is_search(data)
    assert dhip.parse_reply(data, "10.77.0.3", NOW) is None  # our own request is no reply


def test_notify_dev_info_fields() -> None:
    reply = dhip.parse_reply(dhip.frame(body() + b"\n"), "10.77.0.3", NOW)
    assert reply is not None
    assert reply.mac == "08:ed:ed:00:00:03"
    assert reply.device_class == "IPC"
    assert reply.model == "IPC-HDW1431T1-S4"
    assert reply.serial == "6C01E93PAG69A7D"
    assert reply.firmware == "2.800.0000000.13.R"
    assert reply.vendor == "Private" and reply.manufacturer == "Private"  # unreliable, kept
    assert reply.port == 37777 and reply.http_port == 80
    assert reply.ipv4 == "10.77.0.3" and reply.gateway == "10.80.0.254"
    assert json.loads(reply.body)["method"] == "client.notifyDevInfo"
    assert dhip.parse_body(reply.body, "10.77.0.3", NOW) == reply


def test_u32_length_variant_is_accepted() -> None:
    # US Dahua2Header: u32 length + 4 reserved bytes: identical bytes for small bodies.
    b = body()
    data = struct.pack("<I4sQIIQ", 32, b"DHIP", 0, len(b), 0, len(b)) + b
    assert dhip.parse_reply(data, "10.77.0.3", NOW) is not None


def test_trailing_bytes_beyond_length_are_ignored() -> None:
    b = body()
    assert dhip.parse_reply(dhip.frame(b) + b"\x00garbage", "10.77.0.3", NOW) is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:4] + b"PIHD" + d[8:],  # byte-reversed magic
        lambda d: struct.pack("<I", 16) + d[4:],  # wrong header size
        lambda d: d[32:],  # bare JSON, no header
        lambda d: d[:31],  # shorter than a header
        lambda d: d[:-10],  # truncated body
        lambda d: d[:16] + struct.pack("<Q", 0) + d[24:],  # zero length
        lambda d: d[:16] + struct.pack("<Q", 2**63) + d[24:],  # absurd length
        lambda d: d[:24] + struct.pack("<Q", 5) + d[32:],  # lengths disagree
    ],
    ids=["reversed-magic", "header-size", "no-header", "short", "truncated", "zero-length",
         "huge-length", "length-mismatch"],
)
def test_bad_framing_gives_none(mangle) -> None:  # type: ignore[no-untyped-def]
    assert dhip.parse_reply(mangle(dhip.frame(body())), "10.77.0.3", NOW) is None


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1,2,3]",
        b'{"method":"client.notifyDevInfo"}',
        b'{"method":"client.notifyDevInfo","params":{"deviceInfo":"x"}}',
        b'{"method":"other","params":{"deviceInfo":{}}}',
        b"[" * 20000 + b"]" * 20000,
        b'{"method":"client.notifyDevInfo","params":{"deviceInfo":{"Port":' + b"9" * 5000 + b"}}}",
        b"\xff\xfe\x00\x00",
    ],
    ids=["text", "array", "no-params", "info-not-object", "other-method", "deep", "huge-int",
         "binary"],
)
def test_bad_bodies_give_none(payload: bytes) -> None:
    assert dhip.parse_reply(dhip.frame(payload), "10.77.0.3", NOW) is None


def test_oversized_datagram_is_refused() -> None:
    b = body().replace(b'"Find"', b'"Pad":"' + b"x" * 40_000 + b'","Find"')
    assert dhip.parse_reply(dhip.frame(b), "10.77.0.3", NOW) is None


def test_odd_field_types_do_not_crash() -> None:
    doc = {"method": "client.notifyDevInfo", "mac": 5,
           "params": {"deviceInfo": {"DeviceType": ["x"], "Port": True, "HttpPort": "8080",
                                     "IPv4Address": "flat", "SerialNo": None}}}
    reply = dhip.parse_reply(dhip.frame(json.dumps(doc).encode()), "10.77.0.3", NOW)
    assert reply is not None
    assert reply.mac is None and reply.model is None and reply.port is None
    assert reply.http_port == 8080 and reply.ipv4 is None and reply.serial is None
