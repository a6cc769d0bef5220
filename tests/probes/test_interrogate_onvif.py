"""ONVIF reads with the real onvif-zeep-async client against a loopback SOAP Device service."""

from __future__ import annotations

import asyncio
import time

from interrogate_stubs import HIK_SERIAL, OnvifBehaviour, StubServer, onvif_device

from camaudit.credentials import Credential
from camaudit.probes.device_config import DeviceSettings
from camaudit.probes.onvif import HOSTILE_TEXT, OnvifResult, read_onvif

USERS = {"onvifuser": "0nvif-Pw"}
GOOD = Credential("onvifuser", "0nvif-Pw")


def _run(host: str, behaviour: OnvifBehaviour, credential: Credential | None,
         **kw: float) -> tuple[DeviceSettings, OnvifResult, StubServer]:
    async def run() -> tuple[DeviceSettings, OnvifResult, StubServer]:
        async with StubServer(host) as server:
            onvif_device(server, behaviour)
            settings = DeviceSettings(host)
            result = await read_onvif(host, server.port, settings, credential=credential, **kw)
            return settings, result, server

    return asyncio.run(run())


def test_without_credentials_only_pre_auth_reads_succeed() -> None:
    behaviour = OnvifBehaviour(users=USERS)
    settings, result, _ = _run("127.81.3.1", behaviour, None)
    assert result.answered
    assert set(result.results) == {"GetSystemDateAndTime", "GetServices"}
    assert settings.gateway is None and settings.dns is None and settings.ntp is None
    assert "ONVIF GetDNS: SOAP fault: not authorised (no credentials given)" in settings.not_verified_text
    assert all(not authed for _, authed in behaviour.operations_seen)
    assert not any(o.kind == "onvif_device_info" for o in result.observations)


def test_with_credentials_first_without_then_with_and_clock_skew_handled() -> None:
    behaviour = OnvifBehaviour(users=USERS)
    settings, result, _ = _run("127.81.3.2", behaviour, GOOD)
    assert behaviour.auth_failures == 0  # tokens signed in the device's (skewed) time
    assert result.failures == {}
    assert result.auth["GetSystemDateAndTime"] == "none" and result.auth["GetDNS"] == "ws-security"
    seen = behaviour.operations_seen
    assert seen.index(("GetDNS", False)) < seen.index(("GetDNS", True))  # unauthenticated first
    assert settings.gateway == ["10.88.1.1"] and settings.dns == ["8.8.8.8"] and settings.ntp == ["pool.ntp.org"]
    info = next(o for o in result.observations if o.kind == "onvif_device_info")
    assert HIK_SERIAL in info.value and '"Manufacturer": "HIKVISION"' in info.value
    scopes = next(o for o in result.observations if o.kind == "onvif_probe_match")
    assert "onvif://www.onvif.org/location/city/hangzhou" in scopes.value
    assert settings.details["onvif"]["GetDiscoveryMode"] == "Discoverable"
    assert settings.details["onvif"]["GetNetworkProtocols"][0]["Name"] == "HTTP"


def test_refused_credentials_are_not_retried() -> None:
    behaviour = OnvifBehaviour(users=USERS)
    settings, _, _ = _run("127.81.3.3", behaviour, Credential("onvifuser", "nope"))
    assert behaviour.auth_failures == 1
    assert sum(1 for _, authed in behaviour.operations_seen if authed) == 1
    assert any("credentials refused" in line for line in settings.not_verified_text)


def test_http_401_and_unsupported_operations_are_not_verified_not_absent() -> None:
    behaviour = OnvifBehaviour(users=USERS, http_401=True, unsupported={"GetNTP", "GetDNS"})
    settings, result, _ = _run("127.81.3.4", behaviour, None)
    assert "ONVIF GetNetworkDefaultGateway: 401 unauthorised (no credentials given)" in settings.not_verified_text
    behaviour = OnvifBehaviour(unsupported={"GetNTP", "GetDNS"})  # an open device like ipycam (lab.md 8.1)
    settings, result, _ = _run("127.81.3.5", behaviour, None)
    assert "ONVIF GetNTP: not supported by the device" in settings.not_verified_text
    assert settings.ntp is None and settings.dns is None and settings.gateway == ["10.88.1.1"]


def test_a_port_without_onvif_is_left_quickly() -> None:
    async def run() -> tuple[OnvifResult, int]:
        async with StubServer("127.81.3.6") as server:  # answers 404 to everything
            result = await read_onvif(server.host, server.port, DeviceSettings(server.host))
            return result, len(server.requests)

    started = time.monotonic()
    result, requests = asyncio.run(run())
    assert not result.answered and requests == 1
    assert result.failures == {"GetSystemDateAndTime": "404 not found"}
    assert time.monotonic() - started < 3


def test_oversized_and_hostile_soap_replies() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>&b;</env:Body>'
            b"</env:Envelope>")
    behaviour = OnvifBehaviour(raw={"GetScopes": b"<x>" + b"a" * 400_000, "GetDNS": bomb})
    settings, result, _ = _run("127.81.3.7", behaviour, None, max_bytes=100_000)
    assert "ONVIF GetScopes: reply too large" in settings.not_verified_text
    assert any("larger than 100000 bytes" in p for p in result.problems)
    assert "ONVIF GetDNS: " + HOSTILE_TEXT in settings.not_verified_text
    assert f"ONVIF GetDNS on port {result.port}: {HOSTILE_TEXT}" in result.problems
    assert settings.dns is None and settings.gateway == ["10.88.1.1"]  # the rest still read
