"""Issue 14 item 1 for the discovery and document signatures: SADP, DHIP, ISAPI, Dahua CGI and the
HTTP/RTSP server names read the same fact in other letter case, spacing, line endings, key names
and XML namespace forms; their near-misses still name nobody."""

from __future__ import annotations

import pytest

from camaudit.fingerprint import identify
from camaudit.model import Observation


def one(kind: str, value: str, port: int | None = 80) -> tuple[str, str | None, str | None, str | None]:
    identity = identify([Observation("127.64.0.3", kind, value, port)])
    return identity.vendor, identity.brand, identity.model, identity.firmware


def test_sadp_in_other_case_spacing_and_line_endings() -> None:
    crlf = ('<?xml version="1.0" encoding="UTF-8"?>\r\n<ProbeMatch>\r\n  <DeviceDescription> DS-2CD2385G1-I '
            '</DeviceDescription>\r\n  <SoftwareVersion>V5.6.2 Build 190701</SoftwareVersion>\r\n</ProbeMatch>\r\n')
    assert one("sadp", crlf, None) == ("hikvision", None, "DS-2CD2385G1-I", "V5.6.2 build 190701")
    lower = "<probematch><devicedescription>DS-2CD2385G1-I</devicedescription></probematch>"
    assert one("sadp", lower, None)[:3] == ("hikvision", None, "DS-2CD2385G1-I")


def test_an_ezviz_sadp_serial_names_the_brand_without_a_model() -> None:
    reply = ("<ProbeMatch><Types>inquiry</Types><DeviceSN>CS-C6TC-32WFR0120170327CCCH738231995</DeviceSN>"
             "<CommandPort>8000</CommandPort></ProbeMatch>")
    identity = identify([Observation("127.64.0.3", "sadp", reply)])
    assert (identity.vendor, identity.brand, identity.covered) == ("hikvision", "ezviz", True)


def test_dhip_with_lower_case_keys_still_gives_the_model() -> None:
    body = ('{\r\n "method" : "client.notifyDevInfo",\r\n "params" : {"deviceinfo" : {"devicetype" : "IPC-HDW1431T1-S4",'
            ' "serialno" : "6C01E93PAG69A7D"}}}\r\n')
    identity = identify([Observation("127.64.0.3", "dhip", body)])
    assert (identity.vendor, identity.model, identity.serial) == ("dahua", "IPC-HDW1431T1-S4", "6C01E93PAG69A7D")


@pytest.mark.parametrize("document, model, firmware", [
    ('<hik:DeviceInfo xmlns:hik="http://www.hikvision.com/ver20/XMLSchema"><hik:model>DS-2CD2385G1-I</hik:model>'
     '<hik:firmwareVersion>V5.7.18</hik:firmwareVersion><hik:firmwareReleasedDate>build 240826</hik:firmwareReleasedDate>'
     '</hik:DeviceInfo>', "DS-2CD2385G1-I", "V5.7.18 build 240826"),
    ('{"DeviceInfo": {"Model": "DS-2CD2385G1-I", "SerialNumber": "DS-2CD2385G1-I20200414AAWRE33842150", '
     '"FirmwareVersion": "V5.7.18", "FirmwareReleasedDate": "build 240826"}}', "DS-2CD2385G1-I", "V5.7.18 build 240826"),
], ids=["namespace-prefix", "json-capitalised-keys"])
def test_isapi_in_other_namespace_and_key_forms(document: str, model: str, firmware: str) -> None:
    assert one("isapi_device_info", document) == ("hikvision", None, model, firmware)


def test_dahua_cgi_in_other_case_and_spacing() -> None:
    assert one("dahua_cgi", "Version = 2.800.0000016.0.R,Build:2020-06-05\n") == (
        "dahua", None, None, "2.800.0000016.0.R,build:2020-06-05")
    assert one("dahua_cgi", "type=IPC-HDW1431T1-S4\r\n")[:3] == ("dahua", None, "IPC-HDW1431T1-S4")
    for near_miss in ("type=text/html\r\n", "version=1.0\r\n", "version=2.8.0.13.R\r\n"):
        assert one("dahua_cgi", near_miss)[0] == "unknown", near_miss


@pytest.mark.parametrize("kind, value, vendor, brand", [
    ("http_server", "server:APP-WEBS/", "hikvision", None),
    ("http_server", "SERVER:  dnvrs-webs ", "hikvision", None),
    ("http_server", "server: interlogix-webs", "hikvision", "interlogix"),
    ("rtsp_server", "server: DAHUA RTSP SERVER", "dahua", None),
    ("rtsp_server", "RTSP/1.0 200 OK\nCSeq: 1\nServer:  Dahua  Rtsp Server \n", "dahua", None),
    ("rtsp_server", "RTSP Server/3.0", "dahua", None),
])
def test_server_names_in_other_case_and_spacing(kind: str, value: str, vendor: str, brand: str | None) -> None:
    assert one(kind, value, 554 if kind.startswith("rtsp") else 80)[:2] == (vendor, brand)


@pytest.mark.parametrize("kind, value", [
    ("http_server", "GoAhead-Webs"), ("http_server", "Hikvision-Webserver"), ("http_server", "MyApp-webs/"),
    ("http_server", "Interlogix-Webserver"), ("rtsp_server", "Rtsp Server/2.0"), ("rtsp_server", "RTSP Server/2.0"),
    ("rtsp_server", "Rtsp Server/3.01"), ("rtsp_server", "NotDahua Rtsp Server"),
])
def test_server_name_near_misses_name_nobody(kind: str, value: str) -> None:
    assert one(kind, value)[0] == "unknown"


def test_the_dahua_header_shape_in_another_order_and_line_ending() -> None:
    reply = ('HTTP/1.1 401 Unauthorized\nWWW-Authenticate: Basic realm="device"\nCONNECTION: close\n'
             "CONTENT-LENGTH: 0\n\n")
    assert one("http_headers", reply)[0] == "dahua"
    mixed = "HTTP/1.1 200 OK\r\nCONNECTION: close\r\nContent-Length: 12\r\n\r\n"
    in_body = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>CONNECTION: close\r\nCONTENT-LENGTH: 1</p>"
    assert one("http_headers", mixed)[0] == one("http_headers", in_body)[0] == "unknown"


def test_the_old_hikvision_redirect_with_upper_case_header_names() -> None:
    assert one("http_headers", "HTTP/1.0 302 Redirect\nSERVER: Webs\nLOCATION: /index.asp\n\n")[0] == "hikvision"


def test_the_factory_address_prompt_after_a_blank_line_stays_a_weak_hint() -> None:
    identity = identify([Observation("127.64.0.3", "telnet_banner", "\r\n192.0.0.64 login: ", 23)])
    assert identity.vendor == "hikvision" and identity.confidence < 0.5
    assert one("telnet_banner", "10.192.0.0.64 login:", 23)[0] == "unknown"


def test_an_ezviz_serial_in_device_information_names_the_brand() -> None:
    info = '{"Manufacturer": "Private", "SerialNumber": "CS-C6TC-32WFR0120170327CCCH738231995"}'
    identity = identify([Observation("127.64.0.3", "onvif_device_info", info)])
    assert (identity.vendor, identity.brand, identity.covered) == ("hikvision", "ezviz", True)


def test_an_mdns_serial_host_name_in_lower_case_and_an_ezviz_one() -> None:
    lower = identify([Observation("127.64.0.3", "mdns", "ds-2cd2722fwd-izs20170321bbwr733050075.local.", 5353)])
    assert (lower.vendor, lower.model) == ("hikvision", "ds-2cd2722fwd-izs")
    ezviz = identify([Observation("127.64.0.3", "mdns", "CS-C6TC-32WFR0120170327CCCH738231995.local", 5353)])
    assert (ezviz.vendor, ezviz.brand) == ("hikvision", "ezviz")
    for near_miss in ("ds-2cd2722fwd-izs20171321bbwr733050075.local", "printer-20170321.local"):
        assert identify([Observation("127.64.0.3", "mdns", near_miss, 5353)]).vendor == "unknown"


@pytest.mark.parametrize("service, vendor, brand", [
    ("service=http\nproduct=Hikvision camera httpd\ndevicetype=webcam", "hikvision", None),
    ("service=lorex-monitor\nproduct=Lorex security camera monitor\ndevicetype=webcam", "dahua", "lorex"),
], ids=["nmap-9946", "nmap-13775"])
def test_every_nmap_product_name_of_the_makers_and_their_brands_is_read(
        service: str, vendor: str, brand: str | None) -> None:
    assert one("nmap_service", service)[:2] == (vendor, brand)


def test_one_long_answer_behind_several_fields_is_quoted_once() -> None:
    # Issue 15: the identity of each device is kept for the whole scan's result, and a SADP
    # answer behind the maker, model, firmware and serial was quoted (cut to QUOTE_LIMIT) once per
    # field and signature. Every mention is now the same string, with the same text as before.
    from camaudit.fingerprint.engine import QUOTE_LIMIT

    reply = ("<ProbeMatch><Types>inquiry</Types><DeviceDescription>DS-2CD2385G1-I</DeviceDescription>"
             "<DeviceSN>DS-2CD2385G1-I20190701AAWRD12345678</DeviceSN>"
             "<SoftwareVersion>V5.6.2build 190701</SoftwareVersion>"
             + "<IPv4Gateway>10.0.0.1</IPv4Gateway>" * 12 + "</ProbeMatch>")
    assert len(reply) > QUOTE_LIMIT
    identity = identify([Observation("127.64.0.3", "sadp", reply)])
    mentions = [e.observation for source in identity.fields.values() for e in source.evidence if e.kind == "sadp"]
    mentions += [s.value for s in identity.signatures if s.kind == "sadp"]
    assert len(mentions) >= 4
    assert mentions[0] == reply[:QUOTE_LIMIT] + "…"
    assert all(m is mentions[0] for m in mentions)
