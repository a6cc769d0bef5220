"""The pure verdict logic against reference/egress.md section 1.4 (decision table) and 7.3."""

from __future__ import annotations

import datetime as dt

from camaudit.egress.results import ActiveResult, DnsLookup, Flow, ListenerEntry, PassiveResult, PathResult
from camaudit.egress.verdict import (
    active_verdict,
    apply_listener_log,
    control_passed,
    device_verdict,
    rollup,
    select_controls,
)
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
    assert v.verdict == "OPEN" and v.egress == "OPEN" and v.missing == []
    assert "udp/8800" in v.qualifiers[0]


def test_silence_with_a_passing_control_is_closed_with_qualifiers() -> None:
    run = _run(list(SILENT))
    controls = select_controls(run, [_control()])
    v = active_verdict(run, controls)
    assert v.verdict == "CLOSED", v.missing
    assert any("positive control" in q for q in v.qualifiers)
    assert any("placement" in q for q in v.qualifiers)
    assert any(run.started_at in q for q in v.qualifiers)  # the window is stated


def test_silence_without_a_control_is_inconclusive() -> None:
    v = active_verdict(_run(list(SILENT)))
    assert v.verdict == "INCONCLUSIVE"
    assert any("positive control" in m for m in v.missing)


def test_a_control_that_never_reached_the_listener_does_not_count() -> None:
    failed = _control(ok=False)
    assert not control_passed(failed)  # a kernel's echo reply does not prove the listener was up
    v = active_verdict(_run(list(SILENT)), select_controls(_run(list(SILENT)), [failed]))
    assert v.verdict == "INCONCLUSIVE"
    assert any("never got an answer" in m for m in v.missing)


def test_a_path_the_control_could_not_reach_stays_uncontrolled() -> None:
    ctl = _run([_p("tcp/443", "allowed", "echo"), _p("udp/8800", "blocked", "timeout"),
                _p("dns/resolver", "allowed", "echo")], control=True, minutes=1, run_id="c")
    v = active_verdict(_run(list(SILENT)), [ctl])
    assert v.verdict == "INCONCLUSIVE"
    assert any("udp/8800" in m and "did not reach" in m for m in v.missing)


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
    assert any("no positive control was needed" in q for q in v.qualifiers)


def test_an_unknown_or_untested_planned_path_makes_it_inconclusive() -> None:
    run = _run(list(SILENT) + [_p("icmp", "unknown", "error")])
    run.planned.append("ntp")
    v = active_verdict(run, [_control()])
    assert v.verdict == "INCONCLUSIVE"
    assert any(m.startswith("ntp: planned but not tested") for m in v.missing)
    assert any(m.startswith("icmp:") for m in v.missing)


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
    assert any("one-way" in q for q in v.qualifiers)


# -- devices ------------------------------------------------------------------------------------


def _closed_segment() -> object:
    return active_verdict(_run(list(SILENT)), [_control()])


def _settings(**kw: object) -> DeviceSettings:
    s = DeviceSettings(address="10.20.0.5", gateway=["10.20.0.1"], dns=["10.20.0.1"], ntp=["10.20.0.1"])
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_device_reporting_registration_is_open_even_on_a_closed_segment() -> None:
    s = _settings(cloud={"hik_connect": {"enabled": True, "registered": True, "servers": ["dev.hik-connect.com"],
                                         "source": "isapi /ISAPI/System/Network/EZVIZ"}})
    v = device_verdict(s, _closed_segment(), None)  # type: ignore[arg-type]
    assert v.verdict == "OPEN" and "hik_connect" in v.qualifiers[0]


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
    unverified = _settings(not_verified=["ISAPI EZVIZ: 401 unauthorised"])
    v = device_verdict(unverified, seg, None)  # type: ignore[arg-type]
    assert v.verdict == "INCONCLUSIVE" and any("EZVIZ" in m for m in v.missing)
    absent = _settings(not_verified=["ISAPI Ehome: 404 not found"])
    assert device_verdict(absent, seg, None).verdict == "CLOSED"  # type: ignore[arg-type]
    elsewhere = device_verdict(_settings(gateway=["10.99.0.1"]), seg, None)  # type: ignore[arg-type]
    assert elsewhere.verdict == "INCONCLUSIVE" and any("placement" in m for m in elsewhere.missing)
    p2p = _settings(cloud={"dahua_p2p": {"enabled": True, "registered": None, "note": "no verified API"}})
    assert device_verdict(p2p, seg, None).verdict == "INCONCLUSIVE"  # type: ignore[arg-type]


def test_config_alone_never_decides() -> None:
    s = _settings(dns=["8.8.8.8"], ntp=["pool.ntp.org"],
                  cloud={"hik_connect": {"enabled": True, "registered": False}})
    v = device_verdict(s, None, None)
    assert v.verdict == "INCONCLUSIVE"
    assert any("8.8.8.8" in q for q in v.qualifiers) and any("enabled but reports no registration" in q
                                                                for q in v.qualifiers)


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
    assert v.verdict == "CLOSED" and any("unanswered egress attempt" in q for q in v.qualifiers)
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
    assert r.verdict == "INCONCLUSIVE" and any("10.20.0.7" in m for m in r.missing)
    assert rollup("s", None, [closed]).verdict == "INCONCLUSIVE"
