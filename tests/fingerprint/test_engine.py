"""The engine: strong signals decide, weak ones add up, conflicts lower confidence and are
reported, unnamed devices stay unknown; checked on devices that are not in the corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from camaudit.fingerprint import identify, normalize
from camaudit.fingerprint.engine import Engine
from camaudit.model import Observation

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures" / "devices.jsonl"
DEVICES = [json.loads(line) for line in CAPTURES.read_text(encoding="utf-8").splitlines() if line.strip()]


def obs(kind: str, value: str, port: int | None = None) -> Observation:
    return Observation("127.64.0.1", kind, value, port)


@pytest.mark.parametrize("device", DEVICES, ids=[d["id"] for d in DEVICES])
def test_capture_devices_are_identified(device: dict) -> None:
    observations = [obs(o["kind"], o["value"], o.get("port")) for o in device["observations"]]
    identity = identify(observations)
    expect = device["expect"]
    for name in ("vendor", "brand", "model", "serial", "firmware", "device_type", "advisories"):
        if name in expect:
            assert getattr(identity, name) == expect[name], (name, identity)
    if "min_confidence" in expect:
        assert identity.confidence >= expect["min_confidence"]
    if "max_confidence" in expect:
        assert identity.confidence <= expect["max_confidence"]
    if expect.get("conflicts"):
        assert identity.conflicts
    if expect["vendor"] == "unknown":
        assert identity.confidence == 0.0 and not identity.covered
    else:
        # Every identity names the signatures and observations behind it.
        assert identity.signatures
        assert all(hit.kind in {o["kind"] for o in device["observations"]} for hit in identity.signatures)


def test_strong_signal_decides_against_weak_contrary_evidence() -> None:
    sadp = next(d for d in DEVICES if d["id"] == "hikvision-ds-2cd2385g1-i")["observations"][0]["value"]
    identity = identify([obs("sadp", sadp), obs("mac", "08:ed:ed:00:00:01"), obs("favicon_mmh3", "1653394551")])
    assert identity.vendor == "hikvision"
    assert len(identity.conflicts) == 2 and all("dahua" in c for c in identity.conflicts)
    alone = identify([obs("sadp", sadp)])
    assert identity.confidence < alone.confidence


def test_agreeing_weak_signals_add_up_but_one_stays_weak() -> None:
    one = identify([obs("mac", "bc:ba:c2:00:00:01")])
    two = identify([obs("mac", "bc:ba:c2:00:00:01"), obs("favicon_mmh3", "999357577")])
    three = identify([obs("mac", "bc:ba:c2:00:00:01"), obs("favicon_mmh3", "999357577"),
                      obs("favicon_md5", "89b932fcc47cf4ca3faadb0cfdef89cf")])
    assert one.vendor == two.vendor == three.vendor == "hikvision"
    assert one.confidence < 0.5
    assert one.confidence < two.confidence < three.confidence


def test_the_same_signature_twice_counts_once() -> None:
    once = identify([obs("http_server", "App-webs/", 80)])
    twice = identify([obs("http_server", "App-webs/", 80), obs("http_server", "App-webs/", 8080)])
    assert once.confidence == twice.confidence


def test_weak_signals_of_equal_weight_for_two_makers_leave_unknown() -> None:
    identity = identify([obs("mac", "bc:ba:c2:00:00:01"), obs("mac", "08:ed:ed:00:00:01")])
    assert identity.vendor == "unknown"
    assert identity.confidence == 0.0
    assert any("too close to call" in c for c in identity.conflicts)


def test_a_brand_alone_names_maker_and_brand_through_the_lineage() -> None:
    """Issue 14 lab defect: a Lorex MAC prefix gave brand lorex, maker unknown, covered false."""
    lorex = identify([obs("mac", "00:1f:54:00:00:01")])
    assert (lorex.vendor, lorex.brand, lorex.covered) == ("dahua", "lorex", True)
    assert 0 < lorex.confidence < 0.5  # an OUI stays a weak hint
    evidence = lorex.fields["vendor"].evidence
    assert evidence[0].signature == "oui-brand-lorex" and evidence[0].via and "lineage: lorex -> dahua" in evidence[0].via
    assert lorex.fields["brand"].value == "lorex"
    manufacturer = identify([obs("onvif_device_info", '{"Manufacturer": "Lorex", "Model": "LNB8005-C"}')])
    assert (manufacturer.vendor, manufacturer.brand, manufacturer.covered) == ("dahua", "lorex", True)
    assert manufacturer.model == "LNB8005-C"


def test_a_brand_whose_maker_is_not_established_names_no_maker() -> None:
    for value in ('{"Manufacturer": "ANNKE"}', '{"Manufacturer": "Swann"}'):
        identity = identify([obs("onvif_device_info", value)])
        assert (identity.vendor, identity.covered) == ("unknown", False), value


def test_a_brand_named_in_free_text_does_not_beat_a_stronger_maker() -> None:
    sadp = ("<ProbeMatch><DeviceDescription>DS-2CD2385G1-I</DeviceDescription>"
            "<DeviceSN>DS-2CD2385G1-I20200414AAWRE33842150</DeviceSN><CommandPort>8000</CommandPort></ProbeMatch>")
    identity = identify([obs("sadp", sadp), obs("onvif_device_info", '{"Manufacturer": "Lorex"}')])
    assert identity.vendor == "hikvision" and identity.brand is None
    assert any("lorex" in c and "lineage" in c for c in identity.conflicts)


def test_lorex_manufacturer_with_dahua_serial_is_dahua_brand_lorex() -> None:
    identity = identify([obs("onvif_device_info", json.dumps(
        {"Manufacturer": "Lorex", "Model": "E891AB", "FirmwareVersion": "V1.0", "SerialNumber": "BC0A198PAJ779DF"}))])
    assert (identity.vendor, identity.brand, identity.serial) == ("dahua", "lorex", "BC0A198PAJ779DF")
    assert identity.covered


def test_ezviz_is_hikvision_and_covered() -> None:
    identity = identify([obs("mac", "58:8f:cf:00:00:01")])
    assert (identity.vendor, identity.brand, identity.covered) == ("hikvision", "ezviz", True)


def test_brand_against_lineage_is_a_conflict() -> None:
    identity = identify([obs("http_server", "App-webs/"), obs("mac", "00:1f:54:00:00:01")])
    assert identity.vendor == "hikvision"
    assert identity.brand is None
    assert any("lorex" in c and "names dahua" in c and "lineage" in c for c in identity.conflicts)


def test_nothing_known_is_unknown() -> None:
    for observations in ([], [obs("http_server", "nginx")], [obs("open_port", "tcp/80")],
                         [obs("mac", "3a:11:22:33:44:55")], [obs("http_server", "Boa/0.94.14rc21")]):
        identity = identify(observations)
        assert identity.vendor == "unknown" and identity.confidence == 0.0 and not identity.covered


def test_derived_parts_of_a_full_response_are_read() -> None:
    identity = identify([obs("http_headers", "HTTP/1.0 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                                             "Server: App-webs/\r\nContent-Length: 0\r\n\r\n", 80)])
    assert identity.vendor == "hikvision"
    assert identity.signatures[0].signature == "hikvision-app-webs"
    assert identity.signatures[0].kind == "http_headers"


@pytest.mark.parametrize("value", [
    "<ProbeMatch>" * 5000,
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;&a;'>]><ProbeMatch><DeviceSN>&b;</DeviceSN></ProbeMatch>",
    "{" * 10000,
    "\x00\xff garbage \ufffd",
    "",
])
def test_hostile_values_never_crash(value: str) -> None:
    for kind in ("sadp", "dhip", "isapi_device_info", "onvif_device_info", "onvif_probe_match", "rtsp_response",
                 "http_headers", "mac", "dahua_cgi"):
        identity = identify([obs(kind, value[:16384])])
        assert identity.vendor in ("unknown", "hikvision", "dahua")


def test_xml_entities_are_refused_not_expanded() -> None:
    bomb = ("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'Hikvision'>]>"
            "<DeviceInfo xmlns=\"http://www.hikvision.com/ver20/XMLSchema\"><model>&a;</model></DeviceInfo>")
    flattened = normalize.flatten_structured(bomb, "isapi_device_info")
    assert "model=Hikvision" not in flattened


def test_engine_with_own_signature_set_and_cache() -> None:
    engine = Engine()
    first = engine.identify([obs("http_server", "DNVRS-Webs")])
    second = engine.identify([obs("http_server", "DNVRS-Webs")])
    assert first.to_json() == second.to_json()
    assert (first.vendor, first.device_type) == ("hikvision", "nvr")


def test_identification_speed_scales_to_fleets() -> None:
    """A fifth of the benchmark (benchmarks/identify_speed.py: 10,000 devices must take < 10 s)."""
    import importlib.util
    import time

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "identify_speed.py"
    spec = importlib.util.spec_from_file_location("identify_speed", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    devices = [bench.device_observations(i) for i in range(2000)]
    identify([])
    start = time.perf_counter()
    vendors = [identify(d).vendor for d in devices]
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed
    assert vendors.count("hikvision") == 750 and vendors.count("dahua") == 750
