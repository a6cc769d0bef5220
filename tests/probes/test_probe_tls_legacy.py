"""Issue 10 item 6: the TLS probe talks to servers without RFC 5746 secure renegotiation.

On Python 3.11 ``ssl.OP_LEGACY_SERVER_CONNECT`` does not exist; the probe must set the bit anyway,
or OpenSSL 3 stops at the ServerHello (UNSAFE_LEGACY_RENEGOTIATION_DISABLED) and no certificate is
recorded on exactly the old cameras the probe is for. Tested end to end against a loopback TLS 1.2
server whose ServerHello has no renegotiation_info (tests/probes/legacy_tls.py).
"""

from __future__ import annotations

import asyncio
import ssl

import pytest
from hostile import ServerFarm, farm, http_response, next_address
from legacy_tls import legacy_tls_server

from camaudit.config import ProbeConfig
from camaudit.probes import probe_host
from camaudit.probes.tls import client_context

__all__ = ["farm"]

SUBJECT = "CN=old-camera.example,O=Legacy Firmware,C=CN"
PAGE = http_response(200, b"<html><title>Old DVR</title></html>", headers=[("Server", "Boa/0.94.13")])


def test_the_probe_context_allows_legacy_servers() -> None:
    assert client_context().options & 0x4  # SSL_OP_LEGACY_SERVER_CONNECT, named or not


def test_certificate_recorded_from_a_server_without_secure_renegotiation(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8443, legacy_tls_server(SUBJECT, PAGE))
    report = asyncio.run(probe_host(address, [8443], ProbeConfig(timeout=5.0)))
    certs = [o.value for o in report.observations if o.kind == "tls_cert"]
    assert certs == [f"subject={SUBJECT}; issuer={SUBJECT}"], report.problems
    titles = [o.value for o in report.observations if o.kind == "http_title"]
    assert titles == ["Old DVR"]  # and HTTPS works over that connection
    assert not any("handshake failed" in line for line in report.problems)


def test_the_stand_in_really_lacks_secure_renegotiation(farm: ServerFarm) -> None:
    # Control: without the flag, the same server is refused by OpenSSL, so the test above proves
    # the flag and not a lenient server.
    address = next_address()
    farm.serve(address, 8443, legacy_tls_server(SUBJECT, PAGE))
    strict = client_context()
    strict.options &= ~0x4

    async def connect() -> None:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, 8443, ssl=strict), 10)
        writer.close()

    with pytest.raises(ssl.SSLError) as caught:
        asyncio.run(connect())
    assert caught.value.reason == "UNSAFE_LEGACY_RENEGOTIATION_DISABLED"
