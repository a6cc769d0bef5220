"""What the reports say about egress verdicts, checked against the store they were written from.

The verdicts here are made by the real verdict logic (camaudit.egress.verdict) and written as
egress verification writes them (camaudit.egress.storage.write_verdicts), into a lab database
(report_lab.py); the reports are then read as an auditor reads them: no sentence may claim more
than the row it comes from, CLOSED and INCONCLUSIVE carry their qualifiers and gaps, "no
verdict" is said in words, and the Dutch report speaks Dutch where camaudit knows the sentence.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from report_lab import LabDb, build_lab_db

from camaudit.assess import scan_view
from camaudit.egress.results import ActiveResult, PathResult, Verdict
from camaudit.egress.storage import write_verdicts
from camaudit.egress.verdict import active_verdict, device_verdict, rollup, select_controls
from camaudit.model.verdicts import Reason
from camaudit.probes.device_config import DeviceSettings
from camaudit.report.data import build_report
from camaudit.report.html import render_html
from camaudit.report.i18n import localise
from camaudit.report.markdown import render_markdown
from camaudit.report.messages import render, render_all
from camaudit.store import open_store

T0 = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC).isoformat()
T1 = dt.datetime(2026, 11, 3, 9, 5, tzinfo=dt.UTC).isoformat()
SENSOR = {"hostname": "sensor", "addresses": ["10.20.0.2"], "gateway": "10.20.0.1"}


def _p(path: str, result: str, basis: str) -> PathResult:
    return PathResult(path=path, result=result, basis=basis, conclusive=basis == "absent",
                      nonce="cmx" + f"{abs(hash(path)) % 16**20:020x}")


def _run(paths: list[PathResult], *, control: bool, run_id: str, at: str) -> ActiveResult:
    return ActiveResult(run_id=run_id, control=control, listeners=["203.0.113.7"], vantage=SENSOR, started_at=at,
                        finished_at=at, planned=[p.path for p in paths], paths=paths, segment="10.20.0.0/24")


def _settings(address: str, **kw: object) -> DeviceSettings:
    s = DeviceSettings(address=address, gateway=["10.20.0.1"], dns=["10.20.0.1"], ntp=["10.20.0.1"])
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def _verdicts() -> tuple[Verdict, dict[str, Verdict]]:
    silent = [_p("tcp/443", "blocked", "timeout"), _p("udp/8800", "blocked", "timeout"),
              _p("dns/resolver", "blocked", "negative"), _p("proxy", "blocked", "absent")]
    control = _run([_p("tcp/443", "allowed", "echo"), _p("udp/8800", "allowed", "echo"),
                    _p("dns/resolver", "allowed", "echo")], control=True, run_id="ctl", at=T0)
    run = _run(silent, control=False, run_id="seg", at=T1)
    active = active_verdict(run, select_controls(run, [control]))
    assert active.verdict == "CLOSED"
    devices = {
        "10.20.0.11": device_verdict(_settings("10.20.0.11", cloud={"hik_connect": {"enabled": False, "registered": False}}),
                                     active, None),
        "10.20.0.14": device_verdict(_settings("10.20.0.14", cloud={"hik_connect": {"enabled": True, "registered": False}},
                                               dns=["8.8.8.8"]), active, None),
        "10.20.0.12": device_verdict(_settings("10.20.0.12", cloud={"dahua_p2p": {
            "enabled": True, "registered": None, "note": "no verified API", "source": "dahua configManager T2UServer"}}),
            active, None),
        "10.20.0.15": device_verdict(_settings("10.20.0.15", cloud={"hik_connect": {
            "enabled": True, "registered": True, "bound": True, "servers": ["dev.hik-connect.com"]}}), active, None),
    }
    return rollup("10.20.0.0/24", active, list(devices.values())), devices


@pytest.fixture()
def judged(tmp_path: Path) -> tuple[LabDb, dict[str, Verdict]]:
    lab = build_lab_db(tmp_path / "judged.db", register=True, verdicts=False)
    segment, devices = _verdicts()
    with open_store(lab.path) as store:
        write_verdicts(store, lab.latest, [*devices.values(), segment])
    return lab, devices


def _words(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", " ".join(text.split()))  # markdown escapes out, one line


def test_every_device_verdict_in_the_report_is_its_row(judged: tuple[LabDb, dict[str, Verdict]]) -> None:
    lab, devices = judged
    with open_store(lab.path) as store:
        doc = build_report(store, lab.latest)
        view = scan_view(store, lab.latest)
    shown = {d["address"]: d for d in doc["devices"]}
    for address, verdict in devices.items():
        d = shown[address]
        assert d["verdict"] == verdict.egress and d["verdict_source"] == "device"
        assert d["exposed"] == verdict.exposed
        if verdict.egress == "CLOSED":
            assert d["missing"] == [] and any("no egress observed on 3 tested paths" in q for q in d["qualifiers"])
            assert any(T1 in q for q in d["qualifiers"])  # the window
            assert any("positive control" in q for q in d["qualifiers"])
        if verdict.egress == "INCONCLUSIVE":
            assert d["missing"] == verdict.missing_text and d["missing"]
            assert d["missing_codes"] == [m.to_json() for m in verdict.missing]
    # The summary counts are the devices' verdicts, nothing else.
    counts = {v: sum(1 for d in doc["devices"] if d["verdict"] == v) for v in ("OPEN", "CLOSED", "INCONCLUSIVE", "NONE")}
    assert doc["summary"]["verdicts"] == counts
    assert doc["summary"]["exposed"] == sum(1 for d in doc["devices"] if d["exposed"])
    # A device with no row of its own does not take the roll-up's OPEN (another camera's
    # registration made the segment OPEN): it has no verdict, and the report says why.
    assert doc["segments"][0]["verdict"] == "OPEN"
    lorex = shown["10.20.0.13"]
    assert lorex["verdict"] == "NONE" and not lorex["exposed"]
    assert lorex["verdict_source"] == ("no verdict of its own; segment 10.20.0.0/24 is OPEN on the evidence of other "
                                       "devices or the sensor")
    assert {d.address: d.verdict for d in view.devices}["10.30.0.5"] == "NONE"


def test_no_finding_claims_more_than_its_row(judged: tuple[LabDb, dict[str, Verdict]]) -> None:
    lab, _ = judged
    with open_store(lab.path) as store:
        doc = build_report(store, lab.latest)
    verdict_of = {d["address"]: d["verdict"] for d in doc["devices"]}
    for f in doc["findings"]:
        v = verdict_of.get(f["subject"])
        if v is None:
            continue
        claims = set(re.findall(r"verdict (OPEN|CLOSED|INCONCLUSIVE)", f["detail"]))
        assert claims <= {v}, (f["rule"], f["subject"], v, f["detail"])
        if v != "OPEN":
            assert "can reach the internet" not in f["detail"]
        if v == "CLOSED" and "egress" in f["rule"]:
            assert "no egress observed on" in f["detail"]  # stated with its qualifiers
        if v == "INCONCLUSIVE" and f["rule"].endswith("unverified"):
            assert "Missing:" in f["detail"] and "Missing: ." not in f["detail"]
    rules = {(f["rule"], f["subject"]) for f in doc["findings"]}
    assert ("covered-egress-open", "10.20.0.15") in rules and ("exposed-inbound", "10.20.0.15") in rules
    assert ("covered-egress-closed", "10.20.0.11") in rules
    assert ("covered-egress-unverified", "10.20.0.12") in rules
    # 10.30.0.5 has no verdict at all: said in words, not as the store's placeholder.
    none = next(f for f in doc["findings"] if f["subject"] == "10.30.0.5" and f["rule"] == "covered-egress-unverified")
    assert "no verdict recorded" in none["detail"] and "NONE" not in none["detail"]


def test_markdown_and_html_show_qualifiers_and_gaps(judged: tuple[LabDb, dict[str, Verdict]]) -> None:
    lab, _ = judged
    with open_store(lab.path) as store:
        doc = build_report(store, lab.latest)
    md = _words(render_markdown(doc))
    closed = md.split("### 10.20.0.11")[1].split("###")[0]
    assert "Verdict: **CLOSED** (device); Qualifiers:" in closed and "no egress observed on 3 tested paths" in closed
    # the paths as a table: path, result, whether the listener saw the nonce, the answer or the silence
    assert "| tcp/443 | blocked (timeout) | not seen " in closed and "| udp/8800 | blocked (timeout) | not seen " in closed
    assert "timeout: no answer" in closed
    unsure = md.split("### 10.20.0.12")[1].split("###")[0]
    assert "**INCONCLUSIVE**" in unsure and "Missing: dahua_p2p: the device's registration status was not verified" in unsure
    segment_row = next(line for line in render_markdown(doc).splitlines() if line.startswith("| 10.20.0.0/24 |"))
    assert "| OPEN | yes |" in segment_row and "OPEN: device 10.20.0.15: the device reports registration" in segment_row
    lorex = md.split("### 10.20.0.13")[1].split("###")[0]
    assert "Verdict: **no verdict** (no verdict of its own; segment 10.20.0.0/24 is OPEN" in lorex
    page = render_html(doc)
    assert "<li>dahua_p2p: the device&#39;s registration status was not verified" in page
    assert "tcp/443 blocked (timeout); udp/8800 blocked (timeout)" in page
    assert "&#39;basis&#39;" not in page and "basis: timeout" not in page  # no raw evidence dump
    assert '<tr data-path="tcp/443" data-result="blocked">' in page


def test_every_gap_says_what_to_do_and_why_it_stays_unverified(judged: tuple[LabDb, dict[str, Verdict]]) -> None:
    """Each missing item carries its remedy in the report itself (English and Dutch), and a Dahua
    P2P status or a Basic-auth-only Hikvision says plainly why it was not verified."""
    from camaudit.model.verdicts import Reason
    from camaudit.report.messages import REMEDY_EN, REMEDY_NL, remedy, render

    lab, _ = judged
    for lang, todo in (("en", "what to do:"), ("nl", "wat te doen:")):
        with open_store(lab.path) as store:
            doc = build_report(store, lab.latest, lang=lang)
        unsure = _words(render_markdown(doc)).split("### 10.20.0.12")[1].split("###")[0]
        assert todo in unsure, unsure
        assert todo in render_html(doc)
    with open_store(lab.path) as store:
        doc = build_report(store, lab.latest)
    gaps = [d for d in doc["devices"] if d["missing"]]
    assert gaps and all(len(d["missing_remedies"]) == len(d["missing"]) for d in gaps)
    assert all(r for d in gaps for r in d["missing_remedies"]), "every gap of the lab has a remedy"
    assert set(REMEDY_EN) == set(REMEDY_NL)
    p2p = Reason("registration_unverified", {"service": "dahua_p2p", "note": Reason("dahua_no_status_api"),
                                             "source": "dahua CGI"})
    assert "no read-only API that reports whether" in render(p2p) and "egress.md" not in render(p2p)
    assert "Network > P2P" in (remedy(p2p) or "") and "Netwerk > P2P" in (remedy(p2p, "nl") or "")
    basic = Reason("not_verified", {"reason": Reason("auth_basic_only", {"what": "ISAPI /ISAPI/System/deviceInfo"})})
    assert "sends the password readable" in render(basic) and "digest" in (remedy(basic) or "")


def test_the_dutch_report_translates_the_data_driven_text(judged: tuple[LabDb, dict[str, Verdict]]) -> None:
    lab, _ = judged
    with open_store(lab.path) as store:
        doc = build_report(store, lab.latest, lang="nl")
    md = _words(render_markdown(doc))
    closed = md.split("### 10.20.0.11")[1].split("###")[0]
    assert "Oordeel: **CLOSED** (apparaat)" in closed
    assert "geen uitgaand verkeer waargenomen op 3 geteste routes (tcp/443, udp/8800, dns/resolver)" in closed
    assert "positieve controle: run ctl vanaf sensor (10.20.0.2; gateway 10.20.0.1)" in closed
    assert "no egress observed" not in md and "positive control" not in md and "placement:" not in md
    assert "segment CLOSED vanaf de sensor (apparaat en sensor gebruiken gateway 10.20.0.1)" in closed
    assert "(geen eigen oordeel; segment 10.20.0.0/24 is OPEN op het bewijs van andere apparaten of de sensor)" in md
    # the register's mismatch detail
    assert "opgegeven fabrikant Lorex, vastgestelde fabrikant dahua" in md
    assert "declared maker" not in md
    # findings: qualifiers, missing and "no verdict" in Dutch
    details = " ".join(f["detail"] for f in doc["findings"])
    assert "dahua_p2p: de aanmeldstatus van het apparaat is niet vastgesteld" in details
    assert "geen oordeel vastgelegd" in details and "no verdict recorded" not in details
    assert "het apparaat meldt zelf aangemeld te zijn bij hik_connect" in details
    # verdict words are the contract's and are not translated
    assert "INCONCLUSIVE" in details and "CLOSED" in details
    page = render_html(doc)
    assert "het apparaat is ingesteld met een externe DNS-server 8.8.8.8 (bevinding)" in page


def test_reasons_render_in_dutch_keeping_values_and_registers_sentences_stay_localised() -> None:
    gap = Reason("device_gap", {"device": "10.1.2.3", "reason": Reason("not_verified", {"reason": Reason(
        "unauthorised", {"what": "ISAPI EZVIZ", "read": "isapi:EZVIZ", "port": 80})})})
    assert render(gap, "en") == "device 10.1.2.3: not verified: ISAPI EZVIZ: 401 unauthorised"
    assert render(gap, "nl") == "apparaat 10.1.2.3: niet vastgesteld: ISAPI EZVIZ: 401 niet geautoriseerd"
    placement = Reason("placement_open_not_shown", {"placement": Reason(
        "placement_other_gateway", {"device_gateways": "10.9.0.1", "sensor_gateway": "none"})})
    assert render(placement, "nl") == (
        "plaatsing: het apparaat gebruikt gateway 10.9.0.1, maar de sensor gebruikte none; het OPEN-resultaat van "
        "het segment is voor dit apparaat niet aangetoond")
    assert render_all([Reason("source_segment", {"segment": "10.0.0.0/8"}), Reason("no_verdict_recorded")], "nl") == [
        "segment 10.0.0.0/8", "geen oordeel vastgelegd"]
    # a 0.1 sentence (no code) is shown as written, in every language
    assert render(Reason.from_json("a sentence camaudit 0.1 wrote"), "nl") == "a sentence camaudit 0.1 wrote"
    # the register's reconciliation is still a sentence, translated where it is known
    assert localise("declared maker Lorex, identified maker dahua", "nl") == (
        "opgegeven fabrikant Lorex, vastgestelde fabrikant dahua")
    assert localise("a sentence camaudit never writes", "nl") == "a sentence camaudit never writes"
    assert localise(None, "nl") is None
    assert localise({"vantage": "x"}, "nl") == {"vantage": "x"}  # hand-written rows stay as written
