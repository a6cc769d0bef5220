"""Pure parsers for ISAPI XML and Dahua key=value replies, including hostile input."""

from __future__ import annotations

import pytest
from interrogate_stubs import (
    DAHUA_REPLIES,
    HIK_DDNS,
    HIK_DEVICE_INFO,
    HIK_EZVIZ,
    HIK_INTERFACES,
    HIK_NTP,
    HIK_ONLINE_UPGRADE,
    HIK_SERIAL,
    HIK_UPNP,
    HIK_UPNP_STATUS,
)

from camaudit.protocols import dahua_cgi, isapi

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<DeviceInfo xmlns="http://www.hikvision.com/ver20/XMLSchema"><model>&lol3;</model></DeviceInfo>"""
EXTERNAL = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<DeviceInfo><model>&e;</model></DeviceInfo>"""


def test_device_info() -> None:
    info = isapi.parse_device_info(HIK_DEVICE_INFO.encode())
    assert info is not None
    assert info["serialNumber"] == HIK_SERIAL and info["model"] == "DS-2CD2385G1-I"
    assert info["manufacturer"] == "hikvision"
    root = isapi.parse_document(HIK_DEVICE_INFO)
    assert root is not None and isapi.is_isapi(root)


def test_isapi_namespace_variant_and_response_status() -> None:
    doc = HIK_DEVICE_INFO.replace("http://www.hikvision.com/ver20/XMLSchema", "http://www.isapi.org/ver20/XMLSchema")
    assert isapi.parse_device_info(doc) is not None
    status = ('<ResponseStatus version="1.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
              "<statusCode>4</statusCode><statusString>Invalid Operation</statusString>"
              "<subStatusCode>notSupport</subStatusCode></ResponseStatus>")
    assert isapi.parse_response_status(status) == {
        "statusCode": "4", "statusString": "Invalid Operation", "subStatusCode": "notSupport"}
    assert isapi.parse_device_info(status) is None


def test_network_interfaces() -> None:
    net = isapi.parse_network_interfaces(HIK_INTERFACES)
    assert net is not None
    assert net.gateways == ["10.88.1.1"]
    assert net.dns == ["8.8.8.8", "114.114.114.114"]
    assert net.interfaces[0]["ipV6AddressingType"] == "ra"
    no_gateway = HIK_INTERFACES.replace("10.88.1.1", "0.0.0.0")
    assert isapi.parse_network_interfaces(no_gateway).gateways == []  # type: ignore[union-attr]


def test_platforms_and_upgrade_server() -> None:
    ezviz = isapi.parse_platform(HIK_EZVIZ, "EZVIZ")
    assert ezviz is not None
    assert (ezviz.enabled, ezviz.registered, ezviz.bound) == (True, True, True)
    assert ezviz.servers == ["litedev.hik-connect.com"]
    off = HIK_EZVIZ.replace("<enabled>true", "<enabled>flase").replace("<registerStatus>true", "<registerStatus>false")
    off_status = isapi.parse_platform(off, "EZVIZ")
    assert off_status is not None and (off_status.enabled, off_status.registered) == (False, False)
    assert isapi.parse_platform(HIK_EZVIZ, "Ehome") is None  # wrong document
    upgrade = isapi.parse_online_upgrade_server(HIK_ONLINE_UPGRADE)
    assert upgrade is not None and upgrade.registered is False


def test_ntp_ddns_upnp() -> None:
    assert isapi.parse_ntp_servers(HIK_NTP) == ["pool.ntp.org"]
    ddns = isapi.parse_ddns(HIK_DDNS)
    assert ddns == [{"enabled": False, "provider": "HiDDNS", "servers": ["www.hik-online.com"],
                     "domain": "camera-lobby"}]
    assert isapi.parse_upnp(HIK_UPNP) is True
    assert isapi.parse_upnp_port_status(HIK_UPNP_STATUS) == [
        {"internalPort": "80", "externalPort": "8080", "status": "valid"}]


@pytest.mark.parametrize("data", [
    BOMB, EXTERNAL, "", "not xml", "<DeviceInfo>", b"\xff\xfe\x00garbage", "<a>" * 100000,
    "<DeviceInfo>" + "x" * (isapi.MAX_DOCUMENT_BYTES + 1) + "</DeviceInfo>",
])
def test_hostile_xml_is_none_never_an_exception(data: str | bytes) -> None:
    assert isapi.parse_device_info(data) is None
    assert isapi.parse_network_interfaces(data) is None
    assert isapi.parse_platform(data, "EZVIZ") is None


def test_dahua_tables() -> None:
    kv = dahua_cgi.parse_kv(DAHUA_REPLIES["/cgi-bin/configManager.cgi?action=getConfig&name=Network"])
    assert kv is not None
    assert dahua_cgi.network_settings(kv) == (["10.88.1.1"], ["8.8.8.8", "114.114.114.114"])
    kv = dahua_cgi.parse_kv(DAHUA_REPLIES["/cgi-bin/configManager.cgi?action=getConfig&name=T2UServer"].encode())
    p2p = dahua_cgi.t2u_server(kv)  # type: ignore[arg-type]
    assert p2p is not None and p2p.enabled is True and p2p.registered is None
    assert p2p.servers == ["www.easy4ipcloud.com", "p2pregister.easy4ipcloud.com"]
    kv = dahua_cgi.parse_kv(DAHUA_REPLIES["/cgi-bin/configManager.cgi?action=getConfig&name=NTP"])
    assert dahua_cgi.ntp_servers(kv) == (True, ["time.windows.com"])  # type: ignore[arg-type]
    kv = dahua_cgi.parse_kv(DAHUA_REPLIES["/cgi-bin/configManager.cgi?action=getConfig&name=UPnP"])
    assert dahua_cgi.upnp(kv) == (True, [  # type: ignore[arg-type]
        {"Enable": True, "InnerPort": "80", "OuterPort": "8080", "Protocol": "TCP"}])
    kv = dahua_cgi.parse_kv(DAHUA_REPLIES["/cgi-bin/configManager.cgi?action=getConfig&name=DDNS"])
    entries = dahua_cgi.ddns(kv)  # type: ignore[arg-type]
    assert entries is not None and entries[0]["Enable"] is False
    # A different table's reply is "no such table", not "disabled".
    assert dahua_cgi.t2u_server(kv) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [
    "Error\r\nBad Request!\r\n", "", "<html>404</html>", b"\x00\x01\x02",
    "a=b\n" * 10 + "x" * (dahua_cgi.MAX_REPLY_BYTES + 1),
])
def test_dahua_non_key_value_replies(data: str | bytes) -> None:
    assert dahua_cgi.parse_kv(data) is None


def test_dahua_many_lines_are_bounded() -> None:
    kv = dahua_cgi.parse_kv("".join(f"table.UPnP.MapTable[{i}].InnerPort={i}\n" for i in range(6000)))
    assert kv is not None and len(kv) <= dahua_cgi.MAX_LINES
    _, mappings = dahua_cgi.upnp(kv)  # type: ignore[misc]
    assert len(mappings) <= 256
