"""The pure verdict logic against reference/egress.md section 1.4 (decision table) and 7.3."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from camaudit.egress.results import (
    CLOSED,
    INCONCLUSIVE,
    OPEN,
    ActiveResult,
    DnsLookup,
    Flow,
    ListenerEntry,
    PassiveResult,
    PathResult,
)
from camaudit.egress.verdict import (
    active_verdict,
    apply_listener_log,
    control_passed,
    device_verdict,
    rollup,
    select_controls,
)
from camaudit.model.verdicts import Reason
from camaudit.probes.device_config import DeviceSettings

T0 = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
VANTAGE = {"hostname": "sensor", "addresses": ["10.20.0.9"], "gateway": "10.20.0.1"}


def _p(path: str, result: str, basis: str, conclusive: bool = False, nonce: str | None = None,
       **extra: object) -> PathResult:
    return PathResult(path=path, result=result, basis=basis, conclusive=conclusive,
                      nonce=nonce or "cmx" + f"{abs(hash(path)) % 16**20:020x}", extra=dict(extra))


def _run(paths: list[PathResult], *, control: bool = False, minutes: int = 0, run_id: str = "seg",
         listeners: tuple[str, ...] = ("203.0.113.7",)) -> ActiveResult:
    start = (T0 + dt.timedelta(minutes=minutes)).isoformat()
    return ActiveResult(run_id=run_id, control=control, listeners=list(listeners), vantage=VANTAGE,
                        started_at=start, finished_at=start, planned=[p.path for p in paths], paths=paths,
                        segment="10.20.0.0/24")


SILENT = [_p("tcp/443", "blocked", "timeout"), _p("udp/8800", "blocked", "timeout"),
          _p("dns/resolver", "blocked", "negative"), _p("proxy", "blocked", "absent", True),
          _p("upnp", "blocked", "absent", True)]


def _control(minutes: int = 5, ok: bool = True, run_id: str = "ctl") -> ActiveResult:
    result = "allowed" if ok else "blocked"
    basis = "echo" if ok else "timeout"
    return _run([_p("tcp/443", result, basis), _p("udp/8800", result, basis), _p("dns/resolver", result, basis),
                 _p("icmp", "allowed", "echo")], control=True, minutes=minutes, run_id=run_id)


def test_one_listener_confirmed_path_is_open() -> None:
    run = _run(SILENT[:1] + [_p("udp/8800", "allowed", "echo")] + SILENT[2:])
    v = active_verdict(run)
    assert v.verdict == "OPEN" and v.egress == "OPEN" and v.missing_text == []
    assert "udp/8800" in v.qualifier_text[0]


def test_silence_with_a_passing_control_is_closed_with_qualifiers() -> None:
    run = _run(list(SILENT))
    controls = select_controls(run, [_control()])
    v = active_verdict(run, controls)
    assert v.verdict == "CLOSED", v.missing_text
    assert any("positive control" in q for q in v.qualifier_text)
    assert any("placement" in q for q in v.qualifier_text)
    assert any(run.started_at in q for q in v.qualifier_text)  # the window is stated


def test_silence_without_a_control_is_inconclusive() -> None:
    v = active_verdict(_run(list(SILENT)))
    assert v.verdict == "INCONCLUSIVE"
    assert any("positive control" in m for m in v.missing_text)


def test_a_control_that_never_reached_the_listener_does_not_count() -> None:
    failed = _control(ok=False)
    assert not control_passed(failed)  # a kernel's echo reply does not prove the listener was up
    v = active_verdict(_run(list(SILENT)), select_controls(_run(list(SILENT)), [failed]))
    assert v.verdict == "INCONCLUSIVE"
    assert any("never got an answer" in m for m in v.missing_text)


def test_a_path_the_control_could_not_reach_stays_uncontrolled() -> None:
    ctl = _run([_p("tcp/443", "allowed", "echo"), _p("udp/8800", "blocked", "timeout"),
                _p("dns/resolver", "allowed", "echo")], control=True, minutes=1, run_id="c")
    v = active_verdict(_run(list(SILENT)), [ctl])
    assert v.verdict == "INCONCLUSIVE"
    assert any("udp/8800" in m and "did not reach" in m for m in v.missing_text)


def test_controls_outside_the_window_or_for_another_listener_are_not_selected() -> None:
    run = _run(list(SILENT))
    assert select_controls(run, [_control(minutes=61)]) == []
    assert select_controls(run, [_control(minutes=-59)]) != []
    other = _control()
    other.listeners = ["198.51.100.99"]
    assert select_controls(run, [other]) == []
    assert select_controls(run, [_control()], window_s=60) == []


def test_conclusive_refusals_need_no_control() -> None:
    run = _run([_p("tcp/443", "blocked", "admin-prohibited", True), _p("udp/8800", "blocked", "no-route", True),
                _p("proxy", "blocked", "absent", True)])
    v = active_verdict(run)
    assert v.verdict == "CLOSED"
    assert any("no positive control was needed" in q for q in v.qualifier_text)


def test_an_unknown_or_untested_planned_path_makes_it_inconclusive() -> None:
    run = _run(list(SILENT) + [_p("icmp", "unknown", "error")])
    run.planned.append("ntp")
    v = active_verdict(run, [_control()])
    assert v.verdict == "INCONCLUSIVE"
    assert any(m.startswith("ntp: planned but not tested") for m in v.missing_text)
    assert any(m.startswith("icmp:") for m in v.missing_text)


def test_an_igd_makes_it_exposed_and_open_stays_open_with_exposed_true() -> None:
    igd = _p("upnp", "allowed", "echo", mappings=[{"internal_client": "10.20.0.5", "external_port": "8000"}])
    closed = active_verdict(_run([*SILENT[:4], igd]), [_control()])
    assert closed.verdict == "EXPOSED" and closed.egress == "CLOSED" and closed.exposed
    both = active_verdict(_run([_p("tcp/443", "allowed", "echo"), igd]))
    assert both.verdict == "OPEN" and both.exposed


def test_the_listener_log_proves_one_way_egress() -> None:
    run = _run(list(SILENT))
    nonce = run.paths[1].nonce
    assert nonce is not None
    apply_listener_log(run, [ListenerEntry(nonce=nonce.upper(), src="198.51.100.1", at=T0.isoformat(), kind="udp")])
    v = active_verdict(run)
    assert v.verdict == "OPEN"
    assert run.paths[1].basis == "listener-log" and "198.51.100.1" in run.paths[1].detail
    assert any("one-way" in q for q in v.qualifier_text)


# -- devices ------------------------------------------------------------------------------------


def _closed_segment() -> object:
    return active_verdict(_run(list(SILENT)), [_control()])


def _nv(code: str, what: str, read: str) -> Reason:
    """A not-verified read as the probes record it."""
    return Reason(code, {"what": what, "read": read, "port": 80})


def _settings(**kw: object) -> DeviceSettings:
    s = DeviceSettings(address="10.20.0.5", gateway=["10.20.0.1"], dns=["10.20.0.1"], ntp=["10.20.0.1"])
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_device_reporting_registration_is_open_even_on_a_closed_segment() -> None:
    s = _settings(cloud={"hik_connect": {"enabled": True, "registered": True, "servers": ["dev.hik-connect.com"],
                                         "source": "isapi /ISAPI/System/Network/EZVIZ"}})
    v = device_verdict(s, _closed_segment(), None)  # type: ignore[arg-type]
    assert v.verdict == "OPEN" and "hik_connect" in v.qualifier_text[0]


def test_registration_with_an_internal_platform_is_not_egress() -> None:
    s = _settings(cloud={"hik_ehome": {"enabled": True, "registered": True, "servers": ["10.1.2.3"]}})
    v = device_verdict(s, _closed_segment(), None)  # type: ignore[arg-type]
    assert v.verdict == "CLOSED"


def test_device_closed_needs_everything() -> None:
    seg = _closed_segment()
    assert device_verdict(_settings(), seg, None).verdict == "CLOSED"  # type: ignore[arg-type]
    # not read at all; gateway not read; registration not verified; a different gateway
    assert device_verdict(None, seg, None, address="10.20.0.5").verdict == "INCONCLUSIVE"  # type: ignore[arg-type]
    assert device_verdict(_settings(gateway=None), seg, None).verdict == "INCONCLUSIVE"  # type: ignore[arg-type]
    unverified = _settings(not_verified=[_nv("unauthorised", "ISAPI EZVIZ", "isapi:EZVIZ")])
    v = device_verdict(unverified, seg, None)  # type: ignore[arg-type]
    assert v.verdict == "INCONCLUSIVE" and any("EZVIZ" in m for m in v.missing_text)
    absent = _settings(not_verified=[_nv("not_found", "ISAPI Ehome", "isapi:Ehome")])
    assert device_verdict(absent, seg, None).verdict == "CLOSED"  # type: ignore[arg-type]
    elsewhere = device_verdict(_settings(gateway=["10.99.0.1"]), seg, None)  # type: ignore[arg-type]
    assert elsewhere.verdict == "INCONCLUSIVE" and any("placement" in m for m in elsewhere.missing_text)
    p2p = _settings(cloud={"dahua_p2p": {"enabled": True, "registered": None, "note": "no verified API"}})
    assert device_verdict(p2p, seg, None).verdict == "INCONCLUSIVE"  # type: ignore[arg-type]
    # A Dahua table the device says it lacks ("Error") is absent; a reply camaudit could not
    # read says nothing, so it keeps the device from CLOSED.
    lacks = _settings(not_verified=[_nv("table_absent", "Dahua CGI T2UServer", "dahua:T2UServer")])
    assert device_verdict(lacks, seg, None).verdict == "CLOSED"  # type: ignore[arg-type]
    unread = _settings(not_verified=[_nv("reply_not_understood", "Dahua CGI T2UServer", "dahua:T2UServer")])
    assert device_verdict(unread, seg, None).verdict == "INCONCLUSIVE"  # type: ignore[arg-type]


def test_config_alone_never_decides() -> None:
    s = _settings(dns=["8.8.8.8"], ntp=["pool.ntp.org"],
                  cloud={"hik_connect": {"enabled": True, "registered": False}})
    v = device_verdict(s, None, None)
    assert v.verdict == "INCONCLUSIVE"
    assert any("8.8.8.8" in q for q in v.qualifier_text) and any("enabled but reports no registration" in q
                                                                for q in v.qualifier_text)


def test_active_upnp_status_on_the_device_is_exposed() -> None:
    s = _settings(upnp_mappings=[{"kind": "status", "externalPort": "18080", "externalIPAddress": "198.51.100.7",
                                  "status": "active"}])
    v = device_verdict(s, _closed_segment(), None)  # type: ignore[arg-type]
    assert v.verdict == "EXPOSED" and v.egress == "CLOSED"
    failed = _settings(upnp_mappings=[{"kind": "status", "externalPort": "18080", "status": "failed"}])
    assert device_verdict(failed, _closed_segment(), None).verdict == "CLOSED"  # type: ignore[arg-type]


def _capture(flows: list[Flow], lookups: list[DnsLookup] | None = None) -> PassiveResult:
    return PassiveResult(source="span.pcap", start=T0.isoformat(), end=T0.isoformat(), packets=10,
                         devices=["10.20.0.0/24"], flows=flows, lookups=lookups or [])


def test_established_external_flow_is_open_attempts_are_not() -> None:
    at = T0.isoformat()
    est = Flow("10.20.0.5", "8.8.4.4", "tcp", 8555, "established", at, at, 3, 2)
    tried = Flow("10.20.0.5", "8.8.4.4", "tcp", 8666, "attempted", at, at, 3, 0)
    assert device_verdict(_settings(), _closed_segment(), _capture([est])).verdict == "OPEN"  # type: ignore[arg-type]
    v = device_verdict(_settings(), _closed_segment(), _capture([tried]))  # type: ignore[arg-type]
    assert v.verdict == "CLOSED" and any("unanswered egress attempt" in q for q in v.qualifier_text)
    cgnat = Flow("10.20.0.5", "100.64.1.1", "tcp", 80, "established", at, at, 1, 1, remote_class="ambiguous")
    assert device_verdict(_settings(), _closed_segment(), _capture([cgnat])).verdict == "CLOSED"  # type: ignore[arg-type]


def test_rollup() -> None:
    seg = _closed_segment()
    closed = device_verdict(_settings(), seg, None)  # type: ignore[arg-type]
    opened = device_verdict(_settings(address="10.20.0.6", cloud={"online_upgrade": {"registered": True}}),
                            seg, None)  # type: ignore[arg-type]
    unknown = device_verdict(None, seg, None, address="10.20.0.7")  # type: ignore[arg-type]
    assert rollup("s", seg, [closed]).verdict == "CLOSED"  # type: ignore[arg-type]
    assert rollup("s", seg, [closed, opened]).verdict == "OPEN"  # type: ignore[arg-type]
    r = rollup("s", seg, [closed, unknown])  # type: ignore[arg-type]
    assert r.verdict == "INCONCLUSIVE" and any("10.20.0.7" in m for m in r.missing_text)
    assert rollup("s", None, [closed]).verdict == "INCONCLUSIVE"


# -- the decision table, row by row (egress.md 1.4; DESIGN.md section 5) ----------------------------
#
# Each case: the evidence of one segment run (and the controls), the verdict it must get, words
# its qualifiers must carry and words its missing list must carry. Nothing else may decide.

CTL = "ctl"  # a passing control run within the window
BAD = "bad"  # a control run that never reached the listener

ACTIVE_TABLE: list[tuple[str, list[PathResult], str | None, str, list[str], list[str]]] = [
    # row 1: one nonce confirmed by the listener, any protocol -> OPEN, conclusive, no gaps
    ("row1-tcp-echo", [_p("tcp/443", "allowed", "echo"), *SILENT[1:]], None, "OPEN", ["egress observed on tcp/443"], []),
    ("row1-icmp-echo", [_p("icmp", "allowed", "echo"), *SILENT], None, "OPEN", ["egress observed on icmp"], []),
    ("row1-ipv6", [_p("ipv6/tcp/443", "allowed", "echo"), *SILENT], None, "OPEN", ["OPEN through IPv6"], []),
    # row 2: the auditor's zone saw the nonce through the segment's resolver -> OPEN (DNS recursion)
    ("row2-dns-recursion", [*SILENT[:2], _p("dns/resolver", "allowed", "echo"), *SILENT[3:]], None, "OPEN",
     ["OPEN through DNS"], []),
    # row 9: every path silent, a passing control -> CLOSED with paths, window, control, placement
    ("row9-closed", list(SILENT), CTL, "CLOSED",
     ["no egress observed on 3 tested paths (tcp/443, udp/8800, dns/resolver)", "positive control", "placement",
      "not present from this vantage: proxy"], []),
    # row 12: silence without a control, or with a control that failed -> INCONCLUSIVE
    ("row12-no-control", list(SILENT), None, "INCONCLUSIVE", [], ["positive control"]),
    ("row12-failed-control", list(SILENT), BAD, "INCONCLUSIVE", [], ["never got an answer from the listener"]),
    # a TCP RST / ICMP port unreachable alone is a reject *or* the listener not serving: needs a control
    ("rst-alone", [_p("tcp/443", "blocked", "reset"), _p("udp/8800", "blocked", "reset")], None, "INCONCLUSIVE",
     [], ["positive control", "tcp/443", "udp/8800"]),
    ("rst-with-control", [_p("tcp/443", "blocked", "reset"), _p("udp/8800", "blocked", "reset")], CTL, "CLOSED",
     ["positive control"], []),
    # an unreachable from the far side (not conclusive) or a resolver's NXDOMAIN: needs a control
    ("far-unreachable", [_p("tcp/443", "blocked", "unreachable")], None, "INCONCLUSIVE", [], ["positive control"]),
    ("nxdomain", [_p("dns/resolver", "blocked", "negative")], None, "INCONCLUSIVE", [], ["positive control"]),
    # a filter's admin-prohibited, an internal router's unreachable, no route, a proxy's 403: conclusive
    ("conclusive-refusals", [_p("tcp/443", "blocked", "admin-prohibited", True),
                             _p("udp/8800", "blocked", "unreachable", True), _p("icmp", "blocked", "no-route", True),
                             _p("proxy", "blocked", "refused", True)], None, "CLOSED",
     ["no positive control was needed"], []),
    # a path unknown, skipped, unfinished, or planned and never run -> never CLOSED
    ("unknown-path", [*SILENT, _p("ntp", "unknown", "error")], CTL, "INCONCLUSIVE", [], ["ntp:"]),
    ("skipped-path", [*SILENT, PathResult(path="icmp", result="unknown", basis="not-tested",
                                          detail="skipped by the operator (--skip)")], CTL, "INCONCLUSIVE",
     [], ["icmp: skipped"]),
    ("no-nonce-answer", [*SILENT, _p("tcp/80", "unknown", "no-nonce")], CTL, "INCONCLUSIVE", [], ["tcp/80"]),
    # nothing tested but paths that do not exist here -> not CLOSED (no path showed anything)
    ("only-absent", [_p("proxy", "blocked", "absent", True), _p("ipv6/ra", "blocked", "absent", True),
                     _p("upnp", "blocked", "absent", True)], CTL, "INCONCLUSIVE", [], ["no egress path was tested"]),
    ("nothing-at-all", [], CTL, "INCONCLUSIVE", [], ["no egress path was tested"]),
    # row 5 (segment side): an IGD answers -> EXPOSED beside the egress axis
    ("row5-igd-closed", [*SILENT[:4], _p("upnp", "allowed", "echo")], CTL, "EXPOSED", ["EXPOSED"], []),
    ("row5-igd-open", [_p("tcp/443", "allowed", "echo"), _p("upnp", "allowed", "echo")], None, "OPEN", ["EXPOSED"], []),
]


def _controls_for(run: ActiveResult, which: str | None) -> list[ActiveResult]:
    if which is None:
        return []
    return select_controls(run, [_control(ok=which == CTL)])


@pytest.mark.parametrize(("name", "paths", "control", "verdict", "qualifiers", "missing"), ACTIVE_TABLE,
                         ids=[row[0] for row in ACTIVE_TABLE])
def test_decision_table_active(name: str, paths: list[PathResult], control: str | None, verdict: str,
                               qualifiers: list[str], missing: list[str]) -> None:
    run = _run(list(paths))
    v = active_verdict(run, _controls_for(run, control))
    assert v.verdict == verdict, (name, v.missing_text, v.qualifier_text)
    for word in qualifiers:
        assert any(word in q for q in v.qualifier_text), (name, word, v.qualifier_text)
    for word in missing:
        assert any(word in m for m in v.missing_text), (name, word, v.missing_text)
    if v.egress == OPEN:
        assert v.missing_text == []  # OPEN is conclusive: no gaps listed against it
    elif v.egress == CLOSED:
        assert v.missing_text == [] and any(run.started_at in q for q in v.qualifier_text)  # the window is stated
    else:
        assert v.missing_text, name  # INCONCLUSIVE always says what is missing
    assert v.exposed == (v.verdict == "EXPOSED" or any(q.startswith("EXPOSED") for q in v.qualifier_text))


def test_closed_never_without_a_conclusive_basis_for_every_silent_path() -> None:
    """Property over the table: whenever a run is CLOSED, each silent path was conclusive on its
    own or reached the listener in a passing control."""
    for name, paths, control, _, _, _ in ACTIVE_TABLE:
        run = _run(list(paths))
        controls = _controls_for(run, control)
        v = active_verdict(run, controls)
        if v.egress != CLOSED:
            continue
        controlled = {p.path for c in controls if control_passed(c) for p in c.paths if p.result == "allowed"}
        for p in run.paths:
            assert p.result != "unknown", name
            assert p.conclusive or p.path in controlled, (name, p.path)


# -- devices (rows 4, 5, 6, 7, 10, 11, 12 and placement) ------------------------------------------

ClosedSeg = "closed"
OpenSeg = "open"


def _segment(kind: str) -> Any:
    if kind == OpenSeg:
        return active_verdict(_run([_p("tcp/443", "allowed", "echo"), *SILENT[1:]]))
    return _closed_segment()


AT = T0.isoformat()
DEVICE_TABLE: list[tuple[str, dict[str, Any] | None, str | None, list[Flow], list[DnsLookup], str, list[str], list[str]]] = [
    # row 9 for a device: segment CLOSED, same gateway, reads made, nothing reported -> CLOSED with the
    # segment's own qualifiers (paths, window, control, placement)
    ("closed", {}, ClosedSeg, [], [], "CLOSED",
     ["segment CLOSED from the sensor", "no egress observed on", "positive control", "placement"], []),
    # row 4: the device asserts registration -> OPEN even on a CLOSED segment
    ("row4-hik-connect", {"cloud": {"hik_connect": {"enabled": True, "registered": True}}}, ClosedSeg, [], [],
     "OPEN", ["registration with hik_connect"], []),
    ("row4-online-upgrade", {"cloud": {"online_upgrade": {"registered": True}}}, None, [], [], "OPEN",
     ["online_upgrade"], []),
    # row 4 + binding: OPEN, and EXPOSED beside it
    ("row4-bound", {"cloud": {"hik_connect": {"enabled": True, "registered": True, "bound": True}}}, ClosedSeg,
     [], [], "OPEN", ["EXPOSED: bound to a cloud account"], []),
    # row 5: an active UPnP mapping reported by the device -> EXPOSED
    ("row5-upnp-status", {"upnp_mappings": [{"kind": "status", "externalPort": "18080", "status": "active"}]},
     ClosedSeg, [], [], "EXPOSED", ["active UPnP port mapping"], []),
    # row 6: an established flow with an external address -> OPEN
    ("row6-established", {}, ClosedSeg, [Flow("10.20.0.5", "8.8.4.4", "tcp", 8555, "established", AT, AT, 3, 2)],
     [], "OPEN", ["established tcp flow with 8.8.4.4:8555"], []),
    # row 7: attempts only -> the path stays CLOSED, with a finding
    ("row7-attempts", {}, ClosedSeg, [Flow("10.20.0.5", "8.8.4.4", "tcp", 8666, "attempted", AT, AT, 3, 0)], [],
     "CLOSED", ["unanswered egress attempt"], []),
    # row 3 in a capture: an internal resolver answers a vendor-cloud name -> indicator, not OPEN; it
    # conflicts with CLOSED (row 12)
    ("row3-resolved-name", {}, ClosedSeg, [],
     [DnsLookup("10.20.0.5", "10.20.0.1", "dev.hik-connect.com", "*.hik-connect.com", "hikvision", AT, True,
                ["8.8.8.8"])], "INCONCLUSIVE", ["looked up vendor-cloud names"], ["conflicting evidence", "indicator"]),
    # row 10: no gateway, no DNS, cloud off: supports CLOSED, alone INCONCLUSIVE
    ("row10-alone", {"gateway": [], "dns": [], "cloud": {"hik_connect": {"enabled": False, "registered": False}}},
     None, [], [], "INCONCLUSIVE", ["no default gateway (supports CLOSED"], ["active egress check"]),
    ("row10-with-segment", {"gateway": ["0.0.0.0"]}, ClosedSeg, [], [], "CLOSED", ["no default gateway"], []),
    # row 11: internet-oriented config never decides: CLOSED network stays CLOSED, findings beside it ...
    ("row11-config-closed", {"dns": ["8.8.8.8"], "ntp": ["pool.ntp.org"],
                             "cloud": {"dahua_p2p": {"enabled": True, "registered": False}}}, ClosedSeg, [], [],
     "CLOSED", ["external DNS server 8.8.8.8", "non-internal NTP server pool.ntp.org", "enabled but reports no"], []),
    # ... and with no network evidence the same config is not OPEN either
    ("row11-config-alone", {"dns": ["8.8.8.8"], "gateway": ["10.20.0.1"],
                            "cloud": {"hik_connect": {"enabled": True, "registered": False}}}, None, [], [],
     "INCONCLUSIVE", ["external DNS server 8.8.8.8"], ["active egress check"]),
    # row 12: settings not verified (401, time-outs, a whole API stopped) -> never CLOSED
    ("row12-401", {"not_verified": [_nv("auth_refused", "ISAPI EZVIZ", "isapi:EZVIZ")]}, ClosedSeg, [], [],
     "INCONCLUSIVE", [], ["ISAPI EZVIZ: 401"]),
    ("row12-timeout", {"not_verified": [_nv("timed_out", "ISAPI online-upgrade server", "isapi:onlineUpgrade")]}, ClosedSeg, [], [],
     "INCONCLUSIVE", [], ["online-upgrade server: timed out"]),
    ("row12-api-stopped", {"not_verified": [Reason("api_time_limit", {"api": "isapi", "port": 80})]}, ClosedSeg, [], [], "INCONCLUSIVE",
     [], ["isapi: stopped"]),
    ("row12-dahua-unknown", {"cloud": {"dahua_p2p": {"enabled": True, "registered": None,
                                                     "note": "no verified API"}}}, ClosedSeg, [], [],
     "INCONCLUSIVE", [], ["dahua_p2p: the device's registration status was not verified"]),
    ("row12-not-read", None, ClosedSeg, [], [], "INCONCLUSIVE", [], ["device settings"]),
    ("row12-gateway-unread", {"gateway": None}, ClosedSeg, [], [], "INCONCLUSIVE", [], ["placement"]),
    # a 404 is "not present" (egress.md 2.3), shown as such, not a gap
    ("absent-404", {"not_verified": [_nv("not_found", "ISAPI Ehome", "isapi:Ehome")]}, ClosedSeg, [], [], "CLOSED",
     ["not present on this device"], []),
    # placement: another gateway -> the segment's verdict does not carry to the device either way
    ("placement-closed", {"gateway": ["10.99.0.1"]}, ClosedSeg, [], [], "INCONCLUSIVE", [], ["placement"]),
    ("placement-open", {"gateway": ["10.99.0.1"]}, OpenSeg, [], [], "INCONCLUSIVE", [],
     ["segment's OPEN result was not shown"]),
    ("same-gateway-open", {}, OpenSeg, [], [], "OPEN", ["its segment is OPEN"], []),
    # a device without a gateway does not inherit an OPEN seen through the sensor's gateway
    ("no-gateway-open", {"gateway": []}, OpenSeg, [], [], "INCONCLUSIVE", [], ["reports no default gateway"]),
]


@pytest.mark.parametrize(("name", "settings", "segment", "flows", "lookups", "verdict", "qualifiers", "missing"),
                         DEVICE_TABLE, ids=[row[0] for row in DEVICE_TABLE])
def test_decision_table_device(name: str, settings: dict[str, Any] | None, segment: str | None, flows: list[Flow],
                               lookups: list[DnsLookup], verdict: str, qualifiers: list[str],
                               missing: list[str]) -> None:
    s = None if settings is None else _settings(**settings)
    capture = _capture(flows, lookups) if flows or lookups else None
    v = device_verdict(s, _segment(segment) if segment else None, capture, address="10.20.0.5")
    assert v.verdict == verdict, (name, v.missing_text, v.qualifier_text)
    for word in qualifiers:
        assert any(word in q for q in v.qualifier_text), (name, word, v.qualifier_text)
    for word in missing:
        assert any(word in m for m in v.missing_text), (name, word, v.missing_text)
    if v.egress == CLOSED:
        assert v.missing_text == [] and any("no egress observed on" in q for q in v.qualifier_text)
    elif v.egress == INCONCLUSIVE:
        assert v.missing_text, name
    else:
        assert v.missing_text == []


def test_config_only_risks_never_decide() -> None:
    """Every internet-oriented setting at once, with no network evidence: neither OPEN nor CLOSED."""
    s = _settings(dns=["8.8.8.8", "114.114.114.114"], ntp=["pool.ntp.org"], gateway=["10.20.0.1"],
                  cloud={"hik_connect": {"enabled": True, "registered": False},
                         "dahua_p2p": {"enabled": True, "registered": False},
                         "ddns": {"enabled": True}, "upnp": {"enabled": True}},
                  upnp_mappings=[{"kind": "configured", "Enable": True, "ExternalPort": 80}])
    v = device_verdict(s, None, None)
    assert v.egress == INCONCLUSIVE and not v.exposed
    assert any("no IGD seen" in q for q in v.qualifier_text)


def test_a_device_without_readable_registration_says_what_its_verdict_rests_on() -> None:
    v = device_verdict(_settings(), _closed_segment(), None)  # type: ignore[arg-type]
    assert v.verdict == "CLOSED"
    assert any("no cloud-registration status" in q for q in v.qualifier_text)
    known = device_verdict(_settings(cloud={"hik_connect": {"enabled": False, "registered": False}}),
                           _closed_segment(), None)  # type: ignore[arg-type]
    assert not any("no cloud-registration status" in q for q in known.qualifier_text)


# -- the roll-up ----------------------------------------------------------------------------------


def test_rollup_table() -> None:
    seg = _closed_segment()
    closed = device_verdict(_settings(), seg, None)  # type: ignore[arg-type]
    exposed = device_verdict(_settings(address="10.20.0.8", upnp_mappings=[
        {"kind": "status", "externalPort": "1", "externalIPAddress": "198.51.100.7", "status": "active"}]),
        seg, None, address="10.20.0.8")  # type: ignore[arg-type]
    opened = device_verdict(_settings(cloud={"online_upgrade": {"registered": True}}), seg, None,
                            address="10.20.0.6")  # type: ignore[arg-type]
    unknown = device_verdict(None, seg, None, address="10.20.0.7")  # type: ignore[arg-type]
    # OPEN if any device or path is OPEN; the OPEN one is named
    r = rollup("s", seg, [closed, unknown, opened])  # type: ignore[arg-type]
    assert r.verdict == "OPEN" and r.missing_text == [] and any("10.20.0.6" in q for q in r.qualifier_text)
    # EXPOSED is reported separately, beside CLOSED and beside OPEN
    r = rollup("s", seg, [closed, exposed])  # type: ignore[arg-type]
    assert (r.verdict, r.egress, r.exposed) == ("EXPOSED", "CLOSED", True)
    r = rollup("s", seg, [opened, exposed])  # type: ignore[arg-type]
    assert (r.verdict, r.exposed) == ("OPEN", True)
    # CLOSED only when the active check and every device are CLOSED, stated with the check's qualifiers
    r = rollup("s", seg, [closed])  # type: ignore[arg-type]
    assert r.verdict == "CLOSED" and any("no egress observed on" in q for q in r.qualifier_text)
    # otherwise INCONCLUSIVE, with the gaps of each device, and what the sensor did show
    r = rollup("s", seg, [closed, unknown])  # type: ignore[arg-type]
    assert r.verdict == "INCONCLUSIVE"
    assert any(m.startswith("device 10.20.0.7: device settings") for m in r.missing_text)
    assert any("sensor's own check is CLOSED" in q for q in r.qualifier_text)
    assert any("1 of 2 device(s) CLOSED" in q for q in r.qualifier_text)
    # no devices at all is no roll-up; no active check neither
    r = rollup("s", seg, [])  # type: ignore[arg-type]
    assert r.verdict == "INCONCLUSIVE" and any("no device of the segment was assessed" in m for m in r.missing_text)
    r = rollup("s", None, [closed])
    assert r.verdict == "INCONCLUSIVE" and "an active egress check from the segment" in r.missing_text


# -- the listener's address class (camaudit.scope's table decides, never ipaddress.is_private) -----
#
# Each case: the listener address(es), the evidence (silent paths with a passing control, or one
# listener-confirmed path), the verdict, and the qualifier code it must carry (None: none).

LISTENER_TABLE: list[tuple[str, tuple[str, ...], str, str, str | None]] = [
    ("internet-closed", ("8.8.4.4",), "silent", CLOSED, None),
    ("internet-open", ("8.8.4.4",), "answered", OPEN, None),
    ("internet-v6-closed", ("2a00:1450::1",), "silent", CLOSED, None),
    # loopback: the sensor talking to itself proves nothing of the internet
    ("loopback-closed", ("127.0.0.1",), "silent", INCONCLUSIVE, "listener_not_internet"),
    ("loopback-open", ("127.0.0.1",), "answered", OPEN, "listener_not_internet"),
    ("loopback-v6", ("::1",), "silent", INCONCLUSIVE, "listener_not_internet"),
    # private, unique-local, link-local, CGNAT: inside somebody's network, not the internet
    ("rfc1918-closed", ("10.99.0.5",), "silent", INCONCLUSIVE, "listener_not_internet"),
    ("rfc1918-open", ("192.168.1.5",), "answered", OPEN, "listener_not_internet"),
    ("ula-closed", ("fd00::5",), "silent", INCONCLUSIVE, "listener_not_internet"),
    ("link-local", ("169.254.1.1",), "silent", INCONCLUSIVE, "listener_not_internet"),
    ("cgnat-closed", ("100.64.1.1",), "silent", INCONCLUSIVE, "listener_not_internet"),
    # one of two listeners private: its silence proves nothing, so never CLOSED
    ("mixed-closed", ("8.8.4.4", "10.99.0.5"), "silent", INCONCLUSIVE, "listener_not_internet"),
    # documentation ranges: a lab's "internet" (the netns lab uses 198.51.100.10, 2001:db8:5100::10)
    ("test-net-closed", ("198.51.100.10",), "silent", CLOSED, "listener_test_range"),
    ("test-net-open", ("203.0.113.7",), "answered", OPEN, "listener_test_range"),
    ("test-net-v6", ("2001:db8:5100::10",), "silent", CLOSED, "listener_test_range"),
    # IPv4 embedded in IPv6 follows the IPv4 address
    ("mapped-private", ("::ffff:10.1.2.3",), "silent", INCONCLUSIVE, "listener_not_internet"),
]


@pytest.mark.parametrize(("name", "listeners", "evidence", "verdict", "qualifier"), LISTENER_TABLE,
                         ids=[row[0] for row in LISTENER_TABLE])
def test_listener_address_class(name: str, listeners: tuple[str, ...], evidence: str, verdict: str,
                                qualifier: str | None) -> None:
    paths = list(SILENT) if evidence == "silent" else [_p("tcp/443", "allowed", "echo"), *SILENT[1:]]
    run = _run(paths, listeners=listeners)
    control = _run([_p("tcp/443", "allowed", "echo"), _p("udp/8800", "allowed", "echo"),
                    _p("dns/resolver", "allowed", "echo")], control=True, minutes=5, run_id="ctl",
                   listeners=listeners)
    v = active_verdict(run, select_controls(run, [control]))
    assert v.verdict == verdict, (name, v.missing_text, v.qualifier_text)
    codes = [q.code for q in v.qualifiers]
    if qualifier is None:
        assert not {"listener_not_internet", "listener_test_range"} & set(codes), codes
    else:
        assert qualifier in codes, (name, codes)
    if verdict == INCONCLUSIVE:
        assert v.missing[0].code == "listener_not_internet_gap", "said first: the devices quote the first gaps"
        assert "not on the internet" in v.missing_text[0]
    if v.egress == OPEN:
        assert codes[0] == "egress_observed", "the verdict's own statement stays first"


def _full_control(listener: str) -> ActiveResult:
    return _run([_p("tcp/443", "allowed", "echo"), _p("udp/8800", "allowed", "echo"),
                 _p("dns/resolver", "allowed", "echo")], control=True, minutes=5, run_id="c", listeners=(listener,))


def test_the_listener_qualifier_reaches_the_device_and_the_rollup() -> None:
    """A lab's CLOSED device carries the test-range qualifier of its segment's check; a private
    listener's INCONCLUSIVE segment says why in the device's gaps."""
    lab = active_verdict(_run(list(SILENT), listeners=("198.51.100.10",)), [_full_control("198.51.100.10")])
    device = device_verdict(_settings(), lab, None)  # type: ignore[arg-type]
    assert device.verdict == CLOSED and "listener_test_range" in [q.code for q in device.qualifiers]
    assert "listener_test_range" in [q.code for q in rollup("s", lab, [device]).qualifiers]
    private = active_verdict(_run(list(SILENT), listeners=("10.9.9.9",)), [_full_control("10.9.9.9")])
    inside = device_verdict(_settings(), private, None)  # type: ignore[arg-type]
    assert inside.verdict == INCONCLUSIVE and any("not on the internet" in m for m in inside.missing_text)
