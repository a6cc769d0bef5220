"""interrogate(): the entry point the scan pipeline calls, end to end on loopback devices."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from interrogate_stubs import (
    HIK_VERIFICATION_CODE,
    OnvifBehaviour,
    StubServer,
    dahua_device,
    hikvision_device,
    onvif_device,
)

from camaudit.credentials import load_credentials
from camaudit.probes.interrogate import InterrogationReport, candidate_http_ports, interrogate

PASSWORD = "Pipe-Line-Pw7"


def _store(tmp_path: Path, cidr: str) -> object:
    path = tmp_path / "creds.yaml"
    path.write_text(f'credentials:\n  - cidr: {cidr}\n    username: audit\n    password: "{PASSWORD}"\n')
    path.chmod(0o600)
    return load_credentials(path, environ={})


def test_hikvision_with_credentials_no_secret_anywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = _store(tmp_path, "127.81.4.0/24")
    users = {"audit": PASSWORD}

    async def run() -> InterrogationReport:
        async with hikvision_device("127.81.4.1", users) as server:
            onvif_device(server, OnvifBehaviour(users=users))
            return await interrogate("127.81.4.1", [554, 8000, server.port], credentials=store,  # type: ignore[arg-type]
                                     timeout=2)

    report = asyncio.run(run())
    kinds = sorted(o.kind for o in report.observations)
    assert kinds == ["isapi_device_info", "onvif_device_info", "onvif_probe_match"]
    settings = report.settings
    assert settings.cloud["hik_connect"]["registered"] is True
    assert settings.gateway == ["10.88.1.1"]
    assert settings.details["sources"]["gateway"][0].startswith("onvif port")
    assert report.problems == []
    everything = json.dumps(settings.to_json()) + repr(report) + caplog.text
    assert PASSWORD not in everything
    assert HIK_VERIFICATION_CODE not in everything


def test_unknown_maker_without_credentials_only_reads_onvif() -> None:
    async def run() -> tuple[InterrogationReport, StubServer]:
        async with StubServer("127.81.4.2") as server:
            onvif_device(server, OnvifBehaviour(users={"x": "y"}))
            report = await interrogate("127.81.4.2", [server.port], credentials=None, timeout=2)
            return report, server

    report, server = asyncio.run(run())
    assert all(method == "POST" for method, _, _ in server.requests)  # no vendor API request
    assert any("not tried (maker not identified and no credentials)" in line
               for line in report.settings.not_verified_text)
    assert report.settings.gateway is None


def test_dahua_by_vendor_hint_and_no_onvif(tmp_path: Path) -> None:
    store = _store(tmp_path, "127.81.4.3/32")

    async def run() -> InterrogationReport:
        async with dahua_device("127.81.4.3", {"audit": PASSWORD}) as server:
            return await interrogate("127.81.4.3", [server.port, 37777], credentials=store,  # type: ignore[arg-type]
                                     vendor="dahua", timeout=2)

    report = asyncio.run(run())
    assert report.settings.cloud["dahua_p2p"]["enabled"] is True
    assert any(line.startswith("ONVIF: no device service answered") for line in report.settings.not_verified_text)
    assert {o.kind for o in report.observations} == {"dahua_cgi"}


def test_no_http_port() -> None:
    report = asyncio.run(interrogate("127.81.4.4", [554, 37777], credentials=None))
    assert report.settings.not_verified_text == ["ONVIF and vendor APIs: no open HTTP port"]
    assert report.observations == []


def test_candidate_ports() -> None:
    assert candidate_http_ports([37777, 8080, 554, 80, 9000, 8000, 443, 81, 88]) == [80, 443, 8080, 81]


def test_a_maker_known_later_is_asked_for_after_the_onvif_reads() -> None:
    # Issue 15: the scan no longer holds a host's interrogation until discovery names its maker;
    # without credentials the maker only picks the vendor API, after the ONVIF reads.
    asked_after: list[int] = []

    async def run() -> tuple[InterrogationReport, StubServer]:
        async with hikvision_device("127.81.4.5", {"audit": PASSWORD}) as server:
            onvif_device(server, OnvifBehaviour(users={"audit": PASSWORD}))

            async def later() -> str | None:
                asked_after.append(len(server.requests))
                return "hikvision"

            report = await interrogate("127.81.4.5", [server.port], credentials=None, timeout=2, vendor_later=later)
            return report, server

    report, server = asyncio.run(run())
    assert len(asked_after) == 1 and asked_after[0] >= 1, "asked once, after the ONVIF reads were sent"
    assert all(method == "POST" for method, _, _ in server.requests[: asked_after[0]])
    # The maker it gave picked ISAPI: its reads follow (refused without credentials, said so).
    assert any(target.startswith("/ISAPI/") for _, target, _ in server.requests[asked_after[0]:])
    assert not any("maker not identified" in line for line in report.settings.not_verified_text)


def test_with_credentials_a_maker_known_later_is_asked_for_before_anything_is_sent(tmp_path: Path) -> None:
    # A vendor entry of the credentials file may be the one that applies: the maker is needed
    # before the first read.
    path = tmp_path / "creds.yaml"
    path.write_text(f'credentials:\n  - vendor: hikvision\n    username: audit\n    password: "{PASSWORD}"\n')
    path.chmod(0o600)
    store = load_credentials(path, environ={})
    asked_after: list[int] = []

    async def run() -> InterrogationReport:
        async with hikvision_device("127.81.4.6", {"audit": PASSWORD}) as server:
            onvif_device(server, OnvifBehaviour(users={"audit": PASSWORD}))

            async def later() -> str | None:
                asked_after.append(len(server.requests))
                return "hikvision"

            return await interrogate("127.81.4.6", [server.port], credentials=store, timeout=2, vendor_later=later)

    report = asyncio.run(run())
    assert asked_after == [0]
    assert "isapi_device_info" in {o.kind for o in report.observations}, "the vendor entry's credential was used"
