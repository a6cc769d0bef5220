"""Report words for the estate model (sites, assessments, egress runs, interrupted scans), in
English and Dutch, keyed like the report's own catalogue (:mod:`camaudit.report.i18n`)."""

from __future__ import annotations

from typing import Any

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "site": "Site",
        "assessment": "Assessment",
        "assessment_of": "assessment {id} of {created}: policy {policy}, register {register}, camaudit {version} ({reason})",
        "no_register": "none",
        "egress_runs": "Egress runs used",
        "egress_runs_none": "none besides the scan's own",
        "interrupted_banner": ("INTERRUPTED SCAN: this scan did not complete. It shows what the scan saw before it "
                               "stopped; devices, ports and evidence it did not reach are missing, so absence here "
                               "proves nothing."),
        "incomplete_banner": "THE SCAN DID NOT COMPLETE (status: {status}). What it shows is partial.",
        "not_assessed": ("Egress evidence recorded after this assessment is not in it ({what}). "
                         "`camaudit assess` (or `report --reassess`) makes an assessment that uses it."),
        "runs": "egress runs {runs}",
        "verdicts": "{n} verdict(s) decided since",
        "statement": "Statement",
        "statement_intro": "The claim the evidence supports, with its qualifiers, to paste into an audit file.",
        "reproducibility": "Reproducibility",
        "repro_camaudit_version": "camaudit version (assessment)",
        "repro_report_camaudit_version": "camaudit version (this report)",
        "repro_assessment_id": "Assessment",
        "repro_policy_hash": "Policy hash",
        "repro_register_version": "Register version",
        "repro_register_imported_at": "Register imported",
        "repro_signatures_version": "Signatures version",
        "repro_scan_id": "Scan",
        "repro_egress_runs": "Egress runs",
        "findings_over_time": "Findings over time",
        "not_assessed_scan": "not assessed",
        "estate_title": "Camera audit: estate report",
        "estate_intro": "Every site's latest complete scan, with one conclusion per site on the closed-network claim.",
        "flags": "Sites to look at first",
        "no_flags": "Every site's latest scan completed{age}.",
        "within_age": " within {max_age}",
        "conclusions": "Conclusions per site",
        "sites": "Sites",
        "inventory": "Estate inventory",
        "by_site_maker": "Devices by maker per site",
        "verdicts_by_site": "Egress verdicts per site (devices)",
        "register_across": "Register across sites",
        "register_across_none": "No asset declared at one site was found at another.",
        "site_egress_runs": "Egress runs of the site",
        "run": "Run", "kind": "Kind", "when": "Started", "vantage": "Vantage",
        "latest_scan": "Latest scan",
        "reported_scan": "Scan reported",
        "none": "none",
    },
    "nl": {
        "site": "Locatie",
        "assessment": "Beoordeling",
        "assessment_of": "beoordeling {id} van {created}: beleid {policy}, register {register}, camaudit {version} ({reason})",
        "no_register": "geen",
        "egress_runs": "Gebruikte egress-runs",
        "egress_runs_none": "geen, naast die van de scan zelf",
        "interrupted_banner": ("ONDERBROKEN SCAN: deze scan is niet afgerond. Hij toont wat de scan zag voordat hij "
                               "stopte; apparaten, poorten en bewijs die hij niet bereikte ontbreken, dus wat hier "
                               "ontbreekt bewijst niets."),
        "incomplete_banner": "DE SCAN IS NIET AFGEROND (status: {status}). Wat hij toont is onvolledig.",
        "not_assessed": ("Egress-bewijs dat na deze beoordeling is vastgelegd zit er niet in ({what}). "
                         "`camaudit assess` (of `report --reassess`) maakt een beoordeling die het gebruikt."),
        "runs": "egress-runs {runs}",
        "verdicts": "{n} oordeel/oordelen sindsdien genomen",
        "statement": "Verklaring",
        "statement_intro": "De bewering die het bewijs draagt, met haar voorbehouden, om in een auditdossier te plakken.",
        "reproducibility": "Reproduceerbaarheid",
        "repro_camaudit_version": "camaudit-versie (beoordeling)",
        "repro_report_camaudit_version": "camaudit-versie (dit rapport)",
        "repro_assessment_id": "Beoordeling",
        "repro_policy_hash": "Beleidshash",
        "repro_register_version": "Registerversie",
        "repro_register_imported_at": "Register ingelezen",
        "repro_signatures_version": "Versie van de signaturen",
        "repro_scan_id": "Scan",
        "repro_egress_runs": "Egress-runs",
        "findings_over_time": "Bevindingen door de tijd",
        "not_assessed_scan": "niet beoordeeld",
        "estate_title": "Camera-audit: overzicht van alle locaties",
        "estate_intro": "De laatste afgeronde scan van elke locatie, met per locatie één conclusie over de bewering dat het netwerk gesloten is.",
        "flags": "Locaties die eerst aandacht vragen",
        "no_flags": "De laatste scan van elke locatie is afgerond{age}.",
        "within_age": " binnen {max_age}",
        "conclusions": "Conclusie per locatie",
        "sites": "Locaties",
        "inventory": "Inventaris van alle locaties",
        "by_site_maker": "Apparaten per fabrikant per locatie",
        "verdicts_by_site": "Egress-oordelen per locatie (apparaten)",
        "register_across": "Register over locaties heen",
        "register_across_none": "Geen bij de ene locatie geregistreerd apparaat is bij een andere gevonden.",
        "site_egress_runs": "Egress-runs van de locatie",
        "run": "Run", "kind": "Soort", "when": "Gestart", "vantage": "Meetpunt",
        "latest_scan": "Laatste scan",
        "reported_scan": "Getoonde scan",
        "none": "geen",
    },
}


def estate_text(lang: str) -> dict[str, str]:
    return _TEXT.get(lang, _TEXT["en"])


def assessment_line(doc: dict[str, Any]) -> str:
    """The one line that names the assessment a report shows."""
    e = estate_text(doc["lang"])
    a = doc.get("assessment") or {}
    register = (f"{a['register_hash'][:12]} ({str(a.get('register_imported_at') or '')[:19]})"
                if a.get("register_hash") else e["no_register"])
    return e["assessment_of"].format(
        id=a.get("assessment_id", "?"), created=str(a.get("created_at") or "")[:19].replace("T", " "),
        policy=(a.get("policy_hash") or "?")[:12], register=register, version=a.get("camaudit_version") or "?",
        reason=a.get("reason") or "")


def banner(doc: dict[str, Any]) -> str | None:
    """The banner a report of an unfinished scan opens with; None for a complete scan."""
    status = doc["scan"]["status"]
    if status == "complete":
        return None
    e = estate_text(doc["lang"])
    return e["interrupted_banner"] if status == "interrupted" else e["incomplete_banner"].format(status=status)


def not_assessed_note(doc: dict[str, Any]) -> str | None:
    """A note naming egress runs recorded after the assessment shown; None when there are none."""
    e = estate_text(doc["lang"])
    runs = doc.get("egress_runs_not_assessed") or []
    newer = doc.get("verdicts_not_assessed") or 0
    parts = ([e["runs"].format(runs=" ".join(runs))] if runs else []) + ([e["verdicts"].format(n=newer)] if newer else [])
    return e["not_assessed"].format(what="; ".join(parts)) if parts else None
