"""Every lab profile serves what its cited facts say (issue 3 item 7)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lab_helpers import (
    DHIP_PROBE,
    SADP_PROBE,
    SHARED,
    contains_in_order,
    corpus,
    sample_fragments,
    tcp_ask,
    udp_ask,
    wsd_probe,
)

from camaudit.lab.plan import DeviceSpec, make_mac, make_serial
from camaudit.lab.profiles import DEVICE_TYPES, VENDORS, load_profiles
from camaudit.lab.runner import LabThread

pytestmark = pytest.mark.skipif(not (SHARED / "corpus").is_dir(), reason="../shared reference data absent")

REQUIRED = {
    "hikvision-ipc", "hikvision-ipc-legacy", "hikvision-nvr", "hikvision-dvr-legacy",
    "hikvision-oem-truvision", "ezviz-camera", "dahua-ipc", "dahua-nvr", "amcrest-camera",
    "lorex-nvr", "axis-camera", "hanwha-camera", "bosch-camera", "uniview-camera", "xiongmai-dvr",
    "host-printer", "host-linux", "host-windows",
}


def test_the_issue_list_of_profiles_is_there() -> None:
    profiles = load_profiles()
    assert REQUIRED <= set(profiles)
    assert {p.vendor for p in profiles.values()} >= {"hikvision", "dahua", "axis", "hanwha", "bosch", "uniview", "xiongmai", "other"}
    assert {(p.vendor, p.brand) for p in profiles.values()} >= {("hikvision", "ezviz"), ("dahua", "amcrest"), ("dahua", "lorex")}


@pytest.mark.parametrize("profile_id", sorted(load_profiles()))
def test_profile_data_is_sound(profile_id: str) -> None:
    profile = load_profiles()[profile_id]
    samples = corpus()
    assert profile.vendor in VENDORS and profile.device_type in DEVICE_TYPES
    assert profile.cites_reference, "every profile cites its reference sections"
    for sample_id in profile.cites_corpus:
        assert sample_id in samples, f"{profile_id} cites unknown corpus sample {sample_id}"
    ouis = json.loads((SHARED / "reference" / "oui.json").read_text(encoding="utf-8"))
    if profile.oui_group is None:
        assert not profile.ouis
    else:
        registered = {o["oui"].upper() for o in ouis[profile.oui_group]["ouis"]}
        assert set(profile.ouis) <= registered, f"{profile_id}: OUIs outside oui.json {profile.oui_group}"


def _served(address: str, manifest: dict[str, Any]) -> list[bytes]:
    """Every answer a scanner could collect from one device, one bytes object per answer."""
    services, answers = manifest["services"], []
    if "http" in services:
        for path in ("/", "/doc/page/login.asp", "/ISAPI/Security/userCheck", "/no-such-page"):
            answers.append(tcp_ask(address, services["http"], f"GET {path} HTTP/1.0\r\n\r\n".encode()))
    if "rtsp" in services:
        for request in (b"OPTIONS / RTSP/1.0\r\n\r\n", b"OPTIONS rtsp://lab/ RTSP/1.0\r\nCSeq: 42\r\n\r\n",
                        b"DESCRIBE rtsp://lab/ RTSP/1.0\r\nCSeq: 42\r\n\r\n",
                        b"DESCRIBE rtsp://lab/ RTSP/1.0\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n"):
            answers.append(tcp_ask(address, services["rtsp"], request, rtsp=True))
    if "hik_sdk" in services:
        answers.append(tcp_ask(address, services["hik_sdk"], b"\x00" * 32))
    for service, port, probe in (("sadp", 37020, SADP_PROBE), ("dhip", 37810, DHIP_PROBE),
                                 ("wsd", 3702, wsd_probe(f"urn:uuid:{uuid.uuid4()}", ""))):
        if service in services:
            answers.append(udp_ask(address, port, probe) or b"")
    return answers


@pytest.fixture(scope="module")
def one_of_each() -> Iterator[dict[str, tuple[str, dict[str, Any]]]]:
    import random
    rng = random.Random(7)
    specs = []
    for i, profile in enumerate(sorted(load_profiles().values(), key=lambda p: p.id), start=1):
        specs.append(DeviceSpec(address=f"127.78.1.{i}", profile=profile.id, mac=make_mac(profile, rng),
                                serial=make_serial(profile, rng), uuid=str(uuid.UUID(int=i)),
                                settings=profile.default_settings() | {"gateway": "127.78.1.254"}))
    with LabThread(specs, port_offset=10000, request_wait=1.0) as lab:
        yield {e["profile"]: (e["address"], e) for e in lab.manifest}


@pytest.mark.parametrize("profile_id", sorted(load_profiles()))
def test_served_bytes_carry_every_cited_sample(profile_id: str, one_of_each: dict[str, Any]) -> None:
    profile = load_profiles()[profile_id]
    address, manifest = one_of_each[profile_id]
    answers = _served(address, manifest)
    assert any(answers), "the device answered nothing"
    samples = corpus()
    for sample_id in profile.cites_corpus:
        fragments = sample_fragments(str(samples[sample_id]["sample"]), profile.cites_vary.get(sample_id, ()))
        assert any(contains_in_order(a, fragments) for a in answers), (
            f"{profile_id}: no answer carries corpus sample {sample_id}: {fragments!r}"
        )


def test_the_fragment_matcher_can_fail() -> None:
    # A sample the Hikvision profile does not serve must not be found in its answers.
    fragments = sample_fragments("Server: Dahua Rtsp Server")
    assert not contains_in_order(b"RTSP/1.0 200 OK\r\nPublic: OPTIONS\r\n\r\n", fragments)
    assert sample_fragments("a\\xef\\xbb\\xbfb") == [b"a\xef\xbb\xbfb"]
