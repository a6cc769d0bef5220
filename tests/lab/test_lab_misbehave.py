"""Misbehaving devices behave as named (issue 3 item 4)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from defusedxml import EntitiesForbidden
from defusedxml.ElementTree import ParseError, fromstring
from lab_helpers import SADP_PROBE, tcp_ask, udp_ask

from camaudit.lab import BEHAVIOURS, plan_devices
from camaudit.lab.runner import LabThread

SLOW = 1.5  # the farm's slow_delay for this test (30 s by default)
SOAP = (b'<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
        b'<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>')


@pytest.fixture(scope="module")
def bad() -> Iterator[dict[str, dict[str, Any]]]:
    specs = plan_devices(0, "127.78.11.0/24", None, seed=1, misbehaving={b: 1 for b in BEHAVIOURS})
    with LabThread(specs, port_offset=10000, request_wait=2.0, slow_delay=SLOW) as lab:
        yield {e["behaviour"]: e for e in lab.manifest}


def _post_soap(entry: dict[str, Any]) -> bytes:
    head = (f"POST /onvif/device_service HTTP/1.1\r\nContent-Type: application/soap+xml\r\n"
            f"Content-Length: {len(SOAP)}\r\n\r\n").encode()
    return tcp_ask(entry["address"], entry["services"]["http"], head + SOAP, timeout=5)


def test_slow_answers_only_after_the_delay(bad: dict[str, dict[str, Any]]) -> None:
    e = bad["slow"]
    assert udp_ask(e["address"], 37020, SADP_PROBE, timeout=SLOW * 0.5) is None
    started = time.monotonic()
    answer = tcp_ask(e["address"], e["services"]["http"], b"GET / HTTP/1.0\r\n\r\n", timeout=SLOW + 3)
    assert answer.startswith(b"HTTP/1.1 302") and time.monotonic() - started >= SLOW * 0.9


def test_truncated_answers_stop_short(bad: dict[str, dict[str, Any]]) -> None:
    answer = _post_soap(bad["truncated"])
    head, _, body = answer.partition(b"\r\n\r\n")
    declared = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert 0 < len(body) < declared


def test_oversized_answers_announce_and_stream_megabytes(bad: dict[str, dict[str, Any]]) -> None:
    e = bad["oversized"]
    answer = tcp_ask(e["address"], e["services"]["http"], b"GET / HTTP/1.0\r\n\r\n", limit=2 << 20)
    assert b"Content-Length: 67108864" in answer and len(answer) >= 2 << 20
    assert len(udp_ask(e["address"], 37020, SADP_PROBE) or b"") >= 60000


def test_malformed_xml_does_not_parse(bad: dict[str, dict[str, Any]]) -> None:
    _, _, body = _post_soap(bad["malformed"]).partition(b"\r\n\r\n")
    assert body.startswith(b"<?xml")
    with pytest.raises(ParseError):
        fromstring(body)
    with pytest.raises(ParseError):
        fromstring(udp_ask(bad["malformed"]["address"], 37020, SADP_PROBE))


def test_xml_bomb_is_an_entity_expansion(bad: dict[str, dict[str, Any]]) -> None:
    _, _, body = _post_soap(bad["xml_bomb"]).partition(b"\r\n\r\n")
    assert b"<!ENTITY lol9" in body
    with pytest.raises(EntitiesForbidden):
        fromstring(body)


def test_reset_resets_every_connection(bad: dict[str, dict[str, Any]]) -> None:
    e = bad["reset"]
    for port in e["ports"]["tcp"]:
        # the RST may even beat the end of the handshake on loopback
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            with socket.create_connection((e["address"], port), timeout=2) as sock:
                time.sleep(0.05)
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                sock.recv(100)
    assert udp_ask(e["address"], 37020, SADP_PROBE, timeout=0.5) is None
