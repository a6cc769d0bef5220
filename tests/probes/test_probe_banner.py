"""Server-speaks-first banners: the pure telnet/FTP helpers and the probe on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
from hostile import FTP_AXIS, TELNET_HIKVISION, ServerFarm, banner, farm, garbage, next_address

from camaudit.config import ProbeConfig
from camaudit.probes import ProbeReport, probe_host
from camaudit.probes.banner import DO, DONT, IAC, SB, SE, WILL, WONT, banner_text, classify, telnet_split

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
