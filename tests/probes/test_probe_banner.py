"""Server-speaks-first banners: the pure telnet/FTP helpers and the probe on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest
from hostile import FTP_AXIS, TELNET_HIKVISION, Handler, ServerFarm, banner, farm, garbage, next_address

from camaudit.config import ProbeConfig
from camaudit.probes import BANNER_WAIT, CLIENT_FIRST_PORTS, ProbeReport, probe_host
from camaudit.probes.banner import DO, DONT, IAC, SB, SE, WILL, WONT, banner_text, classify, telnet_split
from camaudit.probes.ports import candidate_http_ports

__all__ = ["farm"]

CONFIG = ProbeConfig(timeout=2.0)


def values(report: ProbeReport, kind: str) -> list[str]:
    return [o.value for o in report.observations if o.kind == kind]


def test_telnet_split_refuses_options_once_and_strips_them() -> None:
    data = bytes([IAC, DO, 1, IAC, WILL, 3, IAC, DO, 1, IAC, DONT, 5, IAC, WONT, 6]) + b"hi" + bytes([IAC, IAC])
    text, replies = telnet_split(data)
    assert text == b"hi\xff"
    assert replies == bytes([IAC, WONT, 1, IAC, DONT, 3])


def test_telnet_split_subnegotiation_and_cut_sequences() -> None:
    data = bytes([IAC, SB, 24, 1, IAC, SE]) + b"login: " + bytes([IAC, DO])
    assert telnet_split(data) == (b"login: ", b"")
    assert telnet_split(bytes([IAC, SB, 24, 1])) == (b"", b"")  # never ends: dropped


def test_banner_text() -> None:
    assert banner_text(TELNET_HIKVISION) == "192.0.0.64 login:"
    assert banner_text(FTP_AXIS, ftp=True) == "Axis 2100 Network Camera 2.43 Nov 04 2008 ready."
    multi = b"220-AXIS 216FD Network Fixed Dome Camera 4.47 (Mar 13 2008) ready.\r\n220 Welcome\r\n"
    assert banner_text(multi, ftp=True) == (
        "AXIS 216FD Network Fixed Dome Camera 4.47 (Mar 13 2008) ready.\nWelcome"  # recog-axis-ftp-2
    )
    assert banner_text(b"a\x1b[2Jb\x00c\r\n\r\n") == "a[2Jbc"
    assert len(banner_text(b"x" * 10_000)) == 2048


@pytest.mark.parametrize(
    ("protocol", "data", "kind"),
    [
        ("auto", TELNET_HIKVISION, "telnet_banner"),
        ("auto", FTP_AXIS, "ftp_banner"),
        ("auto", b"Password: ", "telnet_banner"),
        ("auto", b"SSH-2.0-dropbear_2019.78\r\n", None),
        ("auto", b"\x00\x00\x00\x10\x00\x00\x00\x1e", None),  # Hikvision SDK 8000 (nmap line 1801)
        ("telnet", b"Welcome to AutoDome 800 HD 1.2.3.4 from 5.6.7.8", "telnet_banner"),  # recog-bosch-telnet-1
        ("ftp", b"220 ready", "ftp_banner"),
    ],
)
def test_classify(protocol: str, data: bytes, kind: str | None) -> None:
    assert classify(protocol, data) == kind


def test_telnet_and_ftp_banners_on_loopback(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 2323, banner(TELNET_HIKVISION))
    farm.serve(address, 2121, banner(FTP_AXIS))
    bosch = b"Welcome to FLEXIDOME NDC-455-P 1.2.3.4 from 5.6.7.8\r\n"  # corpus recog-bosch-telnet-2
    farm.serve(address, 2424, banner(bosch))
    report = asyncio.run(probe_host(address, [2323, 2121, 2424], CONFIG, protocols={2424: "telnet"}))
    assert report.problems == []
    by_port = {o.port: (o.kind, o.value, o.source) for o in report.observations}
    assert by_port == {
        2323: ("telnet_banner", "192.0.0.64 login:", "banner"),
        2121: ("ftp_banner", "Axis 2100 Network Camera 2.43 Nov 04 2008 ready.", "banner"),
        2424: ("telnet_banner", "Welcome to FLEXIDOME NDC-455-P 1.2.3.4 from 5.6.7.8", "banner"),
    }


def test_unknown_speaker_and_binary_ports_record_nothing(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 2222, banner(b"SSH-2.0-dropbear_2019.78\r\n"))
    farm.serve(address, 37777, garbage(first=True))  # a binary service that speaks first
    started = time.monotonic()
    report = asyncio.run(probe_host(address, [2222, 37777], ProbeConfig(timeout=1.0)))
    assert time.monotonic() - started < 2.0
    assert report.observations == [] and report.problems == []


def spoken_to(delays: list[float]) -> Handler:
    """Never speak; note how long after the accept the client said its first bytes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted = time.monotonic()
        with contextlib.suppress(TimeoutError):
            if await asyncio.wait_for(reader.read(4096), 5.0):
                delays.append(time.monotonic() - accepted)

    return handler


def late_banner(data: bytes, delay: float) -> Handler:
    """A server-first service that takes ``delay`` to greet (a slow telnet)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        writer.write(data)
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(4096), 3.0)

    return handler


def serve_spoken_to(farm: ServerFarm, ports: list[int]) -> tuple[str, dict[int, list[float]]]:
    """Servers on ``ports`` of a fresh address that note when the client first spoke."""
    address = next_address()
    delays: dict[int, list[float]] = {port: [] for port in ports}
    for port, seen in delays.items():
        farm.serve(address, port, spoken_to(seen))
    return address, delays


def test_client_first_ports_are_spoken_to_at_once(farm: ServerFarm) -> None:
    # Issue 15: Hikvision's 8000 and Dahua's 37777 wait for the client, so the probe does not
    # listen for a banner there first; a port of unknown protocol still does.
    config = ProbeConfig(timeout=4.0)  # a banner wait of the full BANNER_WAIT
    address, delays = serve_spoken_to(farm, [8000, 37777, 5357, 9527])
    assert set(CLIENT_FIRST_PORTS) == {8000, 37777, 445, 139}
    asyncio.run(probe_host(address, list(delays), config))
    assert delays[8000] and delays[8000][0] < BANNER_WAIT / 2
    assert delays[37777] and delays[37777][0] < BANNER_WAIT / 2
    # A WS-Discovery host's web endpoint (lab.md 8.5) is spoken HTTP to at once.
    assert delays[5357] and delays[5357][0] < BANNER_WAIT / 2
    assert delays[9527] and delays[9527][0] >= BANNER_WAIT - 0.05


@pytest.mark.skipif(os.geteuid() != 0, reason="listening on ports 139 and 445 needs root")
def test_smb_ports_are_spoken_to_at_once(farm: ServerFarm) -> None:
    # SMB and NetBIOS session service clients speak first ([MS-SMB2], RFC 1002): a Windows host
    # or a NAS is not waited on for a banner there.
    address, delays = serve_spoken_to(farm, [445, 139])
    started = time.monotonic()
    asyncio.run(probe_host(address, list(delays), ProbeConfig(timeout=4.0)))
    assert delays[445] and delays[445][0] < BANNER_WAIT / 2
    assert delays[139] and delays[139][0] < BANNER_WAIT / 2
    assert time.monotonic() - started < BANNER_WAIT


def test_a_protocol_override_listens_on_a_client_first_port_again(farm: ServerFarm) -> None:
    # A telnet someone put on 8000 that greets after 0.3 s: missed by default (the probe spoke
    # first and got no HTTP), heard when the user says 8000 is telnet.
    address = next_address()
    farm.serve(address, 8000, late_banner(TELNET_HIKVISION, 0.3))
    config = ProbeConfig(timeout=4.0)
    report = asyncio.run(probe_host(address, [8000], config))
    assert values(report, "telnet_banner") == []
    report = asyncio.run(probe_host(address, [8000], config, protocols={8000: "telnet"}))
    assert values(report, "telnet_banner") == ["192.0.0.64 login:"]


def test_raw_printing_ports_are_sent_nothing(farm: ServerFarm) -> None:
    # A printer prints whatever reaches 9100-9107 (nmap excludes them from version detection):
    # the probe sends nothing there, nor waits; interrogation does not try them as web ports.
    # A user who says such a port is HTTP is believed.
    address, delays = serve_spoken_to(farm, [9100, 9107])
    started = time.monotonic()
    report = asyncio.run(probe_host(address, list(delays), ProbeConfig(timeout=4.0)))
    assert time.monotonic() - started < BANNER_WAIT / 2
    assert report.observations == [] and report.problems == []
    asyncio.run(probe_host(address, [9100], ProbeConfig(timeout=1.0), protocols={9100: "http"}))
    time.sleep(0.2)  # the server notes what it was sent
    assert delays[9107] == [] and len(delays[9100]) == 1
    assert candidate_http_ports([9100, 9103, 9107, 9108, 80]) == [80, 9108]
