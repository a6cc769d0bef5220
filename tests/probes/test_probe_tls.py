"""The TLS probe: certificate subject/issuer as evidence (never verified), then HTTPS."""

from __future__ import annotations

import asyncio

from hostile import (
    HIKVISION_APPWEBS_ROOT,
    HIKVISION_CERT_SUBJECT,
    ServerFarm,
    farm,
    http_site,
    next_address,
    read_anything,
    tls_context,
)

from camaudit.config import ProbeConfig
from camaudit.probes import ProbeReport, probe_host
from camaudit.probes.tls import cert_summary

__all__ = ["farm"]

CONFIG = ProbeConfig(timeout=2.0)


def values(report: ProbeReport, kind: str) -> list[str]:
    return [o.value for o in report.observations if o.kind == kind]


def test_self_signed_hikvision_cert_then_https(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8443, http_site({"/": HIKVISION_APPWEBS_ROOT}, farm=farm), tls=tls_context())
    report = asyncio.run(probe_host(address, [8443], CONFIG))
    assert report.problems == []
    # The corpus string (recog-hik-x509-1), as RFC 4514 writes it, for subject and issuer.
    assert values(report, "tls_cert") == [
        f"subject={HIKVISION_CERT_SUBJECT}; issuer={HIKVISION_CERT_SUBJECT}"
    ]
    assert [o.source for o in report.observations if o.kind == "tls_cert"] == ["tls"]
    assert values(report, "http_server") == ["App-webs/"]
    assert values(report, "http_title") == ["Login & Live View"]
    requests = [r for a, _, r in farm.requests if a == address]
    assert requests[0].startswith(b"GET / HTTP/1.1\r\nHost: " + f"{address}:8443".encode())


def test_other_subjects_and_issuers(farm: ServerFarm) -> None:
    address = next_address()
    subject = "CN=axis-accc8ea31abf,O=Axis Communications AB"  # corpus recog-axis-x509-1
    farm.serve(address, 8443, http_site({}), tls=tls_context(subject))
    report = asyncio.run(probe_host(address, [8443], CONFIG))
    assert values(report, "tls_cert") == [f"subject={subject}; issuer={subject}"]
    assert values(report, "http_headers")[0].startswith("HTTP/1.1 404 Not Found")


async def _plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A plain HTTP server that answers 400 to anything that is not a request (a ClientHello)."""
    first = await read_anything(reader)
    if first.startswith(b"GET "):
        writer.write(HIKVISION_APPWEBS_ROOT)
    else:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


def test_plain_http_on_a_tls_port_is_still_probed(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8443, _plain_http)
    report = asyncio.run(probe_host(address, [8443], CONFIG))
    assert values(report, "tls_cert") == []
    assert values(report, "http_server") == ["App-webs/"]
    assert len(report.problems) == 1
    assert report.problems[0].startswith("tcp/8443: TLS handshake failed (")


def test_cert_summary_rejects_garbage() -> None:
    assert cert_summary(b"") is None
    assert cert_summary(b"\x30\x82\x01\x00" + b"\x00" * 50) is None
    assert cert_summary(bytes(range(256))) is None
