"""The report document: one scan, read from the store alone, as one JSON-able dictionary that
every report format renders (HTML, Markdown, JSON, CSV).

Building it also assesses the scan (reconciliation and findings are recorded in the store, so
the database a report was written from holds the same findings as the report).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .. import __version__
from ..assess import (
    EGRESS_VERDICTS,
    NO_VERDICT,
    DeviceView,
    Finding,
    ScanView,
    count_by_severity,
    evaluate,
    record_assessment,
    scan_view,
)
from ..diff import compare, previous_scan
from ..model import utc_now
from ..model.verdicts import Reason, english, reasons_to_json
from ..policy import Policy, load_policy, severity_rank
from ..store import Store
from .i18n import translator

#: Observation values longer than this are cut in reports (the store keeps them whole).
OBSERVATION_CHARS = 600


def build_report(
    store: Store,
    scan_ref: str = "latest",
    *,
    policy: Policy | None = None,
    lang: str = "en",
    record: bool = True,
) -> dict[str, Any]:
    """The report of one scan. ``record`` writes the assessment (findings, reconciliation)
    to the store; findings in the document are in ``lang``."""
    translator(lang)  # refuse an unknown language before any work
    policy = policy or load_policy()
    view = scan_view(store, scan_ref)
    findings_en = evaluate(view, policy)
    if record and not store.read_only:  # an archived, read-only store is reported, not changed
        record_assessment(store, view, findings_en)
    findings = findings_en if lang == "en" else evaluate(view, policy, lang)
    changes = None
    before = previous_scan(store, view.scan)
    if before is not None:
        changes = compare(scan_view(store, before.id), view).to_json()
    observations = _observations(store, view.scan.id)
    return {
        "report_version": 1,
        "camaudit_version": __version__,
        "generated_at": utc_now(),
        "lang": lang,
        "database": str(Path(store.path).name),
        "policy": policy.source,
        "scan": {
            "scan_id": view.scan.id,
            "started_at": view.scan.started_at,
            "finished_at": view.scan.finished_at,
            "status": view.scan.status,
            "targets": view.scan.targets,
            "addresses_scanned": view.scan.addresses_scanned,
            "hosts": len(view.devices),
            "notes": view.scan.notes,
            "camaudit_version": view.scan.camaudit_version,
            "error": view.scan.error,
        },
        "summary": _summary(view, findings),
        "verdict_recorded": bool(view.verdict_rows),
        "segments": [_segment(s) for s in view.segments],
        "devices": [_device(d, findings, observations.get(d.address, [])) for d in view.devices],
        "findings": [f.to_json() for f in findings],
        "register": _register(view),
        "changes": changes,
    }


def _summary(view: ScanView, findings: list[Finding]) -> dict[str, Any]:
    devices = view.devices
    makers = Counter(d.vendor for d in devices)
    covered_by_maker = Counter(d.vendor for d in devices if d.covered)
    brands = Counter((d.vendor, (d.identity or {}).get("brand") or d.vendor) for d in devices if d.vendor != "unknown")
    verdicts = Counter(d.verdict for d in devices)
    return {
        "hosts": len(devices),
        "identified": sum(d.vendor != "unknown" for d in devices),
        "covered": sum(d.covered for d in devices),
        "covered_makers": sorted(covered_by_maker),
        "by_maker": [
            {"maker": maker, "devices": n, "covered": covered_by_maker.get(maker, 0)}
            for maker, n in sorted(makers.items(), key=lambda kv: (kv[0] == "unknown", -kv[1], kv[0]))
        ],
        "by_brand": [
            {"maker": maker, "brand": brand, "devices": n}
            for (maker, brand), n in sorted(brands.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "verdicts": {v: verdicts.get(v, 0) for v in (*EGRESS_VERDICTS, NO_VERDICT)},
        "exposed": sum(d.exposed is not None for d in devices),
        "findings": count_by_severity(findings),
    }


def _reasons(qualifiers: list[Reason] | None, missing: list[Reason]) -> dict[str, Any]:
    """A verdict's qualifiers and missing items: English sentences for readers of the JSON
    report, and the codes the HTML and Markdown reports render in the report's language."""
    return {
        "qualifiers": english(qualifiers) if qualifiers is not None else None,
        "missing": english(missing),
        "qualifier_codes": reasons_to_json(qualifiers or []),
        "missing_codes": reasons_to_json(missing),
    }


def _segment(segment: Any) -> dict[str, Any]:
    row = segment.row
    return {
        "segment": segment.name,
        "verdict": segment.verdict,
        "exposed": segment.exposed is not None,
        **_reasons(row.qualifiers if row else None, row.missing if row else []),
        "paths": row.paths if row else [],
        "decided_at": row.decided_at if row else None,
        "exposed_detail": segment.exposed.to_json() if segment.exposed else None,
        "devices": segment.devices,
        "covered_devices": segment.covered_devices,
    }


def _observations(store: Store, scan_id: str) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {}
    for row in store.db.query(
        "select address, port, kind, value, source, observed_at from observations where scan_id = ? order by observed_at, rowid",
        [scan_id],
    ):
        value = row["value"] or ""
        result.setdefault(row["address"], []).append(
            {
                "kind": row["kind"],
                "port": row["port"],
                "source": row["source"],
                "value": value[:OBSERVATION_CHARS],
                "truncated": len(value) > OBSERVATION_CHARS,
            }
        )
    return result


def _device(device: DeviceView, findings: list[Finding], observations: list[dict[str, Any]]) -> dict[str, Any]:
    ident = device.identity or {}
    asset = device.asset
    mine = [f for f in findings if f.subject == device.address]
    top = max((f.severity for f in mine), key=severity_rank, default=None)
    row = device.verdict_row
    return {
        "address": device.address,
        "device_id": device.device_id,
        "mac": device.mac,
        "ports": device.ports,
        "vendor": device.vendor,
        "brand": ident.get("brand"),
        "model": ident.get("model"),
        "firmware": ident.get("firmware"),
        "serial": ident.get("serial"),
        "device_type": ident.get("device_type"),
        "confidence": ident.get("confidence"),
        "covered": device.covered,
        "advisories": list(ident.get("advisories") or []),
        "verdict": device.verdict,
        "verdict_source": device.verdict_source,
        "verdict_source_code": device.source.to_json() if device.source else None,
        **_reasons(row.qualifiers if row else None, row.missing if row else []),
        "paths": row.paths if row else [],
        "exposed": device.exposed is not None,
        "segment": device.segment,
        "register": device.register,
        "asset_id": asset.asset_id if asset else None,
        "declared_maker": asset.declared_maker if asset else None,
        "declared_brand": asset.declared_brand if asset else None,
        "maker_mismatch": bool(device.reconciled and device.reconciled.maker_mismatch),
        "register_detail": device.reconciled.detail if device.reconciled else "",
        "matched_by": device.reconciled.matched_by if device.reconciled else None,
        "location": asset.location if asset else None,
        "department": asset.department if asset else None,
        "purpose": asset.purpose if asset else None,
        "dpia_ref": asset.dpia_ref if asset else None,
        "procurement_ref": asset.procurement_ref if asset else None,
        "findings": [f.id for f in mine],
        "top_severity": top,
        "signatures": ident.get("signatures", []),
        "conflicts": ident.get("conflicts", []),
        "observations": observations,
        "exposed_detail": device.exposed.to_json() if device.exposed else None,
    }


def _register(view: ScanView) -> dict[str, Any] | None:
    if not view.has_register:
        return None
    statuses = Counter(d.register for d in view.devices)
    return {
        "assets": view.register_size,
        "matched": statuses.get("matched", 0),
        "unregistered": statuses.get("unregistered", 0),
        "missing": len(view.missing_assets),
        "mismatched": sum(bool(d.reconciled and d.reconciled.maker_mismatch) for d in view.devices),
        "missing_assets": [m.asset.to_json() for m in view.missing_assets if m.asset],
    }
