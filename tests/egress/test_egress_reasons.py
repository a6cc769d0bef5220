"""Reasons are codes: the verdict logic decides on codes and read names, never on English.

Issue 11 item 2. The decision tables of test_egress_verdict.py are decided again here with the
English catalogue reworded (the verdicts must not move), not-verified reads are decided by their
code and read name whatever their label says, verdicts survive their JSON form exactly, and the
one rule that says which verdict a device carries (egress.verdict.carried_verdict) is tested
case by case.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_egress_verdict import (
    ACTIVE_TABLE,
    DEVICE_TABLE,
    _capture,
    _closed_segment,
    _controls_for,
    _run,
    _segment,
    _settings,
)

from camaudit.egress.run import CheckOutcome
from camaudit.egress.verdict import (
    active_verdict,
    carried_verdict,
    device_verdict,
    effective_verdict,
    registration_read,
    rollup,
)
from camaudit.model.verdicts import CLOSED, INCONCLUSIVE, OPEN, Reason, Verdict, reasons_from_json
from camaudit.probes.device_config import DeviceSettings
from camaudit.report import messages


def _decide_all() -> list[tuple[str, str, str, bool, list[dict[str, Any]], list[dict[str, Any]]]]:
    """Every case of both decision tables, decided: (name, verdict, egress, exposed, codes...)."""
    out = []
    for name, paths, control, *_ in ACTIVE_TABLE:
        run = _run(list(paths))
        v = active_verdict(run, _controls_for(run, control))
        out.append((name, v.verdict, v.egress, v.exposed, [q.to_json() for q in v.qualifiers],
                    [m.to_json() for m in v.missing]))
    for name, settings, segment, flows, lookups, *_ in DEVICE_TABLE:
        s = None if settings is None else _settings(**settings)
        capture = _capture(flows, lookups) if flows or lookups else None
        v = device_verdict(s, _segment(segment) if segment else None, capture, address="10.20.0.5")
        out.append((name, v.verdict, v.egress, v.exposed, [q.to_json() for q in v.qualifiers],
                    [m.to_json() for m in v.missing]))
    return out


def test_rewording_every_english_message_changes_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _decide_all()
    english_before = [v.qualifier_text for v in [_closed_segment()]]
    # Other words for every code, including words that the 0.1 regexes decided on ("404 not
    # found", "table not present", "ezviz", "isapi:") put where they mean nothing, and taken
    # out of the messages that had them.
    for code in list(messages.EN):
        monkeypatch.setitem(messages.EN, code, f"reworded {code}: isapi: EZVIZ 404 not found table not present")
    monkeypatch.setitem(messages.EN, "not_found", "{what}: the device has no such page")
    monkeypatch.setitem(messages.EN, "table_absent", "{what}: the device lacks this table")
    after = _decide_all()
    assert after == before
    assert [v.qualifier_text for v in [_closed_segment()]] != english_before  # the words did change


# -- not-verified reads: decided by code and read name ---------------------------------------------


def _nv(code: str, what: str, read: str, **params: Any) -> Reason:
    return Reason(code, {"what": what, "read": read, "port": 80, **params})


NOT_VERIFIED_TABLE: list[tuple[str, list[Reason | str], str]] = [
    # a registration read that was refused keeps the device from CLOSED, whatever its label says
    # (0.1 matched "ezviz" in the sentence: a relabelled read slipped through as CLOSED)
    ("relabelled-registration-read", [_nv("auth_required", "ISAPI cloud platform", "isapi:EZVIZ")], INCONCLUSIVE),
    ("online-upgrade-timeout", [_nv("timed_out", "ISAPI upgrade", "isapi:onlineUpgrade")], INCONCLUSIVE),
    ("dahua-p2p-unread", [_nv("reply_not_understood", "Dahua CGI T2UServer", "dahua:T2UServer")], INCONCLUSIVE),
    ("upnp-status-forbidden", [_nv("forbidden", "ISAPI UPnP port status", "isapi:UPnPStatus")], INCONCLUSIVE),
    ("whole-api-stopped", [Reason("api_time_limit", {"api": "isapi", "port": 80})], INCONCLUSIVE),
    ("vendor-api-not-tried", [Reason("vendor_api_not_tried")], INCONCLUSIVE),
    ("no-http-port", [Reason("no_http_port")], INCONCLUSIVE),
    ("not-read-no-credentials", [_nv("not_read", "ISAPI Ehome", "isapi:Ehome", because=Reason("no_credentials"))],
     INCONCLUSIVE),
    # absence is a code: a 404 or Dahua's "Error" on a registration read is "not present"
    ("absent-404", [_nv("not_found", "ISAPI Ehome", "isapi:Ehome")], CLOSED),
    ("absent-table", [_nv("table_absent", "Dahua CGI VSP_PaaS", "dahua:VSP_PaaS")], CLOSED),
    # a device's own fault text that reads "404 not found" is not absence (0.1 read it as such
    # and let the device be CLOSED): the ONVIF identity read stays not verified
    ("device-fault-text-is-not-absence", [_nv("onvif_failed", "ONVIF GetDeviceInformation",
                                              "onvif:GetDeviceInformation", detail="SOAP fault ter:404 not found")],
     INCONCLUSIVE),
    # reads the registration question does not need leave CLOSED alone, whatever their words say
    ("ntp-unread", [_nv("timed_out", "ISAPI NTP servers (ezviz upnp p2p)", "isapi:ntpServers")], CLOSED),
    ("ddns-unread", [_nv("auth_required", "Dahua CGI DDNS", "dahua:DDNS")], CLOSED),
    ("onvif-dns-unread", [_nv("onvif_failed", "ONVIF GetDNS", "onvif:GetDNS", detail="timed out")], CLOSED),
    ("dahua-identity-unread", [_nv("not_found", "Dahua CGI getSystemInfo", "dahua:getSystemInfo")], CLOSED),
    # a 0.1 sentence has no code to decide on: it cannot be shown harmless, so never CLOSED
    ("legacy-sentence", ["ISAPI NTP servers: timed out"], INCONCLUSIVE),
]


@pytest.mark.parametrize(("name", "not_verified", "verdict"), NOT_VERIFIED_TABLE,
                         ids=[row[0] for row in NOT_VERIFIED_TABLE])
def test_not_verified_reads_are_decided_by_code(name: str, not_verified: list[Reason | str], verdict: str) -> None:
    v = device_verdict(_settings(not_verified=reasons_from_json(not_verified)), _closed_segment(), None)
    assert v.egress == verdict, (name, v.missing_text)
    codes = {q.code for q in v.qualifiers} | {m.code for m in v.missing}
    if name.startswith("absent-"):
        assert "not_present" in codes  # said, not silently dropped


def test_registration_read_ignores_the_label() -> None:
    assert registration_read(_nv("timed_out", "anything at all", "isapi:EZVIZ"))
    assert not registration_read(_nv("timed_out", "ISAPI EZVIZ Hik-Connect P2P UPnP", "isapi:ntpServers"))


# -- the JSON form ---------------------------------------------------------------------------------


def _all_verdicts() -> list[Verdict]:
    seg = _closed_segment()
    devices = [device_verdict(_settings(cloud={"hik_connect": {"enabled": True, "registered": True, "bound": True}}),
                              seg, None),
               device_verdict(None, seg, None, address="10.20.0.7"),
               device_verdict(_settings(not_verified=[_nv("auth_required", "ISAPI EZVIZ", "isapi:EZVIZ")]), seg, None)]
    out = [seg, *devices, rollup("10.20.0.0/24", seg, devices)]
    for _name, paths, control, *_ in ACTIVE_TABLE:
        run = _run(list(paths))
        out.append(active_verdict(run, _controls_for(run, control)))
    return out


def test_verdict_json_round_trip_is_exact() -> None:
    for v in _all_verdicts():
        doc = v.to_json()
        assert Verdict.from_json(doc) == v
        # the contract: qualifiers and missing stay English sentences; the codes sit beside them
        assert doc["qualifiers"] == v.qualifier_text and all(isinstance(q, str) for q in doc["qualifiers"])
        assert doc["missing"] == v.missing_text
        assert doc["qualifier_codes"] == [q.to_json() for q in v.qualifiers]
        assert all(isinstance(c, dict) and isinstance(c["code"], str) for c in doc["missing_codes"])


def test_a_reason_is_flat_json_and_hashable() -> None:
    r = Reason("auth_required", {"what": "ISAPI deviceInfo", "port": 80})
    assert r.to_json() == {"code": "auth_required", "what": "ISAPI deviceInfo", "port": 80}
    assert Reason.from_json(r.to_json()) == r and hash(Reason.from_json(r.to_json())) == hash(r)
    nested = Reason("not_verified", {"reason": r})
    assert nested.to_json() == {"code": "not_verified", "reason": r.to_json()}
    with pytest.raises(ValueError, match="flat"):
        Reason("x", {"code": "y"})


def test_a_verdict_from_a_0_1_store_loads_with_its_sentences() -> None:
    old = {"verdict": "INCONCLUSIVE", "egress": "INCONCLUSIVE", "exposed": False, "subject_kind": "device",
           "subject": "10.0.0.5", "qualifiers": ["the device reports no default gateway"],
           "missing": ["not verified: ISAPI EZVIZ: 401 unauthorised"], "paths": [], "evidence": [],
           "decided_at": "2026-01-05T10:00:00+00:00"}
    v = Verdict.from_json(old)
    assert [q.code for q in v.qualifiers + v.missing] == ["legacy_text", "legacy_text"]
    assert v.qualifier_text == old["qualifiers"] and v.missing_text == old["missing"]
    assert messages.render(v.missing[0], "nl") == "not verified: ISAPI EZVIZ: 401 unauthorised"  # as written
    assert Verdict.from_json(v.to_json()) == v


def test_device_settings_json_round_trip_and_0_1_sentences() -> None:
    s = _settings(not_verified=[_nv("not_found", "ISAPI Ehome", "isapi:Ehome"), Reason("no_http_port")])
    doc = s.to_json()
    assert doc["not_verified"] == ["ISAPI Ehome: 404 not found", "ONVIF and vendor APIs: no open HTTP port"]
    back = DeviceSettings.from_json(doc)
    assert back.not_verified == s.not_verified and back.gateway == s.gateway
    old = {k: v for k, v in doc.items() if k != "not_verified_codes"}
    assert [r.code for r in DeviceSettings.from_json(old).not_verified] == ["legacy_text", "legacy_text"]


def test_check_outcome_json_keeps_sentences_and_adds_codes() -> None:
    run = _run([])
    v = active_verdict(run)
    doc = CheckOutcome(scan_id="s", run=run, verdict=v).to_json()
    assert doc["missing"] == v.missing_text and doc["missing_codes"] == [m.to_json() for m in v.missing]
    assert doc["qualifier_codes"] == [q.to_json() for q in v.qualifiers]


# -- which verdict a device carries ----------------------------------------------------------------

_ROLLUP = [{"kind": "rollup", "parts": []}]


def _v(kind: str, subject: str, egress: str, *, exposed: bool = False,
       evidence: list[dict[str, Any]] | None = None) -> Verdict:
    return Verdict(subject_kind=kind, subject=subject, verdict="EXPOSED" if exposed and egress != OPEN else egress,
                   egress=egress, exposed=exposed, evidence=list(evidence or []))


def test_a_device_carries_its_own_verdict_first() -> None:
    own = _v("device", "10.20.0.5", CLOSED)
    seg = _v("segment", "10.20.0.0/24", OPEN)
    carried = carried_verdict(own, [seg], "10.20.0.5")
    assert carried.verdict is own and carried.source == Reason("source_device") and carried.segment is seg
    assert effective_verdict(own, [seg], "10.20.0.5") is own


def test_a_device_without_its_own_takes_a_hand_written_segment_verdict() -> None:
    wide = _v("segment", "10.0.0.0/8", CLOSED)
    narrow = _v("segment", "10.20.0.0/24", INCONCLUSIVE)
    carried = carried_verdict(None, [wide, narrow], "10.20.0.5")
    assert carried.verdict is narrow  # the most specific segment
    assert carried.source == Reason("source_segment", {"segment": "10.20.0.0/24"})


def test_camaudits_own_rollup_does_not_speak_for_an_unjudged_device() -> None:
    seg = _v("segment", "10.20.0.0/24", OPEN, exposed=True, evidence=_ROLLUP)
    carried = carried_verdict(None, [seg], "10.20.0.5")
    assert carried.verdict is None and carried.exposed is None
    assert carried.source == Reason("source_not_judged", {"segment": "10.20.0.0/24", "verdict": OPEN})
    assert messages.render(carried.source, "en") == (
        "no verdict of its own; segment 10.20.0.0/24 is OPEN on the evidence of other devices or the sensor")


def test_exposure_is_inherited_only_by_devices_without_records_of_their_own() -> None:
    seg = _v("segment", "10.20.0.0/24", CLOSED, exposed=True)
    assert carried_verdict(None, [seg], "10.20.0.5").exposed is seg
    own = _v("device", "10.20.0.5", CLOSED)
    assert carried_verdict(own, [seg], "10.20.0.5").exposed is None
    exposed_own = _v("device", "10.20.0.5", CLOSED, exposed=True)
    assert carried_verdict(exposed_own, [seg], "10.20.0.5").exposed is exposed_own


def test_named_segments_come_from_the_register_and_outsiders_carry_nothing() -> None:
    named = _v("segment", "cameras-north", CLOSED)
    assert carried_verdict(None, [named], "10.20.0.5").verdict is None
    carried = carried_verdict(None, [named], "10.20.0.5", declared_segment="Cameras-North")
    assert carried.verdict is named and carried.segment is named
    outside = carried_verdict(None, [_v("segment", "192.168.1.0/24", CLOSED)], "10.20.0.5")
    assert outside == type(outside)(None, None, None, None)
    # a device with only an EXPOSED record has no egress verdict of its own
    only_exposed = _v("device", "10.20.0.5", "NONE", exposed=True)
    carried = carried_verdict(only_exposed, [_v("segment", "10.20.0.0/24", CLOSED)], "10.20.0.5")
    assert carried.verdict is not None and carried.verdict.subject_kind == "segment"
    assert carried.exposed is only_exposed
