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
import re
from collections.abc import Iterable, Sequence
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
    Verdict,
    is_inbound,
)

DEFAULT_CONTROL_WINDOW_S = 3600.0
_ABSENT_RE = re.compile(r"404 not found|table not present", re.IGNORECASE)
_ANSWER_BASES = ("echo", "listener-log")
#: Words that, in a device's not-verified list, name a read the registration question needs.
_REGISTRATION_READS = ("ezviz", "ehome", "online-upgrade", "onlineupgrade", "t2userver", "vsp_paas",
                       "upnp", "uplink", "p2p", "sip", "deviceinfo", "vendor api", "no open http port")


def _registration_read(message: str) -> bool:
    """Whether a not-verified line names a read the registration question needs: one of the
    registration endpoints, or a whole vendor API that stopped (``isapi: stopped (time limit)``)."""
    text = message.lower()
    if text.startswith(("isapi:", "dahua:")):
        return True
    return any(word in text.replace(" ", "") or word in text for word in _REGISTRATION_READS)


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


def _vantage_text(vantage: dict[str, Any]) -> str:
    addrs = ", ".join(vantage.get("addresses") or []) or "unknown address"
    gw = vantage.get("gateway") or "no default gateway"
    host = vantage.get("hostname") or "this sensor"
    return f"{host} ({addrs}; gateway {gw})"


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

    missing: list[str] = []
    tested = {p.path for p in run.paths}
    for name in run.planned:
        if name not in tested:
            missing.append(f"{name}: planned but not tested")
    uncontrolled: list[str] = []
    for p in run.paths:
        if p.result == UNKNOWN:
            missing.append(f"{p.path}: {p.detail or p.basis}")
        elif p.result == BLOCKED and not p.conclusive and p.path not in controlled:
            uncontrolled.append(p.path)
    if uncontrolled and not run.control:
        if not passing:
            failed = [c.run_id for c in controls]
            why = (f"the control run(s) {', '.join(failed)} never got an answer from the listener"
                   if failed else f"no control run within {window_s / 60:g} minutes against the same listener")
            missing.append(
                "a positive control (`egress check --control` from a vantage with egress, same listener): "
                f"{why}; without it the silence on {_brief(uncontrolled)} may mean the listener was down"
            )
        else:
            missing.append(
                f"a positive control for {_brief(uncontrolled)}: the control run(s) did not reach the listener "
                "on these paths either, so their silence here proves nothing"
            )
    elif uncontrolled and run.control and not allowed:
        missing.append("the listener never answered this control run: it proves nothing about the listener")

    # A path that does not exist from here (no proxy, no router advertisement) was not tested:
    # silence on it says nothing, and a run with nothing else cannot be CLOSED (egress.md 1.4 row 9).
    tested_blocked = [p.path for p in egress_paths if p.result == BLOCKED and p.basis != "absent"]
    if not allowed and not tested_blocked:
        missing.append("no egress path was tested from this vantage (TCP, UDP, DNS, ICMP or NTP to the listener): "
                       "nothing here can show the segment closed")
    qualifiers: list[str] = []
    window = f"between {run.started_at} and {run.finished_at}"
    vantage = _vantage_text(run.vantage)
    if run.control:
        qualifiers.append(f"control run from a vantage with egress: {vantage}; not a verdict on any segment")
    if allowed:
        egress = OPEN
        via = ", ".join(p.path for p in allowed)
        qualifiers.append(f"egress observed on {via} from {vantage} {window}")
        if any(p.path == "dns/resolver" for p in allowed):
            qualifiers.append("OPEN through DNS: the segment's resolver carried a nonce name to the auditor's zone "
                              "(DNS recursion reaches the internet; data can leave through DNS alone)")
        if any(p.path.startswith("ipv6/") for p in allowed):
            qualifiers.append("OPEN through IPv6: a router advertises a global prefix and forwards IPv6")
        if all(p.basis == "listener-log" for p in allowed):
            qualifiers.append("one-way egress: the listener logged the probes, their answers did not come back")
    elif not missing:
        egress = CLOSED
        qualifiers.append(f"no egress observed on {len(tested_blocked)} tested paths ({_brief(tested_blocked, 40)}) "
                          f"from {vantage} {window}")
        if passing:
            qualifiers.append("positive control: " + "; ".join(
                f"run {c.run_id} from {_vantage_text(c.vantage)} at {c.started_at} reached the listener on "
                f"{sum(1 for p in c.paths if p.result == ALLOWED)} paths" for c in passing))
        else:
            qualifiers.append("no positive control was needed: every path was refused locally or by an internal router")
        absent = [f"{p.path} ({p.detail})" for p in egress_paths if p.basis == "absent"]
        if absent:
            qualifiers.append("not present from this vantage: " + "; ".join(absent))
        qualifiers.append("placement: the verdict holds for traffic from this sensor's address and gateway; "
                          "firewall rules keyed on device addresses, MACs or 802.1X groups are not covered by it")
    else:
        egress = INCONCLUSIVE
    exposed = bool(exposed_by)
    if exposed:
        qualifiers.append("EXPOSED: inbound path on the segment: " + "; ".join(
            f"{p.path} ({p.detail})" if p.detail else p.path for p in exposed_by))
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


def _registration(settings: Any, qualifiers: list[str], missing: list[str], evidence: list[dict[str, Any]]
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
                qualifiers.append(f"{name}: registered with an internal platform ({', '.join(servers)}), not egress")
                continue
            registered.append(name)
            evidence.append({"kind": "device_config", "setting": name, "registered": True,
                             "servers": servers, "source": source})
            if entry.get("bound") is True:
                bound = True
        elif state is None and entry.get("enabled") is not False:
            note = entry.get("note") or "not verified"
            missing.append(f"{name}: the device's registration status was not verified ({note}; {source})")
        elif entry.get("enabled") is True:
            qualifiers.append(f"{name} is enabled but reports no registration ({source}): a cloud feature "
                              "that would reach the internet if the network let it (finding, not a verdict)")
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
    qualifiers: list[str] = []
    missing: list[str] = []
    evidence: list[dict[str, Any]] = []
    opened: list[str] = []
    exposed_by: list[str] = []

    # -- the device's own word
    if settings is None:
        missing.append("device settings (gateway, DNS, cloud registration) were not read")
        gateways: list[str] | None = None
    else:
        registered, bound = _registration(settings, qualifiers, missing, evidence)
        gaps_before = len(missing)
        for name in registered:
            opened.append(f"the device reports registration with {name} (device-asserted, conclusive)")
        if bound:
            exposed_by.append("bound to a cloud account while registered: a third-party access path to its footage")
        for msg in settings.not_verified:
            if not _registration_read(msg):
                continue
            if _ABSENT_RE.search(msg):
                # A 404 (or Dahua's "Error" for a missing table) means this firmware has no such
                # feature to register through: "not present", not "disabled" (egress.md 2.3).
                qualifiers.append(f"not present on this device (recorded as not verified): {msg}")
            else:
                missing.append(f"not verified: {msg}")
        if len(missing) == gaps_before and not any(isinstance(e, dict) and k not in ("upnp", "ddns")
                                                   for k, e in (settings.cloud or {}).items()):
            qualifiers.append("the device reported no cloud-registration status that camaudit can read (no "
                              "Hik-Connect, Ehome, online-upgrade or Dahua P2P settings): its verdict rests on the "
                              "network evidence")
        live = _active_mappings(settings)
        if live:
            exposed_by.append(f"the device reports {len(live)} active UPnP port mapping(s)")
            evidence.append({"kind": "device_config", "setting": "upnp_mappings", "active": live})
        gateways = settings.gateway
        if gateways is not None and not [g for g in gateways if g and g not in ("0.0.0.0", "::")]:
            qualifiers.append("the device reports no default gateway (supports CLOSED; not a verdict alone)")
        for server in (settings.dns or []):
            if not _internal_literal(server) and _is_literal(server):
                qualifiers.append(f"the device is configured with an external DNS server {server} (finding)")
        for server in (settings.ntp or []):
            if not _internal_literal(server):
                qualifiers.append(f"the device is configured with a non-internal NTP server {server} (finding)")

    # -- the segment's active check
    configured = _configured_mappings(settings) if settings is not None else []
    if active is None:
        missing.append("an active egress check from the device's segment (`egress check --listener ...`)")
    else:
        placement_ok, placement_note = _placement(gateways, sensor_gateway, active)
        no_gateway = gateways is not None and not [g for g in gateways if g and g not in ("0.0.0.0", "::")]
        igd_maps = _igd_mappings_for(active, addr)
        if igd_maps:
            exposed_by.append(f"the segment's IGD maps {len(igd_maps)} external port(s) to this device")
            evidence.append({"kind": "active", "path": "upnp", "mappings": igd_maps})
        elif active.exposed and configured:
            exposed_by.append("UPnP mappings configured on the device and a UPnP IGD answers on its segment")
        if active.egress == OPEN:
            if placement_ok and not no_gateway:
                opened.append(f"its segment is OPEN from a sensor on the same segment ({placement_note})")
            elif placement_ok:
                # The sensor reached the listener through a gateway this device does not use:
                # that shows nothing about the device's own egress (egress.md 1.3, 1.4 row 10).
                missing.append("placement: the segment is OPEN from a sensor that used a gateway, but the device "
                               "reports no default gateway; its own egress was not shown")
            else:
                missing.append(f"placement: {placement_note}; the segment's OPEN result was not shown for this device")
        elif active.egress == CLOSED:
            if not placement_ok:
                missing.append(f"placement: {placement_note}")
            else:
                # A device's CLOSED is stated with the segment check's own qualifiers: the
                # paths, the window, the vantage and the controls (DESIGN.md section 5).
                qualifiers.append(f"segment CLOSED from the sensor ({placement_note})")
                qualifiers.extend(q for q in active.qualifiers if not q.startswith("EXPOSED"))
        else:
            missing.append("the segment's active check is INCONCLUSIVE: " + "; ".join(active.missing[:3]))
        evidence.append({"kind": "segment", "subject": active.subject, "verdict": active.verdict,
                         "egress": active.egress})
    if configured and not exposed_by:
        qualifiers.append(f"{len(configured)} UPnP mapping(s) configured on the device; no IGD seen to apply them "
                          "(finding)")

    # -- the capture
    if passive is not None:
        mine = [f for f in passive.flows if f.device == addr]
        established = [f for f in mine if f.state == "established" and f.remote_class == "external"]
        odd = [f for f in mine if f.state == "established" and f.remote_class != "external"]
        attempted = [f for f in mine if f.state == "attempted"]
        if odd:
            qualifiers.append(f"{len(odd)} answered flow(s) with non-internal but not global addresses (CGNAT or "
                              "documentation space), e.g. " + ", ".join(f"{f.remote} ({f.remote_class})" for f in odd[:3]))
        for f in established[:5]:
            opened.append(f"established {f.proto} flow with {f.remote}" + (f":{f.port}" if f.port else "")
                          + f" at {f.first_seen} (capture {passive.source})")
        if attempted:
            qualifiers.append(f"{len(attempted)} unanswered egress attempt(s) in the capture, e.g. "
                              + ", ".join(f"{f.proto}/{f.port} to {f.remote}" for f in attempted[:3])
                              + " (blocked during the capture; cloud features are trying: finding)")
        lookups = [q for q in passive.lookups if q.device == addr]
        resolved = [q for q in lookups if q.external_answers]
        for q in resolved[:3]:
            # egress.md 1.4 row 3: a strong indicator of DNS recursion, not proof (a split-horizon
            # or cached zone gives the same answer); it stands against CLOSED (row 12).
            missing.append(f"conflicting evidence: the resolver {q.resolver} answered the vendor-cloud name "
                           f"{q.qname} with external address(es) {', '.join(q.external_answers[:3])} (indicator of "
                           "DNS recursion to the internet, not proof); test the resolver with a nonce name "
                           "(`--dns-zone`)")
        if lookups:
            qualifiers.append("looked up vendor-cloud names: " + ", ".join(sorted({q.qname for q in lookups})[:5]))
        qualifiers.append(f"capture {passive.source} from {passive.start} to {passive.end}")
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
        qualifiers.append("EXPOSED: " + "; ".join(exposed_by))
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


def _placement(gateways: list[str] | None, sensor_gateway: str | None, active: Verdict) -> tuple[bool, str]:
    """Whether the sensor's vantage stands for the device (egress.md 1.3 placement control)."""
    if sensor_gateway is None:
        for ev in active.evidence:
            if ev.get("kind") == "active":
                sensor_gateway = (ev.get("vantage") or {}).get("gateway")
                break
    if gateways is None:
        return False, "the device's gateway was not read, so the sensor's placement cannot be matched to it"
    real = [g for g in gateways if g and g not in ("0.0.0.0", "::")]
    if not real:
        return True, "the device has no default gateway"
    if sensor_gateway and sensor_gateway in real:
        return True, f"device and sensor use gateway {sensor_gateway}"
    return False, (f"the device uses gateway {', '.join(real)} but the sensor used "
                   f"{sensor_gateway or 'none'}")


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
    qualifiers: list[str] = []
    missing: list[str] = []
    opened = [v for v in parts if v.egress == OPEN]
    exposed = [v for v in parts if v.exposed]
    if active is None:
        missing.append("an active egress check from the segment")
    elif not devices:
        # Vacuously "every device CLOSED" is no roll-up: the sensor's placement was matched to
        # no camera (egress.md 1.3), so the segment's verdict stays the sensor's alone.
        missing.append("no device of the segment was assessed, so the sensor's placement was matched to no camera")
    for v in parts:
        if v.egress != OPEN:
            prefix = "" if v is active else f"device {v.subject}: "
            missing.extend(prefix + m for m in v.missing)
    if opened:
        egress = OPEN
        qualifiers.extend(f"OPEN: {v.subject_kind} {v.subject}: {v.qualifiers[0] if v.qualifiers else 'egress'}"
                          for v in opened[:10])
    elif active is not None and devices and all(v.egress == CLOSED for v in parts):
        egress = CLOSED
        qualifiers.extend(active.qualifiers)
        qualifiers.append(f"every one of {len(devices)} device(s) is CLOSED on its own evidence")
    else:
        egress = INCONCLUSIVE
        undecided = [v.subject for v in devices if v.egress == INCONCLUSIVE]
        if undecided:
            missing.append(f"{len(undecided)} device(s) INCONCLUSIVE: {_brief(undecided)}")
        if active is not None:
            # What the sensor's check did show, so the reader sees more than the gaps.
            closed = sum(1 for v in devices if v.egress == CLOSED)
            qualifiers.append(f"the sensor's own check is {active.egress}"
                              + (f": {active.qualifiers[0]}" if active.qualifiers else ""))
            qualifiers.append(f"{closed} of {len(devices)} device(s) CLOSED on their own evidence")
    if exposed:
        qualifiers.append("EXPOSED: " + ", ".join(f"{v.subject_kind} {v.subject}" for v in exposed[:10]))
    return Verdict(
        subject_kind="segment", subject=subject,
        verdict=OPEN if egress == OPEN else EXPOSED if exposed else egress,
        egress=egress, exposed=bool(exposed), qualifiers=qualifiers,
        missing=[] if egress == OPEN else list(dict.fromkeys(missing)),
        paths=active.paths if active is not None else [],
        evidence=[{"kind": "rollup", "parts": [{"subject_kind": v.subject_kind, "subject": v.subject,
                                                "verdict": v.verdict, "egress": v.egress, "exposed": v.exposed}
                                               for v in parts]}],
    )


# -- the effective verdict of a device (moved from assess.py: decided here, once) ------------------

#: The egress words a verdict can carry on its egress axis (a hand-written EXPOSED-only row has none).
EGRESS_WORDS = (OPEN, CLOSED, INCONCLUSIVE)
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


def segments_of(segment_verdicts: Sequence[Verdict], device_address: str) -> list[Verdict]:
    """The segments a device sits in, most specific first: CIDR segments that hold its address,
    then named segments (the caller passes only the named ones the register places it in)."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(device_address)
    except ValueError:
        address = None
    cidr = [(n, s) for s in segment_verdicts if (n := _network(s.subject)) is not None]
    inside = [s for n, s in cidr if address is not None and address in n]
    inside.sort(key=lambda s: -(_network(s.subject).prefixlen))  # type: ignore[union-attr]
    return inside + [s for s in segment_verdicts if _network(s.subject) is None]


def effective_verdict(device_verdict: Verdict | None, segment_verdicts: Sequence[Verdict],
                      device_address: str) -> Verdict | None:
    """The verdict that speaks for a device's egress: its own first, else its segment's.

    The device's own verdict speaks first: egress verification decided it from the segment check
    *and* the device's placement (its gateway against the sensor's), its own settings and any
    capture, so a segment OPEN seen from a sensor in another policy group does not make every
    device OPEN (egress.md section 1.3, placement control). A device with no verdict of its own
    takes its (most specific) segment's, unless that segment verdict is camaudit's own roll-up or
    a sensor's check: it speaks for the devices that were judged, and this one was not (an OPEN
    segment because another camera reports its cloud registration says nothing of this one)."""
    if device_verdict is not None and device_verdict.egress in EGRESS_WORDS:
        return device_verdict
    inside = segments_of(segment_verdicts, device_address)
    segment = inside[0] if inside else None
    if segment is None or segment.egress not in EGRESS_WORDS or judged_per_device(segment):
        return None
    return segment


def effective_exposure(device_verdict: Verdict | None, segment_verdicts: Sequence[Verdict],
                       device_address: str) -> Verdict | None:
    """The verdict that says a device is exposed, or None: its own verdicts decide when it has
    any; else its segment's exposure, unless that is camaudit's roll-up (a segment is EXPOSED
    when one of its devices is, which says nothing of the others)."""
    if device_verdict is not None:
        return device_verdict if device_verdict.exposed else None
    inside = segments_of(segment_verdicts, device_address)
    segment = inside[0] if inside else None
    if segment is not None and segment.exposed and not judged_per_device(segment):
        return segment
    return None
