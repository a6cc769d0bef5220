"""The estate report: every site of a (central) store in one document, for the CISO.

For every site: its latest complete scan as a scan report document (the same shape as the scan
report's JSON, with additions), its egress runs, and one conclusion sentence about the
closed-network claim (:mod:`.statement`, from verdicts and reason codes). Across sites: the
inventory by maker, brand, covered status and site; the register reconciled across sites (an
asset declared at one site and found at another, by serial or MAC); and, at the top, the sites
whose latest scan is older than ``max_age``, interrupted, failed or still running.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UsageError
from ..model import utc_now
from ..model.verdicts import Reason
from ..policy import Policy
from ..register import normalise_mac
from ..store import Store
from ..store import devices as stored_devices
from ..store import egress as stored_egress
from ..store import register as stored_register
from ..store import scans as stored_scans
from .data import build_report
from .i18n import translator
from .messages import render


def parse_duration(text: str) -> float:
    """``90m``, ``36h``, ``7d``, ``2w`` or plain seconds, as seconds; UsageError otherwise."""
    from ..schedule import parse_duration as parse

    return parse(text, "--max-age")


def _age_words(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _age_of(started_at: str, now: _dt.datetime) -> float | None:
    try:
        moment = _dt.datetime.fromisoformat(started_at)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return (now - moment).total_seconds()


def _flags(site: str, latest: Any, complete: Any, max_age: float | None, now: _dt.datetime) -> list[Reason]:
    """Why a site is flagged at the top of the estate report (none: it is not)."""
    flags: list[Reason] = []
    params = {"site": site, "scan": latest.id[:8], "started": latest.started_at[:16].replace("T", " ")}
    if latest.status == "interrupted":
        flags.append(Reason("flag_interrupted", params))
    elif latest.status == "failed":
        flags.append(Reason("flag_failed", params))
    elif latest.status == "running":
        flags.append(Reason("flag_running", params))
    if complete is None:
        flags.append(Reason("flag_no_complete", {"site": site}))
    elif complete.id != latest.id:
        flags.append(Reason("flag_older_complete", {"site": site, "scan": complete.id[:8],
                                                    "started": complete.started_at[:16].replace("T", " ")}))
    if max_age is not None:
        age = _age_of(latest.started_at, now)
        if age is None or age > max_age:
            flags.append(Reason("flag_stale", {**params, "max_age": _age_words(max_age)}))
    return flags


def _inventory(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The devices of every site's reported scan, counted by maker, brand, covered status and site."""
    makers: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    brands: Counter[tuple[str, str]] = Counter()
    by_site = []
    for entry in entries:
        devices = entry["devices"]
        site_makers = Counter(d["vendor"] for d in devices)
        makers.update(site_makers)
        covered.update(d["vendor"] for d in devices if d["covered"])
        brands.update((d["vendor"], d["brand"] or d["vendor"]) for d in devices if d["vendor"] != "unknown")
        by_site.append({"site": entry["site"], "devices": len(devices), "covered": sum(d["covered"] for d in devices),
                        "by_maker": dict(sorted(site_makers.items(), key=lambda kv: (kv[0] == "unknown", -kv[1], kv[0])))})
    return {
        "devices": sum(makers.values()),
        "covered": sum(covered.values()),
        "by_maker": [{"maker": m, "devices": n, "covered": covered.get(m, 0)}
                     for m, n in sorted(makers.items(), key=lambda kv: (kv[0] == "unknown", -kv[1], kv[0]))],
        "by_brand": [{"maker": m, "brand": b, "devices": n}
                     for (m, b), n in sorted(brands.items(), key=lambda kv: (-kv[1], kv[0]))],
        "by_site": by_site,
    }


def _serial(text: str | None) -> str | None:
    return text.strip().upper() if text and text.strip() else None


def cross_site_register(store: Store, sites: list[str]) -> list[dict[str, Any]]:
    """Assets declared in one site's register and found (by serial, else MAC) among the devices
    of another site: moved, mis-registered, or registered at the wrong site."""
    found_by: dict[tuple[str, str], list[Any]] = {}
    for site in sites:
        for device in stored_devices.devices(store, site):
            if _serial(device.serial):
                found_by.setdefault(("serial", _serial(device.serial) or ""), []).append(device)
            mac = normalise_mac(device.mac or "")
            if mac:
                found_by.setdefault(("mac", mac), []).append(device)
    sightings = {s: {x.device_id: x.address for x in stored_devices.sightings(store, site=s)} for s in sites}
    result = []
    for site in sites:
        for asset in stored_register.load_register(store, site):
            keys = [("serial", _serial(asset.serial)), ("mac", normalise_mac(asset.mac or ""))]
            for kind, value in keys:
                if not value:
                    continue
                elsewhere = [d for d in found_by.get((kind, value), []) if d.site != site]
                for device in elsewhere:
                    result.append({"asset_id": asset.asset_id, "declared_site": site, "found_site": device.site,
                                   "matched_by": kind, "value": value, "device_id": device.id,
                                   "address": sightings.get(device.site, {}).get(device.id),
                                   "last_seen": device.last_seen})
                if elsewhere:
                    break  # matched by the stronger key: the MAC would only repeat it
    return result


def _unscanned_sites(store: Store, scanned: set[str]) -> list[Reason]:
    """Sites with a register or egress runs but no camera scan: declared, never audited."""
    flags = []
    for site in stored_scans.sites(store):
        if site.name in scanned:
            continue
        assets = len(stored_register.load_register(store, site.name))
        runs = len(stored_egress.runs_of_site(store, site.name))
        if assets or runs:
            flags.append(Reason("flag_no_scan", {"site": site.name, "assets": assets, "runs": runs}))
    return flags


def build_estate(store: Store, *, policy: Policy | None = None, lang: str = "en", max_age: float | None = None,
                 record: bool = True) -> dict[str, Any]:
    """The estate report document (``kind: "estate"``)."""
    translator(lang)
    now = _dt.datetime.now(_dt.UTC)
    latest_by_site = stored_scans.latest_scans_by_site(store)
    if not latest_by_site:
        raise UsageError(f"{store.path} holds no scans yet; the estate report needs at least one site's scan")
    entries: list[dict[str, Any]] = []
    flags: list[Reason] = []
    for site, latest, complete in latest_by_site:
        if latest is None:
            continue
        shown = complete or latest
        doc = build_report(store, shown.id, policy=policy, lang=lang, record=record)
        site_flags = _flags(site, latest, complete, max_age, now)
        flags += site_flags
        runs = stored_egress.runs_of_site(store, site)
        statement = doc["statement"]
        entry = {
            **doc,
            "site": site,
            "latest_scan": {"scan_id": latest.id, "status": latest.status, "started_at": latest.started_at},
            "conclusion": statement["conclusion"],
            "conclusion_text": statement["conclusion_text"],
            "flags": [f.to_json() for f in site_flags],
            "flags_text": [render(f, lang) for f in site_flags],
            "site_egress_runs": [r.to_json() for r in runs],
        }
        entries.append(entry)
    flags += _unscanned_sites(store, {e["site"] for e in entries})
    return {
        "report_version": 1,
        "kind": "estate",
        "camaudit_version": __version__,
        "generated_at": utc_now(),
        "lang": lang,
        "database": str(Path(store.path).name),
        "max_age": max_age,
        "flags": [f.to_json() for f in flags],
        "flags_text": [render(f, lang) for f in flags],
        "sites": entries,
        "inventory": _inventory(entries),
        "register_across_sites": cross_site_register(store, [e["site"] for e in entries]),
        "findings": [f for e in entries for f in e["findings"]],
    }


def cross_site_text(item: dict[str, Any], lang: str) -> str:
    return render(Reason("cross_site", {"asset": item["asset_id"], "declared": item["declared_site"],
                                        "found": item["found_site"], "matched_by": item["matched_by"],
                                        "value": item["value"], "address": item["address"] or "?"}), lang)
