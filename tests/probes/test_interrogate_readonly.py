"""The read-only allowlist: every forbidden operation is refused before a byte leaves.

A loopback listener counts connections; each refusal must leave it at zero.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from interrogate_stubs import ConnectionCounter
from lxml import etree
from zeep import exceptions as zx

from camaudit.credentials import Credential
from camaudit.probes.onvif import OnvifDevice
from camaudit.probes.readonly import (
    HTTP_READ_ENDPOINTS,
    ONVIF_READ_OPERATIONS,
    ReadOnlyViolation,
    ensure_http_allowed,
    ensure_onvif_allowed,
)
from camaudit.probes.vendor_api import ReadOnlyHTTP

HOST = "127.81.1.1"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
TDS = "http://www.onvif.org/ver10/device/wsdl"

FORBIDDEN_ONVIF = [
    "SetDNS", "SetNTP", "SetNetworkDefaultGateway", "SetHostname", "SetScopes", "SetDiscoveryMode",
    "CreateUsers", "DeleteUsers", "CreateCertificate", "DeleteCertificates", "SystemReboot",
    "SetSystemFactoryDefault", "UpgradeSystemFirmware", "StartFirmwareUpgrade", "StartSystemRestore",
    "RestoreSystem", "SetSystemDateAndTime", "SetUser", "SendAuxiliaryCommand",
]

FORBIDDEN_HTTP = [
    ("PUT", "/ISAPI/System/Network/EZVIZ"),
    ("POST", "/ISAPI/System/Network/EZVIZ"),
    ("DELETE", "/ISAPI/System/deviceInfo"),
    ("PUT", "/ISAPI/System/Network/UPnP"),
    ("GET", "/ISAPI/System/onlineUpgrade/version?check=true"),  # egress.md 2.5: makes the device reach out
    ("GET", "/ISAPI/System/onlineUpgrade/server?check=true"),
    ("GET", "/ISAPI/System/reboot"),
    ("PUT", "/ISAPI/System/reboot"),
    ("PUT", "/ISAPI/System/factoryReset?mode=basic"),
    ("PUT", "/SDK/webLanguage"),  # CVE-2021-36260 path (fingerprinting.md 4.1)
    ("GET", "/cgi-bin/configManager.cgi?action=setConfig&T2UServer.Enable=false"),
    ("GET", "/cgi-bin/configManager.cgi?action=getConfig&name=Network&x=1"),
    ("GET", "/cgi-bin/magicBox.cgi?action=reboot"),
    ("GET", "/cgi-bin/magicBox.cgi?action=factoryReset"),
    ("POST", "/RPC2_Login"),
    ("GET", "/ISAPI/System/deviceInfo/../../SDK/webLanguage"),
    ("GET", "/ISAPI/System/deviceInfo%2F..%2Freboot"),
    ("GET", "/ISAPI/System/Network/EZVIZ#x"),
    ("GET", "/current_config/passwd"),  # CVE-2017-7925 path
    ("POST", "/onvif/device_service"),  # SOAP goes through the ONVIF guard only
]


def test_allowlists_hold_only_reads() -> None:
    assert all(op.startswith("Get") for op in ONVIF_READ_OPERATIONS)
    assert all(method == "GET" for method, _ in HTTP_READ_ENDPOINTS)
    for method, target in HTTP_READ_ENDPOINTS:
        ensure_http_allowed(method, target)  # the defence-in-depth list never blocks a listed read


def test_every_non_get_operation_in_the_device_wsdl_is_refused() -> None:
    import onvif

    wsdl = (Path(onvif.__file__).parent / "wsdl" / "devicemgmt.wsdl").read_text()
    operations = set(re.findall(r'<wsdl:operation name="(\w+)"', wsdl))
    assert len(operations) > 80
    for operation in operations - ONVIF_READ_OPERATIONS:
        with pytest.raises(ReadOnlyViolation):
            ensure_onvif_allowed(operation)
    assert ONVIF_READ_OPERATIONS <= operations  # every allowed name is a real operation


def test_forbidden_onvif_operations_never_reach_the_network() -> None:
    async def run() -> int:
        async with ConnectionCounter(HOST) as counter:
            device = await OnvifDevice.open(HOST, counter.port, credential=Credential("u", "p"), timeout=1)
            try:
                xaddr = f"http://{HOST}:{counter.port}/onvif/device_service"
                for operation in FORBIDDEN_ONVIF:
                    with pytest.raises(ReadOnlyViolation):
                        await device.call(operation)
                    # Bypassing call(): hand the transport a finished envelope, as zeep would.
                    envelope = etree.fromstring(
                        f'<e:Envelope xmlns:e="{SOAP12}"><e:Body><t:{operation} xmlns:t="{TDS}"/>'
                        "</e:Body></e:Envelope>"
                    )
                    with pytest.raises(ReadOnlyViolation):
                        await device.transport.post_xml(xaddr, envelope, {})
                    # Through zeep's own proxies: zeep may refuse first (missing arguments);
                    # when it does not, our transport must.
                    for proxy in (device.service, device.authless_service):
                        with pytest.raises((ReadOnlyViolation, zx.ValidationError)):
                            await getattr(proxy, operation)()
                for operation in ("SystemReboot", "StartFirmwareUpgrade"):  # no arguments needed
                    with pytest.raises(ReadOnlyViolation):
                        await device.service.__getattr__(operation)()
                with pytest.raises(ReadOnlyViolation):  # two operations in one body
                    await device.transport.post_xml(xaddr, etree.fromstring(
                        f'<e:Envelope xmlns:e="{SOAP12}"><e:Body><t:GetDNS xmlns:t="{TDS}"/>'
                        f'<t:SystemReboot xmlns:t="{TDS}"/></e:Body></e:Envelope>'), {})
            finally:
                await device.aclose()
            await asyncio.sleep(0.05)
            return counter.connections

    assert asyncio.run(run()) == 0


def test_forbidden_http_requests_never_reach_the_network() -> None:
    async def run() -> int:
        async with ConnectionCounter(HOST) as counter:
            async with ReadOnlyHTTP(HOST, counter.port, credential=Credential("u", "p"), timeout=1) as http:
                for method, target in FORBIDDEN_HTTP:
                    with pytest.raises(ReadOnlyViolation):
                        await http.request(method, target)
                # Bypassing request(): the client's own hook refuses before connecting.
                for method, target in FORBIDDEN_HTTP[:6]:
                    with pytest.raises(ReadOnlyViolation):
                        await http._client.request(method, http.base + target)
            await asyncio.sleep(0.05)
            return counter.connections

    assert asyncio.run(run()) == 0


def test_an_allowed_read_does_reach_the_listener() -> None:
    """The control: the counter does see a permitted request, so zero above means something."""

    async def run() -> int:
        async with ConnectionCounter(HOST) as counter:
            async with ReadOnlyHTTP(HOST, counter.port, timeout=1) as http:
                with pytest.raises(Exception):  # noqa: B017  (the counter never answers)
                    await http.get("/ISAPI/System/deviceInfo")
            return counter.connections

    assert asyncio.run(run()) == 1
