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
    assert time.monotonic() - started < 20  # a guard against super-linear blow-up (300 KB quadratic takes minutes), not a speed test


# Issue 10 item 8: the shapes vendors use that name-based redaction missed.


@pytest.mark.parametrize(
    "text, secret",
    [
        ("table.WLan.eth2.Keys[0]=wlanKeyZero\r\ntable.WLan.eth2.Keys[1]=wlanKeyOne\r\n", "wlanKeyZero"),
        ("table.WLan.eth2.Keys[0]=wlanKeyZero\r\ntable.WLan.eth2.Keys[1]=wlanKeyOne\r\n", "wlanKeyOne"),
        ("<WLan><Keys><Key>wlanKeyXml</Key></Keys></WLan>", "wlanKeyXml"),
        ("<WLan><Keys>wlanKeyText</Keys></WLan>", "wlanKeyText"),
        ('{"Keys": "wlanKeyJson"}', "wlanKeyJson"),
        ('<wlan Keys="wlanKeyAttr"/>', "wlanKeyAttr"),
        ("GET /cgi?passwords=qsPlural&x=1", "qsPlural"),
    ],
)
def test_plural_secret_names(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_plural_names_are_secret_names() -> None:
    assert is_secret_name("table.WLan.eth2.Keys[0]")
    assert is_secret_name("Passwords")
    assert redact_obj({"WLan": {"Keys": ["k-one", "k-two"]}}) == {"WLan": {"Keys": REDACTED}}


@pytest.mark.parametrize(
    "doc, secret",
    [
        ('{"T2UServer": {"Keys": ["arrKeyOne", "arrKeyTwo"], "Enable": true}}', "arrKeyTwo"),
        ('{"password": {"value": "objPw", "type": "plain"}}', "objPw"),
        ('{"secret": {"a": [{"b": "deep]}{Pw"}], "c": 1}, "after": "kept"}', "deep]}{Pw"),
        ('{"PPPoE": {"Password": ["cutAtTheLimit", ', "cutAtTheLimit"),  # a reply cut short
    ],
)
def test_json_secret_members_with_object_or_array_values(doc: str, secret: str) -> None:
    out = redact(doc)
    assert secret not in out
    assert REDACTED in out


def test_json_container_redaction_keeps_the_rest_valid() -> None:
    doc = json.dumps({"Keys": ["a1b2c3", "d4e5f6"], "Enable": True, "Name": "wlan0", "Password": {"x": "y7y7"}})
    out = json.loads(redact(doc))
    assert out == {"Keys": REDACTED, "Enable": True, "Name": "wlan0", "Password": REDACTED}
    assert redact('{"Keys": [], "Name": "n"}') == '{"Keys": [], "Name": "n"}'  # nothing to hide


def test_cdata_longer_than_two_kib_is_redacted() -> None:
    secret = "C" * 3000
    doc = f"<DDNS><password><![CDATA[{secret}]]></password><server>ddns.example</server></DDNS>"
    out = redact(doc)
    assert "CCCC" not in out
    assert "<server>ddns.example</server>" in out
    # Unterminated, as a reply cut at the size limit leaves it.
    assert "CCCC" not in redact(f"<password><![CDATA[{secret}")


def test_plain_text_longer_than_two_kib_is_redacted() -> None:
    assert "TTTT" not in redact("<password>" + "T" * 3000 + "</password>")


@pytest.mark.parametrize(
    "doc, secret",
    [
        ("<user name=admin password=unquotedPw>", "unquotedPw"),
        ("<user name=admin password=unquotedPw/>", "unquotedPw"),
        ("<input type=hidden name=x authKey = spacedKey >", "spacedKey"),
        ("<a name=x passwd=a/b/c>", "a/b/c"),
    ],
)
def test_unquoted_attributes(doc: str, secret: str) -> None:
    out = redact(doc)
    assert secret not in out
    assert "name=" in out


def test_unquoted_attribute_rule_stays_inside_tags() -> None:
    url = "http://10.0.0.5/cgi?pwd=qq123&x=1"
    assert redact(url) == f"http://10.0.0.5/cgi?pwd={REDACTED}&x=1"
    assert redact("<model>DS-2CD</model> key=value outside a tag") == "<model>DS-2CD</model> key=value outside a tag"


@pytest.mark.parametrize(
    "echo",
    [
        "<error>bad password a&amp;b&lt;c&gt;&quot;d&apos;e</error>",
        "<error>bad password a&amp;b&lt;c&gt;&#34;d&#39;e</error>",
        "<error>bad password a&amp;b&lt;c&gt;\"d'e</error>",
        '{"error": "bad password a&b<c>\\"d\'e"}',
    ],
)
def test_escaped_echo_of_the_audit_password(echo: str) -> None:
    password = "a&b<c>\"d'e"
    out = redact(echo, extra_secrets=[password])
    assert "b&lt;c" not in out and "b<c" not in out
    assert "bad password" in out and REDACTED in out


@pytest.mark.parametrize(
    "blob",
    [
        '"Keys": [' * 30000,
        '{"password": {"a": "' + "\\\\" * 50000,
        "<password><![CDATA[" * 20000,
        "<a password=" + "x" * 100000,
        "<a " + "pwd=x " * 30000 + ">",
    ],
)
def test_new_shapes_stay_linear_on_hostile_input(blob: str) -> None:
    # Bounded only to prove "does not hang": a quadratic pass on these takes minutes.
    import time

    started = time.monotonic()
    redact(blob)
    assert time.monotonic() - started < 20
