"""Issue 14 item 4: a maker's or a rebrand's own model number, firmware token or serial layout
names maker and brand together (the rebrand's maker through the lineage, shown as evidence), in
the hardware scope, ONVIF device information, DHIP, CGI and ISAPI documents; near-misses name
nobody. Model numbers are medium evidence: never strong, never over a contrary strong signal."""

from __future__ import annotations

import json

import pytest

from camaudit.fingerprint import identify
from camaudit.model import Observation


def obs(kind: str, value: str, port: int | None = None) -> Observation:
    return Observation("127.64.0.2", kind, value, port)


def hardware(model: str) -> Observation:
    return obs("onvif_probe_match", f"onvif://www.onvif.org/hardware/{model} onvif://www.onvif.org/Profile/Streaming")


@pytest.mark.parametrize("model, vendor", [
    ("DS-2CD2385G1-I", "hikvision"),
    ("ds-2cd2722fwd-izs", "hikvision"),
    ("DS-7204HWI-LAB", "hikvision"),
    ("IPC-HFW2228M-I1-V2", "dahua"),
    ("IPC-HDW1431T1-S4", "dahua"),
    ("DHI-NVR5464", "dahua"),
    ("DH-IPC-HDBW23A0RN-ZS", "dahua"),
])
def test_a_makers_model_family_in_the_hardware_scope_names_the_maker(model: str, vendor: str) -> None:
    identity = identify([hardware(model)])
    assert (identity.vendor, identity.model, identity.covered) == (vendor, model, True)
    assert identity.confidence < 0.9  # medium: a model number alone is no strong signal


@pytest.mark.parametrize("model, brand, vendor, covered", [
    ("LNB8005-C", "lorex", "dahua", True),
    ("lne8964ab", "lorex", "dahua", True),
    ("CS-C6TC-32WFR", "ezviz", "hikvision", True),
    ("CP-UNC-DA21PL3-Y", "cp-plus", "unknown", False),  # CP PLUS's lineage is only inferred
])
def test_a_rebrands_model_number_names_brand_and_maker_through_the_lineage(
        model: str, brand: str, vendor: str, covered: bool) -> None:
    identity = identify([hardware(model)])
    assert (identity.vendor, identity.brand, identity.covered) == (vendor, brand, covered)
    if vendor != "unknown":
        assert "rebrand-hardware-model-family" in [e.signature for e in identity.fields["vendor"].evidence]
    info = json.dumps({"Manufacturer": "Private", "Model": model})
    from_info = identify([obs("onvif_device_info", info)])
    assert (from_info.vendor, from_info.brand) == (vendor, brand)


@pytest.mark.parametrize("model", ["DS-1000", "XDS-2CD2385G1-I", "DS-2CE16D0T", "IPC-B140", "IPC-UNV-LAB",
                                   "NVR5464", "LNB80", "CS-1000", "XLNB8005-C"])
def test_near_miss_model_numbers_name_nobody(model: str) -> None:
    for observation in (hardware(model), obs("onvif_device_info", json.dumps({"Manufacturer": "Other", "Model": model}))):
        identity = identify([observation])
        assert (identity.vendor, identity.brand, identity.covered) == ("unknown", None, False), observation


def test_a_model_family_in_device_information_with_unstructured_firmware() -> None:
    info = json.dumps({"Manufacturer": "Private", "Model": "DS-2CD2532F-IWS", "FirmwareVersion": "5.2.0"})
    identity = identify([obs("onvif_device_info", info)])
    assert (identity.vendor, identity.model, identity.firmware) == ("hikvision", "DS-2CD2532F-IWS", "5.2.0")
    lower = json.dumps({"manufacturer": "Amcrest", "model": "dhi-nvr5464"})
    identity = identify([obs("onvif_device_info", lower)])
    assert (identity.vendor, identity.brand, identity.device_type) == ("dahua", "amcrest", "nvr")


def test_a_generic_manufacturer_does_not_hide_the_rebrand() -> None:
    """'Private'/'General' vendor strings (reference section 2.1) with a rebrand's own marks."""
    ezviz = json.dumps({"Manufacturer": "Private", "Model": "CS-C6TC-32WFR", "FirmwareVersion": "V5.2.3build 180804",
                        "SerialNumber": "CS-C6TC-32WFR0120170327CCCH738231995"})
    assert identify([obs("onvif_device_info", ezviz)]).brand == "ezviz"
    amcrest = json.dumps({"Manufacturer": "General", "FirmwareVersion": "2.420.AC00.15.R",
                          "SerialNumber": "4X7C5A1ZAG21L3F"})
    identity = identify([obs("onvif_device_info", amcrest)])
    assert (identity.vendor, identity.brand, identity.firmware) == ("dahua", "amcrest", "2.420.AC00.15.R")


def test_dhip_cgi_and_isapi_documents_name_the_rebrand() -> None:
    dhip = ('{"method":"client.notifyDevInfo","params":{"deviceInfo":{"DeviceClass":"IPC","DeviceType":"LNB8005-C",'
            '"Vendor":"Private","Manufacturer":"Private","SerialNo":"3E00E38PAN00139"}}}')
    assert (identify([obs("dhip", dhip)]).vendor, identify([obs("dhip", dhip)]).brand) == ("dahua", "lorex")
    amcrest = ('{"method":"client.notifyDevInfo","params":{"deviceInfo":{"DeviceClass":"IPC","Vendor":"General",'
               '"Version":"2.420.AC00.15.R","SerialNo":"4X7C5A1ZAG21L3F"}}}')
    assert identify([obs("dhip", amcrest)]).brand == "amcrest"
    cgi = "deviceType=LNE8964AB\r\nserialNumber=3E00E38PAN00139\r\n"
    assert identify([obs("dahua_cgi", cgi, 80)]).brand == "lorex"
    isapi = ('{"DeviceInfo":{"model":"CS-C6TC-32WFR","serialNumber":"CS-C6TC-32WFR0120170327CCCH738231995",'
             '"firmwareVersion":"V5.2.3","firmwareReleasedDate":"build 180804"}}')
    identity = identify([obs("isapi_device_info", isapi, 80)])
    assert (identity.vendor, identity.brand) == ("hikvision", "ezviz")


def test_a_model_number_does_not_outweigh_a_strong_contrary_signal() -> None:
    sadp = ("<ProbeMatch><DeviceDescription>DS-2CD2385G1-I</DeviceDescription>"
            "<DeviceSN>DS-2CD2385G1-I20200414AAWRE33842150</DeviceSN><CommandPort>8000</CommandPort></ProbeMatch>")
    identity = identify([obs("sadp", sadp), hardware("IPC-HFW2228M-I1-V2")])
    assert identity.vendor == "hikvision"
    assert any("dahua-hardware-model-family" in c for c in identity.conflicts)
