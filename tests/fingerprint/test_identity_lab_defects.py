"""Issue 14's lab defects, end to end: `camaudit scan` of loopback lab devices must report the
Bosch model its ONVIF hardware scope names, the Hikvision firmware as its own documents spell it,
and a Lorex device's maker and brand together (covered)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camaudit.fingerprint import identify
from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread
from camaudit.model import Observation

MIX = "hikvision-ipc-legacy=1,bosch-camera=1,lorex-nvr=1"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[dict[str, Any], dict[str, Any]]]]:
    specs = plan_devices(3, subnet="127.91.14.0/24", mix=MIX, seed=3)
    db: Path = tmp_path_factory.mktemp("ident") / "lab.db"
    with LabThread(specs) as running:
        lab = running.manifest
        ports = sorted({p for entry in lab for p in entry["ports"]["tcp"]})
        done = subprocess.run(
            [sys.executable, "-m", "camaudit", "scan", *(e["address"] for e in lab), "--db", str(db), "--json",
             "--ports", ",".join(map(str, ports)), "--fail-on", "none"],
            capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 0, done.stderr
    found = {h["address"]: h["identity"] for h in json.loads(done.stdout)["hosts"]}
    yield {e["profile"]: (e, found[e["address"]]) for e in lab}


def test_bosch_model_comes_from_the_onvif_hardware_scope(scanned: dict[str, Any]) -> None:
    entry, identity = scanned["bosch-camera"]
    assert identity["vendor"] == "bosch"
    assert identity["model"] == entry["model"] == "FLEXIDOME NDC-455-P"
    assert identity["fields"]["model"]["evidence"][0]["kind"] == "onvif_probe_match"


def test_hikvision_firmware_is_spelled_as_the_device_documents_it(scanned: dict[str, Any]) -> None:
    entry, identity = scanned["hikvision-ipc-legacy"]
    assert identity["firmware"] == entry["firmware"] == "V5.2.0 build 140721"
    assert "CVE-2017-7921" in identity["advisories"]
    source = identity["fields"]["firmware"]["evidence"][0]
    # the observation still holds what SADP sent, without the space
    assert source["kind"] == "sadp" and source["as_sent"] == "V5.2.0build 140721"


def test_lorex_device_names_maker_and_brand(scanned: dict[str, Any]) -> None:
    _entry, identity = scanned["lorex-nvr"]
    assert (identity["vendor"], identity["brand"], identity["covered"]) == ("dahua", "lorex", True)


def test_every_identity_field_lists_its_evidence(scanned: dict[str, Any]) -> None:
    for _profile, (_entry, identity) in scanned.items():
        for name in ("vendor", "brand", "model", "firmware", "serial"):
            if identity[name] not in (None, "unknown"):
                source = identity["fields"][name]
                assert source["value"] == identity[name]
                assert source["evidence"], (name, identity)
                ids = {s["id"] for s in identity["signatures"]}
                assert {e["signature"] for e in source["evidence"]} <= ids | {
                    e["signature"] for e in identity["fields"]["vendor"]["evidence"]}


def test_lorex_oui_alone_is_a_weak_dahua_hint_through_the_lineage() -> None:
    identity = identify([Observation("127.64.0.1", "mac", "00:1f:54:12:34:56")])
    assert (identity.vendor, identity.brand, identity.covered) == ("dahua", "lorex", True)
    assert identity.confidence < 0.5
    assert identity.fields["vendor"].evidence[0].via is not None


def test_model_is_taken_from_the_strongest_source() -> None:
    """ISAPI/CGI/SADP/DHIP, then ONVIF device info, then the ONVIF hardware scope, then titles."""
    scope = ("onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/hardware/DS-2CD2385G1-I%20(scope) "
             "onvif://www.onvif.org/name/HIKVISION onvif://www.onvif.org/location/city/hangzhou")
    info = json.dumps({"Manufacturer": "HIKVISION", "Model": "DS-2CD2385G1-I (onvif)", "FirmwareVersion": "V5.6.2 build 190701",
                       "SerialNumber": "DS-2CD2385G1-I20200414AAWRE33842150"})
    sadp = ("<ProbeMatch><DeviceDescription>DS-2CD2385G1-I</DeviceDescription>"
            "<DeviceSN>DS-2CD2385G1-I20200414AAWRE33842150</DeviceSN><CommandPort>8000</CommandPort></ProbeMatch>")
    o = lambda kind, value: Observation("127.64.0.1", kind, value)  # noqa: E731
    assert identify([o("onvif_probe_match", scope)]).model == "DS-2CD2385G1-I (scope)"
    assert identify([o("onvif_probe_match", scope), o("onvif_device_info", info)]).model == "DS-2CD2385G1-I (onvif)"
    assert identify([o("onvif_probe_match", scope), o("onvif_device_info", info), o("sadp", sadp)]).model == "DS-2CD2385G1-I"
