"""What the evidence of one scan supports, said as reasons (codes), never as English text: the
one-sentence conclusion per site of the estate report, the statement an auditor can paste into
an audit file (the claim with its qualifiers: scope, time window, vantage, paths, what was not
verified), and the reproducibility footer.

Everything here reads the codes of a scan report document (:func:`camaudit.report.data.build_report`:
``qualifier_codes``, ``missing_codes``, verdict words); the words come from the message tables
(:mod:`camaudit.report.messages`), in English or Dutch.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from ..model.verdicts import CLOSED, INCONCLUSIVE, OPEN, Reason
from .messages import render

#: A device's missing item with one of these codes (at any depth): its settings were not read
#: for want of credentials (camaudit never guesses a password).
_UNREAD_CODES = frozenset({"settings_not_read", "auth_required", "no_credentials"})
#: ... or they were read, but the cloud registration status is not something camaudit can verify
#: (a Dahua P2P status, a Basic-auth-only Hikvision).
_UNVERIFIED_CODES = frozenset({"registration_unverified", "not_verified", "dahua_no_status_api", "auth_basic_only"})


def walk(codes: Any) -> Iterator[Mapping[str, Any]]:
    """Every reason in ``codes`` (a reason, a list of them), nested reasons included."""
    if isinstance(codes, Mapping):
        if isinstance(codes.get("code"), str):
            yield codes
        for value in codes.values():
            if isinstance(value, Mapping | list | tuple):
                yield from walk(value)
    elif isinstance(codes, list | tuple):
        for item in codes:
            yield from walk(item)


def _first(codes: Any, code: str) -> Mapping[str, Any] | None:
    return next((r for r in walk(codes) if r["code"] == code), None)


def _moment(value: Any) -> _dt.datetime | None:
    try:
        moment = _dt.datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)


def _short_time(value: Any) -> str:
    moment = _moment(value)
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else str(value or "?")


def _vantage_address(vantage: Any) -> str:
    """The sensor's address(es) from a ``vantage`` reason: what an auditor checks a firewall rule against."""
    if isinstance(vantage, Mapping):
        addresses = vantage.get("addresses")
        if isinstance(addresses, list | tuple):
            return ", ".join(str(a) for a in addresses) or str(vantage.get("host") or "?")
        return str(addresses or vantage.get("host") or "?")
    return str(vantage or "?")


def site_verdict(doc: Mapping[str, Any]) -> str:
    """The site's word on the closed-network claim: OPEN when any segment or device is OPEN,
    CLOSED only when every segment is CLOSED and no device carries anything else, NONE when no
    egress verdict was recorded, INCONCLUSIVE otherwise."""
    segments = doc.get("segments") or []
    devices = doc.get("devices") or []
    words = [s["verdict"] for s in segments] + [d["verdict"] for d in devices]
    if OPEN in words:
        return OPEN
    egress = [s["verdict"] for s in segments if s["verdict"] != "NONE"]  # NONE: an exposure-only record
    if not egress and all(d["verdict"] == "NONE" for d in devices):
        return "NONE"
    device_words = {d["verdict"] for d in devices}
    if egress and all(w in (CLOSED, "EXPOSED") for w in egress) and device_words <= {CLOSED, "EXPOSED"}:
        return CLOSED
    return INCONCLUSIVE


def _registered(devices: list[Mapping[str, Any]]) -> int:
    return sum(any(r["code"] == "registration_reported" for r in walk(d.get("qualifier_codes"))) for d in devices)


def _inconclusive_reasons(doc: Mapping[str, Any]) -> list[Reason]:
    """Why a site stays INCONCLUSIVE, shortest first: devices whose cloud settings could not be
    read (by maker), else the segments' first missing items, else the devices left without a verdict."""
    devices = [d for d in doc.get("devices") or [] if d["verdict"] not in (CLOSED, OPEN)]

    def codes(device: Mapping[str, Any]) -> set[str]:
        return {r["code"] for r in walk(device.get("missing_codes"))} if device["verdict"] == INCONCLUSIVE else set()

    unread = Counter(d["vendor"] for d in devices if codes(d) & _UNREAD_CODES)
    unverified = Counter(d["vendor"] for d in devices if not codes(d) & _UNREAD_CODES and codes(d) & _UNVERIFIED_CODES)

    def maker(name: str) -> str:
        return name.capitalize() if name != "unknown" else name

    reasons = [Reason("cloud_settings_unread", {"count": n, "maker": maker(m)})
               for m, n in sorted(unread.items(), key=lambda kv: (-kv[1], kv[0]))]
    reasons += [Reason("cloud_status_unverified", {"count": n, "maker": maker(m)})
                for m, n in sorted(unverified.items(), key=lambda kv: (-kv[1], kv[0]))]
    if reasons:
        return reasons
    for segment in doc.get("segments") or []:
        if segment["verdict"] == INCONCLUSIVE and segment.get("missing_codes"):
            return [Reason.from_json(r) for r in segment["missing_codes"][:2]]
    undecided = sum(d["verdict"] in (INCONCLUSIVE, "NONE") for d in devices)
    return [Reason("devices_inconclusive", {"count": undecided})]


def conclusion(doc: Mapping[str, Any]) -> Reason:
    """The one sentence about the closed-network claim of the scan's site."""
    site = doc["scan"].get("site") or "default"
    segments = doc.get("segments") or []
    devices = doc.get("devices") or []
    verdict = site_verdict(doc)
    exposed = sum(bool(d.get("exposed")) for d in devices)
    extra = {"exposed": exposed} if exposed else {}
    if verdict == "NONE":
        return Reason("conclusion_none", {"site": site})
    if verdict == OPEN:
        opened = [d for d in devices if d["verdict"] == OPEN]
        why = [Reason.from_json(q) for s in segments if s["verdict"] == OPEN for q in (s.get("qualifier_codes") or [])[:1]]
        why += [Reason.from_json(q) for d in opened for q in (d.get("qualifier_codes") or [])[:1]]
        reasons = list(dict.fromkeys(why))[:3] or [Reason("egress_plain")]
        if not opened:  # the sensor's check is OPEN; no device carries it (placement not matched)
            names = ", ".join(s["segment"] for s in segments if s["verdict"] == OPEN)
            return Reason("conclusion_open_segment", {"site": site, "segments": names, "devices": len(devices),
                                                      "reasons": reasons, **extra})
        return Reason("conclusion_open", {"site": site, "open": len(opened), "devices": len(devices),
                                          "reasons": reasons, **extra})
    if verdict == CLOSED:
        observed = [r for s in segments for r in walk(s.get("qualifier_codes")) if r["code"] == "no_egress_observed"]
        registered = _registered(devices)
        if not observed:
            return Reason("conclusion_closed_recorded", {"site": site, "segments": ", ".join(s["segment"] for s in segments),
                                                         "registered": registered, "devices": len(devices), **extra})
        paths = sum(int(r.get("count") or 0) for r in observed)
        vantage = ", ".join(dict.fromkeys(_vantage_address(r.get("vantage")) for r in observed))
        minutes: int | str = ""
        before = True
        controls = [r for s in segments for r in walk(s.get("qualifier_codes")) if r["code"] == "control_run"]
        start = min((m for m in (_moment(r.get("start")) for r in observed) if m), default=None)
        at = max((m for m in (_moment(c.get("at")) for c in controls) if m), default=None)
        if start is not None and at is not None:
            delta = (start - at).total_seconds() / 60
            minutes, before = round(abs(delta)), delta >= 0
        return Reason("conclusion_closed", {"site": site, "paths": paths, "vantage": vantage, "minutes": minutes,
                                            "control_before": before, "registered": registered,
                                            "devices": len(devices), **extra})
    return Reason("conclusion_inconclusive", {"site": site, "reasons": _inconclusive_reasons(doc), **extra})


def conclusion_text(reason: Reason, lang: str) -> str:
    """The conclusion in ``lang``, with the EXPOSED clause when devices are exposed."""
    text = render(reason, lang)
    exposed = reason.get("exposed")
    if exposed:
        text += "; " + render(Reason("conclusion_exposed", {"count": exposed}), lang)
    return text


def statement(doc: Mapping[str, Any]) -> list[Reason]:
    """The claim the evidence supports and its qualifiers, one reason per sentence."""
    scan = doc["scan"]
    site = scan.get("site") or "default"
    segments = doc.get("segments") or []
    devices = doc.get("devices") or []
    verdict = site_verdict(doc)
    names = ", ".join(s["segment"] for s in segments) or ", ".join(scan.get("targets") or []) or "?"
    qualifiers = [r for s in segments for r in walk(s.get("qualifier_codes"))]
    observed = [r for r in qualifiers if r["code"] in ("no_egress_observed", "egress_observed")]
    starts = sorted(m for m in (_moment(r.get("start")) for r in observed) if m)
    ends = sorted(m for m in (_moment(r.get("end")) for r in observed) if m)
    start = _short_time(starts[0].isoformat()) if starts else "?"
    end = _short_time(ends[-1].isoformat()) if ends else "?"
    vantages = list(dict.fromkeys(_vantage_address(r.get("vantage")) for r in observed))
    out: list[Reason] = []
    if verdict == CLOSED:
        count = sum(int(r.get("count") or 0) for r in observed if r["code"] == "no_egress_observed")
        out.append(Reason("statement_closed", {"site": site, "segments": names, "paths": count,
                                               "vantage": ", ".join(vantages) or "?", "start": start, "end": end}))
    elif verdict == OPEN:
        out.append(Reason("statement_open", {"site": site, "segments": names,
                                             "reasons": conclusion(doc).get("reasons") or []}))
    elif verdict == INCONCLUSIVE:
        out.append(Reason("statement_inconclusive", {"site": site, "segments": names}))
    else:
        out.append(Reason("statement_none", {"site": site}))
    summary = doc.get("summary") or {}
    out.append(Reason("statement_scope", {
        "scan": scan["scan_id"], "status": scan["status"], "targets": " ".join(scan.get("targets") or []) or "?",
        "addresses": scan.get("addresses_scanned", 0), "devices": summary.get("hosts", len(devices)),
        "cameras": summary.get("identified", 0)}))  # fmt: skip
    scan_window = {"start": _short_time(scan.get("started_at")), "end": _short_time(scan.get("finished_at"))}
    if observed:
        out.append(Reason("statement_window", {**scan_window, "evidence": f"{start} – {end}"}))
        out.append(Reason("statement_vantage", {"vantages": ", ".join(vantages)}))
    else:
        out.append(Reason("statement_window_none", scan_window))
        out.append(Reason("statement_vantage_none"))
    tested = [f"{p.get('path', '?')} {p.get('result', '?')}" if isinstance(p, Mapping) else str(p)
              for s in segments for p in (s.get("paths") or [])]
    out.append(Reason("statement_paths", {"paths": ", ".join(dict.fromkeys(tested))}) if tested
               else Reason("statement_paths_none"))
    controls = [Reason.from_json(r) for r in qualifiers if r["code"] == "control_run"]
    if controls:
        out.append(Reason("statement_control", {"controls": controls}))
    missing = [Reason.from_json(r) for s in segments for r in (s.get("missing_codes") or [])]
    gaps = sum(bool(d.get("missing_codes")) for d in devices)
    if gaps:
        missing.append(Reason("statement_devices_unverified", {"count": gaps}))
    unjudged = sum(d["verdict"] == "NONE" for d in devices)
    if unjudged and verdict != "NONE":
        missing.append(Reason("devices_inconclusive", {"count": unjudged}))
    out.append(Reason("statement_not_verified", {"items": list(dict.fromkeys(missing))}) if missing
               else Reason("statement_nothing_missing"))
    if verdict == CLOSED and any(r["code"] == "placement_scope" for r in qualifiers):
        out.append(Reason("statement_placement"))
    return out


def reproducibility(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What it takes to reproduce the report: the versions and ids of its inputs."""
    a = doc.get("assessment") or {}
    return {
        "camaudit_version": a.get("camaudit_version") or doc.get("camaudit_version"),
        "report_camaudit_version": doc.get("camaudit_version"),
        "assessment_id": a.get("assessment_id"),
        "policy_hash": a.get("policy_hash"),
        "register_version": a.get("register_hash") or None,
        "register_imported_at": a.get("register_imported_at"),
        "signatures_version": a.get("signatures_hash"),
        "scan_id": doc["scan"]["scan_id"],
        "egress_runs": list(doc.get("egress_runs") or a.get("egress_runs") or []),
    }


def statement_section(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ``statement`` entry of a report document (additive): the claim as codes and as text in
    the report's language, and the reproducibility footer."""
    lang = str(doc.get("lang") or "en")
    reasons = statement(doc)
    claim = conclusion(doc)
    return {
        "verdict": site_verdict(doc),
        "conclusion": claim.to_json(),
        "conclusion_text": conclusion_text(claim, lang),
        "codes": [r.to_json() for r in reasons],
        "text": [render(r, lang) for r in reasons],
        "reproducibility": reproducibility(doc),
    }
