"""What the engine may claim: weak hints never add up to an identification, equally strong
contradicting replies are a tie, brand strings name no maker, and devices assembled from the
reference's facts (not yet in the corpus or captures) come out as the reference says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from camaudit.fingerprint import identify
from camaudit.fingerprint.signatures import WEAK_KINDS, default_set, example_input
from camaudit.model import Identity, Observation

ADDRESS = "127.64.0.2"
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures" / "devices.jsonl"
DEVICES = {d["id"]: d for d in (json.loads(line) for line in CAPTURES.read_text(encoding="utf-8").splitlines()
                                 if line.strip())}
SADP = DEVICES["hikvision-ds-2cd2385g1-i"]["observations"][0]["value"]
DHIP = next(o["value"] for o in DEVICES["dahua-ipc-hdw1431t1-s4"]["observations"] if o["kind"] == "dhip")


def obs(kind: str, value: str, port: int | None = None) -> Observation:
    return Observation(ADDRESS, kind, value, port)


def weak_evidence_by_maker() -> dict[str, list[Observation]]:
    """For each maker, one observation per weak-kind signature that names it (its first example)."""
    found: dict[str, list[Observation]] = defaultdict(list)
    for signature in default_set().signatures:
        if signature.kind not in WEAK_KINDS or not signature.examples:
            continue
        example = signature.examples[0]
        vendor = example.get("expect", {}).get("vendor") if isinstance(example, dict) else None
        if vendor:
            found[vendor].append(obs(signature.kind, example_input(example)))
    return found


WEAK = weak_evidence_by_maker()


@pytest.mark.parametrize("maker", sorted(WEAK))
def test_all_weak_evidence_for_one_maker_together_stays_a_hint(maker: str) -> None:
    """Every OUI, favicon, title and port signature of a maker at once: still under 0.5."""
    identity = identify(WEAK[maker])
    assert identity.vendor == maker
    assert 0.0 < identity.confidence < 0.5, (maker, identity.confidence, len(WEAK[maker]))


def test_oui_favicon_title_and_ports_do_not_make_a_dahua_identification() -> None:
    # OUI E0:50:8B, title WEB SERVICE, favicon 2019488876, title XVR LOGIN, tcp/37777
    # (reference/oui.json dahua; fingerprinting.md sections 4.2 and 2.1); before the cap: 0.85.
    hints = [obs("mac", "e0:50:8b:00:00:01"), obs("http_title", "WEB SERVICE", 80),
             obs("favicon_mmh3", "2019488876", 80), obs("http_title", "XVR LOGIN", 80),
             obs("open_port", "tcp/37777"), obs("open_port", "tcp/8000")]
    identity = identify(hints)
    assert identity.vendor == "dahua" and identity.confidence < 0.5
    # More agreeing hints still rank higher, they just never cross the line.
    assert identify(hints[:2]).confidence < identify(hints[:4]).confidence < identity.confidence


def test_oui_plus_favicon_hashes_do_not_make_a_hikvision_identification() -> None:
    # The mmh3 and md5 of one favicon are one fact, not two (fingerprinting.md section 4.1).
    identity = identify([obs("mac", "bc:ba:c2:00:00:01"), obs("favicon_mmh3", "999357577"),
                         obs("favicon_md5", "89b932fcc47cf4ca3faadb0cfdef89cf"), obs("open_port", "tcp/8000")])
    assert identity.vendor == "hikvision" and identity.confidence < 0.5


def test_one_medium_signal_outweighs_a_pile_of_contrary_hints() -> None:
    identity = identify([obs("mac", "e0:50:8b:00:00:01"), obs("http_title", "WEB SERVICE"),
                         obs("favicon_mmh3", "2019488876"), obs("open_port", "tcp/37777"),
                         obs("http_server", "App-webs/", 80)])
    assert identity.vendor == "hikvision"
    assert len(identity.conflicts) == 4 and all("dahua" in c for c in identity.conflicts)
    assert identity.confidence < identify([obs("http_server", "App-webs/", 80)]).confidence


def test_a_medium_signal_lifts_weak_hints_above_the_cap() -> None:
    """The cap is for hints alone: with a non-weak signal of the same maker they add up again."""
    hints = [obs("mac", "bc:ba:c2:00:00:01"), obs("favicon_mmh3", "999357577")]
    with_medium = identify([*hints, obs("rtsp_www_authenticate", 'Digest realm="IP Camera(C2875)"', 554)])
    assert with_medium.vendor == "hikvision"
    assert with_medium.confidence > 0.7 > identify(hints).confidence


def test_a_sadp_and_a_dhip_reply_on_one_address_are_a_tie() -> None:
    for observations in ([obs("sadp", SADP), obs("dhip", DHIP)], [obs("dhip", DHIP), obs("sadp", SADP)]):
        identity = identify(observations)
        assert (identity.vendor, identity.confidence, identity.covered) == ("unknown", 0.0, False)
        text = " ".join(identity.conflicts)
        assert "hikvision" in text and "dahua" in text and "too close to call" in text
        assert identity.model is None and identity.serial is None  # no maker's fields shown as fact


def test_the_tie_does_not_depend_on_hash_order() -> None:
    """Before the fix the pick between two equally strong makers followed set iteration order."""
    script = ("import json,sys;from camaudit.fingerprint import identify;from camaudit.model import Observation as O;"
              "print(identify([O('127.64.0.2','sadp',sys.argv[1]),O('127.64.0.2','dhip',sys.argv[2])]).vendor)")
    answers = set()
    for seed in ("1", "3", "4", "6"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script, SADP, DHIP], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        answers.add(done.stdout.strip())
    assert answers == {"unknown"}


def test_a_stronger_reply_still_wins_over_a_contrary_one_with_lowered_confidence() -> None:
    # SADP plus the ISAPI namespace (two strong Hikvision signals) against one DHIP reply.
    isapi = '<userCheck version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema"><statusValue>401</statusValue></userCheck>'
    identity = identify([obs("sadp", SADP), obs("isapi_device_info", isapi), obs("dhip", DHIP)])
    assert identity.vendor == "hikvision"
    assert identity.conflicts and identity.confidence < 0.6


@pytest.mark.parametrize("observations", [
    [obs("onvif_device_info", '{"Manufacturer": "Lorex"}')],
    [obs("onvif_device_info", '{"Manufacturer": "Lorex"}'), obs("mac", "00:1f:54:00:00:01")],
    [obs("onvif_device_info", '{"Manufacturer": "Amcrest"}'), obs("mac", "9c:8e:cd:00:00:01")],
], ids=["onvif-lorex", "onvif-and-oui-lorex", "onvif-and-oui-amcrest"])
def test_brand_only_evidence_names_the_lineage_maker(observations: list[Observation]) -> None:
    """Issue 14 item 4: a brand's own evidence names maker and brand together, the lineage as evidence."""
    identity = identify(observations)
    assert (identity.vendor, identity.covered) == ("dahua", True)
    assert identity.brand in ("lorex", "amcrest")
    assert all(e.via and e.via.startswith("lineage:") for e in identity.fields["vendor"].evidence)


# --------------------------------------------------------------------------- assembled devices
# Each value below is a fact of /work/shared/reference/fingerprinting.md (section cited); the
# combinations are devices the corpus and captures do not have yet.

ASSEMBLED: dict[str, tuple[list[Observation], dict[str, object]]] = {
    # 4.1 "Server: ... DNVRS-Webs (NVR)"; 4.1 "realm="hikvision" (any case)" (NMAP 12141 RTSP,
    # with the second Basic realm="/").
    "hikvision-nvr-http-and-rtsp": ([
        obs("http_headers", "HTTP/1.1 200 OK\r\nServer: DNVRS-Webs\r\nContent-Type: text/html\r\n\r\n", 80),
        obs("rtsp_response", 'RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest realm="Hikvision", '
            'nonce="0", stale="FALSE"\r\nWWW-Authenticate: Basic realm="/"\r\n\r\n', 554),
    ], {"vendor": "hikvision", "device_type": "nvr", "min": 0.85, "covered": True}),
    # 4.1 "Server: App-webs/" and "Digest ... realm="IP Camera(21388)" ... stale="FALSE"" in one 401.
    "hikvision-ipc-one-401": ([
        obs("http_headers", 'HTTP/1.1 401 Unauthorized\r\nServer: App-webs/\r\nWWW-Authenticate: Digest qop="auth", '
            'realm="IP Camera(21388)", nonce="0", stale="FALSE"\r\n\r\n', 80),
    ], {"vendor": "hikvision", "device_type": "camera", "min": 0.85, "covered": True}),
    # 4.1 "Server: Webs + 302 Redirect to /index.asp (old DVR)".
    "hikvision-old-dvr-redirect": ([
        obs("http_headers", "HTTP/1.1 302 Redirect\r\nServer: Webs\r\nLocation: http://127.64.0.2/index.asp\r\n\r\n", 80),
    ], {"vendor": "hikvision", "device_type": "dvr", "min": 0.5, "covered": True}),
    # 4.3 realm = device MAC "4419b66d2485" (4419B6 = Hikvision OUI), with that MAC: both under 0.5 alone.
    "hikvision-rtsp-mac-realm": ([
        obs("rtsp_www_authenticate", 'Digest realm="4419b66d2485", nonce="0"', 554),
        obs("mac", "44:19:b6:6d:24:85"),
    ], {"vendor": "hikvision", "min": 0.5, "covered": True}),
    # 4.2 RTSP "Server: Rtsp Server/3.0" and the HTTP header style (upper-case CONNECTION,
    # CONTENT-LENGTH, Etag "<digits>:<hex>", P3P: CP=CAO PSA OUR); 6: Amcrest = Dahua. Nothing
    # names Amcrest here, so no brand.
    "amcrest-rtsp-and-http-shape": ([
        obs("rtsp_response", "RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: Rtsp Server/3.0\r\n\r\n", 554),
        obs("http_headers", 'HTTP/1.1 200 OK\r\nCONNECTION: close\r\nCONTENT-LENGTH: 100\r\nCACHE-CONTROL: max-age=0\r\n'
            'Etag: "1467043384:5c1"\r\nP3P: CP=CAO PSA OUR\r\n\r\n', 80),
    ], {"vendor": "dahua", "brand": None, "min": 0.75, "covered": True}),
    # The same, with an Amcrest OUI (reference/oui.json brand_amcrest: 9C:8E:CD): brand amcrest.
    "amcrest-with-its-oui": ([
        obs("rtsp_server", "Rtsp Server/3.0", 554),
        obs("http_headers", 'HTTP/1.1 200 OK\r\nEtag: "1467043384:5c1"\r\n\r\n', 80),
        obs("mac", "9c:8e:cd:00:00:01"),
    ], {"vendor": "dahua", "brand": "amcrest", "min": 0.5, "covered": True}),
    # 6 Lorex: favicon 1653394551 and title "web service"; Lorex OUI 00:1F:54 (oui.json brand_lorex).
    # Hints only: Dahua under 0.5, brand lorex.
    "lorex-web-page-hints": ([
        obs("http_body", "<html><head><title>WEB SERVICE</title></head></html>", 80),
        obs("favicon_mmh3", "1653394551", 80),
        obs("mac", "00:1f:54:00:00:01"),
    ], {"vendor": "dahua", "brand": "lorex", "max": 0.49, "covered": True}),
    # 6 Lorex: realm "Login to <serial>" (serial format of section 5) and the Lorex OUI.
    "lorex-realm": ([
        obs("http_www_authenticate", 'Digest realm="Login to 3E00E38PAN00139"', 80),
        obs("mac", "00:1f:54:00:00:01"),
    ], {"vendor": "dahua", "brand": "lorex", "serial": "3E00E38PAN00139", "min": 0.6, "covered": True}),
    # 9 Uniview: "only OUIs (3), a NUCLEI favicon hash (-1240222446)". A hint, never more.
    "uniview-oui-only": ([obs("mac", "48:ea:63:00:00:01")],
                         {"vendor": "uniview", "max": 0.49, "covered": False}),
    "uniview-oui-and-favicon": ([obs("mac", "c4:79:05:00:00:01"), obs("favicon_mmh3", "-1240222446", 80)],
                                {"vendor": "uniview", "max": 0.49, "covered": False}),
    # 4.3 caution: "Rtsp Server/2.0" + H264Server SDP is a generic camera, not Dahua.
    "generic-rtsp-2": ([obs("rtsp_server", "Rtsp Server/2.0", 554)], {"vendor": "unknown", "max": 0.0}),
    # 8: "Server: Webs" alone is generic.
    "webs-alone": ([obs("http_server", "Webs", 80)], {"vendor": "unknown", "max": 0.0}),
}


def check(identity: Identity, expect: dict[str, object]) -> None:
    assert identity.vendor == expect["vendor"], identity
    for name in ("brand", "device_type", "serial", "covered"):
        if name in expect:
            assert getattr(identity, name) == expect[name], (name, identity)
    assert identity.confidence >= float(expect.get("min", 0.0)), identity  # type: ignore[arg-type]
    assert identity.confidence <= float(expect.get("max", 1.0)), identity  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(ASSEMBLED))
def test_assembled_devices_come_out_as_the_reference_says(name: str) -> None:
    observations, expect = ASSEMBLED[name]
    check(identify(observations), expect)
