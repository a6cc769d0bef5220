"""Read-only vendor APIs: Hikvision ISAPI and Dahua CGI, over a bounded GET-only HTTP client.

Every request goes through :meth:`ReadOnlyHTTP.request`, which checks the read-only allowlist
(``probes.readonly``) before anything is sent; the httpx client it owns checks again on every
request it is about to send (including the digest retry), and never follows a redirect.
Responses are capped in size and time. Passwords are sent only as HTTP digest (never Basic, so
never in clear text), at most once per request, and after one refusal camaudit stops sending
them to that device at all: Dahua locks accounts after a few failures (fingerprinting.md 2.1).

Facts: reference/egress.md sections 2.2 (ISAPI), 2.3 (Dahua CGI) and 2.5 (read-only, secrets).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import ssl
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..credentials import Credential
from ..model import Observation, bounded_text
from ..model.verdicts import Reason
from ..protocols import dahua_cgi, isapi
from ..redact import redact, redact_obj
from .device_config import DeviceSettings
from .readonly import ensure_http_allowed

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024
USER_AGENT = "camaudit (read-only audit)"

_HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
}
#: One ``name=value`` parameter, or else one whole word, or one other character: every match
#: consumes input. A word that is not followed by ``=`` is skipped as a whole, because no
#: parameter can start inside it (its every suffix runs into the same non-``=``); a bare
#: ``name=value`` search instead retried ``[\w-]*`` from every letter of a long word, quadratic.
#: Findings are the same as the bare search's: the parameters are the matches whose name is set.
_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)|[A-Za-z][\w-]*|.', re.DOTALL)
_MAX_CHALLENGE = 4096


@dataclass(slots=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False
    #: "none": no credentials sent; "digest": sent and accepted or not (see status)
    auth: str = "none"


@dataclass(slots=True)
class _AuthState:
    """What happened to credentials on one device, shared across its requests."""

    credential: Credential | None
    refused: bool = False
    sent: bool = False
    basic_only: bool = False
    unsupported: str | None = None

    def unusable(self) -> Reason | None:
        """Why no further authenticated read makes sense on this device, or None."""
        if self.credential is None:
            return Reason("no_credentials")
        if self.refused:
            return Reason("credentials_refused")
        if self.basic_only:
            return Reason("basic_only")
        if self.unsupported:
            return Reason("auth_scheme_unsupported", {"detail": self.unsupported})
        return None


class _DigestAuth(httpx.Auth):
    """RFC 7616 digest (MD5, SHA-256, their -sess forms; qop auth or none), one attempt.

    A challenge we cannot answer safely (Basic only, auth-int only, an unknown algorithm, a
    malformed header) is left unanswered: the 401 stands and becomes "not verified".
    """

    def __init__(self, state: _AuthState) -> None:
        self._state = state
        self.sent_here = False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        state = self._state
        if response.status_code != 401 or state.credential is None or state.refused:
            return
        challenges = response.headers.get_list("www-authenticate")
        digest = next((c for c in challenges if c[:7].lower() == "digest "), None)
        if digest is None:
            state.basic_only = any(c[:6].lower() == "basic " for c in challenges)
            return
        header = digest_authorization(
            request.method, request.url.raw_path.decode("ascii", "replace"), digest, state.credential
        )
        if isinstance(header, _Unsupported):
            state.unsupported = header.reason
            return
        request.headers["Authorization"] = header
        state.sent = self.sent_here = True
        retry = yield request
        if retry.status_code == 401:
            state.refused = True


@dataclass(frozen=True, slots=True)
class _Unsupported:
    reason: str


def parse_challenge(header: str) -> dict[str, str] | None:
    """The parameters of one ``Digest ...`` challenge, or None when malformed."""
    if len(header) > _MAX_CHALLENGE or header[:7].lower() != "digest ":
        return None
    params: dict[str, str] = {}
    for name, raw in _PARAM.findall(header[7:]):
        if not name:
            continue  # a skipped word or character
        value = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
        params[name.lower()] = value
    return params if "realm" in params and "nonce" in params else None


def digest_authorization(
    method: str, uri: str, challenge: str, credential: Credential, cnonce: str | None = None
) -> str | _Unsupported:
    """The ``Authorization`` value answering ``challenge`` (RFC 7616 section 3.4)."""
    params = parse_challenge(challenge)
    if params is None:
        return _Unsupported("malformed digest challenge")
    algorithm = params.get("algorithm", "MD5").upper()
    hash_fn = _HASHES.get(algorithm)
    if hash_fn is None:
        return _Unsupported(f"digest algorithm {algorithm[:20]!r} not supported")
    qop_options = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    if qop_options and "auth" not in qop_options:
        return _Unsupported("digest qop auth-int only")
    realm, nonce = params["realm"], params["nonce"]
    for value in (realm, nonce, params.get("opaque", ""), credential.username):
        if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value):
            return _Unsupported("control characters in digest challenge")

    def h(text: str) -> str:
        return str(hash_fn(text.encode("utf-8")).hexdigest())

    cnonce = cnonce or secrets.token_hex(8)
    nc = "00000001"
    ha1 = h(f"{credential.username}:{realm}:{credential.password}")
    if algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    if qop_options:
        response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    parts = [
        f'username="{_quote(credential.username)}"',
        f'realm="{_quote(realm)}"',
        f'nonce="{_quote(nonce)}"',
        f'uri="{_quote(uri)}"',
        f"algorithm={algorithm if 'algorithm' in params else 'MD5'}",
        f'response="{response}"',
    ]
    if "opaque" in params:
        parts.append(f'opaque="{_quote(params["opaque"])}"')
    if qop_options:
        parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class ReadOnlyHTTP:
    """A GET-only, allowlisted, size- and time-bounded HTTP client for one device and port."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        tls: bool = False,
        credential: Credential | None = None,
        timeout: float = 5.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        host = f"[{address}]" if ":" in address else address
        self.address, self.port = address, port
        self.base = f"{'https' if tls else 'http'}://{host}:{port}"
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.auth = _AuthState(credential)
        verify: ssl.SSLContext | bool = False
        if tls:
            # Cameras present self-signed certificates; digest never reveals the password anyway.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            verify = context
        self._client = httpx.AsyncClient(
            trust_env=False,  # no proxies, no .netrc: requests go to the device and nowhere else
            follow_redirects=False,
            verify=verify,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            event_hooks={"request": [self._guard]},
        )

    @property
    def credential(self) -> Credential | None:
        return self.auth.credential

    async def __aenter__(self) -> ReadOnlyHTTP:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    @staticmethod
    async def _guard(request: httpx.Request) -> None:
        ensure_http_allowed(request.method, request.url.raw_path.decode("ascii", "replace"))

    async def get(self, target: str) -> HttpReply:
        return await self.request("GET", target)

    async def request(self, method: str, target: str) -> HttpReply:
        """Send one allowlisted request; raise ReadOnlyViolation before sending anything else.

        Network failures raise ``httpx.HTTPError`` or ``TimeoutError``; the callers turn them
        into "not verified" lines.
        """
        ensure_http_allowed(method, target)
        auth = _DigestAuth(self.auth)
        async with asyncio.timeout(self.timeout * 2):  # the whole exchange, digest retry included
            async with self._client.stream(method, self.base + target, auth=auth) as response:
                body, truncated = await self._read_body(response)
        used = "digest" if auth.sent_here else "none"
        log.debug("%s %s:%s%s -> %s (%d bytes)", method, self.address, self.port, target,
                  response.status_code, len(body))
        return HttpReply(
            status=response.status_code,
            headers={k.lower(): v[:1024] for k, v in response.headers.items()},
            body=body,
            truncated=truncated,
            auth=used,
        )

    async def _read_body(self, response: httpx.Response) -> tuple[bytes, bool]:
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding not in ("identity", ""):
            return b"", True  # we asked for identity; a compressed reply is not decompressed
        buf = bytearray()
        async for chunk in response.aiter_raw():
            buf += chunk
            if len(buf) > self.max_bytes:
                return bytes(buf[: self.max_bytes]), True
        return bytes(buf), False


@dataclass(slots=True)
class VendorResult:
    observations: list[Observation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: True once the device answered like this API (an ISAPI DeviceInfo, a magicBox key=value)
    speaks: bool = False


#: The stable name of each ISAPI read (the ``read`` of its not-verified reasons): the verdict
#: logic decides on these names, never on the labels shown to readers.
ISAPI_READ_IDS: dict[str, str] = {
    "/ISAPI/System/deviceInfo": "isapi:deviceInfo",
    "/ISAPI/System/Network/interfaces": "isapi:interfaces",
    "/ISAPI/System/Network/EZVIZ": "isapi:EZVIZ",
    "/ISAPI/System/Network/Ehome": "isapi:Ehome",
    "/ISAPI/System/onlineUpgrade/server": "isapi:onlineUpgrade",
    "/ISAPI/System/time/ntpServers": "isapi:ntpServers",
    "/ISAPI/System/Network/DDNS": "isapi:DDNS",
    "/ISAPI/System/Network/UPnP": "isapi:UPnP",
    "/ISAPI/System/Network/UPnP/ports/status": "isapi:UPnPStatus",
}


def read_id(target: str) -> str:
    """The stable name of a read: ``isapi:EZVIZ``, ``dahua:T2UServer``, ``dahua:getSystemInfo``."""
    if target in ISAPI_READ_IDS:
        return ISAPI_READ_IDS[target]
    for marker in ("name=", "action="):
        if "/cgi-bin/" in target and marker in target:
            return "dahua:" + target.rsplit(marker, 1)[1].split("&", 1)[0]
    return target


def _unverified(code: str, target: str, label: str, http: ReadOnlyHTTP, **params: Any) -> Reason:
    """A not-verified reason for one read: what it is called, which read it is, on what port."""
    return Reason(code, {"what": label, "read": read_id(target), "port": http.port, **params})


def _status_reason(reply: HttpReply, http: ReadOnlyHTTP, target: str, label: str) -> Reason:
    if reply.status == 401:
        state = http.auth
        if state.credential is None:
            return _unverified("auth_required", target, label, http)
        if state.basic_only:
            return _unverified("auth_basic_only", target, label, http)
        if state.unsupported:
            return _unverified("auth_unsupported", target, label, http, detail=state.unsupported)
        if state.refused:
            return _unverified("auth_refused", target, label, http)
        return _unverified("unauthorised", target, label, http)
    if reply.status == 403:
        return _unverified("forbidden", target, label, http)
    if reply.status == 404:
        return _unverified("not_found", target, label, http)
    return _unverified("http_status", target, label, http, status=reply.status)


async def _fetch(http: ReadOnlyHTTP, target: str, label: str, settings: DeviceSettings,
                 result: VendorResult) -> HttpReply | None:
    try:
        reply = await http.get(target)
    except TimeoutError:
        settings.not_verified_once(_unverified("timed_out", target, label, http))
        result.problems.append(f"{label} on port {http.port}: no complete answer within the time limit")
        return None
    except httpx.HTTPError as exc:
        settings.not_verified_once(_unverified("connection_error", target, label, http, error=type(exc).__name__))
        result.problems.append(f"{label} on port {http.port}: {type(exc).__name__}")
        return None
    if reply.truncated:
        result.problems.append(f"{label} on port {http.port}: reply larger than {http.max_bytes} bytes, cut")
    return reply


def _secrets(http: ReadOnlyHTTP) -> tuple[str, ...]:
    cred = http.credential
    # Only the password: the account name is not secret, and scrubbing a common word such as
    # "admin" from every reply would damage the evidence.
    return (cred.password,) if cred is not None else ()


def _evidence(settings: DeviceSettings, http: ReadOnlyHTTP, source: str, reply: HttpReply) -> str:
    text = redact(bounded_text(reply.body), _secrets(http))
    settings.add_evidence(source, http.port, reply.status, text)
    return text


#: ISAPI configuration reads after deviceInfo, with the label used in "not verified" lines.
ISAPI_CONFIG_READS: tuple[tuple[str, str], ...] = (
    ("/ISAPI/System/Network/interfaces", "ISAPI network interfaces"),
    ("/ISAPI/System/Network/EZVIZ", "ISAPI EZVIZ"),
    ("/ISAPI/System/Network/Ehome", "ISAPI Ehome"),
    ("/ISAPI/System/onlineUpgrade/server", "ISAPI online-upgrade server"),
    ("/ISAPI/System/time/ntpServers", "ISAPI NTP servers"),
    ("/ISAPI/System/Network/DDNS", "ISAPI DDNS"),
    ("/ISAPI/System/Network/UPnP", "ISAPI UPnP"),
    ("/ISAPI/System/Network/UPnP/ports/status", "ISAPI UPnP port status"),
)


async def read_isapi(http: ReadOnlyHTTP, settings: DeviceSettings) -> VendorResult:
    """Read deviceInfo and the egress-relevant ISAPI settings (egress.md section 2.2)."""
    result = VendorResult()
    target, label = "/ISAPI/System/deviceInfo", "ISAPI deviceInfo"
    reply = await _fetch(http, target, label, settings, result)
    if reply is None:
        return result
    if reply.status == 200:
        info = isapi.parse_device_info(reply.body)
        if info is None:
            settings.not_verified_once(_unverified("not_isapi_document", target, label, http))
            return result
        result.speaks = True
        text = redact(bounded_text(reply.body), _secrets(http))
        result.observations.append(Observation(
            settings.address, "isapi_device_info", text, port=http.port,
            source="vendor_api GET /ISAPI/System/deviceInfo",
        ))
    else:
        settings.not_verified_once(_status_reason(reply, http, target, label))
        if reply.status not in (401, 403):
            return result
        why = http.auth.unusable()
        if why is not None:
            _skip(settings, http, ISAPI_CONFIG_READS, why)
            return result

    def apply(index: int, target: str, body: bytes) -> str | None:
        return None if _apply_isapi(target, body, settings, http) else "reply_not_understood"

    await _read_config(http, settings, result, ISAPI_CONFIG_READS, "isapi", apply)
    return result


def _apply_isapi(target: str, body: bytes, settings: DeviceSettings, http: ReadOnlyHTTP) -> bool:
    source = f"isapi {target}"
    if target.endswith("/interfaces"):
        net = isapi.parse_network_interfaces(body)
        if net is None:
            return False
        settings.add_gateway(net.gateways, source)
        settings.add_dns(net.dns, source)
        settings.details.setdefault("isapi_interfaces", net.interfaces)
        return True
    if target.endswith(("/EZVIZ", "/Ehome")):
        root = "EZVIZ" if target.endswith("/EZVIZ") else "Ehome"
        status = isapi.parse_platform(body, root)
        if status is None:
            return False
        name = "hik_connect" if root == "EZVIZ" else "hik_ehome"
        settings.cloud[name] = {
            "enabled": status.enabled, "registered": status.registered, "bound": status.bound,
            "servers": status.servers, "source": source,
        }
        return True
    if target.endswith("/onlineUpgrade/server"):
        status = isapi.parse_online_upgrade_server(body)
        if status is None:
            return False
        settings.cloud["online_upgrade"] = {"registered": status.registered, "source": source}
        return True
    if target.endswith("/ntpServers"):
        servers = isapi.parse_ntp_servers(body)
        if servers is None:
            return False
        settings.add_ntp(servers, source)
        return True
    if target.endswith("/DDNS"):
        entries = isapi.parse_ddns(body)
        if entries is None:
            return False
        settings.cloud["ddns"] = {
            "enabled": any(e.get("enabled") is True for e in entries),
            "entries": redact_obj(entries, _secrets(http)), "source": source,
        }
        return True
    if target.endswith("/UPnP"):
        enabled = isapi.parse_upnp(body)
        if enabled is None:
            return False
        settings.cloud["upnp"] = {"enabled": enabled, "source": source}
        return True
    if target.endswith("/ports/status"):
        records = isapi.parse_upnp_port_status(body)
        if records is None:
            return False
        settings.add_upnp_mappings(
            [dict(redact_obj(r, _secrets(http)), kind="status") for r in records], source
        )
        return True
    return False


#: magicBox reads kept as ``dahua_cgi`` observations (fingerprinting.md section 4.2).
DAHUA_INFO_READS: tuple[str, ...] = ("getSystemInfo", "getSoftwareVersion", "getVendor", "getDeviceType")
#: configManager tables read for egress evidence (egress.md section 2.3).
DAHUA_CONFIG_NAMES: tuple[str, ...] = ("Network", "NTP", "T2UServer", "VSP_PaaS", "UPnP", "DDNS")


async def read_dahua(http: ReadOnlyHTTP, settings: DeviceSettings) -> VendorResult:
    """Read magicBox identity and the egress-relevant configManager tables."""
    result = VendorResult()
    config_labels = tuple((f"/cgi-bin/configManager.cgi?action=getConfig&name={n}", f"Dahua CGI {n}")
                          for n in DAHUA_CONFIG_NAMES)
    for action in DAHUA_INFO_READS:
        target = f"/cgi-bin/magicBox.cgi?action={action}"
        label = f"Dahua CGI {action}"
        if http.auth.refused:
            settings.not_verified_once(_unverified("refused_not_retried", target, label, http))
            continue
        reply = await _fetch(http, target, label, settings, result)
        if reply is None:
            continue
        kv = dahua_cgi.parse_kv(reply.body) if reply.status == 200 else None
        if kv is None:
            settings.not_verified_once(_status_reason(reply, http, target, label) if reply.status != 200
                                       else _unverified("reply_not_understood", target, label, http))
            if action == "getSystemInfo" and reply.status not in (401, 403):
                return result  # no magicBox here: not a Dahua CGI device
            why = http.auth.unusable()
            if action == "getSystemInfo" and why is not None:
                _skip(settings, http, config_labels, why)
                return result
            continue
        result.speaks = True
        text = redact(bounded_text(reply.body), _secrets(http))
        result.observations.append(Observation(
            settings.address, "dahua_cgi", text, port=http.port, source=f"vendor_api GET {target}",
        ))

    def apply(index: int, target: str, body: bytes) -> str | None:
        kv = dahua_cgi.parse_kv(body)
        if kv is not None and _apply_dahua(DAHUA_CONFIG_NAMES[index], kv, settings, http):
            return None
        if body.strip().split(b"\n", 1)[0].strip().lower() == b"error":
            # Firmware without the table answers "Error": not present, which is not
            # "disabled" (egress.md section 2.3).
            return "table_absent"
        # Anything else we could not read says nothing about absence: not verified.
        return "reply_not_understood"

    await _read_config(http, settings, result, config_labels, "dahua", apply)
    return result


def _apply_dahua(name: str, kv: dict[str, str], settings: DeviceSettings, http: ReadOnlyHTTP) -> bool:
    source = f"dahua configManager {name}"
    if name == "Network":
        net = dahua_cgi.network_settings(kv)
        if net is None:
            return False
        settings.add_gateway(net[0], source)
        settings.add_dns(net[1], source)
        return True
    if name == "NTP":
        ntp = dahua_cgi.ntp_servers(kv)
        if ntp is None:
            return False
        enabled, servers = ntp
        settings.add_ntp(servers if enabled is not False else [], source)
        settings.details["dahua_ntp_enabled"] = enabled
        return True
    if name in ("T2UServer", "VSP_PaaS"):
        config = dahua_cgi.t2u_server(kv) if name == "T2UServer" else dahua_cgi.vsp_paas(kv)
        if config is None:
            return False
        settings.cloud["dahua_p2p" if name == "T2UServer" else "dahua_paas"] = {
            "enabled": config.enabled, "registered": None, "servers": config.servers, "source": source,
            "note": Reason("dahua_no_status_api").to_json(),
        }
        return True
    if name == "UPnP":
        upnp = dahua_cgi.upnp(kv)
        if upnp is None:
            return False
        enabled, mappings = upnp
        settings.cloud["upnp"] = {"enabled": enabled, "source": source}
        settings.add_upnp_mappings([dict(m, kind="configured") for m in mappings], source)
        return True
    if name == "DDNS":
        entries = dahua_cgi.ddns(kv)
        if entries is None:
            return False
        settings.cloud["ddns"] = {
            "enabled": any(e.get("Enable") is True for e in entries),
            "entries": redact_obj(entries, _secrets(http)), "source": source,
        }
        return True
    return False


async def _read_config(
    http: ReadOnlyHTTP,
    settings: DeviceSettings,
    result: VendorResult,
    reads: tuple[tuple[str, str], ...],
    source: str,
    apply: Callable[[int, str, bytes], str | None],
) -> None:
    """Read each (target, label) in turn and hand a 200 reply to ``apply``, which returns None
    when it used the reply, else the code of why it could not (recorded as not verified). After
    one refused login the rest are not tried: devices lock accounts after a few failures."""
    for index, (target, label) in enumerate(reads):
        if http.auth.refused:
            _skip(settings, http, reads[index:], Reason("credentials_refused"))
            return
        reply = await _fetch(http, target, label, settings, result)
        if reply is None:
            continue
        if reply.status != 200:
            settings.not_verified_once(_status_reason(reply, http, target, label))
            continue
        _evidence(settings, http, f"{source} GET {target}", reply)
        why = apply(index, target, reply.body)
        if why is not None:
            settings.not_verified_once(_unverified(why, target, label, http))


def _skip(settings: DeviceSettings, http: ReadOnlyHTTP, reads: tuple[tuple[str, str], ...], why: Reason) -> None:
    for target, label in reads:
        settings.not_verified_once(_unverified("not_read", target, label, http, because=why))
