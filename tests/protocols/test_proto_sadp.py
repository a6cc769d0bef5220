"""Hikvision SADP inquiry builder and ProbeMatch parser (reference/fingerprinting.md 1.1)."""

from __future__ import annotations

from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

from camaudit.protocols import sadp
from camaudit.protocols.constants import SADP_MAX_LEN

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures" / "discovery"
NOW = "2026-01-01T00:00:00.000000+00:00"


def capture(name: str) -> bytes:
    text = (CAPTURES / name).read_text(encoding="utf-8")
    return text.replace("{{ADDRESS}}", "10.77.0.1").replace("{{RELATES_TO}}", "ABC").encode()


def test_inquiry_shape() -> None:
    data, probe_uuid = sadp.build_probe()
    root = SafeET.fromstring(data)
    assert root.tag == "Probe"
    assert root.findtext("Uuid") == probe_uuid == probe_uuid.upper()
    assert root.findtext("Types") == "inquiry"
    assert [el.tag for el in root] == ["Uuid", "Types"]  # nothing but the inquiry, ever
    assert sadp.is_inquiry(data)
    assert sadp.build_probe()[1] != probe_uuid
    assert sadp.build_probe("abc")[1] == "ABC"


def test_hikvision_reply_fields() -> None:
    reply = sadp.parse_reply(capture("sadp_hikvision.xml"), "10.77.0.1", NOW)
    assert reply is not None
    assert reply.model == "DS-2CD2385G1-I"
    assert reply.serial == "DS-2CD2385G1-I20200414AAWRE33842150"
    assert reply.firmware == "V5.6.2build 190701"
    assert reply.dsp_version == "V7.3 build 190626"
    assert reply.device_type_code == "141945"
    assert reply.mac == "58:50:ed:1f:e3:85"
    assert reply.ipv4 == "10.77.0.1" and reply.gateway == "10.80.0.254"
    assert reply.activated is True
    assert reply.command_port == 8000 and reply.http_port == 80 and reply.sdk_over_tls_port == 8443
    assert reply.oem_code == "1"
    assert reply.hc_platform_supported is True
    assert reply.hc_platform_enabled is False  # firmware wrote "flase"
    assert parse_field(reply, "DeviceLock") is False
    assert reply.dhcp is False
    assert reply.dns == ()
    assert reply.to_json()["firmware"] == "V5.6.2build 190701"


def parse_field(reply: sadp.SadpReply, name: str) -> bool | None:
    return sadp.parse_bool(reply.get(name))


def test_minimal_ezviz_reply_with_stray_whitespace() -> None:
    reply = sadp.parse_reply(capture("sadp_ezviz.xml"), "10.77.0.2", NOW)
    assert reply is not None
    assert reply.model == "CS-C6TC-32WFR"  # sent as " CS-C6TC-32WFR "
    assert reply.mac == "54:c4:15:00:00:02"
    assert reply.activated is None and reply.http_port is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), (" TRUE ", True), ("flase", False), ("False\n", False), ("0", False),
     ("maybe", None), ("", None)],
)
def test_lenient_booleans(text: str, expected: bool | None) -> None:
    assert sadp.parse_bool(text) is expected


@pytest.mark.parametrize("text", ["0", "65536", "-1", "80a", "²", "9" * 50, ""])
def test_bad_ports_are_none(text: str) -> None:
    assert sadp.parse_port(text) is None


def test_leading_whitespace_and_dns_fields() -> None:
    data = b"\r\n  " + capture("sadp_hikvision.xml").replace(
        b"<DHCP>", b"<DNSServer1>10.80.0.53</DNSServer1><DHCP>"
    )
    reply = sadp.parse_reply(data, "10.77.0.1", NOW)
    assert reply is not None and reply.dns == ("10.80.0.53",)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n",
        b"<ProbeMatch><DeviceSN>x",
        b"<ProbeMatch/>",
        b"<ProbeMatch><Types>inquiry</Types></ProbeMatch>",
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "b">]><ProbeMatch><MAC>&a;</MAC></ProbeMatch>',
        b"<Probe><Uuid>X</Uuid><Types>inquiry</Types></Probe>",
    ],
    ids=["empty", "binary", "truncated", "empty-match", "no-device", "entities", "inquiry"],
)
def test_hostile_or_irrelevant_bytes_give_none(data: bytes) -> None:
    assert sadp.parse_reply(data, "10.77.0.3", NOW) is None


def test_truncated_and_oversized() -> None:
    data = capture("sadp_hikvision.xml")
    assert sadp.parse_reply(data[: len(data) // 2], "10.77.0.4", NOW) is None
    big = data.replace(b"</ProbeMatch>", b"<Pad>" + b"x" * SADP_MAX_LEN + b"</Pad></ProbeMatch>")
    assert sadp.parse_reply(big, "10.77.0.4", NOW) is None


def test_field_count_and_length_are_bounded() -> None:
    fields = b"".join(b"<F%d>%s</F%d>" % (i, b"v" * 200, i) for i in range(100))
    data = capture("sadp_ezviz.xml").replace(b"<Types>", fields + b"<Types>")
    reply = sadp.parse_reply(data, "10.77.0.5", NOW)
    assert reply is not None and len(reply.fields) <= sadp.MAX_FIELDS
