"""The report document: one scan, read from the store alone, as one JSON-able dictionary that
every report format renders (HTML, Markdown, JSON, CSV).

A report shows one frozen assessment of the scan (named in the document): the scan's latest, or
the first one, made and recorded when there is none. Reporting again never changes an
assessment, so an earlier report can be reproduced; ``reassess`` makes a new one.
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
    create_assessment,
    current_assessment,
    evaluate,
    gather_verdicts,
    scan_view,
)
from ..diff import compare, previous_scan
from ..model import Assessment, Scan, utc_now
from ..model.verdicts import Reason, english, reasons_to_json
from ..policy import Policy, load_policy, severity_rank
from ..store import Store
from ..store import assessments as stored_assessments
from ..store.observations import observations_of_scan
from .egress_evidence import egress_evidence
from .i18n import translator
from .messages import remedy
from .statement import statement_section

#: Observation values longer than this are cut in reports (the store keeps them whole).
OBSERVATION_CHARS = 600


def build_report(
    store: Store,
    scan_ref: str = "latest",
    *,
    policy: Policy | None = None,
    lang: str = "en",
    reassess: bool = False,
    site: str | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """The report of one scan's assessment (:func:`camaudit.assess.current_assessment`; with
    ``reassess``, a new one). Findings in the document are in ``lang``. With ``record`` False
    nothing is written: a scan never assessed is assessed for this report only."""
    translator(lang)  # refuse an unknown language before any work
    scan = store.scan(scan_ref, site=site)
    if reassess and record and not store.read_only:
        assessment, findings_en = create_assessment(store, scan.id, policy, reason="reassess")
    else:
        assessment, findings_en = current_assessment(store, scan.id, policy, record=record)
    view = scan_view(store, scan.id, assessment=assessment)
    # Egress evidence recorded after the assessment is not in it (assessments are frozen): say so.
    verdicts_now, runs_now = gather_verdicts(store, view.scan, lambda: (d.address for d in view.devices))
    not_assessed = [r for r in runs_now if r not in view.egress_runs]
    newer_verdicts = sum(i not in view.verdict_ids for i, _ in verdicts_now) if assessment.inputs_recorded else 0
    findings = findings_en if lang == "en" else _localised(view, findings_en, assessment, policy, lang)
    changes = None
    before = previous_scan(store, view.scan)
    if before is not None:
        earlier = stored_assessments.latest_assessment(store, before.id)
        changes = compare(scan_view(store, before.id, assessment=earlier), view).to_json()
    observations = _observations(store, view.scan.id)
    doc = {
        "report_version": 1,
        "camaudit_version": __version__,
        "generated_at": utc_now(),
        "lang": lang,
        "database": str(Path(store.path).name),
        "policy": assessment.policy_source or (policy or load_policy()).source,
        "assessment": assessment.to_json(),
        "scan": {
            "scan_id": view.scan.id,
            "site": view.scan.site,
            "started_at": view.scan.started_at,
            "finished_at": view.scan.finished_at,
            "status": view.scan.status,
            "interrupted": view.scan.status == "interrupted",
            "targets": view.scan.targets,
            "addresses_scanned": view.scan.addresses_scanned,
            "hosts": len(view.devices),
            "notes": view.scan.notes,
            "camaudit_version": view.scan.camaudit_version,
            "error": view.scan.error,
        },
        "summary": _summary(view, findings),
        "verdict_recorded": bool(view.verdict_rows),
        "egress_runs": list(view.egress_runs),
        "egress_runs_not_assessed": not_assessed,
        "verdicts_not_assessed": newer_verdicts,
        "segments": [_segment(s, lang) for s in view.segments],
        "devices": [_device(d, findings, observations.get(d.address, []), lang) for d in view.devices],
        "findings": [f.to_json() for f in findings],
        "register": _register(view),
        "changes": changes,
        "history": scan_history(store, view.scan),
    }
    doc["statement"] = statement_section(doc)
    return doc


#: How many scans the "findings over time" chart goes back.
HISTORY_SCANS = 12


def scan_history(store: Store, scan: Scan, limit: int = HISTORY_SCANS) -> list[dict[str, Any]]:
    """The scan and the ones of its site before it, oldest first, with the findings of each
    one's latest assessment (none for a scan never assessed): the "findings over time" chart."""
    earlier = [s for s in store.scans(site=scan.site) if s.started_at <= scan.started_at and s.status != "running"]
    rows = []
    for past in earlier[:limit]:
        assessment = stored_assessments.latest_assessment(store, past.id)
        counts = count_by_severity(stored_assessments.findings_of(store, assessment.id)) if assessment else None
        rows.append({"scan_id": past.id, "started_at": past.started_at, "status": past.status,
                     "assessment_id": assessment.id if assessment else None, "findings": counts})
    return rows[::-1]


def _localised(view: ScanView, findings: list[Finding], assessment: Assessment, policy: Policy | None,
               lang: str) -> list[Finding]:
    """The assessment's findings with their titles and details in ``lang``: the policy the
    assessment applied speaks them again on the same view; a finding keeps its recorded
    (English) text when that policy is no longer the one at hand."""
    policy = policy or load_policy()
    if assessment.policy_hash and policy.content_hash != assessment.policy_hash:
        return findings
    by_id = {f.id: f for f in evaluate(view, policy, lang)}
    return [by_id.get(f.id, f) if by_id.get(f.id) and by_id[f.id].severity == f.severity else f for f in findings]


def _summary(view: ScanView, findings: list[Finding]) -> dict[str, Any]:
    devices = view.devices
    makers = Counter(d.vendor for d in devices)
    covered_by_maker = Counter(d.vendor for d in devices if d.covered)
    brands = Counter((d.vendor, d.identity_doc().get("brand") or d.vendor) for d in devices if d.vendor != "unknown")
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
    report, and the codes the HTML and Markdown reports render in the report's language; beside
    each missing item, what to do about it (``missing_remedies``, English, None when none)."""
    return {
        "qualifiers": english(qualifiers) if qualifiers is not None else None,
        "missing": english(missing),
        "missing_remedies": [remedy(m, "en") for m in missing],
        "qualifier_codes": reasons_to_json(qualifiers or []),
        "missing_codes": reasons_to_json(missing),
    }


def _segment(segment: Any, lang: str = "en") -> dict[str, Any]:
    row = segment.row
    return {
        "egress_evidence": egress_evidence(row, lang),
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
    for obs in observations_of_scan(store, scan_id):
        if obs.kind == "open_port":
            continue  # the ports are listed on their own
        value = obs.value or ""
        result.setdefault(obs.address, []).append(
            {
                "kind": obs.kind,
                "port": obs.port,
                "source": obs.source,
                "value": value[:OBSERVATION_CHARS],
                "truncated": len(value) > OBSERVATION_CHARS,
            }
        )
    return result


def _device(device: DeviceView, findings: list[Finding], observations: list[dict[str, Any]],
            lang: str = "en") -> dict[str, Any]:
    ident = device.identity_doc()
    asset = device.asset
    mine = [f for f in findings if f.subject == device.address]
    top = max((f.severity for f in mine), key=severity_rank, default=None)
    row = device.verdict_row
    return {
        "egress_evidence": egress_evidence(row, lang),
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
