"""probe_host against hostile servers: bounded in time and bytes, never raising, always saying why.

Ports follow the built-in map where possible (8080 -> HTTP, 8554 -> RTSP, 8443 -> TLS); extra
HTTP ports use the ``protocols`` override. One test (marked root) checks the map on the real
low ports 80/443/554/23.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import pytest
from hostile import (
    DAHUA_HTTP_ROOT,
    TELNET_HIKVISION,
    Handler,
    ServerFarm,
    banner,
    close_mid_response,
    dahua_rtsp,
    farm,
    garbage,
    header_flood,
    http_site,
    next_address,
    reset,
    rtsp_server,
    silent,
    tls_context,
    trickle,
)

from camaudit.config import ProbeConfig
from camaudit.probes import PORT_CONCURRENCY, ProbeReport, probe_host

__all__ = ["farm"]

TIMEOUT = 1.0
CONFIG = ProbeConfig(timeout=TIMEOUT)
#: Scheduling slack on a shared 2-core machine.
MARGIN = 1.0

HOSTILE: dict[str, Callable[[], Handler]] = {
    "silent": silent,
    "header_flood_10MB": header_flood,
    "close_mid_response": close_mid_response,
    "binary_garbage": garbage,
    "trickle_slower_than_deadline": trickle,
    "reset_so_linger_0": reset,
}

# What each hostile server must make probe_host say, per protocol (a substring of the problem).
EXPECTED = {
    ("http", "silent"): "tcp/8080: no answer within 1 s",
    ("http", "header_flood_10MB"): "tcp/8080: response headers over 65536 bytes, cut",
    ("http", "close_mid_response"): "tcp/8080: connection closed in the middle of the response headers",
    ("http", "binary_garbage"): "tcp/8080: answered 4096 bytes that are not HTTP",
    ("http", "trickle_slower_than_deadline"): "tcp/8080: response incomplete after 1 s",
    ("http", "reset_so_linger_0"): "tcp/8080: connection reset by the device",
    ("rtsp", "silent"): "tcp/8554: no answer within 1 s",
    ("rtsp", "header_flood_10MB"): "tcp/8554: RTSP headers over 65536 bytes, cut",
    ("rtsp", "close_mid_response"): "tcp/8554: connection closed in the middle of the RTSP response",
    ("rtsp", "binary_garbage"): "tcp/8554: answered 4096 bytes that are not RTSP",
    ("rtsp", "trickle_slower_than_deadline"): "tcp/8554: RTSP response incomplete after 1 s",
    ("rtsp", "reset_so_linger_0"): "tcp/8554: connection reset by the device",
    ("tls", "silent"): "tcp/8443: no TLS handshake within 1 s",
    ("tls", "header_flood_10MB"): "tcp/8443: TLS handshake failed",
    ("tls", "close_mid_response"): "tcp/8443: TLS handshake failed",
    ("tls", "binary_garbage"): "tcp/8443: TLS handshake failed",
    ("tls", "trickle_slower_than_deadline"): "tcp/8443: no TLS handshake within 1 s",
    ("tls", "reset_so_linger_0"): "tcp/8443: connection reset by the device",
}
PORTS = {"http": 8080, "rtsp": 8554, "tls": 8443}


def timed_probe(address: str, ports: list[int], **kwargs: object) -> tuple[ProbeReport, float]:
    started = time.monotonic()
    report = asyncio.run(probe_host(address, ports, kwargs.pop("config", CONFIG), **kwargs))  # type: ignore[arg-type]
    return report, time.monotonic() - started


@pytest.mark.parametrize("protocol", ["http", "rtsp", "tls"])
@pytest.mark.parametrize("behaviour", list(HOSTILE))
def test_each_hostile_server_is_bounded_and_reported(farm: ServerFarm, protocol: str, behaviour: str) -> None:
    address = next_address()
    port = PORTS[protocol]
    farm.serve(address, port, HOSTILE[behaviour]())
    report, elapsed = timed_probe(address, [port])
    assert elapsed < TIMEOUT + MARGIN, f"{behaviour} on {protocol} kept us {elapsed:.2f} s"
    expected = EXPECTED[(protocol, behaviour)]
    assert any(line.startswith(expected) for line in report.problems), report.problems
    assert all(line.startswith(f"tcp/{port}: ") for line in report.problems)


def test_flood_and_cut_answers_keep_the_evidence_that_arrived(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8080, header_flood(server="App-webs/"))
    farm.serve(address, 8081, close_mid_response())
    report, _ = timed_probe(address, [8080, 8081], protocols={8081: "http"})
    servers = {o.port: o.value for o in report.observations if o.kind == "http_server"}
    assert servers == {8080: "App-webs/", 8081: "Hikvision-Webs"}
    (flood_headers,) = [o.value for o in report.observations if o.kind == "http_headers" and o.port == 8080]
    assert flood_headers.startswith("HTTP/1.1 200 OK\r\nServer: App-webs/\r\nX-Flood: aaa")
    assert len(flood_headers) <= 16 * 1024  # bounded by the observation limit
    # A broken first answer is not asked again (no favicon request to a flooder).
    assert farm.accepted[(address, 8080)] == 1


def test_trickle_of_a_good_answer_stops_at_the_deadline(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8080, trickle(DAHUA_HTTP_ROOT, interval=0.01))  # ~3 s for the whole answer
    report, elapsed = timed_probe(address, [8080])
    assert elapsed < TIMEOUT + MARGIN
    assert any("incomplete after 1 s" in line for line in report.problems)
    # Part of the head arrived in time: it is kept, flagged by the problem line.
    headers = [o.value for o in report.observations if o.kind == "http_headers"]
    assert headers and headers[0].startswith("HTTP/1.1 200 OK\r\nCONNECTION: close")


def test_host_with_every_hostile_server_is_bounded(farm: ServerFarm) -> None:
    address = next_address()
    ports: list[int] = []
    overrides: dict[int, str] = {}
    for i, make in enumerate(HOSTILE.values()):
        farm.serve(address, 9080 + i, make())
        ports.append(9080 + i)
        overrides[9080 + i] = "http"
    farm.serve(address, 8554, silent())
    farm.serve(address, 8443, trickle())
    farm.serve(address, 8080, http_site({"/": DAHUA_HTTP_ROOT}))  # one good port among them
    ports += [8554, 8443, 8080]
    report, elapsed = timed_probe(address, ports, protocols=overrides)
    rounds = math.ceil(len(ports) / PORT_CONCURRENCY)
    assert elapsed < rounds * TIMEOUT + MARGIN, f"{elapsed:.2f} s for {len(ports)} ports"
    failed = {int(line.split(":")[0].removeprefix("tcp/")) for line in report.problems}
    assert failed == set(ports) - {8080}
    assert [o.value for o in report.observations if o.kind == "http_title"] == ["WEB SERVICE"]


def test_silence_on_unknown_ports_is_normal(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 37777, silent())  # Dahua's private port: binary, waits for its protocol
    farm.serve(address, 8000, garbage())  # Hikvision SDK-like: binary answer to our GET
    report, elapsed = timed_probe(address, [37777, 8000])
    assert report.observations == [] and report.problems == []
    assert elapsed < TIMEOUT + MARGIN


def test_closed_port_and_bad_input_never_raise() -> None:
    address = next_address()  # nothing listens here
    report, elapsed = timed_probe(address, [8080, 0, 70000], protocols={8080: "gopher"})
    assert elapsed < TIMEOUT + MARGIN
    assert "port 0 is not a TCP port; skipped" in report.problems
    assert "port 70000 is not a TCP port; skipped" in report.problems
    assert "tcp/8080: unknown protocol 'gopher'; probed as 'auto'" in report.problems
    # 'auto' ports stay quiet about refusals; an expected protocol says it.
    report, _ = timed_probe(address, [8554])
    assert report.problems == ["tcp/8554: connection refused (the port closed after the sweep)"]
    report, _ = timed_probe("not-an-address", [8080])
    assert len(report.problems) == 1 and report.problems[0].startswith("tcp/8080: cannot connect")


def test_probe_host_can_be_cancelled(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8080, silent())

    async def main() -> None:
        await asyncio.wait_for(probe_host(address, [8080], ProbeConfig(timeout=30.0)), 0.3)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(main())
    assert time.monotonic() - started < 1.5


@pytest.mark.root
def test_default_port_map_on_real_low_ports(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 80, http_site({"/": DAHUA_HTTP_ROOT}))
    farm.serve(address, 443, http_site({"/": DAHUA_HTTP_ROOT}), tls=tls_context())
    farm.serve(address, 554, rtsp_server(dahua_rtsp()))
    farm.serve(address, 23, banner(TELNET_HIKVISION))
    report, _ = timed_probe(address, [80, 443, 554, 23], config=ProbeConfig(timeout=2.0))
    kinds = {(o.port, o.kind) for o in report.observations}
    assert {(80, "http_title"), (443, "tls_cert"), (443, "http_title"), (554, "rtsp_server"), (23, "telnet_banner")} <= kinds
    assert report.problems == []


@pytest.mark.parametrize("behaviour", list(HOSTILE))
def test_hostile_behind_a_good_tls_handshake(farm: ServerFarm, behaviour: str) -> None:
    # The handshake succeeds (certificate recorded), then the HTTP exchange inside TLS misbehaves.
    address = next_address()
    farm.serve(address, 8443, HOSTILE[behaviour](), tls=tls_context())
    report, elapsed = timed_probe(address, [8443])
    assert elapsed < 2 * TIMEOUT + MARGIN, f"{behaviour} behind TLS kept us {elapsed:.2f} s"
    assert [o.kind for o in report.observations][:1] == ["tls_cert"]
    assert report.problems and all(line.startswith("tcp/8443: ") for line in report.problems)
