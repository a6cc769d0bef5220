"""Redaction of secrets before storage (reference/egress.md section 2.5)."""

from __future__ import annotations

import json

import pytest

from camaudit.redact import REDACTED, is_secret_name, redact, redact_obj

EZVIZ = """<?xml version="1.0" encoding="UTF-8"?>
<EZVIZ version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<enabled>true</enabled><registerStatus>true</registerStatus>
<verificationCode>QWERTY</verificationCode>
</EZVIZ>"""


def test_xml_verification_code_is_redacted_and_the_rest_kept() -> None:
    out = redact(EZVIZ)
    assert "QWERTY" not in out
    assert f"<verificationCode>{REDACTED}</verificationCode>" in out
    assert "<registerStatus>true</registerStatus>" in out


@pytest.mark.parametrize(
    "doc, secret",
    [
        ("<Ehome><key>ehomeKey1</key></Ehome>", "ehomeKey1"),
        ('<a:password xmlns:a="urn:x">pw-1</a:password>', "pw-1"),
        ("<password><![CDATA[cd<ata]]></password>", "cd<ata"),
        ("<DDNS><password>\n  multi\n  line\n</password></DDNS>", "multi"),
        ('<user name="x" password="attrSecret"/>', "attrSecret"),
        ("<secretKey><encrypted>inner</encrypted></secretKey>", "inner"),
        # cut at the size limit: no closing tag
        ("<EZVIZ><verificationCode>TRUNC8", "TRUNC8"),
    ],
)
def test_xml_shapes(doc: str, secret: str) -> None:
    assert secret not in redact(doc)


def test_dahua_key_value_lines() -> None:
    text = (
        "table.T2UServer.Enable=true\r\n"
        "table.T2UServer.Key=p2pKeyVerySecret\r\n"
        "table.T2UServer.Username=p2puser\r\n"
        "table.DDNS[0].Password=dd-Pass-9\r\n"
        "table.Network.eth0.DnsServers[0]=8.8.8.8\r\n"
    )
    out = redact(text)
    for secret in ("p2pKeyVerySecret", "p2puser", "dd-Pass-9"):
        assert secret not in out
    assert "table.T2UServer.Enable=true" in out
    assert "table.Network.eth0.DnsServers[0]=8.8.8.8" in out
    assert f"table.T2UServer.Key={REDACTED}" in out


def test_json_members_urls_and_query_strings() -> None:
    doc = json.dumps({"deviceName": "cam", "password": "j1", "nested": {"accessKey": 12345678}})
    out = redact(doc)
    assert "j1" not in out and "12345678" not in out and '"deviceName": "cam"' in out
    url = "rtsp://admin:hunter22@10.0.0.5:554/Streaming/Channels/101?pwd=qq123&x=1"
    out = redact(url)
    assert "hunter22" not in out and "qq123" not in out and "admin" not in out
    assert "/Streaming/Channels/101" in out and "x=1" in out


def test_extra_literal_secrets_are_scrubbed_anywhere() -> None:
    out = redact("device echoed my password s3cret! in a banner", extra_secrets=["s3cret!"])
    assert "s3cret!" not in out
    # Very short literals are not scrubbed: they would shred ordinary text.
    assert redact("ab ab", extra_secrets=["ab"]) == "ab ab"


def test_non_secrets_are_left_alone() -> None:
    text = "<DeviceInfo><model>DS-2CD2385G1-I</model><keyFrameInterval>50</keyFrameInterval></DeviceInfo>"
    assert redact(text) == text
    assert not is_secret_name("NetworkInterfaces.token")  # ONVIF object identifiers
    assert is_secret_name("table.T2UServer.Key")
    assert is_secret_name("table.DDNS[0].Password")


def test_redact_obj_hides_whole_values() -> None:
    data = {"entries": [{"Password": "x1x", "HostName": "h"}], "Key": {"nested": 1}, "ok": "s3cret!"}
    out = redact_obj(data, extra_secrets=["s3cret!"])
    assert out == {"entries": [{"Password": REDACTED, "HostName": "h"}], "Key": REDACTED, "ok": REDACTED}


@pytest.mark.parametrize(
    "blob",
    [
        "<password>" * 20000 + "x" * 100000,  # many unclosed secret tags
        '<a password="' * 30000,
        "table." * 50000 + "=",  # one endless dotted name
        "x://" * 50000,
        "<p:" + "a" * 300000,
        '"password": "' + "a\\\\" * 50000,
    ],
)
def test_hostile_input_is_linear(blob: str) -> None:
    import time

    started = time.monotonic()
    redact(blob)
    assert time.monotonic() - started < 2
