"""Issue 10 items 1 and 3, end to end: hostile HTTP framing costs that port a problem line, never
a hang, and never the rest of the port's evidence.

The chunk-size test runs the probe in a child process with a time limit: the old framer spun at
100% CPU inside the event loop, where no asyncio timeout can interrupt it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import (
    FAVICON_BYTES,
    HOLD,
    Handler,
    ServerFarm,
    farm,
    http_response,
    http_site,
    next_address,
    read_request,
)

import camaudit
from camaudit.config import ProbeConfig
from camaudit.probes import ProbeReport, probe_host

__all__ = ["farm"]

TIMEOUT = 2.0
#: "Does not hang": far above what a probe of a few ports needs, far below forever.
HANG_LIMIT = 60.0

_CHILD = """
import asyncio, json, sys
from camaudit.config import ProbeConfig
from camaudit.probes import probe_host
address, ports, timeout = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
report = asyncio.run(probe_host(address, ports, ProbeConfig(timeout=timeout),
                                protocols={p: "http" for p in ports}))
print(json.dumps({"problems": report.problems,
                  "observations": [[o.port, o.kind, o.value] for o in report.observations]}))
"""


def probe_in_child(address: str, ports: list[int]) -> tuple[dict[str, list], float]:  # type: ignore[type-arg]
    """probe_host in a separate process, killed if it outlives HANG_LIMIT."""
    root = str(Path(camaudit.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", _CHILD, address, json.dumps(ports), str(TIMEOUT)],
            capture_output=True, text=True, timeout=HANG_LIMIT, env=env, check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the probe of {ports} did not end within {HANG_LIMIT} s (it hangs)")
    return json.loads(done.stdout), time.monotonic() - started


def chunked_with_size(size_line: bytes) -> Handler:
    """Answer every request with a chunked body whose first chunk size is ``size_line``, then stay
    connected (the framer must not wait for, or spin on, more)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await read_request(reader):
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nServer: chunky\r\nContent-Type: text/html\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\nabcdefgh\r\n0\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(HOLD)

    return handler


BAD_SIZES = [b"-5", b"+5", b" 5", b"0x5", b"ffffffffffffffffffff", b"5_0", b"-0"]


def test_chunk_sizes_that_are_not_hex_end_in_a_problem_not_a_hang(farm: ServerFarm) -> None:
    address = next_address()
    ports = [9200 + i for i in range(len(BAD_SIZES))]
    for port, size in zip(ports, BAD_SIZES, strict=True):
        farm.serve(address, port, chunked_with_size(size))
    result, elapsed = probe_in_child(address, ports)
    assert elapsed < HANG_LIMIT
    for port, size in zip(ports, BAD_SIZES, strict=True):
        expected = (f"tcp/{port}: chunked body with an invalid chunk size {size.decode()!r}; "
                    "kept the bytes as they came")
        assert expected in result["problems"], (size, result["problems"])
        # What came is still evidence: the headers and the body bytes as they arrived.
        kinds = {kind for p, kind, _ in result["observations"] if p == port}
        assert {"http_headers", "http_server", "http_body"} <= kinds, (size, kinds)
        body = next(v for p, k, v in result["observations"] if p == port and k == "http_body")
        assert body.startswith(size.decode() + "\r\nabcdefgh")


def test_a_good_chunked_answer_is_unchanged(farm: ServerFarm) -> None:
    address = next_address()
    page = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html\r\n\r\n"
            b"7;ext=1\r\n<title>\r\nB\r\nCam</title>\r\n0\r\n\r\n")
    farm.serve(address, 8080, http_site({"/": page}))
    report = asyncio.run(probe_host(address, [8080], ProbeConfig(timeout=TIMEOUT)))
    assert [o.value for o in report.observations if o.kind == "http_title"] == ["Cam"]
    assert report.problems == []


# --- interim (1xx) responses -----------------------------------------------------------------

FINAL = http_response(200, b"<html><title>NVR Login</title></html>",
                      headers=[("Server", "Webs"), ("Content-Type", "text/html")])


def test_interim_responses_are_skipped_and_the_final_answer_read(farm: ServerFarm) -> None:
    address = next_address()
    interim = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
               b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
    farm.serve(address, 8080, http_site({"/": interim + FINAL}))
    report = asyncio.run(probe_host(address, [8080], ProbeConfig(timeout=TIMEOUT)))
    observed = {o.kind: o.value for o in report.observations}
    assert observed["http_title"] == "NVR Login"
    assert observed["http_server"] == "Webs"
    assert observed["http_headers"].startswith("HTTP/1.1 200 OK\r\nServer: Webs")
    assert report.problems == []


def endless_continue() -> Handler:
    """After the request, "100 Continue" forever (a little pause now and then, to stay polite)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await read_request(reader):
            return
        for _ in range(100_000):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" * 50)
            await writer.drain()
            await asyncio.sleep(0.001)

    return handler


def test_an_endless_stream_of_100_continue_is_a_problem_not_a_hang(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8080, endless_continue())
    started = time.monotonic()
    report: ProbeReport = asyncio.run(probe_host(address, [8080], ProbeConfig(timeout=TIMEOUT)))
    assert time.monotonic() - started < HANG_LIMIT
    assert report.problems == [
        "tcp/8080: more than 8 interim (1xx) responses and no final answer"
    ]
    assert farm.accepted[(address, 8080)] == 1  # a broken answer: not asked again (favicon)


# --- malformed redirects ---------------------------------------------------------------------


def test_malformed_location_is_a_problem_and_the_page_is_still_read(farm: ServerFarm) -> None:
    address = next_address()
    redirect = http_response(
        302, b"<html><head><title>Moved</title></head><body>see login</body></html>",
        reason="Found", headers=[("Server", "Webs"), ("Location", "http://[::1"),
                                 ("Content-Type", "text/html")],
    )
    icon = http_response(200, FAVICON_BYTES, headers=[("Content-Type", "image/x-icon")])
    farm.serve(address, 8080, http_site({"/": redirect, "/favicon.ico": icon}, farm=farm))
    report = asyncio.run(probe_host(address, [8080], ProbeConfig(timeout=TIMEOUT)))
    assert report.problems == ["tcp/8080: redirect to a malformed Location 'http://[::1'; not followed"]
    kinds = {o.kind: o.value for o in report.observations}
    assert kinds["http_title"] == "Moved"
    assert "see login" in kinds["http_body"]
    assert "favicon_mmh3" in kinds and "favicon_md5" in kinds
    paths = [request.split(b" ")[1] for _, _, request in farm.requests]
    assert paths == [b"/", b"/favicon.ico"]  # nothing followed
