"""Issue 10 item 3, interrogation: a redirect from the ONVIF service costs that port a problem
line; the host's other reads (the rest of ONVIF, ISAPI) go on. Loopback stubs on 127.81.10.0/24."""

from __future__ import annotations

import asyncio

from interrogate_stubs import OnvifBehaviour, Reply, Request, StubServer, hikvision_device, onvif_device

from camaudit.credentials import Credential, CredentialStore
from camaudit.probes.interrogate import InterrogationReport, interrogate

USERS = {"audit": "Aud1t-pw!"}
GOOD = Credential("audit", "Aud1t-pw!")


def _interrogate(server: StubServer) -> InterrogationReport:
    async def run() -> InterrogationReport:
        async with server:
            return await asyncio.wait_for(
                interrogate(server.host, [server.port], credentials=CredentialStore(fallback=GOOD),
                            timeout=3, vendor="hikvision", http_ports=[server.port], tls_ports=[]),
                120,
            )

    return asyncio.run(run())


def test_onvif_redirect_is_a_problem_and_isapi_reads_still_happen() -> None:
    server = hikvision_device("127.81.10.1", USERS)
    elsewhere = "http://127.81.10.99/onvif/device_service"
    server.routes[("POST", "/onvif/device_service")] = lambda _r: (302, {"Location": elsewhere}, b"")
    report = _interrogate(server)
    assert report.problems == [
        f"ONVIF GetSystemDateAndTime on port {server.port}: redirected to {elsewhere!r}; not followed"
    ]
    # The ISAPI reads of the same host and port went ahead, with their evidence and settings.
    assert any(o.kind == "isapi_device_info" for o in report.observations)
    assert report.settings.gateway == ["10.88.1.1"]
    assert ("GET", "/ISAPI/System/Network/interfaces", True) in server.requests
    # Nothing was sent to the redirect target, and the ONVIF walk stopped at the first read.
    assert [t for m, t, _ in server.requests if m == "POST"] == ["/onvif/device_service"]


def test_a_redirect_mid_sequence_costs_only_that_onvif_read() -> None:
    server = hikvision_device("127.81.10.2", USERS)
    behaviour = OnvifBehaviour()
    onvif_device(server, behaviour)
    soap = server.routes[("POST", "/onvif/device_service")]

    def redirect_get_scopes(request: Request) -> Reply:
        if b"GetScopes" in request.body:
            return 307, {"Location": "/onvif/elsewhere"}, b""
        return soap(request)  # type: ignore[return-value]

    server.routes[("POST", "/onvif/device_service")] = redirect_get_scopes
    report = _interrogate(server)
    assert report.problems == [
        f"ONVIF GetScopes on port {server.port}: redirected to '/onvif/elsewhere'; not followed"
    ]
    assert "ONVIF GetScopes: redirected to '/onvif/elsewhere'; not followed" in report.settings.not_verified_text
    later = [op for op, _ in behaviour.operations_seen]
    assert "GetNTP" in later and "GetDiscoveryMode" in later  # the reads after it still ran
    assert report.settings.ntp == ["pool.ntp.org"]
    assert any(o.kind == "onvif_device_info" for o in report.observations)
    assert any(o.kind == "isapi_device_info" for o in report.observations)
