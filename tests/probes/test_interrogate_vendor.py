"""ISAPI and Dahua CGI reads against loopback devices: digest auth, 401/404 paths, secrets,
account-lockout care, size and time bounds."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest
from interrogate_stubs import (
    DAHUA_DDNS_PASSWORD,
    DAHUA_P2P_KEY,
    HIK_DDNS_PASSWORD,
    HIK_SERIAL,
    HIK_VERIFICATION_CODE,
    RawReply,
    StubServer,
    dahua_device,
    hikvision_device,
    xml_reply,
)

from camaudit.credentials import Credential
from camaudit.model.verdicts import Reason
from camaudit.probes.device_config import DeviceSettings
from camaudit.probes.vendor_api import (
    ReadOnlyHTTP,
    VendorResult,
    _Unsupported,
    digest_authorization,
    read_dahua,
    read_isapi,
)

USERS = {"audit": "Aud1t-pw!"}
GOOD = Credential("audit", "Aud1t-pw!")
BAD = Credential("audit", "wrong-pw")


def _read(server: StubServer, reader: str, credential: Credential | None,
          **kw: float) -> tuple[DeviceSettings, VendorResult]:
    async def run() -> tuple[DeviceSettings, VendorResult]:
        async with server:
            settings = DeviceSettings(server.host)
            async with ReadOnlyHTTP(server.host, server.port, credential=credential, **kw) as http:
                fn = read_isapi if reader == "isapi" else read_dahua
                return settings, await fn(http, settings)

    return asyncio.run(run())


def _stored_text(settings: DeviceSettings, result: VendorResult) -> str:
    import json

    return json.dumps(settings.to_json()) + "".join(o.value for o in result.observations)


def test_isapi_with_credentials_reads_everything_and_redacts() -> None:
    server = hikvision_device("127.81.2.1", USERS)
    settings, result = _read(server, "isapi", GOOD)
    assert server.auth_failures == 0
    assert result.speaks
    [obs] = result.observations
    assert obs.kind == "isapi_device_info" and HIK_SERIAL in obs.value and obs.port == server.port
    assert settings.gateway == ["10.88.1.1"]
    assert settings.dns == ["8.8.8.8", "114.114.114.114"]
    assert settings.ntp == ["pool.ntp.org"]
    assert settings.cloud["hik_connect"]["registered"] is True
    assert settings.cloud["hik_connect"]["source"] == "isapi /ISAPI/System/Network/EZVIZ"
    assert settings.cloud["online_upgrade"]["registered"] is False
    assert settings.upnp_mappings and settings.upnp_mappings[0]["externalPort"] == "8080"
    assert settings.not_verified_text == ["ISAPI Ehome: 404 not found"]  # absent, and said so
    # ... as a code the verdict logic decides on, naming the read (not its label)
    assert [r.to_json() for r in settings.not_verified] == [
        {"code": "not_found", "what": "ISAPI Ehome", "read": "isapi:Ehome", "port": server.port}]
    stored = _stored_text(settings, result)
    for secret in (HIK_VERIFICATION_CODE, HIK_DDNS_PASSWORD, GOOD.password):
        assert secret not in stored


def test_isapi_without_credentials_sends_one_request_and_marks_not_verified() -> None:
    server = hikvision_device("127.81.2.2", USERS)
    settings, result = _read(server, "isapi", None)
    assert server.requests == [("GET", "/ISAPI/System/deviceInfo", False)]
    assert settings.gateway is None and settings.dns is None and settings.cloud == {}
    assert "ISAPI deviceInfo: 401 unauthorised (no credentials given)" in settings.not_verified_text
    assert "ISAPI EZVIZ: not read (no credentials)" in settings.not_verified_text
    assert Reason("auth_required", {"what": "ISAPI deviceInfo", "read": "isapi:deviceInfo", "port": server.port}) \
        in settings.not_verified
    assert Reason("not_read", {"what": "ISAPI EZVIZ", "read": "isapi:EZVIZ", "port": server.port,
                               "because": {"code": "no_credentials"}}) in settings.not_verified
    assert not result.speaks and not result.observations


def test_wrong_password_is_tried_once_then_never_again() -> None:
    server = hikvision_device("127.81.2.3", USERS)
    settings, _ = _read(server, "isapi", BAD)
    assert server.auth_failures == 1  # one failed login, however many endpoints remain
    assert sum(1 for _, _, auth in server.requests if auth) == 1
    assert "ISAPI deviceInfo: 401 unauthorised (credentials refused)" in settings.not_verified_text
    assert any("credentials refused; not retried" in line for line in settings.not_verified_text)


def test_dahua_cgi_reads_and_redacts() -> None:
    server = dahua_device("127.81.2.4", USERS)
    settings, result = _read(server, "dahua", GOOD)
    assert server.auth_failures == 0 and result.speaks
    kinds = {o.kind for o in result.observations}
    assert kinds == {"dahua_cgi"} and len(result.observations) == 4
    assert any("version=2.800.0000016.0.R" in o.value for o in result.observations)
    assert settings.gateway == ["10.88.1.1"] and settings.ntp == ["time.windows.com"]
    p2p = settings.cloud["dahua_p2p"]
    assert p2p["enabled"] is True and p2p["registered"] is None  # no verified status API
    assert settings.upnp_mappings and settings.upnp_mappings[0]["kind"] == "configured"
    # "Error" is how firmware without the table answers: not present, which is not "disabled".
    assert "Dahua CGI VSP_PaaS: table not present (the device answered Error)" in settings.not_verified_text
    assert Reason("table_absent", {"what": "Dahua CGI VSP_PaaS", "read": "dahua:VSP_PaaS", "port": server.port}) \
        in settings.not_verified
    assert "dahua_paas" not in settings.cloud  # not present is not "disabled"
    stored = _stored_text(settings, result)
    for secret in (DAHUA_P2P_KEY, DAHUA_DDNS_PASSWORD, "p2puser"):
        assert secret not in stored


def test_dahua_probe_on_a_non_dahua_server_stops_after_one_request() -> None:
    server = hikvision_device("127.81.2.5", USERS)  # no magicBox: 404 without auth
    settings, result = _read(server, "dahua", GOOD)
    assert len(server.requests) == 1 and not result.speaks
    assert "Dahua CGI getSystemInfo: 404 not found" in settings.not_verified_text


def test_basic_only_device_never_gets_the_password() -> None:
    server = StubServer("127.81.2.6")
    server.routes[("GET", "/ISAPI/System/deviceInfo")] = lambda _r: (
        401, {"WWW-Authenticate": 'Basic realm="hikvision"'}, b"")
    settings, _ = _read(server, "isapi", GOOD)
    assert server.requests == [("GET", "/ISAPI/System/deviceInfo", False)]
    assert any("only Basic auth" in line for line in settings.not_verified_text)


def test_redirects_are_not_followed() -> None:
    server = StubServer("127.81.2.7")
    server.routes[("GET", "/ISAPI/System/deviceInfo")] = lambda _r: (
        302, {"Location": "/ISAPI/System/reboot"}, b"")
    settings, _ = _read(server, "isapi", None)
    assert [t for _, t, _ in server.requests] == ["/ISAPI/System/deviceInfo"]
    assert "ISAPI deviceInfo: HTTP 302" in settings.not_verified_text


def test_oversized_reply_is_cut_and_reported() -> None:
    server = StubServer("127.81.2.8")
    server.routes[("GET", "/ISAPI/System/deviceInfo")] = lambda _r: xml_reply("<DeviceInfo>" + "x" * 300_000)
    settings, result = _read(server, "isapi", None, max_bytes=10_000)  # type: ignore[arg-type]
    assert any("larger than 10000 bytes" in p for p in result.problems)
    assert "ISAPI deviceInfo: reply is not an ISAPI DeviceInfo document" in settings.not_verified_text


def test_trickling_device_is_bounded_in_time() -> None:
    server = StubServer("127.81.2.9")
    server.routes[("GET", "/ISAPI/System/deviceInfo")] = lambda _r: (
        200, {}, RawReply(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", drip=100))
    started = time.monotonic()
    settings, result = _read(server, "isapi", None, timeout=0.5)
    assert time.monotonic() - started < 3
    assert "ISAPI deviceInfo: timed out" in settings.not_verified_text
    assert result.problems


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_digest_header_matches_rfc_7616_computation() -> None:
    cred = Credential("Mufasa", "Circle of Life")
    challenge = 'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf", opaque="FQh"'
    header = digest_authorization("GET", "/dir/index.html", challenge, cred, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv")
    assert isinstance(header, str)
    ha1 = _md5("Mufasa:http-auth@example.org:Circle of Life")
    ha2 = _md5("GET:/dir/index.html")
    expected = _md5(f"{ha1}:7ypf:00000001:f2/wE4q74E6zIJEtWaHKaf5wv:auth:{ha2}")
    assert f'response="{expected}"' in header and 'opaque="FQh"' in header and "qop=auth" in header
    sha = digest_authorization("GET", "/x", 'Digest realm="r", nonce="n", algorithm=SHA-256-sess', cred, cnonce="c")
    h1 = hashlib.sha256(b"Mufasa:r:Circle of Life").hexdigest()
    h1 = hashlib.sha256(f"{h1}:n:c".encode()).hexdigest()
    h2 = hashlib.sha256(b"GET:/x").hexdigest()
    assert isinstance(sha, str) and hashlib.sha256(f"{h1}:n:{h2}".encode()).hexdigest() in sha


@pytest.mark.parametrize("challenge", [
    'Digest realm="r", nonce="n", algorithm=FOO',
    'Digest realm="r", nonce="n", qop="auth-int"',
    "Digest nonsense",
    'Digest realm="r\r\nX-Injected: 1", nonce="n"',
    "Digest " + "a=b, " * 2000,
])
def test_unanswerable_challenges_are_left_alone(challenge: str) -> None:
    assert isinstance(digest_authorization("GET", "/", challenge, GOOD), _Unsupported)
