"""Integration: interrogate() against the lab farm (camaudit.lab.farm) on 127.81.200.0/24."""

from __future__ import annotations

import asyncio
import hashlib
import json

from camaudit.credentials import Credential, CredentialStore
from camaudit.lab.context import LAB_PASSWORD, LAB_USERNAME
from camaudit.lab.farm import Farm
from camaudit.lab.plan import plan_devices
from camaudit.probes.interrogate import InterrogationReport, interrogate


def _run(registered: bool, credentials: CredentialStore | None) -> dict[str, tuple[InterrogationReport, str]]:
    specs = plan_devices(2, "127.81.200.0/24", "hikvision-ipc=1,dahua-ipc=1", 3)
    for spec in specs:
        spec.settings["cloud"]["state"] = "registered" if registered else "off"
        if spec.profile == "hikvision-ipc":
            spec.settings["upnp"] = {"enabled": True, "mappings": [{
                "protocol": "TCP", "internal_port": 80, "external_port": 18080,
                "external_address": "198.51.100.7", "status": "active"}]}

    async def run() -> dict[str, tuple[InterrogationReport, str]]:
        farm = Farm(specs, port_offset=10000)
        await farm.start()
        try:
            out = {}
            for ctx in farm.contexts:
                report = await interrogate(ctx.spec.address, list(ctx.port_map.values()),
                                           credentials=credentials, timeout=2)
                out[ctx.spec.profile] = (report, ctx.spec.serial)
            return out
        finally:
            await farm.stop()

    return asyncio.run(run())


def test_farm_devices_with_lab_credentials() -> None:
    store = CredentialStore(fallback=Credential(LAB_USERNAME, LAB_PASSWORD))
    results = _run(True, store)
    hik, hik_serial = results["hikvision-ipc"]
    cloud = hik.settings.cloud
    assert cloud["hik_connect"]["enabled"] is True and cloud["hik_connect"]["registered"] is True
    assert cloud["online_upgrade"]["registered"] is True
    assert hik.settings.upnp_mappings and hik.settings.upnp_mappings[0]["externalIPAddress"] == "198.51.100.7"
    assert hik.settings.gateway == ["127.81.200.254"]
    assert {o.kind for o in hik.observations} >= {"isapi_device_info", "onvif_device_info"}
    stored = json.dumps(hik.settings.to_json()) + "".join(o.value for o in hik.observations)
    code = "LAB" + hashlib.sha256(hik_serial.encode()).hexdigest()[:6].upper()  # the farm's verification code
    assert code not in stored and LAB_PASSWORD not in stored

    dahua, _ = results["dahua-ipc"]
    assert dahua.settings.cloud["dahua_p2p"]["enabled"] is True
    assert dahua.settings.cloud["dahua_p2p"]["registered"] is None  # never claimed without an API
    assert any(o.kind == "dahua_cgi" and "version=" in o.value for o in dahua.observations)


def test_farm_devices_without_credentials_are_not_verified() -> None:
    results = _run(False, None)
    for report, _ in results.values():
        settings = report.settings
        assert settings.cloud == {}
        assert settings.gateway is None and settings.dns is None
        assert any("no credentials" in line for line in settings.not_verified_text)
