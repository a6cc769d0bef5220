"""ONVIF device service of lab devices, driven by the real onvif-zeep-async client (lab.md 8.3)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from onvif import ONVIFCamera
from zeep.exceptions import Fault

from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread


@pytest.fixture(scope="module")
def lab() -> Iterator[list[dict[str, Any]]]:
    specs = plan_devices(20, "127.78.10.0/24", "hikvision-ipc=1,dahua-nvr=1,axis=1", seed=11)
    with LabThread(specs, port_offset=10000) as running:
        yield running.manifest


async def _read(entry: dict[str, Any], password: str) -> dict[str, Any]:
    cam = ONVIFCamera(entry["address"], entry["services"]["http"], "admin", password)
    try:
        await cam.update_xaddrs()
        dev = await cam.create_devicemgmt_service()
        info = await dev.GetDeviceInformation()
        gateway = await dev.GetNetworkDefaultGateway()
        dns = await dev.GetDNS()
        ntp = await dev.GetNTP()
        interfaces = await dev.GetNetworkInterfaces()
        protocols = await dev.GetNetworkProtocols()
        scopes = await dev.GetScopes()
        return {"info": info, "gateway": gateway, "dns": dns, "ntp": ntp, "interfaces": interfaces,
                "protocols": protocols, "scopes": scopes}
    finally:
        await cam.close()


@pytest.mark.parametrize("profile", ["hikvision-ipc", "dahua-nvr", "axis-camera"])
def test_onvif_client_reads_identity_and_network_settings(lab: list[dict[str, Any]], profile: str) -> None:
    entry = next(e for e in lab if e["profile"] == profile)
    got = asyncio.run(_read(entry, "camaudit-lab"))
    info = got["info"]
    assert (info.Model, info.FirmwareVersion, info.SerialNumber) == (entry["model"], entry["firmware"], entry["serial"])
    assert got["gateway"].IPv4Address == [entry["settings"]["gateway"]]
    assert [d.IPv4Address for d in got["dns"].DNSManual] == entry["settings"]["dns"]
    assert [n.DNSname or n.IPv4Address for n in got["ntp"].NTPManual] == entry["settings"]["ntp"]["servers"]
    assert got["interfaces"][0].Info.HwAddress == entry["mac"]
    assert got["interfaces"][0].IPv4.Config.Manual[0].Address == entry["address"]
    assert {p.Name: p.Port[0] for p in got["protocols"]}["HTTP"] == entry["services"]["http"]
    assert any(s.ScopeItem.endswith(entry["model"]) for s in got["scopes"])


def test_wrong_password_gets_a_soap_fault(lab: list[dict[str, Any]]) -> None:
    entry = next(e for e in lab if e["profile"] == "hikvision-ipc")
    with pytest.raises(Fault, match="not Authorized"):
        asyncio.run(_read(entry, "not-the-password"))
