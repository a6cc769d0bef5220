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
# The verdict logic (camaudit/egress/verdict.py), assessment (verdict sources) and the register's
# reconciliation write their sentences in English into the store. A Dutch report translates the
# sentences it knows, pattern by pattern; the values inside them (addresses, paths, device
# replies, times) stay as recorded. A sentence no pattern knows stays English rather than be
# guessed at. Verdict words (OPEN, CLOSED, ...) are the contract's and are never translated.

def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + pattern + "$", re.DOTALL)


#: (English pattern, Dutch template). Groups named ``t_*`` are translated again (nested sentences).
_NL_SENTENCES: list[tuple[re.Pattern[str], str]] = [
    # the register's reconciliation
    (_rx(r"(?P<t_a>declared .+?); (?P<t_b>declared .+)"), "{t_a}; {t_b}"),
    (_rx(r"declared maker (?P<a>.+?), identified maker (?P<b>.+?) \(sold as (?P<c>.+)\)"),
     "opgegeven fabrikant {a}, vastgestelde fabrikant {b} (verkocht als {c})"),
    (_rx(r"declared maker (?P<a>.+?), identified maker (?P<b>.+)"), "opgegeven fabrikant {a}, vastgestelde fabrikant {b}"),
    (_rx(r"declared brand (?P<a>.+?), identified brand (?P<b>.+)"), "opgegeven merk {a}, vastgesteld merk {b}"),
    (_rx(r"found, but its maker could not be identified"), "gevonden, maar de fabrikant kon niet worden vastgesteld"),
    (_rx(r"(?P<a>\S+) (?P<v>.+?) is registered to (?P<b>.+?) \(serial (?P<c>.*?)\), but the device found there reports "
         r"serial (?P<d>.+)"),
     "{a} {v} staat geregistreerd op {b} (serienummer {c}), maar het apparaat dat daar is gevonden meldt serienummer {d}"),
    # assessment
    (_rx(r"an egress check of this device in this scan"),
     "een controle van het uitgaande verkeer van dit apparaat in deze scan"),
    # roll-up prefixes (the rest is translated again)
    (_rx(r"device (?P<d>[^\s:]+): (?P<t_r>.+)"), "apparaat {d}: {t_r}"),
    (_rx(r"OPEN: (?P<k>device|segment) (?P<d>[^\s:]+): (?P<t_r>.+)"), "OPEN: {k} {d}: {t_r}"),
    (_rx(r"(?P<n>\d+) device\(s\) INCONCLUSIVE: (?P<l>.+)"), "{n} apparaat/apparaten INCONCLUSIVE: {l}"),
    (_rx(r"every one of (?P<n>\d+) device\(s\) is CLOSED on its own evidence"),
     "elk van de {n} apparaten is CLOSED op eigen bewijs"),
    (_rx(r"(?P<a>\d+) of (?P<b>\d+) device\(s\) CLOSED on their own evidence"), "{a} van {b} apparaten CLOSED op eigen bewijs"),
    (_rx(r"the sensor's own check is (?P<v>[A-Z]+): (?P<t_r>.+)"), "de eigen controle van de sensor is {v}: {t_r}"),
    (_rx(r"the sensor's own check is (?P<v>[A-Z]+)"), "de eigen controle van de sensor is {v}"),
    (_rx(r"an active egress check from the segment"), "een actieve controle van uitgaand verkeer vanuit het segment"),
    (_rx(r"no device of the segment was assessed, so the sensor's placement was matched to no camera"),
     "geen apparaat van het segment is beoordeeld, dus de plaatsing van de sensor is met geen enkele camera vergeleken"),
    # the active check
    (_rx(r"no egress observed on (?P<n>\d+) tested paths \((?P<p>.+?)\) from (?P<t_v>.+?) between (?P<a>\S+) and (?P<b>\S+)"),
     "geen uitgaand verkeer waargenomen op {n} geteste routes ({p}) vanaf {t_v} tussen {a} en {b}"),
    (_rx(r"egress observed on (?P<p>.+?) from (?P<t_v>.+?) between (?P<a>\S+) and (?P<b>\S+)"),
     "uitgaand verkeer waargenomen op {p} vanaf {t_v} tussen {a} en {b}"),
    (_rx(r"(?P<h>[^()]+) \((?P<a>[^;()]+); gateway no default gateway\)"), "{h} ({a}; geen standaardgateway)"),
    (_rx(r"(?P<h>[^()]+) \((?P<a>[^;()]+); gateway (?P<g>[^()]+)\)"), "{h} ({a}; gateway {g})"),
    (_rx(r"positive control: (?P<t_r>run .+)"), "positieve controle: {t_r}"),
    (_rx(r"run (?P<r>\S+) from (?P<t_v>.+?) at (?P<a>\S+) reached the listener on (?P<n>\d+) paths(?P<t_more>; run .+)?"),
     "run {r} vanaf {t_v} om {a} bereikte de listener op {n} routes{t_more}"),
    (_rx(r"; (?P<t_r>run .+)"), "; {t_r}"),
    (_rx(r"no positive control was needed: every path was refused locally or by an internal router"),
     "geen positieve controle nodig: elke route werd lokaal of door een interne router geweigerd"),
    (_rx(r"not present from this vantage: (?P<l>.+)"), "niet aanwezig vanaf dit meetpunt: {l}"),
    (_rx(r"placement: the verdict holds for traffic from this sensor's address and gateway; firewall rules keyed on "
         r"device addresses, MACs or 802\.1X groups are not covered by it"),
     "plaatsing: het oordeel geldt voor verkeer vanaf het adres en de gateway van deze sensor; firewallregels op "
     "apparaatadressen, MAC-adressen of 802.1X-groepen vallen er niet onder"),
    (_rx(r"OPEN through DNS: .+"), "OPEN via DNS: de resolver van het segment bracht een nonce-naam naar de zone van de "
     "auditor (DNS-recursie bereikt het internet; gegevens kunnen alleen al via DNS naar buiten)"),
    (_rx(r"OPEN through IPv6: .+"), "OPEN via IPv6: een router kondigt een globaal prefix aan en stuurt IPv6 door"),
    (_rx(r"one-way egress: .+"), "uitgaand verkeer in één richting: de listener legde de probes vast, de antwoorden "
     "kwamen niet terug"),
    (_rx(r"(?P<p>\S+): planned but not tested"), "{p}: gepland maar niet getest"),
    (_rx(r"no egress path was tested from this vantage .+"),
     "vanaf dit meetpunt is geen enkele route naar buiten getest (TCP, UDP, DNS, ICMP of NTP naar de listener): "
     "niets hier kan aantonen dat het segment gesloten is"),
    (_rx(r"a positive control \(.+?\): (?P<w>.+); without it the silence on (?P<p>.+) may mean the listener was down"),
     "een positieve controle (`egress check --control` vanaf een meetpunt met internet, zelfde listener): {w}; "
     "zonder die controle kan de stilte op {p} betekenen dat de listener uit stond"),
    (_rx(r"a positive control for (?P<p>.+): the control run\(s\) did not reach the listener on these paths either, "
         r"so their silence here proves nothing"),
     "een positieve controle voor {p}: ook de controlerun(s) bereikten de listener niet op deze routes, dus de "
     "stilte hier bewijst niets"),
    # the device
    (_rx(r"segment CLOSED from the sensor \((?P<t_n>.+)\)"), "segment CLOSED vanaf de sensor ({t_n})"),
    (_rx(r"its segment is OPEN from a sensor on the same segment \((?P<t_n>.+)\)"),
     "het segment is OPEN vanaf een sensor in hetzelfde segment ({t_n})"),
    (_rx(r"device and sensor use gateway (?P<g>.+)"), "apparaat en sensor gebruiken gateway {g}"),
    (_rx(r"the device has no default gateway"), "het apparaat heeft geen standaardgateway"),
    (_rx(r"the device uses gateway (?P<a>.+?) but the sensor used (?P<b>.+)"),
     "het apparaat gebruikt gateway {a}, maar de sensor gebruikte {b}"),
    (_rx(r"the device's gateway was not read, so the sensor's placement cannot be matched to it"),
     "de gateway van het apparaat is niet uitgelezen, dus de plaatsing van de sensor kan er niet mee worden vergeleken"),
    (_rx(r"placement: (?P<t_n>.+?); the segment's OPEN result was not shown for this device"),
     "plaatsing: {t_n}; het OPEN-resultaat van het segment is voor dit apparaat niet aangetoond"),
    (_rx(r"placement: the segment is OPEN from a sensor that used a gateway, but the device reports no default "
         r"gateway; its own egress was not shown"),
     "plaatsing: het segment is OPEN vanaf een sensor die een gateway gebruikte, maar het apparaat meldt geen "
     "standaardgateway; zijn eigen uitgaande verkeer is niet aangetoond"),
    (_rx(r"placement: (?P<t_n>.+)"), "plaatsing: {t_n}"),
    (_rx(r"the segment's active check is INCONCLUSIVE: (?P<t_r>.+)"), "de actieve controle van het segment is INCONCLUSIVE: {t_r}"),
    (_rx(r"device settings \(gateway, DNS, cloud registration\) were not read"),
     "de instellingen van het apparaat (gateway, DNS, cloudaanmelding) zijn niet uitgelezen"),
    (_rx(r"an active egress check from the device's segment \(`egress check --listener \.\.\.`\)"),
     "een actieve controle van uitgaand verkeer vanuit het segment van het apparaat (`egress check --listener ...`)"),
    (_rx(r"not verified: (?P<m>.+)"), "niet vastgesteld: {m}"),
    (_rx(r"not present on this device \(recorded as not verified\): (?P<m>.+)"),
     "niet aanwezig op dit apparaat (vastgelegd als niet vastgesteld): {m}"),
    (_rx(r"(?P<c>\w+): the device's registration status was not verified \(Dahua has no verified read-only API for "
         r"cloud online status \(egress\.md 2\.3\); (?P<s>.+)\)"),
     "{c}: de aanmeldstatus van het apparaat is niet vastgesteld (Dahua heeft geen geverifieerde alleen-lezen-API "
     "voor de online-status in de cloud (egress.md 2.3); {s})"),
    (_rx(r"(?P<c>\w+): the device's registration status was not verified \((?P<m>.+)\)"),
     "{c}: de aanmeldstatus van het apparaat is niet vastgesteld ({m})"),
    (_rx(r"(?P<c>\w+) is enabled but reports no registration \((?P<s>.+?)\): a cloud feature that would reach the "
         r"internet if the network let it \(finding, not a verdict\)"),
     "{c} staat aan maar meldt geen aanmelding ({s}): een clouddienst die het internet zou bereiken als het netwerk "
     "dat toeliet (bevinding, geen oordeel)"),
    (_rx(r"(?P<c>\w+): registered with an internal platform \((?P<s>.+)\), not egress"),
     "{c}: aangemeld bij een intern platform ({s}), geen uitgaand verkeer"),
    (_rx(r"the device reports registration with (?P<c>\w+) \(device-asserted, conclusive\)"),
     "het apparaat meldt zelf aangemeld te zijn bij {c} (door het apparaat gemeld, sluitend)"),
    (_rx(r"the device reports no default gateway \(supports CLOSED; not a verdict alone\)"),
     "het apparaat meldt geen standaardgateway (ondersteunt CLOSED; alleen geen oordeel)"),
    (_rx(r"the device is configured with an external DNS server (?P<s>\S+) \(finding\)"),
     "het apparaat is ingesteld met een externe DNS-server {s} (bevinding)"),
    (_rx(r"the device is configured with a non-internal NTP server (?P<s>\S+) \(finding\)"),
     "het apparaat is ingesteld met een niet-interne NTP-server {s} (bevinding)"),
    (_rx(r"the device reported no cloud-registration status that camaudit can read .+"),
     "het apparaat meldde geen cloudaanmeldstatus die camaudit kan uitlezen (geen Hik-Connect-, Ehome-, "
     "online-upgrade- of Dahua P2P-instellingen): het oordeel steunt op het netwerkbewijs"),
    (_rx(r"the device reports (?P<n>\d+) active UPnP port mapping\(s\)"), "het apparaat meldt {n} actieve UPnP-port mapping(s)"),
    (_rx(r"(?P<n>\d+) unanswered egress attempt\(s\) in the capture, e\.g\. (?P<l>.+?) \(blocked during the capture; "
         r"cloud features are trying: finding\)"),
     "{n} onbeantwoorde poging(en) tot uitgaand verkeer in de opname, bijv. {l} (geblokkeerd tijdens de opname; "
     "clouddiensten proberen verbinding te maken: bevinding)"),
    (_rx(r"established (?P<p>\w+) flow with (?P<r>\S+) at (?P<a>\S+) \(capture (?P<c>.+)\)"),
     "tot stand gekomen {p}-verbinding met {r} om {a} (opname {c})"),
    (_rx(r"capture (?P<c>.+) from (?P<a>\S+) to (?P<b>\S+)"), "opname {c} van {a} tot {b}"),
    (_rx(r"looked up vendor-cloud names: (?P<l>.+)"), "zocht namen van fabrikantclouds op: {l}"),
    (_rx(r"conflicting evidence: the resolver (?P<r>\S+) answered the vendor-cloud name (?P<q>\S+) with external "
         r"address\(es\) (?P<a>.+?) \(indicator of DNS recursion to the internet, not proof\); test the resolver with "
         r"a nonce name \(`--dns-zone`\)"),
     "tegenstrijdig bewijs: de resolver {r} beantwoordde de fabrikantcloudnaam {q} met extern(e) adres(sen) {a} "
     "(aanwijzing voor DNS-recursie naar het internet, geen bewijs); test de resolver met een nonce-naam (`--dns-zone`)"),
    (_rx(r"EXPOSED: (?P<t_r>.+)"), "EXPOSED: {t_r}"),
    (_rx(r"bound to a cloud account while registered: a third-party access path to its footage"),
     "gekoppeld aan een cloudaccount terwijl aangemeld: een toegangsweg voor derden tot de beelden"),
    (_rx(r"control run from a vantage with egress: (?P<t_v>.+); not a verdict on any segment"),
     "controlerun vanaf een meetpunt met internet: {t_v}; geen oordeel over een segment"),
    (_rx(r"no verdict of its own; segment (?P<s>\S+) is (?P<v>[A-Z]+) on the evidence of other devices or the sensor"),
     "geen eigen oordeel; segment {s} is {v} op het bewijs van andere apparaten of de sensor"),
    # verdict sources (last: "segment X" would swallow the sentences that start with "segment")
    (_rx(r"device"), "apparaat"),
    (_rx(r"no verdict recorded"), "geen oordeel vastgelegd"),
    (_rx(r"segment (?P<s>\S+)"), "segment {s}"),
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
