"""The message catalogue: every reason code in English and Dutch (DESIGN.md section 6).

Egress verification, device interrogation and assessment record *why* as
:class:`~camaudit.model.verdicts.Reason` codes with parameters; this module is the only place
where they become words. A message is a ``str.format`` template over the reason's parameters;
a parameter that is itself a reason (or a list of reasons) is rendered first, in the same
language. Values inside a message (addresses, paths, device replies, times) stay as recorded.

Rewording a message here changes what a report says, never what was decided: verdict logic
tests codes (tests/report/test_report_messages.py patches this catalogue to prove it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..model.verdicts import LEGACY_TEXT, Reason

log = logging.getLogger(__name__)

LANGUAGES = ("en", "nl")

#: A message: a format template, or (for plurals) a function of the rendered parameters.
Message = str | Callable[[Mapping[str, Any]], str]


def _ports_en(p: Mapping[str, Any]) -> str:
    return f"ONVIF: no device service answered on port{'s' if p.get('count', 1) != 1 else ''} {p['ports']}"


def _hostile_en(p: Mapping[str, Any]) -> str:
    return (f"ONVIF: the answer on port{'s' if p.get('count', 1) != 1 else ''} {p['ports']} was refused as hostile "
            "(an XML bomb or XXE)")


def _hostile_nl(p: Mapping[str, Any]) -> str:
    return (f"ONVIF: het antwoord op poort{'en' if p.get('count', 1) != 1 else ''} {p['ports']} is als vijandig "
            "geweigerd (een XML-bom of XXE)")


def _ports_nl(p: Mapping[str, Any]) -> str:
    return f"ONVIF: geen apparaatdienst antwoordde op poort{'en' if p.get('count', 1) != 1 else ''} {p['ports']}"


def _plural_en(n: Any, one: str, many: str) -> str:
    return one if str(n) == "1" else many


def _devices_en(n: Any) -> str:
    return f"{n} device" if str(n) == "1" else f"{n} devices"


def _devices_nl(n: Any) -> str:
    return f"{n} apparaat" if str(n) == "1" else f"{n} apparaten"


def _closed_en(p: Mapping[str, Any]) -> str:
    control = (f"control passed {p['minutes']} minutes {'earlier' if p.get('control_before', True) else 'later'}"
               if p.get("minutes") not in (None, "") else "no positive control was needed (every path was refused locally)")
    return (f"{p['site']}: CLOSED on {p['paths']} tested path{_plural_en(p['paths'], '', 's')} from {p['vantage']}, "
            f"{control}, {p['registered']} of {p['devices']} devices report a cloud registration")


def _closed_nl(p: Mapping[str, Any]) -> str:
    control = (f"controle {p['minutes']} minuten {'eerder' if p.get('control_before', True) else 'later'} geslaagd"
               if p.get("minutes") not in (None, "") else "geen positieve controle nodig (elke route werd lokaal geweigerd)")
    return (f"{p['site']}: CLOSED op {p['paths']} geteste route{_plural_en(p['paths'], '', 's')} vanaf {p['vantage']}, "
            f"{control}, {p['registered']} van {p['devices']} apparaten melden een cloudregistratie")


EN: dict[str, Message] = {
    LEGACY_TEXT: "{text}",
    # -- device interrogation: why a read was not verified ("what" names the read)
    "auth_required": "{what}: 401 unauthorised (no credentials given)",
    "auth_basic_only": ("{what}: 401 unauthorised: the device accepts only Basic auth, which sends the password "
                        "readable to anyone on the path; camaudit sends passwords only by digest, so this setting "
                        "was not read and stays unverified"),
    "auth_unsupported": "{what}: 401 unauthorised ({detail})",
    "auth_refused": "{what}: 401 unauthorised (credentials refused)",
    "unauthorised": "{what}: 401 unauthorised",
    "forbidden": "{what}: 403 forbidden",
    "not_found": "{what}: 404 not found",
    "http_status": "{what}: HTTP {status}",
    "timed_out": "{what}: timed out",
    "connection_error": "{what}: {error}",
    "not_isapi_document": "{what}: reply is not an ISAPI DeviceInfo document",
    "refused_not_retried": "{what}: credentials refused; not retried to avoid locking the account",
    "reply_not_understood": "{what}: reply not understood",
    "table_absent": "{what}: table not present (the device answered Error)",
    "not_read": "{what}: not read ({because})",
    "no_credentials": "no credentials",
    "credentials_refused": "credentials refused; not retried to avoid locking the account",
    "basic_only": "device offers only Basic auth",
    "auth_scheme_unsupported": "{detail}",
    "onvif_failed": "{what}: {detail}",
    "no_http_port": "ONVIF and vendor APIs: no open HTTP port",
    "onvif_no_service": _ports_en,
    "onvif_hostile": _hostile_en,
    "vendor_api_not_tried": "vendor APIs (ISAPI, Dahua CGI): not tried (maker not identified and no credentials)",
    "api_time_limit": "{api}: stopped (time limit)",
    "dahua_no_status_api": ("Dahua P2P: the firmware offers no read-only API that reports whether the device is "
                            "online with the P2P cloud, so its registration cannot be verified by reading it (only "
                            "whether P2P is enabled can)"),
    "status_not_reported": "not verified",
    # -- the active check of a segment
    "planned_not_tested": "{path}: planned but not tested",
    "path_unknown": "{path}: {detail}",
    "control_missing": ("a positive control (`egress check --control` from a vantage with egress, same listener): "
                        "{why}; without it the silence on {paths} may mean the listener was down"),
    "controls_never_answered": "the control run(s) {runs} never got an answer from the listener",
    "no_control_in_window": "no control run within {minutes:g} minutes against the same listener",
    "control_not_reaching": ("a positive control for {paths}: the control run(s) did not reach the listener on these "
                             "paths either, so their silence here proves nothing"),
    "control_run_unanswered": "the listener never answered this control run: it proves nothing about the listener",
    "no_path_tested": ("no egress path was tested from this vantage (TCP, UDP, DNS, ICMP or NTP to the listener): "
                       "nothing here can show the segment closed"),
    "vantage": "{host} ({addresses}; gateway {gateway})",
    "vantage_no_gateway": "{host} ({addresses}; gateway no default gateway)",
    "control_vantage": "control run from a vantage with egress: {vantage}; not a verdict on any segment",
    "egress_observed": "egress observed on {paths} from {vantage} between {start} and {end}",
    "open_through_dns": ("OPEN through DNS: the segment's resolver carried a nonce name to the auditor's zone (DNS "
                         "recursion reaches the internet; data can leave through DNS alone)"),
    "open_through_ipv6": "OPEN through IPv6: a router advertises a global prefix and forwards IPv6",
    "one_way_egress": "one-way egress: the listener logged the probes, their answers did not come back",
    "no_egress_observed": "no egress observed on {count} tested paths ({paths}) from {vantage} between {start} and {end}",
    "positive_control": "positive control: {runs}",
    "control_run": "run {run} from {vantage} at {at} reached the listener on {count} paths",
    "no_control_needed": "no positive control was needed: every path was refused locally or by an internal router",
    "absent_from_vantage": "not present from this vantage: {paths}",
    "placement_scope": ("placement: the verdict holds for traffic from this sensor's address and gateway; firewall "
                        "rules keyed on device addresses, MACs or 802.1X groups are not covered by it"),
    "exposed_inbound": "EXPOSED: inbound path on the segment: {paths}",
    "listener_not_internet": ("listener_not_internet: the listener {listeners} is not on the internet; this check "
                              "shows whether traffic reaches that address, not whether it reaches the internet"),
    "listener_not_internet_gap": ("a listener on an internet address: {listeners} is not on the internet, so silence "
                                  "towards it is no proof that the internet is out of reach"),
    "listener_test_range": ("listener_test_range: the listener {listeners} is in a documentation range, a lab's or "
                            "test network's stand-in for the internet; the verdict holds for that network"),
    # -- one device
    "settings_not_read": "device settings (gateway, DNS, cloud registration) were not read",
    "registration_reported": "the device reports registration with {service} (device-asserted, conclusive)",
    "cloud_bound": "bound to a cloud account while registered: a third-party access path to its footage",
    "not_present": "not present on this device (recorded as not verified): {reason}",
    "not_verified": "not verified: {reason}",
    "no_registration_status": ("the device reported no cloud-registration status that camaudit can read (no "
                               "Hik-Connect, Ehome, online-upgrade or Dahua P2P settings): its verdict rests on the "
                               "network evidence"),
    "active_upnp_mappings": "the device reports {count} active UPnP port mapping(s)",
    "no_default_gateway": "the device reports no default gateway (supports CLOSED; not a verdict alone)",
    "external_dns": "the device is configured with an external DNS server {server} (finding)",
    "external_ntp": "the device is configured with a non-internal NTP server {server} (finding)",
    "registered_internal": "{service}: registered with an internal platform ({servers}), not egress",
    "registration_unverified": "{service}: the device's registration status was not verified ({note}; {source})",
    "enabled_unregistered": ("{service} is enabled but reports no registration ({source}): a cloud feature that "
                             "would reach the internet if the network let it (finding, not a verdict)"),
    "active_check_missing": "an active egress check from the device's segment (`egress check --listener ...`)",
    "igd_maps_device": "the segment's IGD maps {count} external port(s) to this device",
    "upnp_configured_igd": "UPnP mappings configured on the device and a UPnP IGD answers on its segment",
    "upnp_configured_no_igd": ("{count} UPnP mapping(s) configured on the device; no IGD seen to apply them "
                               "(finding)"),
    "segment_open_same": "its segment is OPEN from a sensor on the same segment ({placement})",
    "placement_open_no_gateway": ("placement: the segment is OPEN from a sensor that used a gateway, but the device "
                                  "reports no default gateway; its own egress was not shown"),
    "placement_open_not_shown": "placement: {placement}; the segment's OPEN result was not shown for this device",
    "placement_gap": "placement: {placement}",
    "segment_closed": "segment CLOSED from the sensor ({placement})",
    "segment_inconclusive": "the segment's active check is INCONCLUSIVE: {reasons}",
    "placement_unread": "the device's gateway was not read, so the sensor's placement cannot be matched to it",
    "placement_no_gateway": "the device has no default gateway",
    "placement_same_gateway": "device and sensor use gateway {gateway}",
    "placement_other_gateway": "the device uses gateway {device_gateways} but the sensor used {sensor_gateway}",
    "capture_odd_flows": ("{count} answered flow(s) with non-internal but not global addresses (CGNAT or "
                          "documentation space), e.g. {examples}"),
    "capture_established": "established {proto} flow with {endpoint} at {at} (capture {capture})",
    "capture_attempts": ("{count} unanswered egress attempt(s) in the capture, e.g. {examples} (blocked during the "
                         "capture; cloud features are trying: finding)"),
    "capture_dns_conflict": ("conflicting evidence: the resolver {resolver} answered the vendor-cloud name {qname} "
                             "with external address(es) {answers} (indicator of DNS recursion to the internet, not "
                             "proof); test the resolver with a nonce name (`--dns-zone`)"),
    "capture_lookups": "looked up vendor-cloud names: {names}",
    "capture_window": "capture {capture} from {start} to {end}",
    "exposed": "EXPOSED: {reasons}",
    # -- the segment roll-up
    "rollup_no_active": "an active egress check from the segment",
    "rollup_no_devices": "no device of the segment was assessed, so the sensor's placement was matched to no camera",
    "device_gap": "device {device}: {reason}",
    "open_part": "OPEN: {kind} {subject}: {reason}",
    "egress_plain": "egress",
    "rollup_all_closed": "every one of {count} device(s) is CLOSED on its own evidence",
    "rollup_inconclusive_devices": "{count} device(s) INCONCLUSIVE: {devices}",
    "sensor_check": "the sensor's own check is {verdict}",
    "sensor_check_with": "the sensor's own check is {verdict}: {reason}",
    "rollup_closed_count": "{closed} of {total} device(s) CLOSED on their own evidence",
    "exposed_subjects": "EXPOSED: {subjects}",
    # -- assessment: where a device's verdict comes from
    "source_device": "device",
    "source_segment": "segment {segment}",
    "source_not_judged": ("no verdict of its own; segment {segment} is {verdict} on the evidence of other devices or "
                          "the sensor"),
    "no_verdict_recorded": "no verdict recorded",
    "no_verdict_in_scan": "an egress check of this device in this scan",
    # -- the estate report: one conclusion per site, and the statement an auditor can file
    "conclusion_closed": _closed_en,
    "conclusion_closed_recorded": ("{site}: CLOSED as recorded for {segments} (no tested paths recorded with it), "
                                   "{registered} of {devices} devices report a cloud registration"),
    "conclusion_open": "{site}: OPEN: {open} of {devices} devices can reach the internet ({reasons})",
    "conclusion_open_segment": lambda p: (f"{p['site']}: OPEN from the sensor on {p['segments']} ({p['reasons']}); "
                                          f"none of its {_devices_en(p['devices'])} was shown to use that path"),
    "conclusion_inconclusive": "{site}: INCONCLUSIVE: {reasons}",
    "conclusion_none": ("{site}: NO VERDICT: no egress check was recorded for its latest scan, so nothing says whether "
                        "its cameras can reach the internet"),
    "conclusion_exposed": lambda p: f"{_devices_en(p['count'])} EXPOSED on an inbound path",
    "cloud_settings_unread": lambda p: (f"the cloud settings of {p['count']} {p['maker']} "
                                        f"device{'' if str(p['count']) == '1' else 's'} could not be read without "
                                        "credentials"),
    "cloud_status_unverified": lambda p: (f"the cloud registration status of {_devices_en(p['count'])} "
                                          f"({p['maker']}) could not be verified"),
    "devices_inconclusive": lambda p: (f"{_devices_en(p['count'])} without a verdict of "
                                       f"{'its' if str(p['count']) == '1' else 'their'} own"),
    "statement_closed": ("Claim: from the vantage {vantage}, none of the {paths} egress paths tested from segment(s) "
                         "{segments} of site {site} reached the internet between {start} and {end}."),
    "statement_open": "Claim: traffic from segment(s) {segments} of site {site} reaches the internet: {reasons}.",
    "statement_inconclusive": ("Claim: none. The evidence for segment(s) {segments} of site {site} does not show the "
                               "network closed or open."),
    "statement_none": "Claim: none. No egress check was recorded for site {site}; its scan is an inventory only.",
    "statement_scope": ("Scope: scan {scan} ({status}) of {targets}, {addresses} addresses, {devices} devices "
                        "answered, {cameras} identified as cameras or recorders."),
    "statement_window": "Time window: the scan ran from {start} to {end}; the egress evidence is from {evidence}.",
    "statement_window_none": "Time window: the scan ran from {start} to {end}; no egress evidence.",
    "statement_vantage": "Vantage: {vantages}.",
    "statement_vantage_none": "Vantage: none recorded.",
    "statement_paths": "Paths tested: {paths}.",
    "statement_paths_none": "Paths tested: none recorded.",
    "statement_control": "Positive control: {controls}.",
    "statement_not_verified": "Not verified: {items}.",
    "statement_nothing_missing": "Not verified: nothing the verdict depends on was left unverified.",
    "statement_placement": ("The claim holds for traffic from the sensor's address and gateway; firewall rules keyed "
                            "on device addresses, MACs or 802.1X groups are not covered by it."),
    "statement_devices_unverified": lambda p: (f"{_devices_en(p['count'])} with items not verified (listed per "
                                               "device in the report)"),
    # -- flags at the top of the estate report
    "flag_stale": "{site}: the latest scan ({scan}, {started}) is older than {max_age}",
    "flag_interrupted": "{site}: the latest scan ({scan}, {started}) was interrupted",
    "flag_failed": "{site}: the latest scan ({scan}, {started}) failed",
    "flag_running": "{site}: the latest scan ({scan}, {started}) is still running",
    "flag_no_complete": "{site}: no scan of this site completed; the report shows the latest, which is partial",
    "flag_older_complete": ("{site}: the report shows the latest complete scan ({scan}, {started}), not the latest "
                            "scan"),
    "flag_no_scan": ("{site}: never scanned ({assets} registered asset(s), {runs} egress run(s)); the estate report "
                     "has nothing to say about its cameras"),
    "cross_site": ("{asset} is declared at {declared} and was found at {found} ({matched_by} {value}, "
                   "address {address})"),
}

NL: dict[str, Message] = {
    LEGACY_TEXT: "{text}",
    "auth_required": "{what}: 401 niet geautoriseerd (geen inloggegevens opgegeven)",
    "auth_basic_only": ("{what}: 401 niet geautoriseerd: het apparaat accepteert alleen Basic-authenticatie, die het "
                        "wachtwoord leesbaar over het netwerk stuurt; camaudit verstuurt wachtwoorden alleen via "
                        "digest, dus deze instelling is niet uitgelezen en blijft niet vastgesteld"),
    "auth_unsupported": "{what}: 401 niet geautoriseerd ({detail})",
    "auth_refused": "{what}: 401 niet geautoriseerd (inloggegevens geweigerd)",
    "unauthorised": "{what}: 401 niet geautoriseerd",
    "forbidden": "{what}: 403 verboden",
    "not_found": "{what}: 404 niet gevonden",
    "http_status": "{what}: HTTP {status}",
    "timed_out": "{what}: geen antwoord binnen de tijd",
    "connection_error": "{what}: {error}",
    "not_isapi_document": "{what}: het antwoord is geen ISAPI DeviceInfo-document",
    "refused_not_retried": ("{what}: inloggegevens geweigerd; niet opnieuw geprobeerd om blokkering van het account "
                            "te voorkomen"),
    "reply_not_understood": "{what}: antwoord niet begrepen",
    "table_absent": "{what}: tabel niet aanwezig (het apparaat antwoordde Error)",
    "not_read": "{what}: niet uitgelezen ({because})",
    "no_credentials": "geen inloggegevens",
    "credentials_refused": "inloggegevens geweigerd; niet opnieuw geprobeerd om blokkering van het account te voorkomen",
    "basic_only": "het apparaat biedt alleen Basic-authenticatie",
    "auth_scheme_unsupported": "{detail}",
    "onvif_failed": "{what}: {detail}",
    "no_http_port": "ONVIF en fabrikant-API's: geen open HTTP-poort",
    "onvif_no_service": _ports_nl,
    "onvif_hostile": _hostile_nl,
    "vendor_api_not_tried": ("fabrikant-API's (ISAPI, Dahua CGI): niet geprobeerd (fabrikant niet vastgesteld en geen "
                             "inloggegevens)"),
    "api_time_limit": "{api}: gestopt (tijdslimiet)",
    "dahua_no_status_api": ("Dahua P2P: de firmware biedt geen alleen-lezen-API die meldt of het apparaat online is "
                            "bij de P2P-cloud, dus de aanmelding kan niet door uitlezen worden vastgesteld (alleen of "
                            "P2P aan staat)"),
    "status_not_reported": "niet vastgesteld",
    "planned_not_tested": "{path}: gepland maar niet getest",
    "path_unknown": "{path}: {detail}",
    "control_missing": ("een positieve controle (`egress check --control` vanaf een meetpunt met internet, zelfde "
                        "listener): {why}; zonder die controle kan de stilte op {paths} betekenen dat de listener uit "
                        "stond"),
    "controls_never_answered": "de controlerun(s) {runs} kregen nooit antwoord van de listener",
    "no_control_in_window": "geen controlerun binnen {minutes:g} minuten tegen dezelfde listener",
    "control_not_reaching": ("een positieve controle voor {paths}: ook de controlerun(s) bereikten de listener niet op "
                             "deze routes, dus de stilte hier bewijst niets"),
    "control_run_unanswered": "de listener beantwoordde deze controlerun nooit: die bewijst niets over de listener",
    "no_path_tested": ("vanaf dit meetpunt is geen enkele route naar buiten getest (TCP, UDP, DNS, ICMP of NTP naar de "
                       "listener): niets hier kan aantonen dat het segment gesloten is"),
    "vantage": "{host} ({addresses}; gateway {gateway})",
    "vantage_no_gateway": "{host} ({addresses}; geen standaardgateway)",
    "control_vantage": "controlerun vanaf een meetpunt met internet: {vantage}; geen oordeel over een segment",
    "egress_observed": "uitgaand verkeer waargenomen op {paths} vanaf {vantage} tussen {start} en {end}",
    "open_through_dns": ("OPEN via DNS: de resolver van het segment bracht een nonce-naam naar de zone van de auditor "
                         "(DNS-recursie bereikt het internet; gegevens kunnen alleen al via DNS naar buiten)"),
    "open_through_ipv6": "OPEN via IPv6: een router kondigt een globaal prefix aan en stuurt IPv6 door",
    "one_way_egress": ("uitgaand verkeer in één richting: de listener legde de probes vast, de antwoorden kwamen niet "
                       "terug"),
    "no_egress_observed": ("geen uitgaand verkeer waargenomen op {count} geteste routes ({paths}) vanaf {vantage} "
                           "tussen {start} en {end}"),
    "positive_control": "positieve controle: {runs}",
    "control_run": "run {run} vanaf {vantage} om {at} bereikte de listener op {count} routes",
    "no_control_needed": "geen positieve controle nodig: elke route werd lokaal of door een interne router geweigerd",
    "absent_from_vantage": "niet aanwezig vanaf dit meetpunt: {paths}",
    "placement_scope": ("plaatsing: het oordeel geldt voor verkeer vanaf het adres en de gateway van deze sensor; "
                        "firewallregels op apparaatadressen, MAC-adressen of 802.1X-groepen vallen er niet onder"),
    "exposed_inbound": "EXPOSED: inkomende route op het segment: {paths}",
    "listener_not_internet": ("listener_not_internet: de listener {listeners} staat niet op het internet; deze "
                              "controle toont of verkeer dat adres bereikt, niet of het het internet bereikt"),
    "listener_not_internet_gap": ("een listener op een internetadres: {listeners} staat niet op het internet, dus "
                                  "stilte richting dat adres bewijst niet dat het internet onbereikbaar is"),
    "listener_test_range": ("listener_test_range: de listener {listeners} ligt in een documentatiereeks, de "
                            "vervanger van het internet in een lab of testnetwerk; het oordeel geldt voor dat netwerk"),
    "settings_not_read": "de instellingen van het apparaat (gateway, DNS, cloudaanmelding) zijn niet uitgelezen",
    "registration_reported": "het apparaat meldt zelf aangemeld te zijn bij {service} (door het apparaat gemeld, sluitend)",
    "cloud_bound": "gekoppeld aan een cloudaccount terwijl aangemeld: een toegangsweg voor derden tot de beelden",
    "not_present": "niet aanwezig op dit apparaat (vastgelegd als niet vastgesteld): {reason}",
    "not_verified": "niet vastgesteld: {reason}",
    "no_registration_status": ("het apparaat meldde geen cloudaanmeldstatus die camaudit kan uitlezen (geen "
                               "Hik-Connect-, Ehome-, online-upgrade- of Dahua P2P-instellingen): het oordeel steunt op "
                               "het netwerkbewijs"),
    "active_upnp_mappings": "het apparaat meldt {count} actieve UPnP-port mapping(s)",
    "no_default_gateway": "het apparaat meldt geen standaardgateway (ondersteunt CLOSED; alleen geen oordeel)",
    "external_dns": "het apparaat is ingesteld met een externe DNS-server {server} (bevinding)",
    "external_ntp": "het apparaat is ingesteld met een niet-interne NTP-server {server} (bevinding)",
    "registered_internal": "{service}: aangemeld bij een intern platform ({servers}), geen uitgaand verkeer",
    "registration_unverified": "{service}: de aanmeldstatus van het apparaat is niet vastgesteld ({note}; {source})",
    "enabled_unregistered": ("{service} staat aan maar meldt geen aanmelding ({source}): een clouddienst die het "
                             "internet zou bereiken als het netwerk dat toeliet (bevinding, geen oordeel)"),
    "active_check_missing": ("een actieve controle van uitgaand verkeer vanuit het segment van het apparaat "
                             "(`egress check --listener ...`)"),
    "igd_maps_device": "de IGD van het segment koppelt {count} externe poort(en) aan dit apparaat",
    "upnp_configured_igd": ("UPnP-mappings ingesteld op het apparaat en een UPnP-IGD antwoordt in zijn segment"),
    "upnp_configured_no_igd": ("{count} UPnP-mapping(s) ingesteld op het apparaat; geen IGD gezien die ze toepast "
                               "(bevinding)"),
    "segment_open_same": "het segment is OPEN vanaf een sensor in hetzelfde segment ({placement})",
    "placement_open_no_gateway": ("plaatsing: het segment is OPEN vanaf een sensor die een gateway gebruikte, maar "
                                  "het apparaat meldt geen standaardgateway; zijn eigen uitgaande verkeer is niet "
                                  "aangetoond"),
    "placement_open_not_shown": ("plaatsing: {placement}; het OPEN-resultaat van het segment is voor dit apparaat "
                                 "niet aangetoond"),
    "placement_gap": "plaatsing: {placement}",
    "segment_closed": "segment CLOSED vanaf de sensor ({placement})",
    "segment_inconclusive": "de actieve controle van het segment is INCONCLUSIVE: {reasons}",
    "placement_unread": ("de gateway van het apparaat is niet uitgelezen, dus de plaatsing van de sensor kan er niet "
                         "mee worden vergeleken"),
    "placement_no_gateway": "het apparaat heeft geen standaardgateway",
    "placement_same_gateway": "apparaat en sensor gebruiken gateway {gateway}",
    "placement_other_gateway": "het apparaat gebruikt gateway {device_gateways}, maar de sensor gebruikte {sensor_gateway}",
    "capture_odd_flows": ("{count} beantwoorde verbinding(en) met niet-interne maar ook niet-globale adressen (CGNAT "
                          "of documentatieruimte), bijv. {examples}"),
    "capture_established": "tot stand gekomen {proto}-verbinding met {endpoint} om {at} (opname {capture})",
    "capture_attempts": ("{count} onbeantwoorde poging(en) tot uitgaand verkeer in de opname, bijv. {examples} "
                         "(geblokkeerd tijdens de opname; clouddiensten proberen verbinding te maken: bevinding)"),
    "capture_dns_conflict": ("tegenstrijdig bewijs: de resolver {resolver} beantwoordde de fabrikantcloudnaam {qname} "
                             "met extern(e) adres(sen) {answers} (aanwijzing voor DNS-recursie naar het internet, geen "
                             "bewijs); test de resolver met een nonce-naam (`--dns-zone`)"),
    "capture_lookups": "zocht namen van fabrikantclouds op: {names}",
    "capture_window": "opname {capture} van {start} tot {end}",
    "exposed": "EXPOSED: {reasons}",
    "rollup_no_active": "een actieve controle van uitgaand verkeer vanuit het segment",
    "rollup_no_devices": ("geen apparaat van het segment is beoordeeld, dus de plaatsing van de sensor is met geen "
                          "enkele camera vergeleken"),
    "device_gap": "apparaat {device}: {reason}",
    "open_part": "OPEN: {kind} {subject}: {reason}",
    "egress_plain": "uitgaand verkeer",
    "rollup_all_closed": "elk van de {count} apparaten is CLOSED op eigen bewijs",
    "rollup_inconclusive_devices": "{count} apparaat/apparaten INCONCLUSIVE: {devices}",
    "sensor_check": "de eigen controle van de sensor is {verdict}",
    "sensor_check_with": "de eigen controle van de sensor is {verdict}: {reason}",
    "rollup_closed_count": "{closed} van {total} apparaten CLOSED op eigen bewijs",
    "exposed_subjects": "EXPOSED: {subjects}",
    "source_device": "apparaat",
    "source_segment": "segment {segment}",
    "source_not_judged": "geen eigen oordeel; segment {segment} is {verdict} op het bewijs van andere apparaten of de sensor",
    "no_verdict_recorded": "geen oordeel vastgelegd",
    "no_verdict_in_scan": "een controle van het uitgaande verkeer van dit apparaat in deze scan",
    "conclusion_closed": _closed_nl,
    "conclusion_closed_recorded": ("{site}: CLOSED zoals vastgelegd voor {segments} (zonder vastgelegde geteste "
                                   "routes), {registered} van {devices} apparaten melden een cloudregistratie"),
    "conclusion_open": "{site}: OPEN: {open} van {devices} apparaten kunnen het internet bereiken ({reasons})",
    "conclusion_open_segment": lambda p: (f"{p['site']}: OPEN vanaf de sensor op {p['segments']} ({p['reasons']}); "
                                          f"van geen van de {_devices_nl(p['devices'])} is aangetoond dat het die "
                                          "route gebruikt"),
    "conclusion_inconclusive": "{site}: INCONCLUSIVE: {reasons}",
    "conclusion_none": ("{site}: GEEN OORDEEL: voor de laatste scan is geen egress-controle vastgelegd, dus niets zegt "
                        "of de camera's het internet kunnen bereiken"),
    "conclusion_exposed": lambda p: f"{_devices_nl(p['count'])} EXPOSED via een inkomende route",
    "cloud_settings_unread": lambda p: (f"de cloudinstellingen van {p['count']} {p['maker']}-"
                                        f"{'apparaat' if str(p['count']) == '1' else 'apparaten'} konden zonder "
                                        "inloggegevens niet worden uitgelezen"),
    "cloud_status_unverified": lambda p: (f"de cloudregistratie van {_devices_nl(p['count'])} ({p['maker']}) kon "
                                          "niet worden vastgesteld"),
    "devices_inconclusive": lambda p: f"{_devices_nl(p['count'])} zonder eigen oordeel",
    "statement_closed": ("Bewering: vanaf het meetpunt {vantage} bereikte geen van de {paths} geteste uitgaande routes "
                         "vanuit segment(en) {segments} van locatie {site} het internet tussen {start} en {end}."),
    "statement_open": ("Bewering: verkeer vanuit segment(en) {segments} van locatie {site} bereikt het internet: "
                       "{reasons}."),
    "statement_inconclusive": ("Bewering: geen. Het bewijs voor segment(en) {segments} van locatie {site} toont het "
                               "netwerk niet gesloten en niet open."),
    "statement_none": ("Bewering: geen. Voor locatie {site} is geen egress-controle vastgelegd; de scan is alleen een "
                       "inventarisatie."),
    "statement_scope": ("Reikwijdte: scan {scan} ({status}) van {targets}, {addresses} adressen, {devices} apparaten "
                        "antwoordden, {cameras} herkend als camera of recorder."),
    "statement_window": "Tijdvak: de scan liep van {start} tot {end}; het egress-bewijs is van {evidence}.",
    "statement_window_none": "Tijdvak: de scan liep van {start} tot {end}; geen egress-bewijs.",
    "statement_vantage": "Meetpunt: {vantages}.",
    "statement_vantage_none": "Meetpunt: niet vastgelegd.",
    "statement_paths": "Geteste routes: {paths}.",
    "statement_paths_none": "Geteste routes: niet vastgelegd.",
    "statement_control": "Positieve controle: {controls}.",
    "statement_not_verified": "Niet vastgesteld: {items}.",
    "statement_nothing_missing": "Niet vastgesteld: niets waar het oordeel van afhangt bleef onvastgesteld.",
    "statement_placement": ("De bewering geldt voor verkeer vanaf het adres en de gateway van de sensor; "
                            "firewallregels op apparaatadressen, MAC-adressen of 802.1X-groepen vallen er niet onder."),
    "statement_devices_unverified": lambda p: (f"{_devices_nl(p['count'])} met onderdelen die niet zijn "
                                               "vastgesteld (per apparaat vermeld in het rapport)"),
    "flag_stale": "{site}: de laatste scan ({scan}, {started}) is ouder dan {max_age}",
    "flag_interrupted": "{site}: de laatste scan ({scan}, {started}) is onderbroken",
    "flag_failed": "{site}: de laatste scan ({scan}, {started}) is mislukt",
    "flag_running": "{site}: de laatste scan ({scan}, {started}) loopt nog",
    "flag_no_complete": "{site}: geen scan van deze locatie is afgerond; het rapport toont de laatste, die onvolledig is",
    "flag_older_complete": ("{site}: het rapport toont de laatste afgeronde scan ({scan}, {started}), niet de laatste "
                            "scan"),
    "flag_no_scan": ("{site}: nooit gescand ({assets} geregistreerde asset(s), {runs} egress-run(s)); het overzicht "
                     "kan niets over de camera's daar zeggen"),
    "cross_site": ("{asset} is geregistreerd bij {declared} en gevonden bij {found} ({matched_by} {value}, "
                   "adres {address})"),
}

CATALOGUES: dict[str, dict[str, Message]] = {"en": EN, "nl": NL}


def _value(value: Any, lang: str) -> Any:
    """A parameter ready for a template: reasons in words, lists joined, the rest as recorded."""
    if isinstance(value, Mapping) and isinstance(value.get("code"), str):
        return render(Reason.from_json(value), lang)
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, Mapping) and isinstance(v.get("code"), str) for v in value):
            return "; ".join(render(Reason.from_json(v), lang) for v in value)
        return ", ".join(str(_value(v, lang)) for v in value)
    return "" if value is None else value


def render(reason: Reason | Mapping[str, Any], lang: str = "en") -> str:
    """``reason`` in ``lang``. An unknown code (a newer camaudit's store) or a message that does
    not fit the parameters is said as the code and its values, never dropped or guessed at."""
    reason = Reason.from_json(reason)
    table = CATALOGUES.get(lang, EN)
    message = table.get(reason.code, EN.get(reason.code))
    params = {k: _value(v, lang) for k, v in reason.params.items()}
    if message is not None:
        try:
            return message(params) if callable(message) else message.format(**params)
        except (KeyError, IndexError, ValueError, TypeError):
            log.debug("message %r does not fit the parameters %r", reason.code, sorted(params))
    values = ", ".join(f"{k}: {v}" for k, v in params.items())
    return f"{reason.code} ({values})" if values else reason.code


def render_all(reasons: Iterable[Reason | Mapping[str, Any]] | None, lang: str = "en") -> list[str]:
    return [render(r, lang) for r in reasons or []]


# -- what to do about each gap ---------------------------------------------------------------------
#
# Every "missing" item of a verdict says, in the report itself, what to do about it. A remedy is
# keyed by the gap's code; a gap that wraps another reason (a device's gap quoted by its segment,
# a read that was not verified, a registration status that was not read) takes the remedy of the
# most specific reason inside it that has one. No remedy points to a document that does not ship.

REMEDY_EN: dict[str, str] = {
    "planned_not_tested": "run the check again and let it finish; do not skip paths (--skip) for a CLOSED verdict",
    "path_unknown": ("run the check again; if this path stays unknown, test it by hand from the sensor, or take the "
                     "listener's log in with `camaudit egress import-log`"),
    "control_missing": ("run `camaudit egress check --control` with the same --listener from a vantage known to reach "
                        "the internet, within the control window (--control-window, default 1h) of this check"),
    "control_not_reaching": ("make the listener serve these ports (egress listen --tcp-ports/--udp-ports), or run the "
                             "control from a vantage whose egress allows them, then check again"),
    "control_run_unanswered": "make sure `camaudit egress listen` runs and is reachable, then run the control again",
    "no_path_tested": ("give the check a listener address it can probe (--listener, IPv4 and/or IPv6), and keep "
                       "TCP, UDP or DNS paths enabled"),
    "listener_not_internet_gap": ("run `camaudit egress listen` on a host with a public internet address outside "
                                  "the organisation's network, and check against that address"),
    "registration_unverified": ("read the device's cloud settings with credentials (--credentials FILE), or check the "
                                "cloud/P2P registration in the device's web interface and record it"),
    "settings_not_read": ("scan with credentials for the device (--credentials FILE or CAMAUDIT_USERNAME/"
                          "CAMAUDIT_PASSWORD) so its gateway, DNS and cloud settings can be read"),
    "not_verified": "give credentials for the device (--credentials FILE) and scan again",
    "active_check_missing": ("run `camaudit egress check --listener ...` (with a control) from a sensor in the "
                             "device's segment, or scan with --listener"),
    "placement_gap": ("place the sensor on the same segment and gateway as the device (or on the device's policy "
                      "group), then check again"),
    "placement_open_no_gateway": ("confirm from the device's own settings or a capture at its switch port whether "
                                  "the device itself reaches the gateway"),
    "placement_open_not_shown": "check from a sensor that uses the device's gateway, or capture the device's traffic",
    "segment_inconclusive": "resolve the segment's gaps listed with it first",
    "capture_dns_conflict": ("test the resolver with a nonce name under your own zone (`egress check --dns-zone`) to "
                             "prove or rule out recursion"),
    "rollup_no_active": "run `camaudit egress check --listener ...` from inside the segment (with a control)",
    "rollup_no_devices": "scan the segment's devices in the same scan (with credentials), so each is judged",
    "rollup_inconclusive_devices": "resolve each device's gaps, listed under the device",
    "no_verdict_in_scan": "scan with --listener (and a control run), or run `egress check` from the device's segment",
    "no_verdict_recorded": "scan with --listener (and a control run), or run `egress check` from the device's segment",
    # reads that were not verified (the reason inside not_verified / registration_unverified)
    "auth_required": "give credentials for this device (--credentials FILE or CAMAUDIT_USERNAME/CAMAUDIT_PASSWORD)",
    "no_credentials": "give credentials for this device (--credentials FILE or CAMAUDIT_USERNAME/CAMAUDIT_PASSWORD)",
    "auth_basic_only": ("camaudit never sends a password in the clear (Basic auth): enable digest authentication on "
                        "the device (Hikvision: System > Security > Authentication, 'digest'), or read the "
                        "Hik-Connect/EZVIZ status in its web interface (Network > Platform Access) and record it"),
    "basic_only": ("camaudit never sends a password in the clear (Basic auth): enable digest authentication on the "
                   "device, or read the cloud status in its web interface and record it"),
    "auth_refused": "check the credentials for this device (they were refused; camaudit does not retry)",
    "credentials_refused": "check the credentials for this device (they were refused; camaudit does not retry)",
    "refused_not_retried": "check the credentials for this device (they were refused; camaudit does not retry)",
    "unauthorised": "give credentials with the rights to read this setting",
    "forbidden": "give credentials of an account allowed to read this setting (an operator or administrator)",
    "timed_out": "scan again when the device is less busy, or with a longer --probe-timeout",
    "connection_error": "check that the device answers on its HTTP port from the sensor, then scan again",
    "api_time_limit": "scan this device alone, or with a longer time limit, so every read finishes",
    "vendor_api_not_tried": "give credentials, or the maker, so camaudit can try the vendor's read-only API",
    "no_http_port": ("the device offers no HTTP port to read settings from: check its cloud settings on the device "
                     "or its management platform and record them"),
    "dahua_no_status_api": ("Dahua firmware offers no read-only API that reports whether P2P is online: check the "
                            "P2P status in the device's web interface (Network > P2P, 'Status: Online/Offline') or "
                            "in the DMSS/SmartPSS app, disable P2P if it is not needed, and capture the device's "
                            "traffic (`camaudit egress pcap`) to see whether it reaches the cloud"),
    "status_not_reported": ("check the cloud/P2P status in the device's web interface, or capture its traffic "
                            "(`camaudit egress pcap`)"),
}

REMEDY_NL: dict[str, str] = {
    "planned_not_tested": ("voer de controle opnieuw uit en laat die afmaken; sla geen routes over (--skip) voor een "
                           "CLOSED-oordeel"),
    "path_unknown": ("voer de controle opnieuw uit; blijft deze route onbekend, test haar dan met de hand vanaf de "
                     "sensor, of lees het logboek van de listener in met `camaudit egress import-log`"),
    "control_missing": ("voer `camaudit egress check --control` uit met dezelfde --listener vanaf een meetpunt dat "
                        "het internet bereikt, binnen het controlevenster (--control-window, standaard 1 uur) van "
                        "deze controle"),
    "control_not_reaching": ("laat de listener deze poorten bedienen (egress listen --tcp-ports/--udp-ports), of voer "
                             "de controle uit vanaf een meetpunt dat ze naar buiten laat, en controleer opnieuw"),
    "control_run_unanswered": ("zorg dat `camaudit egress listen` draait en bereikbaar is en voer de controle "
                               "opnieuw uit"),
    "no_path_tested": ("geef de controle een listeneradres dat zij kan testen (--listener, IPv4 en/of IPv6) en laat "
                       "TCP-, UDP- of DNS-routes aan"),
    "listener_not_internet_gap": ("draai `camaudit egress listen` op een host met een publiek internetadres buiten "
                                  "het netwerk van de organisatie en controleer tegen dat adres"),
    "registration_unverified": ("lees de cloudinstellingen van het apparaat uit met inloggegevens (--credentials "
                                "BESTAND), of controleer de cloud-/P2P-aanmelding in de webinterface van het apparaat "
                                "en leg die vast"),
    "settings_not_read": ("scan met inloggegevens voor het apparaat (--credentials BESTAND of CAMAUDIT_USERNAME/"
                          "CAMAUDIT_PASSWORD) zodat gateway, DNS en cloudinstellingen uitgelezen kunnen worden"),
    "not_verified": "geef inloggegevens voor het apparaat (--credentials BESTAND) en scan opnieuw",
    "active_check_missing": ("voer `camaudit egress check --listener ...` (met een controle) uit vanaf een sensor in "
                             "het segment van het apparaat, of scan met --listener"),
    "placement_gap": ("plaats de sensor in hetzelfde segment en achter dezelfde gateway als het apparaat (of in "
                      "zijn beleidsgroep) en controleer opnieuw"),
    "placement_open_no_gateway": ("stel via de instellingen van het apparaat of een opname op zijn switchpoort vast "
                                  "of het apparaat zelf de gateway bereikt"),
    "placement_open_not_shown": ("controleer vanaf een sensor die de gateway van het apparaat gebruikt, of neem het "
                                 "verkeer van het apparaat op"),
    "segment_inconclusive": "los eerst de ontbrekende punten van het segment op die erbij staan",
    "capture_dns_conflict": ("test de resolver met een nonce-naam in uw eigen zone (`egress check --dns-zone`) om "
                             "recursie aan te tonen of uit te sluiten"),
    "rollup_no_active": "voer `camaudit egress check --listener ...` uit vanuit het segment (met een controle)",
    "rollup_no_devices": ("scan de apparaten van het segment in dezelfde scan (met inloggegevens), zodat elk "
                          "apparaat beoordeeld wordt"),
    "rollup_inconclusive_devices": "los de ontbrekende punten per apparaat op; ze staan bij het apparaat",
    "no_verdict_in_scan": ("scan met --listener (en een controlerun), of voer `egress check` uit vanuit het segment "
                           "van het apparaat"),
    "no_verdict_recorded": ("scan met --listener (en een controlerun), of voer `egress check` uit vanuit het segment "
                            "van het apparaat"),
    "auth_required": "geef inloggegevens voor dit apparaat (--credentials BESTAND of CAMAUDIT_USERNAME/CAMAUDIT_PASSWORD)",
    "no_credentials": "geef inloggegevens voor dit apparaat (--credentials BESTAND of CAMAUDIT_USERNAME/CAMAUDIT_PASSWORD)",
    "auth_basic_only": ("camaudit verstuurt nooit een wachtwoord leesbaar (Basic-authenticatie): zet digest-"
                        "authenticatie aan op het apparaat (Hikvision: Systeem > Beveiliging > Authenticatie, "
                        "'digest'), of lees de Hik-Connect/EZVIZ-status af in de webinterface (Netwerk > "
                        "Platformtoegang) en leg die vast"),
    "basic_only": ("camaudit verstuurt nooit een wachtwoord leesbaar (Basic-authenticatie): zet digest-"
                   "authenticatie aan op het apparaat, of lees de cloudstatus af in de webinterface en leg die vast"),
    "auth_refused": "controleer de inloggegevens voor dit apparaat (ze werden geweigerd; camaudit probeert niet opnieuw)",
    "credentials_refused": ("controleer de inloggegevens voor dit apparaat (ze werden geweigerd; camaudit probeert "
                            "niet opnieuw)"),
    "refused_not_retried": ("controleer de inloggegevens voor dit apparaat (ze werden geweigerd; camaudit probeert "
                            "niet opnieuw)"),
    "unauthorised": "geef inloggegevens met het recht deze instelling te lezen",
    "forbidden": "geef inloggegevens van een account dat deze instelling mag lezen (operator of beheerder)",
    "timed_out": "scan opnieuw wanneer het apparaat minder druk is, of met een langere --probe-timeout",
    "connection_error": "controleer dat het apparaat vanaf de sensor op zijn HTTP-poort antwoordt en scan opnieuw",
    "api_time_limit": "scan dit apparaat apart, of met een ruimere tijdslimiet, zodat elke uitlezing afkomt",
    "vendor_api_not_tried": ("geef inloggegevens of de fabrikant op, zodat camaudit de alleen-lezen-API van de "
                             "fabrikant kan proberen"),
    "no_http_port": ("het apparaat biedt geen HTTP-poort om instellingen uit te lezen: controleer de "
                     "cloudinstellingen op het apparaat of zijn beheerplatform en leg ze vast"),
    "dahua_no_status_api": ("Dahua-firmware biedt geen alleen-lezen-API die meldt of P2P online is: controleer de "
                            "P2P-status in de webinterface van het apparaat (Netwerk > P2P, 'Status: Online/Offline') "
                            "of in de DMSS/SmartPSS-app, zet P2P uit als het niet nodig is, en neem het verkeer van "
                            "het apparaat op (`camaudit egress pcap`) om te zien of het de cloud bereikt"),
    "status_not_reported": ("controleer de cloud-/P2P-status in de webinterface van het apparaat, of neem zijn "
                            "verkeer op (`camaudit egress pcap`)"),
}

REMEDIES: dict[str, dict[str, str]] = {"en": REMEDY_EN, "nl": REMEDY_NL}

#: Parameters that hold the reason a gap wraps, most telling first.
_INNER = ("reason", "note", "reasons", "why")


def _inner_reasons(reason: Reason) -> list[Reason]:
    found = []
    for key in _INNER:
        value = reason.params.get(key)
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if isinstance(v, Reason):
                found.append(v)
            elif isinstance(v, Mapping) and isinstance(v.get("code"), str):
                found.append(Reason.from_json(v))
    return found


def remedy(reason: Reason | Mapping[str, Any], lang: str = "en", _depth: int = 0) -> str | None:
    """What to do about a gap, in ``lang``: the remedy of the most specific reason inside it that
    has one, else its own; None when neither has one."""
    reason = Reason.from_json(reason)
    table = REMEDIES.get(lang, REMEDY_EN)
    if _depth < 4:
        for inner in _inner_reasons(reason):
            found = remedy(inner, lang, _depth + 1)
            if found is not None:
                return found
    return table.get(reason.code, REMEDY_EN.get(reason.code))


#: "What to do" in each language, for a gap followed by its remedy.
TODO_LABEL = {"en": "what to do", "nl": "wat te doen"}


def render_with_remedy(reason: Reason | Mapping[str, Any], lang: str = "en") -> str:
    """A gap in words, followed by what to do about it when there is a remedy."""
    text = render(reason, lang)
    fix = remedy(reason, lang)
    return f"{text} ({TODO_LABEL.get(lang, TODO_LABEL['en'])}: {fix})" if fix else text
