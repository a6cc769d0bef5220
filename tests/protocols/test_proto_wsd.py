"""WS-Discovery Probe builder and ProbeMatch parser, on replies built from real captures
(tests/data/captures/discovery, reference/fingerprinting.md section 3) and on hostile bytes."""

from __future__ import annotations

from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

from camaudit.protocols import wsd
from camaudit.protocols.constants import WSD_ACTION_PROBE, WSD_MAX_LEN

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures" / "discovery"
NOW = "2026-01-01T00:00:00.000000+00:00"


def capture(name: str, relates_to: str = "uuid:ours", address: str = "10.77.0.1") -> bytes:
    text = (CAPTURES / name).read_text(encoding="utf-8")
    text = text.replace("{{ADDRESS}}", address).replace("{{RELATES_TO}}", relates_to)
    return text.replace("{{MESSAGE_ID}}", "uuid:reply-1").encode()


def test_probe_is_well_formed_and_carries_a_fresh_message_id() -> None:
    data, message_id = wsd.build_probe()
    root = SafeET.fromstring(data)
    ns = {"s": "http://www.w3.org/2003/05/soap-envelope",
          "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
          "d": "http://schemas.xmlsoap.org/ws/2005/04/discovery"}
    assert root.findtext("s:Header/a:MessageID", namespaces=ns) == message_id
    assert root.findtext("s:Header/a:Action", namespaces=ns) == WSD_ACTION_PROBE
    assert root.findtext("s:Body/d:Probe/d:Types", namespaces=ns) == "dn:NetworkVideoTransmitter tds:Device"
    assert message_id.startswith("uuid:")
    assert wsd.build_probe()[1] != message_id  # responders drop repeated ids (lab.md 4)
    assert wsd.is_probe(data) and wsd.probe_message_id(data) == message_id


def test_probe_types_are_escaped() -> None:
    data, _ = wsd.build_probe(types="a<b", message_id="uuid:x&y")
    assert b"a&lt;b" in data and b"uuid:x&amp;y" in data
    assert wsd.probe_message_id(data) == "uuid:x&y"


def test_hikvision_probe_match() -> None:
    reply = wsd.parse_reply(capture("wsd_hikvision.xml"), "10.77.0.1", NOW)
    assert reply is not None
    assert reply.relates_to == "uuid:ours" and reply.message_id == "uuid:reply-1"
    assert reply.wrapped
    (match,) = reply.matches
    assert match.endpoint == "urn:uuid:3fa1fe68-b915-4053-a3e1-5850ed1fe385"
    assert match.types == ("dn:NetworkVideoTransmitter", "tds:Device")
    assert match.name == "HIKVISION DS-2CD2385G1-I"  # %20 decoded
    assert match.hardware == "DS-2CD2385G1-I"
    assert match.mac == "58:50:ed:1f:e3:85"  # the MAC scope key is upper case on Hikvision
    assert match.location == "city/hangzhou"
    assert match.xaddrs[0] == "http://10.77.0.1/onvif/device_service"
    assert match.metadata_version == "10"
    assert match.is_camera
    assert reply.raw.startswith("<?xml")


def test_dahua_probe_match_scope_skeleton() -> None:
    reply = wsd.parse_reply(capture("wsd_dahua.xml"), "10.77.0.2", NOW)
    assert reply is not None
    (match,) = reply.matches
    assert match.name == "Dahua" and match.hardware == "IPC-HFW2228M-I1-V2"
    assert match.location == "country/china" and match.mac is None
    assert "onvif://www.onvif.org/type/Network_Video_Transmitter" in match.scopes


def test_unwrapped_probe_match_from_ipycam_is_accepted() -> None:
    # A real ipycam 1.3.0 reply: no ProbeMatches wrapper, singular ".../ProbeMatch" Action.
    reply = wsd.parse_reply(capture("wsd_ipycam.xml", address="10.77.0.3"), "10.77.0.3", NOW)
    assert reply is not None and not reply.wrapped
    assert reply.action == "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatch"
    assert reply.matches[0].name == "LabCam" and reply.matches[0].is_camera
    assert reply.matches[0].xaddrs == ("http://10.77.0.3:8080/onvif/device_service",)


def test_types_are_resolved_by_namespace() -> None:
    reply = wsd.parse_reply(capture("wsd_hikvision.xml"), "10.77.0.4", NOW)
    assert reply is not None
    assert reply.matches[0].qualified_types == (
        "{http://www.onvif.org/ver10/network/wsdl}NetworkVideoTransmitter",
        "{http://www.onvif.org/ver10/device/wsdl}Device",
    )


def test_windows_and_printer_matches_are_not_cameras() -> None:
    # wsdd/Windows announce wsdp:Device (devprof namespace, lab.md 8.5): same local name as
    # ONVIF's tds:Device, different namespace.
    windows = capture("wsd_hikvision.xml").replace(
        b"dn:NetworkVideoTransmitter tds:Device", b"wsdp:Device pub:Computer"
    ).replace(b"<env:Envelope ", b'<env:Envelope xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof" ')
    reply = wsd.parse_reply(windows, "10.77.0.4", NOW)
    assert reply is not None and reply.matches[0].types == ("wsdp:Device", "pub:Computer")
    assert reply.camera_matches == ()
    printer = capture("wsd_hikvision.xml").replace(
        b"dn:NetworkVideoTransmitter tds:Device", b"prn:PrintDeviceType"
    )
    reply = wsd.parse_reply(printer, "10.77.0.4", NOW)
    assert reply is not None and reply.camera_matches == ()


def test_undeclared_prefix_still_counts_for_network_video_transmitter() -> None:
    data = capture("wsd_ipycam.xml").replace(
        b"dn:NetworkVideoTransmitter tds:Device", b"nvt:NetworkVideoTransmitter"
    )
    reply = wsd.parse_reply(data, "10.77.0.4", NOW)
    assert reply is not None and reply.matches[0].qualified_types == ("NetworkVideoTransmitter",)
    assert reply.matches[0].is_camera


def test_probe_and_hello_are_not_replies() -> None:
    probe, _ = wsd.build_probe()
    assert wsd.parse_reply(probe, "10.77.0.5", NOW) is None
    hello = capture("wsd_hikvision.xml").replace(b"ProbeMatches</wsa:Action>", b"Hello</wsa:Action>")
    assert wsd.parse_reply(hello, "10.77.0.5", NOW) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"<not xml",
        b"<?xml version='1.0'?><Envelope/>",
        b"<Envelope><Body><ProbeMatches/></Body></Envelope>",
        b"<Envelope><Body>text only</Body></Envelope>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Envelope><Body>&a;</Body></Envelope>',
        b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><Envelope/>',
        b"<a>" * 5000 + b"</a>" * 5000,
        "<Envelope><Body><ProbeMatch><Scopes>é\udcff</Scopes></ProbeMatch></Body></Envelope>".encode(
            "utf-8", "surrogatepass"
        ),
    ],
    ids=["empty", "binary", "unclosed", "no-body", "empty-wrapper", "text-body", "entities",
         "external-dtd", "deep", "bad-utf8"],
)
def test_hostile_bytes_give_none(data: bytes) -> None:
    assert wsd.parse_reply(data, "10.77.0.6", NOW) is None


def test_truncated_reply_gives_none() -> None:
    data = capture("wsd_hikvision.xml")
    for cut in (10, len(data) // 3, len(data) // 2, len(data) - 5):
        assert wsd.parse_reply(data[:cut], "10.77.0.7", NOW) is None


def test_oversized_reply_is_refused_unparsed() -> None:
    data = capture("wsd_hikvision.xml")
    padded = data.replace(b"</env:Body>", b" " * (WSD_MAX_LEN + 1) + b"</env:Body>")
    assert wsd.parse_reply(padded, "10.77.0.8", NOW) is None
    assert wsd.parse_reply(data, "10.77.0.8", NOW) is not None


def test_scope_and_match_counts_are_bounded() -> None:
    many_scopes = " ".join(f"onvif://www.onvif.org/x/{i}" for i in range(1000))
    data = capture("wsd_hikvision.xml").replace(
        b"onvif://www.onvif.org/type/video_encoder", many_scopes.encode()
    )
    reply = wsd.parse_reply(data, "10.77.0.9", NOW)
    assert reply is not None and len(reply.matches[0].scopes) == wsd.MAX_SCOPES
