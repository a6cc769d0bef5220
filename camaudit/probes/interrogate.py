"""Read-only interrogation of one device: ONVIF, then Hikvision ISAPI or Dahua CGI.

The pipeline calls :func:`interrogate` per host after the port sweep. Without credentials only
unauthenticated reads are made; every 401/403/404 is recorded as *not verified*, never as "off"
(DESIGN.md section 5, reference/egress.md section 2.5).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from ..credentials import Credential, CredentialStore
from ..model import Observation
from ..model.verdicts import Reason
from .device_config import DeviceSettings, InterrogationReport
from .onvif import prepare, read_onvif
from .ports import MAX_HTTP_PORTS, NON_HTTP_PORTS, PREFERRED_HTTP_PORTS, candidate_http_ports

log = logging.getLogger(__name__)

__all__ = [
    "MAX_HTTP_PORTS",
    "NON_HTTP_PORTS",
    "PREFERRED_HTTP_PORTS",
    "DeviceSettings",
    "InterrogationReport",
    "candidate_http_ports",
    "interrogate",
    "prepare",
]

TLS_PORTS = frozenset({443, 8443})

#: Brand and maker names that point at the firmware family (fingerprinting.md section 6).
_VENDOR_HINTS = {
    "hikvision": "hikvision", "ezviz": "hikvision", "prama": "hikvision", "interlogix": "hikvision",
    "truvision": "hikvision", "dahua": "dahua", "amcrest": "dahua", "lorex": "dahua",
    "imou": "dahua", "cp plus": "dahua", "cpplus": "dahua", "intelbras": "dahua",
}


async def interrogate(
    address: str,
    open_ports: Sequence[int],
    *,
    credentials: CredentialStore | None,
    timeout: float = 5.0,
    vendor: str | None = None,
    vendor_later: Callable[[], Awaitable[str | None]] | None = None,
    http_ports: Sequence[int] | None = None,
    tls_ports: Sequence[int] | None = None,
    max_bytes: int = 256 * 1024,
) -> InterrogationReport:
    """Read what ``address`` says about itself, read-only.

    ``vendor`` is the identified maker when known (chooses ISAPI or Dahua CGI and the vendor
    credential entry). ``vendor_later``, when ``vendor`` is not known yet, is awaited for it at
    the first moment it matters: before anything is sent when credentials are given (their
    vendor entries), else after the ONVIF reads, which do not depend on it (the scan passes
    one that waits for discovery's answers). ``http_ports`` overrides which open ports are
    tried as HTTP (default: the open ports that are not known non-HTTP services, web ports
    first, at most four).
    """
    settings = DeviceSettings(address=address)
    report = InterrogationReport(observations=[], settings=settings)
    if vendor is None and vendor_later is not None and credentials:
        vendor, vendor_later = await vendor_later(), None
    credential = credentials.lookup(address, vendor) if credentials else None
    ports = list(http_ports) if http_ports is not None else candidate_http_ports(open_ports)
    tls = frozenset(tls_ports) if tls_ports is not None else TLS_PORTS
    if not ports:
        settings.not_verified.append(Reason("no_http_port"))
        return report
    budget = max(30.0, timeout * 8)

    onvif_port: int | None = None
    hostile: list[int] = []  # ports whose answer was refused as hostile (a bomb, XXE)
    for port in ports:
        try:
            result = await read_onvif(address, port, settings, tls=port in tls, credential=credential,
                                      timeout=timeout, max_bytes=max_bytes, budget=budget)
        except OSError as exc:
            report.problems.append(f"ONVIF on port {port}: {type(exc).__name__}")
            continue
        report.problems.extend(result.problems)
        if result.refused_hostile and not result.answered:
            hostile.append(port)
            continue
        if result.answered:
            onvif_port = port
            report.observations.extend(result.observations)
            break
    if onvif_port is None:
        # Said as it was: an answer refused as hostile is not the absence of an answer.
        if hostile:
            settings.not_verified.append(Reason("onvif_hostile", {"ports": ", ".join(map(str, hostile)),
                                                                  "count": len(hostile)}))
        silent = [p for p in ports if p not in hostile]
        if silent:
            settings.not_verified.append(Reason("onvif_no_service", {"ports": ", ".join(map(str, silent)),
                                                                     "count": len(silent)}))

    if vendor is None and vendor_later is not None:
        vendor = await vendor_later()
    family = (vendor or "").lower() or _vendor_from_onvif(report.observations)
    web_port = ports[0]
    apis: list[str]
    if family == "hikvision":
        apis = ["isapi"]
    elif family == "dahua":
        apis = ["dahua"]
    elif credential is not None:
        apis = ["isapi", "dahua"]  # unknown maker: ISAPI first, Dahua CGI only if ISAPI is absent
    else:
        apis = []
        settings.not_verified.append(Reason("vendor_api_not_tried"))
    if apis:
        await _vendor_apis(address, web_port, web_port in tls, apis, credential, timeout, max_bytes,
                           settings, report)
    return report


async def _vendor_apis(address: str, port: int, tls: bool, apis: list[str],
                       credential: Credential | None, timeout: float, max_bytes: int,
                       settings: DeviceSettings, report: InterrogationReport) -> None:
    # Imported here: most devices are not asked in a vendor API, and its HTTP client (httpx)
    # costs a one-host scan about 0.08 s to import (issue 15).
    from .vendor_api import ReadOnlyHTTP, VendorResult, read_dahua, read_isapi

    async with ReadOnlyHTTP(address, port, tls=tls, credential=credential, timeout=timeout,
                            max_bytes=max_bytes) as http:
        for api in apis:
            reader = read_isapi if api == "isapi" else read_dahua
            try:
                result: VendorResult = await asyncio.wait_for(reader(http, settings),
                                                              timeout=max(30.0, timeout * 12))
            except TimeoutError:
                report.problems.append(f"{api} on port {port}: the whole read took too long; stopped")
                settings.not_verified.append(Reason("api_time_limit", {"api": api, "port": port}))
                continue
            report.observations.extend(result.observations)
            report.problems.extend(result.problems)
            if result.speaks or http.auth.refused:
                break  # one vendor API per device; and never a second login after a refusal


def _vendor_from_onvif(observations: list[Observation]) -> str:
    for obs in observations:
        if obs.kind != "onvif_device_info":
            continue
        try:
            manufacturer = str(json.loads(obs.value).get("Manufacturer") or "").lower()
        except (ValueError, AttributeError):
            continue
        for name, family in _VENDOR_HINTS.items():
            if name in manufacturer:
                return family
    return ""
