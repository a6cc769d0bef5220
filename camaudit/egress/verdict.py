"""The verdict logic: evidence in, OPEN / EXPOSED / CLOSED / INCONCLUSIVE out. Pure: no I/O.

Implements reference/egress.md section 1.4 (the decision table), 1.3 (controls) and 7.3 (verdict
logic), per path, per device and per segment (DESIGN.md section 5, a contract):

* OPEN needs one conclusive positive: a probe answered or logged by the listener with its nonce,
  a device reporting its own cloud registration, an established flow to an external address.
* EXPOSED is the inbound axis (a UPnP IGD or NAT-PMP/PCP responder on the segment, an active port
  mapping); it is the verdict when egress is not OPEN, and ``exposed: true`` beside OPEN.
* CLOSED needs every planned path tested and blocked, each silence backed by a positive control
  that reached the listener on that path, no device reporting registration, no established
  external flow; it is always stated with its qualifiers (paths, vantage, window).
* Everything else is INCONCLUSIVE, with what is missing. Configuration alone never decides.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..scope import AddressClass, classify
from .results import (
    ALLOWED,
    BLOCKED,
    CLOSED,
    EXPOSED,
    INCONCLUSIVE,
    OPEN,
    UNKNOWN,
    ActiveResult,
    ListenerEntry,
    PassiveResult,
    PathResult,
    Reason,
    Verdict,
    is_inbound,
)

DEFAULT_CONTROL_WINDOW_S = 3600.0
EGRESS_WORDS = (OPEN, CLOSED, INCONCLUSIVE)
_ANSWER_BASES = ("echo", "listener-log")
#: The reads (``read`` of a not-verified reason, see camaudit.probes) that the registration
#: question needs: the cloud, online-upgrade and UPnP endpoints, and the identity read that
#: gates them (ISAPI deviceInfo; ONVIF GetDeviceInformation as 0.1 counted it).
REGISTRATION_READS = frozenset({
    "isapi:deviceInfo", "isapi:EZVIZ", "isapi:Ehome", "isapi:onlineUpgrade", "isapi:UPnP", "isapi:UPnPStatus",
    "dahua:T2UServer", "dahua:VSP_PaaS", "dahua:UPnP", "onvif:GetDeviceInformation",
})
#: Not-verified reasons that stand for a whole vendor API, or every read, left unread: the
#: registration question was not asked at all.
WHOLE_API_UNREAD = frozenset({"api_time_limit", "vendor_api_not_tried", "no_http_port"})
#: Not-verified reasons that say the feature is not there (a 404, or Dahua's "Error" for a
#: missing table): "not present", which is not "disabled" (egress.md 2.3) and not a gap.
ABSENT_CODES = frozenset({"not_found", "table_absent"})
#: Qualifiers that carry an exposure, which a device does not inherit from its segment's wording.
EXPOSED_CODES = frozenset({"exposed", "exposed_inbound", "exposed_subjects"})


def registration_read(reason: Reason) -> bool:
    """Whether a not-verified reason concerns a read the registration question needs. A 0.1
    sentence (no code) cannot be shown not to, so it counts: it keeps a device from CLOSED."""
    if reason.code in WHOLE_API_UNREAD or reason.code == "legacy_text":
        return True
    return reason.get("read") in REGISTRATION_READS


def read_absent(reason: Reason) -> bool:
    """Whether a not-verified reason says the read's feature is absent from this firmware."""
    return reason.code in ABSENT_CODES


def _parse_time(text: str) -> _dt.datetime | None:
    try:
        when = _dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.UTC)


# -- joining the listener's log ------------------------------------------------------------------


def apply_listener_log(run: ActiveResult, entries: Iterable[ListenerEntry]) -> ActiveResult:
    """Mark every path whose nonce the listener logged as allowed (one-way egress proven: the
    probe arrived even if its answer was blocked). Returns ``run`` changed in place."""
    seen: dict[str, ListenerEntry] = {}
    for entry in entries:
        seen.setdefault(entry.nonce.lower(), entry)
    for i, p in enumerate(run.paths):
        if p.nonce is None or p.result == ALLOWED:
            continue
        found = seen.get(p.nonce.lower())
        if found is None:
            continue
        entry = found
        run.paths[i] = PathResult(
            path=p.path, result=ALLOWED, basis="listener-log", nonce=p.nonce, proto=p.proto, dst=p.dst,
            port=p.port, sent=p.sent, received=p.received, started_at=p.started_at, ended_at=p.ended_at,
            detail=(f"the listener logged this nonce from {entry.src} at {entry.at} ({entry.kind or entry.proto}); "
                    f"the probe itself saw: {p.basis}" + (f" ({p.detail})" if p.detail else "")),
            extra={**p.extra, "listener_log": {"src": entry.src, "at": entry.at, "kind": entry.kind,
                                               "port": entry.port, "dst": entry.dst}},
        )
    return run


# -- controls ----------------------------------------------------------------------------------


def control_passed(control: ActiveResult) -> bool:
    """A control passes when the listener itself answered (or logged) at least one probe: that
    proves it was up and reachable. A kernel's ICMP echo reply alone does not."""
    return control.control and any(
        p.result == ALLOWED and p.basis in _ANSWER_BASES and p.path != "icmp" and not p.path.endswith("/icmp")
        for p in control.paths
    )


def select_controls(run: ActiveResult, candidates: Iterable[ActiveResult],
                    window_s: float = DEFAULT_CONTROL_WINDOW_S) -> list[ActiveResult]:
    """The control runs that speak for ``run``: same listener, started within ``window_s``."""
    start = _parse_time(run.started_at)
    chosen = []
    for c in candidates:
        if not c.control or c.run_id == run.run_id or not set(c.listeners) & set(run.listeners):
            continue
        when = _parse_time(c.started_at)
        if start is None or when is None or abs((when - start).total_seconds()) > window_s:
            continue
        chosen.append(c)
    return chosen


def _vantage(vantage: dict[str, Any]) -> Reason:
    params = {"host": vantage.get("hostname") or "this sensor",
              "addresses": ", ".join(vantage.get("addresses") or []) or "unknown address"}
    if vantage.get("gateway"):
        return Reason("vantage", {**params, "gateway": vantage["gateway"]})
    return Reason("vantage_no_gateway", params)


# -- the listener's address class ------------------------------------------------------------------

#: Address classes (camaudit.scope) of a listener that is not on the internet: reaching it, or
#: not, says nothing about internet egress.
NOT_INTERNET = frozenset({AddressClass.LOCAL, AddressClass.INTERNAL, AddressClass.AMBIGUOUS})


def listener_classes(listeners: Iterable[str]) -> list[tuple[str, AddressClass, str]]:
    """(address, class, why) of each listener address, by camaudit's own table (scope.py); a
    name that is not an address literal is left out (its address was not recorded)."""
    found = []
    for text in listeners:
        try:
            ip = ipaddress.ip_address(str(text).strip().strip("[]"))
        except ValueError:
            continue
        c = classify(ip)
        found.append((str(ip), c.cls, c.reason))
    return found


def listener_reasons(listeners: Iterable[str]) -> tuple[list[Reason], Reason | None]:
    """What a run's listener addresses mean for its verdict: (qualifiers, a gap or None).

    A listener on a loopback, private, link-local or CGNAT address is not on the internet: a path
    that reaches it proves the traffic left the sensor, not that it reaches the internet (the
    verdict keeps its OPEN, qualified ``listener_not_internet``), and silence towards it proves
    nothing about the internet, so it can never make CLOSED (the gap is returned). A listener in a
    documentation range (RFC 5737, RFC 3849) is a lab's or test network's "internet": the verdict
    stands for that network, qualified ``listener_test_range``, so a lab run shows what it shows."""
    classes = listener_classes(listeners)
    not_internet = [(a, why) for a, cls, why in classes if cls in NOT_INTERNET]
    test_range = [(a, why) for a, cls, why in classes if cls is AddressClass.ANOMALY]
    qualifiers: list[Reason] = []
    gap: Reason | None = None
    if not_internet:
        listed = ", ".join(f"{a} ({why})" for a, why in not_internet)
        qualifiers.append(Reason("listener_not_internet", {"listeners": listed}))
        gap = Reason("listener_not_internet_gap", {"listeners": listed})
    if test_range:
        qualifiers.append(Reason("listener_test_range", {"listeners": ", ".join(f"{a} ({why})" for a, why in test_range)}))
    return qualifiers, gap


# -- the active check (segment) ------------------------------------------------------------------


def active_verdict(run: ActiveResult, controls: Sequence[ActiveResult] = (), *,
                   window_s: float = DEFAULT_CONTROL_WINDOW_S, subject: str | None = None) -> Verdict:
    """The verdict of one check run from inside a segment, given the control runs that were
    selected for it (:func:`select_controls`). A control run itself gets a verdict too (its
    vantage is not the segment's; its qualifiers say so)."""
    egress_paths = [p for p in run.paths if not is_inbound(p.path)]
    inbound = [p for p in run.paths if is_inbound(p.path)]
    allowed = [p for p in egress_paths if p.result == ALLOWED]
    exposed_by = [p for p in inbound if p.result == ALLOWED]
    passing = [c for c in controls if control_passed(c)]
    controlled = {p.path for c in passing for p in c.paths if p.result == ALLOWED}

    missing: list[Reason] = []
    tested = {p.path for p in run.paths}
    for name in run.planned:
        if name not in tested:
            missing.append(Reason("planned_not_tested", {"path": name}))
    uncontrolled: list[str] = []
    for p in run.paths:
        if p.result == UNKNOWN:
            missing.append(Reason("path_unknown", {"path": p.path, "detail": p.detail or p.basis}))
        elif p.result == BLOCKED and not p.conclusive and p.path not in controlled:
            uncontrolled.append(p.path)
    if uncontrolled and not run.control:
        if not passing:
            failed = [c.run_id for c in controls]
            why = (Reason("controls_never_answered", {"runs": ", ".join(failed)}) if failed
                   else Reason("no_control_in_window", {"minutes": window_s / 60}))
            missing.append(Reason("control_missing", {"why": why, "paths": _brief(uncontrolled)}))
        else:
            missing.append(Reason("control_not_reaching", {"paths": _brief(uncontrolled)}))
    elif uncontrolled and run.control and not allowed:
        missing.append(Reason("control_run_unanswered"))

    # A path that does not exist from here (no proxy, no router advertisement) was not tested:
    # silence on it says nothing, and a run with nothing else cannot be CLOSED (egress.md 1.4 row 9).
    tested_blocked = [p.path for p in egress_paths if p.result == BLOCKED and p.basis != "absent"]
    if not allowed and not tested_blocked:
        missing.append(Reason("no_path_tested"))
    listener_qualifiers, listener_gap = listener_reasons(run.listeners)
    if listener_gap is not None and not allowed:
        missing.insert(0, listener_gap)  # first: the segment's devices quote the first gaps
    qualifiers: list[Reason] = []
    window = {"start": run.started_at, "end": run.finished_at}
    vantage = _vantage(run.vantage)
    if run.control:
        qualifiers.append(Reason("control_vantage", {"vantage": vantage}))
    if allowed:
        egress = OPEN
        via = ", ".join(p.path for p in allowed)
        qualifiers.append(Reason("egress_observed", {"paths": via, "vantage": vantage, **window}))
        if any(p.path == "dns/resolver" for p in allowed):
            qualifiers.append(Reason("open_through_dns"))
        if any(p.path.startswith("ipv6/") for p in allowed):
            qualifiers.append(Reason("open_through_ipv6"))
        if all(p.basis == "listener-log" for p in allowed):
            qualifiers.append(Reason("one_way_egress"))
    elif not missing:
        egress = CLOSED
        qualifiers.append(Reason("no_egress_observed", {"count": len(tested_blocked),
                                                        "paths": _brief(tested_blocked, 40), "vantage": vantage,
                                                        **window}))
        if passing:
            qualifiers.append(Reason("positive_control", {"runs": [
                Reason("control_run", {"run": c.run_id, "vantage": _vantage(c.vantage), "at": c.started_at,
                                       "count": sum(1 for p in c.paths if p.result == ALLOWED)})
                for c in passing]}))
        else:
            qualifiers.append(Reason("no_control_needed"))
        absent = [f"{p.path} ({p.detail})" for p in egress_paths if p.basis == "absent"]
        if absent:
            qualifiers.append(Reason("absent_from_vantage", {"paths": "; ".join(absent)}))
        qualifiers.append(Reason("placement_scope"))
    else:
        egress = INCONCLUSIVE
    # Said of every verdict, OPEN and CLOSED included: never a bare word for a listener that
    # is not on the internet, or that stands for a test network's internet.
    at = 1 if qualifiers else 0  # after the verdict's own statement (roll-ups quote the first)
    qualifiers[at:at] = listener_qualifiers
    exposed = bool(exposed_by)
    if exposed:
        qualifiers.append(Reason("exposed_inbound", {"paths": "; ".join(
            f"{p.path} ({p.detail})" if p.detail else p.path for p in exposed_by)}))
    verdict = OPEN if egress == OPEN else EXPOSED if exposed else egress
    return Verdict(
        subject_kind="segment",
        subject=subject or run.segment or "unknown segment",
        verdict=verdict,
        egress=egress,
        exposed=exposed,
        qualifiers=qualifiers,
        missing=missing if egress != OPEN else [],
        paths=[p.to_json() for p in run.paths],
        evidence=[{"kind": "active", "run_id": run.run_id, "control": run.control, "vantage": run.vantage,
                   "listeners": run.listeners, "started_at": run.started_at, "finished_at": run.finished_at,
                   "route": run.route, "notes": run.notes}]
        + [{"kind": "control", "run_id": c.run_id, "passed": control_passed(c), "vantage": c.vantage,
            "started_at": c.started_at, "allowed": [p.path for p in c.paths if p.result == ALLOWED]}
           for c in controls],
    )


def _run_evidence(active: Verdict) -> list[dict[str, Any]]:
    """The sensor's run and control entries of an active verdict's evidence."""
    return [e for e in active.evidence if isinstance(e, dict) and e.get("kind") in ("active", "control")]


def _brief(names: Sequence[str], limit: int = 12) -> str:
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


# -- devices ----------------------------------------------------------------------------------


def _internal_literal(server: str) -> bool:
    """True when ``server`` is an address literal that is not external (hostnames: False)."""
    host = server.strip().strip("[]")
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return classify(ip).cls is not AddressClass.EXTERNAL


def _registration(settings: Any, qualifiers: list[Reason], missing: list[Reason], evidence: list[dict[str, Any]]
                  ) -> tuple[list[str], bool]:
    """Cloud entries that report registration, and whether a cloud binding exposes the device."""
    registered: list[str] = []
    bound = False
    cloud = getattr(settings, "cloud", None) or {}
    for name, entry in sorted(cloud.items()):
        if not isinstance(entry, dict) or name in ("upnp", "ddns"):
            continue
        servers = [str(s) for s in entry.get("servers") or []]
        source = entry.get("source") or "device settings"
        state = entry.get("registered")
        if state is True:
            if servers and all(_internal_literal(s) for s in servers):
                qualifiers.append(Reason("registered_internal", {"service": name, "servers": ", ".join(servers)}))
                continue
            registered.append(name)
            evidence.append({"kind": "device_config", "setting": name, "registered": True,
                             "servers": servers, "source": source})
            if entry.get("bound") is True:
                bound = True
        elif state is None and entry.get("enabled") is not False:
            note = Reason.from_json(entry["note"]) if entry.get("note") else Reason("status_not_reported")
            missing.append(Reason("registration_unverified", {"service": name, "note": note, "source": source}))
        elif entry.get("enabled") is True:
            qualifiers.append(Reason("enabled_unregistered", {"service": name, "source": source}))
    return registered, bound


def _active_mappings(settings: Any) -> list[dict[str, Any]]:
    """Port-mapping status records that show a live mapping (egress.md 1.4 row 5)."""
    active = []
    for m in getattr(settings, "upnp_mappings", None) or []:
        if not isinstance(m, dict) or m.get("kind") != "status":
            continue
        values = {str(k).lower(): str(v).strip().lower() for k, v in m.items()}
        negative = any(v in ("false", "0", "invalid", "inactive", "failed", "fail", "disabled", "unmapped", "none")
                       for k, v in values.items() if "status" in k or k in ("enabled", "enable"))
        external = any(v and v not in ("0", "0.0.0.0", "") for k, v in values.items()
                       if "external" in k or "wan" in k or "outer" in k)
        if external and not negative:
            active.append(m)
    return active


def _configured_mappings(settings: Any) -> list[dict[str, Any]]:
    cloud = getattr(settings, "cloud", None) or {}
    if (cloud.get("upnp") or {}).get("enabled") is not True:
        return []
    return [m for m in getattr(settings, "upnp_mappings", None) or []
            if isinstance(m, dict) and m.get("kind") == "configured" and m.get("Enable") is not False]


def device_verdict(settings: Any, active: Verdict | None, passive: PassiveResult | None, *,
                   address: str | None = None, sensor_gateway: str | None = None) -> Verdict:
    """One device's verdict from its own settings (``DeviceSettings`` or None when not read),
    the segment's active verdict (from :func:`active_verdict`, or None) and a capture (or None).

    The device is OPEN when it reports a cloud registration, when a capture shows it in an
    established external flow, or when the segment it sits on is OPEN from a sensor that uses
    the same gateway. It is CLOSED only when the segment is CLOSED, the sensor's placement
    matches the device's gateway, the device's registration reads were all made and report
    nothing, and a capture (if given) shows no established external flow.
    """
    addr = address or getattr(settings, "address", None) or "unknown"
    qualifiers: list[Reason] = []
    missing: list[Reason] = []
    evidence: list[dict[str, Any]] = []
    opened: list[Reason] = []
    exposed_by: list[Reason] = []

    # -- the device's own word
    if settings is None:
        missing.append(Reason("settings_not_read"))
        gateways: list[str] | None = None
    else:
        registered, bound = _registration(settings, qualifiers, missing, evidence)
        gaps_before = len(missing)
        for name in registered:
            opened.append(Reason("registration_reported", {"service": name}))
        if bound:
            exposed_by.append(Reason("cloud_bound"))
        for reason in settings.not_verified:
            reason = Reason.from_json(reason)
            if not registration_read(reason):
                continue
            if read_absent(reason):
                # A 404 (or Dahua's "Error" for a missing table) means this firmware has no such
                # feature to register through: "not present", not "disabled" (egress.md 2.3).
                qualifiers.append(Reason("not_present", {"reason": reason}))
            else:
                missing.append(Reason("not_verified", {"reason": reason}))
        if len(missing) == gaps_before and not any(isinstance(e, dict) and k not in ("upnp", "ddns")
                                                   for k, e in (settings.cloud or {}).items()):
            qualifiers.append(Reason("no_registration_status"))
        live = _active_mappings(settings)
        if live:
            exposed_by.append(Reason("active_upnp_mappings", {"count": len(live)}))
            evidence.append({"kind": "device_config", "setting": "upnp_mappings", "active": live})
        gateways = settings.gateway
        if gateways is not None and not [g for g in gateways if g and g not in ("0.0.0.0", "::")]:
            qualifiers.append(Reason("no_default_gateway"))
        for server in (settings.dns or []):
            if not _internal_literal(server) and _is_literal(server):
                qualifiers.append(Reason("external_dns", {"server": server}))
        for server in (settings.ntp or []):
            if not _internal_literal(server):
                qualifiers.append(Reason("external_ntp", {"server": server}))

    # -- the segment's active check
    configured = _configured_mappings(settings) if settings is not None else []
    if active is None:
        missing.append(Reason("active_check_missing"))
    else:
        placement_ok, placement_note = _placement(gateways, sensor_gateway, active)
        no_gateway = gateways is not None and not [g for g in gateways if g and g not in ("0.0.0.0", "::")]
        igd_maps = _igd_mappings_for(active, addr)
        if igd_maps:
            exposed_by.append(Reason("igd_maps_device", {"count": len(igd_maps)}))
            evidence.append({"kind": "active", "path": "upnp", "mappings": igd_maps})
        elif active.exposed and configured:
            exposed_by.append(Reason("upnp_configured_igd"))
        if active.egress == OPEN:
            if placement_ok and not no_gateway:
                opened.append(Reason("segment_open_same", {"placement": placement_note}))
            elif placement_ok:
                # The sensor reached the listener through a gateway this device does not use:
                # that shows nothing about the device's own egress (egress.md 1.3, 1.4 row 10).
                missing.append(Reason("placement_open_no_gateway"))
            else:
                missing.append(Reason("placement_open_not_shown", {"placement": placement_note}))
        elif active.egress == CLOSED:
            if not placement_ok:
                missing.append(Reason("placement_gap", {"placement": placement_note}))
            else:
                # A device's CLOSED is stated with the segment check's own qualifiers: the
                # paths, the window, the vantage and the controls (DESIGN.md section 5).
                qualifiers.append(Reason("segment_closed", {"placement": placement_note}))
                qualifiers.extend(q for q in active.qualifiers if q.code not in EXPOSED_CODES)
        else:
            missing.append(Reason("segment_inconclusive", {"reasons": list(active.missing[:3])}))
        evidence.append({"kind": "segment", "subject": active.subject, "verdict": active.verdict,
                         "egress": active.egress})
        # The sensor's run and its controls, so the device's report names the listener, the
        # vantage and the control run it stands on.
        evidence.extend(_run_evidence(active))
    if configured and not exposed_by:
        qualifiers.append(Reason("upnp_configured_no_igd", {"count": len(configured)}))

    # -- the capture
    if passive is not None:
        mine = [f for f in passive.flows if f.device == addr]
        established = [f for f in mine if f.state == "established" and f.remote_class == "external"]
        odd = [f for f in mine if f.state == "established" and f.remote_class != "external"]
        attempted = [f for f in mine if f.state == "attempted"]
        if odd:
            qualifiers.append(Reason("capture_odd_flows", {
                "count": len(odd), "examples": ", ".join(f"{f.remote} ({f.remote_class})" for f in odd[:3])}))
        for f in established[:5]:
            opened.append(Reason("capture_established", {
                "proto": f.proto, "endpoint": f.remote + (f":{f.port}" if f.port else ""), "at": f.first_seen,
                "capture": passive.source}))
        if attempted:
            qualifiers.append(Reason("capture_attempts", {
                "count": len(attempted),
                "examples": ", ".join(f"{f.proto}/{f.port} to {f.remote}" for f in attempted[:3])}))
        lookups = [q for q in passive.lookups if q.device == addr]
        resolved = [q for q in lookups if q.external_answers]
        for q in resolved[:3]:
            # egress.md 1.4 row 3: a strong indicator of DNS recursion, not proof (a split-horizon
            # or cached zone gives the same answer); it stands against CLOSED (row 12).
            missing.append(Reason("capture_dns_conflict", {"resolver": q.resolver, "qname": q.qname,
                                                           "answers": ", ".join(q.external_answers[:3])}))
        if lookups:
            qualifiers.append(Reason("capture_lookups", {"names": ", ".join(sorted({q.qname for q in lookups})[:5])}))
        qualifiers.append(Reason("capture_window", {"capture": passive.source, "start": passive.start,
                                                    "end": passive.end}))
        evidence.append({"kind": "passive", "source": passive.source, "start": passive.start, "end": passive.end,
                         "flows": [f.to_json() for f in mine[:50]], "lookups": [q.to_json() for q in lookups[:50]]})

    if opened:
        egress = OPEN
        qualifiers = opened + qualifiers
    elif active is not None and active.egress == CLOSED and not missing:
        egress = CLOSED
    else:
        egress = INCONCLUSIVE
    exposed = bool(exposed_by)
    if exposed:
        qualifiers.append(Reason("exposed", {"reasons": exposed_by}))
    return Verdict(
        subject_kind="device", subject=addr,
        verdict=OPEN if egress == OPEN else EXPOSED if exposed else egress,
        egress=egress, exposed=exposed, qualifiers=qualifiers,
        missing=[] if egress == OPEN else missing,
        paths=list(active.paths) if active is not None else [], evidence=evidence,
    )


def _is_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


def _placement(gateways: list[str] | None, sensor_gateway: str | None, active: Verdict) -> tuple[bool, Reason]:
    """Whether the sensor's vantage stands for the device (egress.md 1.3 placement control)."""
    if sensor_gateway is None:
        for ev in active.evidence:
            if ev.get("kind") == "active":
                sensor_gateway = (ev.get("vantage") or {}).get("gateway")
                break
    if gateways is None:
        return False, Reason("placement_unread")
    real = [g for g in gateways if g and g not in ("0.0.0.0", "::")]
    if not real:
        return True, Reason("placement_no_gateway")
    if sensor_gateway and sensor_gateway in real:
        return True, Reason("placement_same_gateway", {"gateway": sensor_gateway})
    return False, Reason("placement_other_gateway", {"device_gateways": ", ".join(real),
                                                     "sensor_gateway": sensor_gateway or "none"})


def _igd_mappings_for(active: Verdict, address: str) -> list[dict[str, Any]]:
    for p in active.paths:
        if p.get("path") == "upnp" and p.get("result") == ALLOWED:
            maps = ((p.get("evidence") or {}).get("extra") or {}).get("mappings") or []
            return [m for m in maps if isinstance(m, dict) and m.get("internal_client") == address]
    return []


# -- the segment roll-up --------------------------------------------------------------------------


def rollup(subject: str, active: Verdict | None, devices: Sequence[Verdict]) -> Verdict:
    """Segment = OPEN if any device or path is OPEN; CLOSED only if the active check and every
    device are CLOSED; EXPOSED beside it when anything is exposed; else INCONCLUSIVE."""
    parts = ([active] if active is not None else []) + list(devices)
    qualifiers: list[Reason] = []
    missing: list[Reason] = []
    opened = [v for v in parts if v.egress == OPEN]
    exposed = [v for v in parts if v.exposed]
    if active is None:
        missing.append(Reason("rollup_no_active"))
    elif not devices:
        # Vacuously "every device CLOSED" is no roll-up: the sensor's placement was matched to
        # no camera (egress.md 1.3), so the segment's verdict stays the sensor's alone.
        missing.append(Reason("rollup_no_devices"))
    for v in parts:
        if v.egress != OPEN:
            missing.extend(m if v is active else Reason("device_gap", {"device": v.subject, "reason": m})
                           for m in v.missing)
    if opened:
        egress = OPEN
        qualifiers.extend(Reason("open_part", {"kind": v.subject_kind, "subject": v.subject,
                                               "reason": v.qualifiers[0] if v.qualifiers else Reason("egress_plain")})
                          for v in opened[:10])
    elif active is not None and devices and all(v.egress == CLOSED for v in parts):
        egress = CLOSED
        qualifiers.extend(active.qualifiers)
        qualifiers.append(Reason("rollup_all_closed", {"count": len(devices)}))
    else:
        egress = INCONCLUSIVE
        undecided = [v.subject for v in devices if v.egress == INCONCLUSIVE]
        if undecided:
            missing.append(Reason("rollup_inconclusive_devices", {"count": len(undecided),
                                                                  "devices": _brief(undecided)}))
        if active is not None:
            # What the sensor's check did show, so the reader sees more than the gaps.
            closed = sum(1 for v in devices if v.egress == CLOSED)
            qualifiers.append(Reason("sensor_check_with", {"verdict": active.egress, "reason": active.qualifiers[0]})
                              if active.qualifiers else Reason("sensor_check", {"verdict": active.egress}))
            qualifiers.append(Reason("rollup_closed_count", {"closed": closed, "total": len(devices)}))
    if exposed:
        qualifiers.append(Reason("exposed_subjects", {
            "subjects": ", ".join(f"{v.subject_kind} {v.subject}" for v in exposed[:10])}))
    return Verdict(
        subject_kind="segment", subject=subject,
        verdict=OPEN if egress == OPEN else EXPOSED if exposed else egress,
        egress=egress, exposed=bool(exposed), qualifiers=qualifiers,
        missing=[] if egress == OPEN else list(dict.fromkeys(missing)),
        paths=active.paths if active is not None else [],
        evidence=[{"kind": "rollup", "parts": [{"subject_kind": v.subject_kind, "subject": v.subject,
                                                "verdict": v.verdict, "egress": v.egress, "exposed": v.exposed}
                                               for v in parts]}]
        + (_run_evidence(active) if active is not None else []),
    )


# -- which verdict a device carries ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Carried:
    """The verdict one device carries in a scan, decided once (:func:`carried_verdict`)."""

    #: The egress verdict the device carries: its own, or its segment's; None when neither speaks.
    verdict: Verdict | None
    #: The verdict whose exposure the device carries (its own, or its segment's), or None.
    exposed: Verdict | None
    #: Where the verdict comes from (``source_*`` reasons); None when nothing was recorded.
    source: Reason | None
    #: The most specific segment the device sits in, or None.
    segment: Verdict | None


#: When several egress verdicts speak of one subject the most alarming wins; CLOSED never
#: outvotes doubt (egress.md section 1.4 roll-up rule).
_EGRESS_ORDER = {OPEN: 3, INCONCLUSIVE: 2, CLOSED: 1}


def worst(verdicts: Sequence[Verdict]) -> Verdict | None:
    """The most alarming egress verdict of several on one subject (None when none has one)."""
    judged = [v for v in verdicts if v.egress in EGRESS_WORDS]
    if not judged:
        return None
    words = {v.egress for v in judged}
    if words <= {CLOSED, INCONCLUSIVE} and INCONCLUSIVE in words:
        return next(v for v in judged if v.egress == INCONCLUSIVE)
    return max(judged, key=lambda v: _EGRESS_ORDER[v.egress])


def subject_verdict(verdicts: Sequence[Verdict]) -> Verdict | None:
    """Several verdicts on one subject (a scan's own, an egress run's, by address and by device
    id) as one: the worst egress verdict, EXPOSED beside it when any of them is exposed."""
    if not verdicts:
        return None
    chosen = worst(verdicts)
    exposed = next((v for v in verdicts if v.exposed), None)
    if chosen is None or exposed is None or chosen.exposed:
        return chosen or exposed
    return Verdict(
        subject_kind=chosen.subject_kind, subject=chosen.subject,
        verdict=chosen.verdict if chosen.egress == OPEN else EXPOSED, egress=chosen.egress, exposed=True,
        qualifiers=[*chosen.qualifiers, *(q for q in exposed.qualifiers if q not in chosen.qualifiers)],
        missing=list(chosen.missing), paths=list(chosen.paths), evidence=[*chosen.evidence, *exposed.evidence],
        decided_at=max(chosen.decided_at, exposed.decided_at),
    )  # fmt: skip


def judged_per_device(verdict: Verdict) -> bool:
    """True for a segment verdict written by camaudit's egress verification (a roll-up of
    per-device verdicts, or a sensor's check), which judges each device on its own verdict;
    False for one written by hand or by another tool about the segment as a whole."""
    return any(isinstance(e, dict) and e.get("kind") in ("rollup", "active") for e in verdict.evidence)


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def segments_of(address: str, segments: Sequence[Verdict], declared_segment: str | None = None) -> list[Verdict]:
    """The segment verdicts a device sits in, most specific first: CIDR segments by address,
    named segments by the segment the register declares for it."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    nets = [(s, _network(s.subject)) for s in segments]
    inside = [(s, n) for s, n in nets if n is not None and ip is not None and ip.version == n.version and ip in n]
    inside.sort(key=lambda sn: -sn[1].prefixlen if sn[1] is not None else 0)
    found = [s for s, _ in inside]
    if declared_segment:
        found += [s for s, n in nets if n is None and s.subject.lower() == declared_segment.lower()]
    return found


def carried_verdict(device_verdict: Verdict | None, segment_verdicts: Sequence[Verdict], device_address: str, *,
                    declared_segment: str | None = None) -> Carried:
    """Which verdict a device carries: its own evidence first, then its segment's.

    A verdict whose ``egress`` is not an egress word (a subject with only an EXPOSED record)
    speaks for exposure only. The device's own verdict was decided from the segment check *and*
    the device's placement (its gateway against the sensor's), its own settings and any capture,
    so a segment OPEN seen from a sensor in another policy group does not make every device
    OPEN (egress.md 1.3, placement control). A device with no verdict of its own takes its
    segment's, unless that segment verdict is camaudit's own roll-up (or a sensor's check alone):
    it speaks for the devices that were judged, and this one was not; an OPEN segment because
    another camera reports its cloud registration says nothing of this one. Exposure follows the
    same rule: a device with records of its own carries only its own exposure.
    """
    inside = segments_of(device_address, segment_verdicts, declared_segment)
    segment = inside[0] if inside else None
    own = device_verdict if device_verdict is not None and device_verdict.egress in EGRESS_WORDS else None
    chosen: Verdict | None = None
    source: Reason | None = None
    if own is not None:
        chosen, source = own, Reason("source_device")
    elif segment is not None and segment.egress in EGRESS_WORDS:
        if judged_per_device(segment):
            source = Reason("source_not_judged", {"segment": segment.subject, "verdict": segment.egress})
        else:
            chosen, source = segment, Reason("source_segment", {"segment": segment.subject})
    if device_verdict is not None:
        exposed = device_verdict if device_verdict.exposed else None
    else:
        exposed = segment if segment is not None and segment.exposed and not judged_per_device(segment) else None
    return Carried(chosen, exposed, source, segment)


def effective_verdict(device_verdict: Verdict | None, segment_verdicts: Sequence[Verdict], device_address: str, *,
                      declared_segment: str | None = None) -> Verdict | None:
    """The egress verdict a device carries (:func:`carried_verdict`), or None."""
    return carried_verdict(device_verdict, segment_verdicts, device_address,
                           declared_segment=declared_segment).verdict
