"""The RTSP probe against loopback servers answering like Dahua and Hikvision firmware."""

from __future__ import annotations

import asyncio

from hostile import ServerFarm, dahua_rtsp, farm, hikvision_rtsp, next_address, rtsp_server

from camaudit.config import ProbeConfig
from camaudit.probes import ProbeReport, probe_host

__all__ = ["farm"]

CONFIG = ProbeConfig(timeout=2.0)


def values(report: ProbeReport, kind: str) -> list[str]:
    return [o.value for o in report.observations if o.kind == kind]


def test_dahua_options_then_describe_401_is_evidence(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8554, rtsp_server(dahua_rtsp(), farm=farm))
    report = asyncio.run(probe_host(address, [8554], CONFIG))
    assert report.problems == []
    assert values(report, "rtsp_server") == ["Dahua Rtsp Server"]
    assert values(report, "rtsp_www_authenticate") == ['Basic realm="device"']
    options, describe = values(report, "rtsp_response")
    assert options.startswith("RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: Dahua Rtsp Server\r\nPublic: ")
    assert describe.startswith("RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n")
    assert {o.source for o in report.observations} == {"rtsp"}
    requests = [r for a, _, r in farm.requests if a == address]
    assert [r.split(b" ")[0] for r in requests] == [b"OPTIONS", b"DESCRIBE"]
    assert requests[0].startswith(f"OPTIONS rtsp://{address}:8554/ RTSP/1.0\r\n".encode())
    assert all(b"Authorization" not in r for r in requests)


def test_hikvision_two_challenges_and_double_space_date(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8554, rtsp_server(hikvision_rtsp()))
    report = asyncio.run(probe_host(address, [8554], CONFIG))
    assert values(report, "rtsp_www_authenticate") == [
        'Digest realm="Hikvision", nonce="00000000000000000000000000000000", stale="FALSE"',
        'Basic realm="/"',
    ]
    assert all("Date:  Wed, May 05 2021" in v for v in values(report, "rtsp_response"))
    assert values(report, "rtsp_server") == []  # this shape has no Server header


def test_hikvision_describe_sdp_kept(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 10554, rtsp_server(hikvision_rtsp(describe_ok=True)))
    # 10554 is in the RTSP port list; also check an override on an unlisted port.
    farm.serve(address, 10555, rtsp_server(hikvision_rtsp(describe_ok=True)))
    report = asyncio.run(probe_host(address, [10554, 10555], CONFIG, protocols={10555: "rtsp"}))
    assert report.problems == []
    for port in (10554, 10555):
        describe = [o.value for o in report.observations if o.kind == "rtsp_response" and o.port == port][1]
        assert "\r\n\r\nv=0\r\n" in describe
        assert "s=Media Presentation\r\n" in describe
        assert "a=Media_header:MEDIAINFO=494D4B48" in describe
        assert "a=appversion:1.0" in describe


def test_rtsp_answer_to_http_on_an_unlisted_port_is_recorded(farm: ServerFarm) -> None:
    address = next_address()
    # An RTSP server on a port probe_host does not know answers our GET with an RTSP status line.
    farm.serve(address, 9554, rtsp_server({}))
    report = asyncio.run(probe_host(address, [9554], ProbeConfig(timeout=1.0)))
    (raw,) = values(report, "rtsp_response")
    assert raw.startswith("RTSP/1.0 501 Not Implemented\r\n")
    assert values(report, "http_headers") == []
