"""The words of the human-readable reports, in English and Dutch.

Machine formats (JSON, CSV, exports) keep English keys and the contract's values (verdicts,
severities); HTML and Markdown reports speak the reader's language. Verdict explanations follow
the glossary of reference/egress.md section 9.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import UsageError

LANGUAGES = ("en", "nl")

_EN: dict[str, str] = {
    "title": "Camera audit report",
    "generated": "Generated",
    "scan": "Scan",
    "started": "Started",
    "finished": "Finished",
    "status": "Status",
    "targets": "Targets",
    "addresses_scanned": "Addresses scanned",
    "hosts_answered": "Hosts that answered",
    "policy": "Policy",
    "notes": "Notes from the scan",
    "contents": "Contents",
    "summary": "Summary",
    "summary_intro": "What this scan found, for the CISO: the makers on the network, which of them are covered by NDAA section 889 and the FCC Covered List, the egress verdicts and the findings by severity.",
    "devices": "Devices",
    "identified": "Identified cameras and recorders",
    "covered_devices": "Devices of a covered maker",
    "by_maker": "Devices by maker",
    "by_brand": "Devices by brand",
    "verdicts": "Egress verdicts (devices)",
    "findings_by_severity": "Findings by severity",
    "findings": "Findings",
    "no_findings": "The policy raised no finding for this scan.",
    "segments": "Egress verdict per segment",
    "segment": "Segment",
    "no_verdict_recorded": "No egress verdict was recorded for this scan: nothing here says whether these devices can or cannot reach the internet.",
    "no_segments": "No segment verdict was recorded for this scan.",
    "qualifiers": "Qualifiers",
    "missing": "Missing",
    "paths": "Paths tested",
    "exposed": "Exposed",
    "egress_evidence": "Egress evidence per segment",
    "ev_listener": "Listener",
    "ev_vantage": "Vantage (sensor)",
    "ev_run": "Check run",
    "ev_controls": "Control runs (positive controls)",
    "ev_no_control": "no control run speaks for this check",
    "ev_passed": "reached the listener",
    "ev_failed": "did not reach the listener",
    "ev_path": "Path",
    "ev_result": "Result",
    "ev_nonce": "Nonce seen by the listener",
    "ev_answer": "Answer or timeout",
    "ev_detail": "Detail",
    "ev_seen": "seen",
    "ev_not_seen": "not seen",
    "ev_registrations": "Cloud registrations the device reports",
    "ev_no_registrations": "the device reports no cloud registration",
    "ev_flows": "Passive flows (capture)",
    "ev_todo": "What to do",
    "ev_none": "none",
    "device_table": "Device table",
    "filter": "Filter",
    "filter_placeholder": "address, maker, model, serial ...",
    "all": "all",
    "shown": "shown",
    "of": "of",
    "address": "Address",
    "mac": "MAC",
    "maker": "Maker",
    "brand": "Brand",
    "model": "Model",
    "firmware": "Firmware",
    "serial": "Serial",
    "type": "Type",
    "confidence": "Confidence",
    "covered": "Covered",
    "advisories": "Advisories",
    "verdict": "Verdict",
    "verdict_source": "Verdict from",
    "register": "Register",
    "asset": "Asset",
    "location": "Location",
    "department": "Department",
    "ports": "Open ports",
    "severity": "Severity",
    "rule": "Rule",
    "subject": "Subject",
    "detail": "Detail",
    "yes": "yes",
    "no": "no",
    "evidence": "Evidence per device",
    "evidence_intro": "For each device: the signatures that identified it with the observation each matched, the verdict with its qualifiers and what was missing, and the register entry it was matched with.",
    "identity_evidence": "Identity: signatures and the observations they matched",
    "no_signatures": "No signature matched: the maker is not identified.",
    "verdict_evidence": "Egress verdict",
    "register_evidence": "Register",
    "observations": "Observations recorded",
    "truncated": "cut short here; the store holds the whole value",
    "conflicts": "Conflicting evidence",
    "register_section": "Asset register",
    "register_none": "No asset register was imported, so found devices were not reconciled with declared ones (camaudit register import FILE).",
    "register_assets": "Registered assets",
    "register_matched": "Registered and found",
    "register_unregistered": "Found, not registered",
    "register_missing": "Registered, not found",
    "register_mismatch": "Declared maker or brand differs",
    "missing_assets": "Registered assets not found",
    "changes": "Changes since the previous scan",
    "changes_none": "No earlier scan to compare with.",
    "changes_nothing": "Nothing changed since the previous scan",
    "change_appeared": "appeared",
    "change_vanished": "vanished",
    "change_moved": "moved address",
    "change_firmware": "changed firmware",
    "change_identity": "changed identity",
    "change_verdict": "changed verdict",
    "before": "Before",
    "after": "After",
    "glossary": "Verdict words",
    "sev_critical": "critical",
    "sev_high": "high",
    "sev_medium": "medium",
    "sev_low": "low",
    "sev_info": "info",
    "reg_matched": "registered",
    "reg_unregistered": "not registered",
    "reg_missing": "not found",
    "reg_no_register": "no register",
    "reg_not_a_camera": "not a camera",
    "v_OPEN": "at least one packet from the segment reached an external endpoint, or a device asserted it is registered with an external service.",
    "v_EXPOSED": "an inbound path from the internet is configured or active (port mapping, DDNS, cloud binding).",
    "v_CLOSED": "every planned path was tested with controls and showed no egress during the stated window (qualified).",
    "v_INCONCLUSIVE": "coverage incomplete or evidence conflicting; the list of what is missing says why.",
    "v_NONE": "no verdict recorded: egress was not verified for this device in this scan.",
    "verdict_NONE": "no verdict",
    "unknown": "unknown",
    "footer": "Written by camaudit {version} from the evidence store alone; no device was contacted to write it.",
}

_NL: dict[str, str] = {
    "title": "Auditrapport camera's",
    "generated": "Gemaakt",
    "scan": "Scan",
    "started": "Begonnen",
    "finished": "Klaar",
    "status": "Status",
    "targets": "Doelen",
    "addresses_scanned": "Adressen gescand",
    "hosts_answered": "Hosts die antwoordden",
    "policy": "Beleid",
    "notes": "Opmerkingen bij de scan",
    "contents": "Inhoud",
    "summary": "Samenvatting",
    "summary_intro": "Wat deze scan vond, voor de CISO: de fabrikanten op het netwerk, welke daarvan onder NDAA sectie 889 en de FCC Covered List vallen, de oordelen over internetverkeer en de bevindingen naar ernst.",
    "devices": "Apparaten",
    "identified": "Geïdentificeerde camera's en recorders",
    "covered_devices": "Apparaten van een gelijste fabrikant",
    "by_maker": "Apparaten per fabrikant",
    "by_brand": "Apparaten per merk",
    "verdicts": "Oordelen internetverkeer (apparaten)",
    "findings_by_severity": "Bevindingen naar ernst",
    "findings": "Bevindingen",
    "no_findings": "Het beleid leverde voor deze scan geen bevinding op.",
    "segments": "Oordeel internetverkeer per segment",
    "segment": "Segment",
    "no_verdict_recorded": "Voor deze scan is geen oordeel over internetverkeer vastgelegd: niets hier zegt of deze apparaten het internet wel of niet kunnen bereiken.",
    "no_segments": "Voor deze scan is geen oordeel per segment vastgelegd.",
    "qualifiers": "Voorbehouden",
    "missing": "Ontbreekt",
    "paths": "Geteste routes",
    "exposed": "Blootgesteld",
    "egress_evidence": "Bewijs internetverkeer per segment",
    "ev_listener": "Listener",
    "ev_vantage": "Meetpunt (sensor)",
    "ev_run": "Meting",
    "ev_controls": "Controleruns (positieve controles)",
    "ev_no_control": "geen controlerun hoort bij deze meting",
    "ev_passed": "bereikte de listener",
    "ev_failed": "bereikte de listener niet",
    "ev_path": "Route",
    "ev_result": "Resultaat",
    "ev_nonce": "Nonce gezien door de listener",
    "ev_answer": "Antwoord of time-out",
    "ev_detail": "Toelichting",
    "ev_seen": "gezien",
    "ev_not_seen": "niet gezien",
    "ev_registrations": "Cloudaanmeldingen die het apparaat meldt",
    "ev_no_registrations": "het apparaat meldt geen cloudaanmelding",
    "ev_flows": "Passieve verbindingen (opname)",
    "ev_todo": "Wat te doen",
    "ev_none": "geen",
    "device_table": "Apparatentabel",
    "filter": "Filter",
    "filter_placeholder": "adres, fabrikant, model, serienummer ...",
    "all": "alle",
    "shown": "getoond",
    "of": "van",
    "address": "Adres",
    "mac": "MAC",
    "maker": "Fabrikant",
    "brand": "Merk",
    "model": "Model",
    "firmware": "Firmware",
    "serial": "Serienummer",
    "type": "Soort",
    "confidence": "Zekerheid",
    "covered": "Gelijst",
    "advisories": "Kwetsbaarheden",
    "verdict": "Oordeel",
    "verdict_source": "Oordeel van",
    "register": "Register",
    "asset": "Asset",
    "location": "Locatie",
    "department": "Afdeling",
    "ports": "Open poorten",
    "severity": "Ernst",
    "rule": "Regel",
    "subject": "Onderwerp",
    "detail": "Toelichting",
    "yes": "ja",
    "no": "nee",
    "evidence": "Bewijs per apparaat",
    "evidence_intro": "Per apparaat: de signaturen die het identificeerden met de waarneming die elk ervan trof, het oordeel met zijn voorbehouden en wat ontbrak, en de registerregel waarmee het werd gekoppeld.",
    "identity_evidence": "Identiteit: signaturen en de waarnemingen die ze troffen",
    "no_signatures": "Geen signatuur trof: de fabrikant is niet vastgesteld.",
    "verdict_evidence": "Oordeel internetverkeer",
    "register_evidence": "Register",
    "observations": "Vastgelegde waarnemingen",
    "truncated": "hier afgekapt; de opslag bevat de hele waarde",
    "conflicts": "Tegenstrijdig bewijs",
    "register_section": "Assetregister",
    "register_none": "Er is geen assetregister ingelezen, dus gevonden apparaten zijn niet vergeleken met opgegeven apparaten (camaudit register import BESTAND).",
    "register_assets": "Geregistreerde assets",
    "register_matched": "Geregistreerd en gevonden",
    "register_unregistered": "Gevonden, niet geregistreerd",
    "register_missing": "Geregistreerd, niet gevonden",
    "register_mismatch": "Opgegeven fabrikant of merk wijkt af",
    "missing_assets": "Geregistreerde assets die niet zijn gevonden",
    "changes": "Wijzigingen sinds de vorige scan",
    "changes_none": "Er is geen eerdere scan om mee te vergelijken.",
    "changes_nothing": "Niets veranderd sinds de vorige scan",
    "change_appeared": "verschenen",
    "change_vanished": "verdwenen",
    "change_moved": "ander adres",
    "change_firmware": "andere firmware",
    "change_identity": "andere identiteit",
    "change_verdict": "ander oordeel",
    "before": "Voor",
    "after": "Na",
    "glossary": "Woorden van het oordeel",
    "sev_critical": "kritiek",
    "sev_high": "hoog",
    "sev_medium": "middel",
    "sev_low": "laag",
    "sev_info": "info",
    "reg_matched": "geregistreerd",
    "reg_unregistered": "niet geregistreerd",
    "reg_missing": "niet gevonden",
    "reg_no_register": "geen register",
    "reg_not_a_camera": "geen camera",
    "v_OPEN": "minstens één pakket uit het segment bereikte een extern eindpunt, of een apparaat meldde zelf dat het bij een externe dienst is aangemeld.",
    "v_EXPOSED": "er is een inkomende route vanaf het internet ingesteld of actief (port mapping, DDNS, cloudkoppeling).",
    "v_CLOSED": "elke geplande route is met controles getest en liet in het genoemde tijdvak geen uitgaand verkeer zien (onder voorbehoud).",
    "v_INCONCLUSIVE": "de dekking is onvolledig of het bewijs tegenstrijdig; de lijst van wat ontbreekt zegt waarom.",
    "v_NONE": "geen oordeel vastgelegd: internetverkeer is voor dit apparaat in deze scan niet onderzocht.",
    "verdict_NONE": "geen oordeel",
    "unknown": "onbekend",
    "footer": "Geschreven door camaudit {version} uit alleen de bewijsopslag; voor dit rapport is geen apparaat benaderd.",
}

_TABLES = {"en": _EN, "nl": _NL}


def translator(lang: str) -> dict[str, str]:
    """The words for ``lang``; UsageError for a language camaudit does not speak."""
    if lang not in _TABLES:
        raise UsageError(f"no report language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    return _TABLES[lang]


def keys_match() -> bool:
    """Both languages define the same words (a test keeps it so)."""
    return set(_EN) == set(_NL)


# -- data-driven text ----------------------------------------------------------------------------
#
# Verdicts, their qualifiers and gaps, "not verified" reads and verdict sources are reasons with
# codes, rendered through the message catalogue (camaudit.report.messages). What remains here is
# the register's reconciliation, which camaudit.register still writes as English sentences: a
# Dutch report translates the sentences it knows, pattern by pattern; the values inside them
# stay as recorded, and a sentence no pattern knows stays English rather than be guessed at.

def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + pattern + "$", re.DOTALL)


#: (English pattern, Dutch template). Groups named ``t_*`` are translated again (nested sentences).
_NL_SENTENCES: list[tuple[re.Pattern[str], str]] = [
    (_rx(r"(?P<t_a>declared .+?); (?P<t_b>declared .+)"), "{t_a}; {t_b}"),
    (_rx(r"declared maker (?P<a>.+?), identified maker (?P<b>.+?) \(sold as (?P<c>.+)\)"),
     "opgegeven fabrikant {a}, vastgestelde fabrikant {b} (verkocht als {c})"),
    (_rx(r"declared maker (?P<a>.+?), identified maker (?P<b>.+)"), "opgegeven fabrikant {a}, vastgestelde fabrikant {b}"),
    (_rx(r"declared brand (?P<a>.+?), identified brand (?P<b>.+)"), "opgegeven merk {a}, vastgesteld merk {b}"),
    (_rx(r"found, but its maker could not be identified"), "gevonden, maar de fabrikant kon niet worden vastgesteld"),
    (_rx(r"(?P<a>\S+) (?P<v>.+?) is registered to (?P<b>.+?) \(serial (?P<c>.*?)\), but the device found there reports "
         r"serial (?P<d>.+)"),
     "{a} {v} staat geregistreerd op {b} (serienummer {c}), maar het apparaat dat daar is gevonden meldt serienummer {d}"),
]

_SENTENCES = {"nl": _NL_SENTENCES}


def localise(text: Any, lang: str) -> Any:
    """``text`` (a sentence, or a list of them) in ``lang`` where camaudit knows the sentence;
    values inside it stay as recorded, and an unknown sentence stays as it is."""
    if lang == "en" or lang not in _SENTENCES:
        return text
    if isinstance(text, list | tuple):
        return [localise(item, lang) for item in text]
    if not isinstance(text, str) or not text:
        return text
    return _translate(text, _SENTENCES[lang], 0)


def _translate(text: str, table: list[tuple[re.Pattern[str], str]], depth: int) -> str:
    if depth > 6:
        return text
    for pattern, template in table:
        match = pattern.match(text)
        if match is None:
            continue
        values = {k: (_translate(v, table, depth + 1) if k.startswith("t_") and v else (v or ""))
                  for k, v in match.groupdict().items()}
        return template.format(**values)
    return text
