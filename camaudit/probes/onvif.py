"""ONVIF interrogation through onvif-zeep-async: read-only Device service calls, bounded.

reference/lab.md section 8.3 shows the library's own entry point (``ONVIFCamera``). camaudit
assembles the same parts itself (the bundled WSDL, onvif-zeep-async's aiohttp transport and
WS-Security token, its zeep client) for three reasons an audit tool cannot give up:

* one choke point: every SOAP message passes :class:`_GuardedTransport`, which reads the
  operation out of the envelope and refuses anything not on the read-only allowlist before a
  connection is opened (``probes.readonly``);
* bounds: our own aiohttp session caps each reply in bytes and time, follows no redirects and
  ignores proxy variables; zeep parses with DTDs and entities forbidden and no huge trees;
* no side effects: ``ONVIFCamera`` deletes ``http_proxy`` from the process environment.

Each read is tried without credentials first and with them only when the device refuses and
credentials were given (issue 4 item 5). A fault is "not verified", never "absent".
Access classes: reference/egress.md section 2.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp

from ..credentials import Credential
from ..model import Observation
from ..model.verdicts import Reason
from ..redact import redact, redact_obj
from .device_config import DeviceSettings
from .readonly import (
    ReadOnlyViolation,
    ensure_onvif_allowed,
    ensure_onvif_http_allowed,
)

log = logging.getLogger(__name__)

DEVICE_PATH = "/onvif/device_service"
DEVICE_BINDING = "{http://www.onvif.org/ver10/device/wsdl}DeviceBinding"
DEFAULT_MAX_BYTES = 256 * 1024

#: The reads, in order (issue 4 item 5). GetSystemDateAndTime comes first: it is PRE_AUTH, tells
#: whether ONVIF answers at all, and gives the clock offset WS-Security timestamps need.
READ_SEQUENCE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("GetSystemDateAndTime", {}),
    ("GetDeviceInformation", {}),
    ("GetScopes", {}),
    ("GetServices", {"IncludeCapability": False}),
    ("GetNetworkInterfaces", {}),
    ("GetDNS", {}),
    ("GetNTP", {}),
    ("GetNetworkDefaultGateway", {}),
    ("GetNetworkProtocols", {}),
    ("GetDiscoveryMode", {}),
)
DEVICE_INFO_FIELDS = ("Manufacturer", "Model", "FirmwareVersion", "SerialNumber", "HardwareId")


class ResponseTooLarge(aiohttp.ClientPayloadError):
    """A device reply exceeded the byte limit."""


class RedirectRefused(aiohttp.ClientError):
    """The device answered an ONVIF request with a redirect, which is never followed.

    A device fault (recorded as a problem of that port), not a :class:`ReadOnlyViolation`:
    camaudit sent nothing it should not have, and the host's other reads go on."""

    def __init__(self, location: str) -> None:
        super().__init__(f"device redirected the ONVIF request to {location!r}; not followed")
        self.location = location


def _bounded_response_class(limit: int) -> type[aiohttp.ClientResponse]:
    class BoundedResponse(aiohttp.ClientResponse):
        async def read(self) -> bytes:
            if self._body is None:
                if self.content_length is not None and self.content_length > limit:
                    self.close()
                    raise ResponseTooLarge(f"reply announced {self.content_length} bytes")
                buf = bytearray()
                try:
                    while chunk := await self.content.read(65536):
                        buf += chunk
                        if len(buf) > limit:
                            raise ResponseTooLarge(f"reply larger than {limit} bytes")
                except BaseException:
                    self.close()
                    raise
                self._body = bytes(buf)
            return await super().read()

    return BoundedResponse


@cache
def _transport_class() -> type[Any]:
    # Imported lazily: importing onvif configures the root logger (logging.basicConfig), which
    # the CLI should have done its own way first, and costs time ``camaudit --help`` need not pay.
    from onvif.zeep_aiohttp import AIOHTTPTransport

    class _GuardedTransport(AIOHTTPTransport):  # type: ignore[misc]
        """The one way out for SOAP: the envelope's operation must be an allowlisted read."""

        last_status: int | None = None

        async def post_xml(self, address: str, envelope: Any, headers: dict[str, str]) -> Any:
            body = envelope.find("{http://www.w3.org/2003/05/soap-envelope}Body")
            if body is None:
                body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
            operations = [str(child.tag).rsplit("}", 1)[-1] for child in (body if body is not None else [])]
            if len(operations) != 1:
                raise ReadOnlyViolation(f"refused to send a SOAP body with operations {operations!r}")
            ensure_onvif_allowed(operations[0])
            self.last_status = None
            response = await super().post_xml(address, envelope, headers)
            self.last_status = response.status_code
            return response

        async def post(self, address: str, message: str, headers: dict[str, str]) -> Any:
            raise ReadOnlyViolation("refused to send a raw SOAP message")

        async def get(self, address: str, params: Any = None, headers: Any = None) -> Any:
            raise ReadOnlyViolation(f"refused to fetch {address}: WSDLs are loaded from disk only")

    return _GuardedTransport


async def _guard_request(session: Any, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
    ensure_onvif_http_allowed(params.method, params.url.raw_path_qs)


async def _refuse_redirect(session: Any, ctx: Any, params: aiohttp.TraceRequestRedirectParams) -> None:
    # Raised before aiohttp sends anything to the new location.
    raise RedirectRefused(params.response.headers.get("Location", "?")[:200])


_DOCUMENT: Any = None
#: One lock per event loop (the scan runs a loop per stage, and an asyncio.Lock belongs to one).
_DOCUMENT_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def _device_document() -> Any:
    """The bundled devicemgmt WSDL, parsed once per process (off the event loop) and shared by
    every device's client.

    The lock matters: the interrogation stage opens up to 64 devices at once, and without it
    every one of them found no document yet and parsed its own (64 parses of about 4 MB of
    schema: some 300 MB resident and 10 s of CPU before the first device was asked anything;
    issue 15). The library's own cache has the same gap, since it is filled after the parse.
    """
    global _DOCUMENT
    if _DOCUMENT is None:
        loop = asyncio.get_running_loop()
        lock = _DOCUMENT_LOCKS.setdefault(loop, asyncio.Lock())
        async with lock:
            if _DOCUMENT is None:
                import onvif
                from onvif.client import _cached_document  # the library's own loader (FastDateTime fixes)

                path = Path(onvif.__file__).parent / "wsdl" / "devicemgmt.wsdl"
                _DOCUMENT = await _cached_document(str(path))
    return _DOCUMENT


async def prepare() -> None:
    """Load what every device's client shares (the parsed WSDL) before the first device needs
    it, so that a scan can do it while its probes wait on the network."""
    await _device_document()


def release() -> None:
    """Forget the parsed WSDL (about 10 MB of objects) once no device needs it: the scan's
    later stages reuse that memory instead of adding to the peak (issue 15)."""
    global _DOCUMENT
    _DOCUMENT = None
    try:
        from onvif.client import _DOCUMENT_CACHE  # the library's own copy of the same document
    except ImportError:
        return
    _DOCUMENT_CACHE.clear()


def _zeep_settings() -> Any:
    from zeep.settings import Settings

    return Settings(strict=False, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True,
                    forbid_external=True)


class OnvifDevice:
    """The Device service of one device on one port: two zeep service proxies (with and without
    WS-Security) over one bounded, guarded transport. Building it sends nothing."""

    def __init__(self, session: aiohttp.ClientSession, transport: Any, authless: Any,
                 authed: Any, token: Any, timeout: float) -> None:
        self._session = session
        self.transport = transport
        #: zeep service proxies; exposed so tests can prove the transport guard holds on its own
        self.authless_service = authless
        self.service = authed
        self._token = token
        self.timeout = timeout

    @classmethod
    async def open(cls, address: str, port: int, *, tls: bool = False,
                   credential: Credential | None = None, timeout: float = 5.0,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> OnvifDevice:
        from onvif.client import UsernameDigestTokenDtDiff, ZeepAsyncClient
        from onvif.wsa import WsAddressingIfMissingPlugin

        document = await _device_document()
        host = f"[{address}]" if ":" in address else address
        xaddr = f"{'https' if tls else 'http'}://{host}:{port}{DEVICE_PATH}"
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(_guard_request)
        trace.on_request_redirect.append(_refuse_redirect)
        context: ssl.SSLContext | bool = False
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=1, force_close=True),
            timeout=aiohttp.ClientTimeout(total=timeout, connect=timeout, sock_read=timeout),
            response_class=_bounded_response_class(max_bytes),
            trace_configs=[trace],
            trust_env=False,
            max_line_size=8190,
            max_field_size=8190,
        )
        transport = _transport_class()(session=session, verify_ssl=False)
        settings = _zeep_settings()
        authless_client = ZeepAsyncClient(wsdl=document, transport=transport, settings=settings,
                                          plugins=[WsAddressingIfMissingPlugin()])
        token = None
        authed = None
        if credential is not None:
            token = UsernameDigestTokenDtDiff(credential.username, credential.password, use_digest=True)
            authed_client = ZeepAsyncClient(wsdl=document, wsse=token, transport=transport,
                                            settings=settings, plugins=[WsAddressingIfMissingPlugin()])
            authed = authed_client.create_service(DEVICE_BINDING, xaddr)
        authless = authless_client.create_service(DEVICE_BINDING, xaddr)
        return cls(session, transport, authless, authed, token, timeout)

    def set_clock_offset(self, offset: dt.timedelta) -> None:
        """Sign WS-Security timestamps in the device's time (cameras reject skewed tokens)."""
        if self._token is not None:
            self._token.dt_diff = offset

    async def call(self, operation: str, params: Mapping[str, Any] | None = None, *,
                   authenticated: bool = False) -> Any:
        """One allowlisted operation; returns zeep's result object."""
        ensure_onvif_allowed(operation)
        proxy = self.service if authenticated else self.authless_service
        if proxy is None:
            raise ValueError("no credentials for an authenticated call")
        async with asyncio.timeout(self.timeout):
            return await getattr(proxy, operation)(**dict(params or {}))

    async def aclose(self) -> None:
        await self._session.close()


@dataclass(slots=True)
class OnvifResult:
    port: int
    #: something at /onvif/device_service answered (SOAP, a fault, or an HTTP 401)
    answered: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    #: operation -> "401 unauthorised", "not supported by the device", "timed out", ...
    failures: dict[str, str] = field(default_factory=dict)
    #: operation -> "none" | "ws-security"
    auth: dict[str, str] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: an answer was refused as hostile (an XML bomb, XXE): the device was not asked again
    refused_hostile: bool = False


HOSTILE_TEXT = "answer refused as hostile (XML with a DTD or entity declarations: an entity bomb or XXE)"

_AUTH_WORDS = ("notauthorized", "not authorized", "unauthorized", "unauthorised",
               "authority failure", "sender not authorized", "authentication", "access denied")
_UNSUPPORTED_WORDS = ("actionnotsupported", "action not supported", "not supported",
                      "not implemented", "unknown operation")


def classify_failure(exc: BaseException, http_status: int | None) -> tuple[str, str]:
    """(kind, text): kind is auth | unsupported | timeout | too_large | redirect | hostile | not_soap |
    connection | fault."""
    from zeep import exceptions as zx

    if isinstance(exc, RedirectRefused):
        return "redirect", f"redirected to {_short(exc.location)!r}; not followed"
    if isinstance(exc, ResponseTooLarge):
        return "too_large", "reply too large"
    if isinstance(exc, zx.DTDForbidden | zx.EntitiesForbidden | zx.ExternalReferenceForbidden):
        # zeep refused the document before expanding anything: a DTD or entity declarations in a
        # SOAP reply have no use but an entity-expansion bomb or an external entity (XXE).
        return "hostile", HOSTILE_TEXT
    if isinstance(exc, TimeoutError):
        return "timeout", "timed out"
    if http_status in (401, 403):
        return "auth", f"{http_status} {'unauthorised' if http_status == 401 else 'forbidden'}"
    if http_status is not None and http_status not in (200, 400, 500):
        # SOAP answers come as 200, or 400/500 with a Fault; anything else is not the service.
        return "not_soap", "404 not found" if http_status == 404 else f"HTTP {http_status}"
    if isinstance(exc, zx.Fault):
        subcodes = " ".join(str(getattr(s, "text", s)) for s in (exc.subcodes or []))
        words = f"{exc.code or ''} {subcodes} {exc.message or ''}".lower()
        if any(w in words for w in _AUTH_WORDS):
            return "auth", "SOAP fault: not authorised"
        if any(w in words for w in _UNSUPPORTED_WORDS):
            return "unsupported", "not supported by the device"
        return "fault", f"SOAP fault {_short(subcodes or str(exc.code or ''))}".rstrip()
    if isinstance(exc, zx.TransportError):
        status = exc.status_code or http_status
        if status == 404:
            return "not_soap", "404 not found"
        return "not_soap", f"HTTP {status}" if status else "reply is not SOAP"
    if isinstance(exc, zx.XMLSyntaxError | zx.XMLParseError | zx.DTDForbidden | zx.EntitiesForbidden
                  | zx.ExternalReferenceForbidden | zx.ValidationError | ValueError
                  | AttributeError | TypeError | LookupError):
        # zeep in recover mode turns a non-XML body into None and then trips over it.
        return "not_soap", "reply is not a usable SOAP document"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return "connection", f"connection failed ({type(exc).__name__})"
    return "fault", f"error ({type(exc).__name__})"


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def read_onvif(address: str, port: int, settings: DeviceSettings, *, tls: bool = False,
                     credential: Credential | None = None, timeout: float = 5.0,
                     max_bytes: int = DEFAULT_MAX_BYTES, budget: float | None = None) -> OnvifResult:
    """Run the read sequence against ``/onvif/device_service`` on one port.

    Fills ``settings`` (gateway, DNS, NTP, details) and returns observations
    (``onvif_device_info``, and ``onvif_probe_match`` carrying the GetScopes scope list).
    """
    result = OnvifResult(port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (budget if budget is not None else max(30.0, timeout * 8))
    secrets = (credential.password,) if credential is not None else ()
    device = await OnvifDevice.open(address, port, tls=tls, credential=credential,
                                    timeout=timeout, max_bytes=max_bytes)
    creds_refused = False
    timeouts = 0
    try:
        for operation, params in READ_SEQUENCE:
            if loop.time() > deadline:
                result.failures[operation] = "not tried (time budget for this device used up)"
                continue
            if timeouts >= 2:
                result.failures[operation] = "not tried (device stopped answering)"
                continue
            value, kind, text, mode = await _attempt(device, operation, params, authenticated=False)
            if kind == "auth" and credential is not None and not creds_refused:
                value, kind2, text2, mode = await _attempt(device, operation, params, authenticated=True)
                if kind2 == "auth":
                    creds_refused = True
                    text = f"{text2} with credentials (credentials refused; not retried)"
                    kind = kind2
                else:
                    kind, text = kind2, text2
            elif kind == "auth":
                text += " (no credentials given)" if credential is None else " (credentials refused earlier; not retried)"
            if operation == "GetServices" and kind not in ("", "auth", "timeout"):
                # Issue 4 item 5: GetServices or GetCapabilities.
                value, kind, text, mode = await _attempt(device, "GetCapabilities", {"Category": ["All"]},
                                                         authenticated=False)
                operation = "GetCapabilities"
            if kind == "":
                result.answered = True
                result.results[operation] = redact_obj(_jsonable(value), secrets)
                result.auth[operation] = mode
                if operation == "GetSystemDateAndTime":
                    offset = _clock_offset(result.results[operation])
                    if offset is not None:
                        device.set_clock_offset(offset)
                continue
            if kind in ("auth", "fault", "unsupported"):
                result.answered = True
            timeouts = timeouts + 1 if kind == "timeout" else 0
            result.failures[operation] = text
            if kind == "too_large":
                result.problems.append(f"ONVIF {operation} on port {port}: reply larger than {max_bytes} bytes")
            if kind == "redirect":
                result.problems.append(f"ONVIF {operation} on port {port}: {text}")
            if kind == "hostile":
                result.refused_hostile = True
                result.problems.append(f"ONVIF {operation} on port {port}: {text}")
            if operation == "GetSystemDateAndTime" and kind in ("not_soap", "connection", "too_large", "timeout",
                                                                 "redirect", "hostile"):
                return result  # nothing ONVIF here: do not walk the rest of the list
    finally:
        await device.aclose()
    _apply(result, settings, address, secrets)
    return result


async def _attempt(device: OnvifDevice, operation: str, params: Mapping[str, Any], *,
                   authenticated: bool) -> tuple[Any, str, str, str]:
    mode = "ws-security" if authenticated else "none"
    try:
        value = await device.call(operation, params, authenticated=authenticated)
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001  (every device failure becomes a "not verified" line)
        kind, text = classify_failure(exc, device.transport.last_status)
        log.debug("ONVIF %s (%s): %s", operation, mode, text)
        return None, kind, text, mode
    return value, "", "", mode


def _clock_offset(value: Any) -> dt.timedelta | None:
    try:
        utc = value["UTCDateTime"]
        date, time = utc["Date"], utc["Time"]
        device_now = dt.datetime(int(date["Year"]), int(date["Month"]), int(date["Day"]),
                                 int(time["Hour"]), int(time["Minute"]), int(time["Second"]),
                                 tzinfo=dt.UTC)
    except (KeyError, TypeError, ValueError, OverflowError):  # Overflow: a year past any C long
        return None
    return device_now - dt.datetime.now(dt.UTC)


def _jsonable(value: Any, depth: int = 0) -> Any:
    """zeep objects to bounded JSON-safe data: devices control their size."""
    if depth == 0:
        from zeep.helpers import serialize_object

        value = serialize_object(value)  # type: ignore[no-untyped-call]
    if depth > 8:
        return "…"
    if isinstance(value, Mapping):
        return {str(k)[:128]: _jsonable(v, depth + 1) for k, v in list(value.items())[:128]
                if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value[:128]]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value[:1024].decode("utf-8", "replace")
    return str(value)[:1024]


def _apply(result: OnvifResult, settings: DeviceSettings, address: str, secrets: Sequence[str]) -> None:
    res = result.results
    source = f"onvif port {result.port}"
    info = res.get("GetDeviceInformation")
    if isinstance(info, Mapping):
        doc = {k: info.get(k) for k in DEVICE_INFO_FIELDS}
        result.observations.append(Observation(address, "onvif_device_info",
                                               redact(json.dumps(doc), secrets), port=result.port,
                                               source="onvif GetDeviceInformation"))
    scopes = res.get("GetScopes")
    if isinstance(scopes, list):
        items = [str(s.get("ScopeItem")) for s in scopes if isinstance(s, Mapping) and s.get("ScopeItem")]
        if items:
            result.observations.append(Observation(address, "onvif_probe_match",
                                                   redact(" ".join(items), secrets), port=result.port,
                                                   source="onvif GetScopes"))
    gateway = res.get("GetNetworkDefaultGateway")
    if isinstance(gateway, Mapping):
        settings.add_gateway(_addresses(gateway.get("IPv4Address")) + _addresses(gateway.get("IPv6Address")),
                             f"{source} GetNetworkDefaultGateway")
    dns = res.get("GetDNS")
    if isinstance(dns, Mapping):
        entries = dns.get("DNSFromDHCP") if dns.get("FromDHCP") else dns.get("DNSManual")
        settings.add_dns(_host_list(entries), f"{source} GetDNS")
    ntp = res.get("GetNTP")
    if isinstance(ntp, Mapping):
        entries = ntp.get("NTPFromDHCP") if ntp.get("FromDHCP") else ntp.get("NTPManual")
        settings.add_ntp(_host_list(entries), f"{source} GetNTP")
    onvif_details = settings.details.setdefault("onvif", {})
    onvif_details["port"] = result.port
    for operation in ("GetSystemDateAndTime", "GetServices", "GetCapabilities", "GetNetworkInterfaces",
                      "GetDNS", "GetNTP", "GetNetworkProtocols", "GetDiscoveryMode"):
        if operation in res:
            onvif_details[operation] = res[operation]
    onvif_details["auth"] = dict(result.auth)
    for operation, text in result.failures.items():
        # The failure's words are the ONVIF client's own; the read is named for the verdict logic.
        settings.not_verified_once(Reason("onvif_failed", {"what": f"ONVIF {operation}", "read": f"onvif:{operation}",
                                                           "port": result.port, "detail": text}))


def _addresses(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if v and str(v) not in ("0.0.0.0", "::")]  # noqa: S104


def _host_list(entries: Any) -> list[str]:
    """tt:IPAddress / tt:NetworkHost entries to strings (IPv4Address, IPv6Address or DNSname)."""
    out: list[str] = []
    for entry in entries if isinstance(entries, list) else [entries] if entries else []:
        if not isinstance(entry, Mapping):
            continue
        for key in ("IPv4Address", "IPv6Address", "DNSname"):
            value = entry.get(key)
            if value and str(value) not in out and str(value) not in ("0.0.0.0", "::"):  # noqa: S104
                out.append(str(value))
    return out
