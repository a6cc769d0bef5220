"""Issue 14 items 1-3: the same fact read in the forms devices really send it, and every field
that can name a maker read, a maker in free text staying a medium signal."""

from __future__ import annotations

import json

import pytest

from camaudit.fingerprint import identify
from camaudit.model import Observation

SADP = ("<ProbeMatch><DeviceDescription>DS-2CD2385G1-I</DeviceDescription>"
        "<DeviceSN>DS-2CD2385G1-I20200414AAWRE33842150</DeviceSN><CommandPort>8000</CommandPort>"
        "<SoftwareVersion>V5.6.2build 190701</SoftwareVersion></ProbeMatch>")


def obs(kind: str, value: str, port: int | None = None) -> Observation:
    return Observation("127.64.0.1", kind, value, port)


@pytest.mark.parametrize("subject", [
    "CN=www.hikvision.com,OU=DVRNVR,O=HIKVISION,L=HangZhou,ST=ZheJiang,C=CN",
    "subject=C = CN, ST = ZheJiang, L = HangZhou, O = HIKVISION, OU = DVRNVR, CN = www.hikvision.com",
    "subject=cn=WWW.HIKVISION.COM,ou=DVRNVR,o=Hikvision",
    'subject=CN=IPC,O="Hangzhou Hikvision Digital Technology Co., Ltd."',
    "subject=CN=192.0.0.64; issuer=CN=IPC CA,O=hikvision",
], ids=["rfc4514", "openssl-spaced", "lower-case", "quoted-registrant", "issuer-only"])
def test_certificate_names_the_maker_in_any_spacing_and_case(subject: str) -> None:
    identity = identify([obs("tls_cert", subject, 443)])
    assert identity.vendor == "hikvision" and identity.covered


def test_a_dahua_certificate_organisation_is_read_too() -> None:
    identity = identify([obs("tls_cert", "CN=IPC,O=Zhejiang  Dahua  Technology Co.,Ltd,C=CN", 443)])
    assert identity.vendor == "dahua"
    assert identity.fields["vendor"].evidence[0].signature == "maker-named-in-certificate"


def test_a_maker_in_free_text_does_not_outweigh_a_stronger_contrary_signal() -> None:
    identity = identify([obs("sadp", SADP), obs("tls_cert", "CN=IPC,O=Zhejiang Dahua Technology", 443)])
    assert identity.vendor == "hikvision"
    assert any("maker-named-in-certificate" in c and "dahua" in c for c in identity.conflicts)
    alone = identify([obs("tls_cert", "CN=IPC,O=Zhejiang Dahua Technology", 443)])
    assert alone.confidence <= 0.5  # medium, not a verdict


def test_sdp_session_and_information_lines_are_read() -> None:
    describe = ("RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n"
                "o=- 1 1 IN IP4 0.0.0.0\r\ns=Media Presentation\r\ni=HIKVISION DS-2CD2385G1-I\r\n")
    assert identify([obs("rtsp_response", describe, 554)]).vendor == "hikvision"
    bare_lf = "RTSP/1.0 200 OK\nCSeq: 3\n\nv=0\ns = Dahua Rtsp Server\n"
    assert identify([obs("rtsp_response", bare_lf, 554)]).vendor == "dahua"


@pytest.mark.parametrize("challenge, kind", [
    ('Digest realm="HIKVISION DS-2CD2385G1-I", nonce="1"', "http_www_authenticate"),
    ("Digest REALM=Hikvision, nonce=1", "rtsp_www_authenticate"),
], ids=["http-quoted", "rtsp-bare-upper-case"])
def test_realms_naming_a_maker_are_read(challenge: str, kind: str) -> None:
    assert identify([obs(kind, challenge)]).vendor == "hikvision"


def test_a_realm_naming_a_brand_names_its_lineage_maker() -> None:
    identity = identify([obs("http_www_authenticate", 'Basic realm="Amcrest Technologies"', 80)])
    assert (identity.vendor, identity.brand, identity.covered) == ("dahua", "amcrest", True)


def test_onvif_device_information_in_soap_xml_reads_as_the_json_form() -> None:
    fields = {"Manufacturer": "HIKVISION", "Model": "DS-2CD2385G1-I", "FirmwareVersion": "V5.6.2 build 190701",
              "SerialNumber": "DS-2CD2385G1-I20200414AAWRE33842150", "HardwareId": "88"}
    soap = ('<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><SOAP-ENV:Body><tds:GetDeviceInformationResponse>'
            + "".join(f"<tds:{k}>{v}</tds:{k}>" for k, v in fields.items())
            + "</tds:GetDeviceInformationResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>")
    from_json = identify([obs("onvif_device_info", json.dumps(fields))])
    from_xml = identify([obs("onvif_device_info", soap)])
    for name in ("vendor", "model", "firmware", "serial"):
        assert getattr(from_xml, name) == getattr(from_json, name), name
    assert from_xml.vendor == "hikvision" and from_xml.model == "DS-2CD2385G1-I"


def test_onvif_scopes_in_other_case_and_with_the_brand_in_location() -> None:
    scopes = "onvif://www.onvif.org/Name/hikvision_camera onvif://www.onvif.org/Hardware/DS-2CD2385G1-I"
    identity = identify([obs("onvif_probe_match", scopes)])
    assert (identity.vendor, identity.model) == ("hikvision", "DS-2CD2385G1-I")
    lorex = identify([obs("onvif_probe_match", "onvif://www.onvif.org/location/LOREX onvif://www.onvif.org/hardware/NR818")])
    assert (lorex.vendor, lorex.brand, lorex.model) == ("dahua", "lorex", "NR818")


def test_upnp_description_and_mdns_names_are_read() -> None:
    description = ('<root xmlns="urn:schemas-upnp-org:device-1-0"><device><manufacturer>Hikvision</manufacturer>'
                   "<modelNumber>DS-2CD2385G1-I</modelNumber></device></root>")
    upnp = identify([obs("upnp", description)])
    assert (upnp.vendor, upnp.model) == ("hikvision", "DS-2CD2385G1-I")
    assert identify([obs("mdns", "AMCREST IP2M-841._http._tcp.local")]).brand == "amcrest"


def test_a_copyright_line_names_the_maker_but_a_list_of_makers_does_not() -> None:
    page = "<html><body><p>Copyright &copy; 2016 Zhejiang Dahua Technology Co., Ltd.</p></body></html>"
    assert identify([obs("http_body", page, 80)]).vendor == "dahua"
    shop = "<html><body><li>Works with Hikvision and Dahua cameras</li><p>Copyright 2020 Example Ltd.</p></body></html>"
    assert identify([obs("http_body", shop, 80)]).vendor == "unknown"


def test_short_names_are_not_looked_for_in_free_text() -> None:
    for realm in ('Basic realm="DH-Camera"', 'Basic realm="HIK"', 'Basic realm="XM"'):
        assert identify([obs("http_www_authenticate", realm)]).vendor == "unknown", realm


def test_a_title_naming_a_maker_stays_a_weak_hint() -> None:
    identity = identify([obs("http_title", "HIKVISION Web Client", 80)])
    assert identity.vendor == "hikvision" and identity.confidence < 0.5


@pytest.mark.parametrize("server", ["GoAhead-Webs", "Boa/0.94.14rc21", "mini_httpd/1.19 19dec2003", "lighttpd/1.4.35"])
def test_generic_embedded_servers_never_name_a_maker(server: str) -> None:
    assert identify([obs("http_server", server, 80)]).vendor == "unknown"


def test_a_realm_embedding_a_brands_oui_names_the_brand() -> None:
    identity = identify([obs("rtsp_www_authenticate", 'Digest realm="588FCF6D2485", nonce="1", stale="FALSE"', 554)])
    assert (identity.vendor, identity.brand) == ("hikvision", "ezviz")


def test_the_login_to_serial_realm_in_other_case_and_spacing() -> None:
    identity = identify([obs("http_www_authenticate", 'Digest Realm = "login to 6C01E93PAG69A7D", nonce="1"', 80)])
    assert (identity.vendor, identity.serial) == ("dahua", "6C01E93PAG69A7D")


def test_a_brand_whose_lineage_is_only_inferred_names_no_maker() -> None:
    """nmap-service-probes line 12008: an Intelbras *router* realm; Intelbras-Dahua is inferred."""
    realm = 'Basic realm="Roteador Intelbras Wireless"'
    identity = identify([obs("http_www_authenticate", realm, 80)])
    assert (identity.vendor, identity.brand, identity.covered) == ("unknown", "intelbras", False)


def test_a_brands_own_model_number_names_the_brand() -> None:
    """Lorex's LNB/LNE/LHV model numbers (reference section 6) on Dahua-structured evidence."""
    info = json.dumps({"Manufacturer": "Private", "Model": "LNB8005-C", "FirmwareVersion": "2.800.0000000.13.R",
                       "SerialNumber": "3E00E38PAN00139"})
    identity = identify([obs("onvif_device_info", info)])
    assert (identity.vendor, identity.brand, identity.covered) == ("dahua", "lorex", True)
    scopes = ("onvif://www.onvif.org/location/country/china onvif://www.onvif.org/name/IPC "
              "onvif://www.onvif.org/hardware/LHV1004 onvif://www.onvif.org/type/Network_Video_Transmitter "
              "onvif://www.onvif.org/extension/unique_identifier")
    assert identify([obs("onvif_probe_match", scopes)]).brand == "lorex"
