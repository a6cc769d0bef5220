"""Issue 10 item 11: ONVIF answers refused as hostile (an entity bomb, XXE) are recorded as that,
in the host's problems and its "not verified" list, never as "no device service answered".

Loopback only: stub devices on 127.93.11.0/24 and a lab device with the ``xml_bomb`` behaviour
on 127.93.12.0/24 (this suite's block).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from interrogate_stubs import OnvifBehaviour, StubServer, onvif_device

from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread
from camaudit.probes.device_config import InterrogationReport
from camaudit.probes.interrogate import interrogate

BOMB = (b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">'
        b"<env:Body>&c;</env:Body></env:Envelope>")
#: What the problem and the "not verified" line say (camaudit.probes.onvif.HOSTILE_TEXT starts so);
#: spelled out here so that this test also runs, and fails, against code without it.
REFUSED = "answer refused as hostile (XML with a DTD or entity declarations"
XXE = (b'<?xml version="1.0"?><!DOCTYPE env:Envelope [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
       b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
       b'<tds:GetSystemDateAndTimeResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl">&secret;'
       b"</tds:GetSystemDateAndTimeResponse></env:Body></env:Envelope>")


def _interrogate(host: str, behaviour: OnvifBehaviour) -> tuple[InterrogationReport, int]:
    async def run() -> tuple[InterrogationReport, int]:
        async with StubServer(host) as server:
            onvif_device(server, behaviour)
            report = await interrogate(host, [server.port], credentials=None, timeout=3)
            return report, server.port

    return asyncio.run(run())


@pytest.mark.parametrize(("host", "document"), [("127.93.11.1", BOMB), ("127.93.11.2", XXE)], ids=["bomb", "xxe"])
def test_a_hostile_first_answer_is_named_not_taken_for_silence(host: str, document: bytes) -> None:
    behaviour = OnvifBehaviour(raw={"GetSystemDateAndTime": document})
    report, port = _interrogate(host, behaviour)
    assert len(report.problems) == 1, report.problems
    assert report.problems[0].startswith(f"ONVIF GetSystemDateAndTime on port {port}: {REFUSED}")
    not_verified = report.settings.not_verified_text
    assert f"ONVIF: the answer on port {port} was refused as hostile (an XML bomb or XXE)" in not_verified
    assert not any("no device service answered" in line for line in not_verified), not_verified
    # A device that sent a bomb is not walked through the rest of the read list.
    assert [op for op, _ in behaviour.operations_seen] == ["GetSystemDateAndTime"]
    assert "root:" not in json.dumps(report.settings.to_json())  # the external entity was never read


def test_a_hostile_answer_later_in_the_reads_is_a_problem_and_the_rest_is_kept() -> None:
    report, port = _interrogate("127.93.11.3", OnvifBehaviour(raw={"GetNTP": XXE}))
    assert any(p.startswith(f"ONVIF GetNTP on port {port}: {REFUSED}") for p in report.problems), report.problems
    assert any(line.startswith("ONVIF GetNTP: " + REFUSED) for line in report.settings.not_verified_text)
    assert report.settings.gateway == ["10.88.1.1"]  # read after GetNTP, still read
    assert {o.kind for o in report.observations} >= {"onvif_device_info"}


def test_a_port_that_stays_silent_beside_a_hostile_one_is_still_said_so() -> None:
    async def run() -> tuple[InterrogationReport, int, int]:
        async with StubServer("127.93.11.4") as hostile, StubServer("127.93.11.4") as empty:
            onvif_device(hostile, OnvifBehaviour(raw={"GetSystemDateAndTime": BOMB}))
            report = await interrogate("127.93.11.4", [hostile.port, empty.port], credentials=None, timeout=3,
                                       http_ports=[hostile.port, empty.port])
            return report, hostile.port, empty.port

    report, hostile_port, empty_port = asyncio.run(run())
    lines = report.settings.not_verified_text
    assert f"ONVIF: the answer on port {hostile_port} was refused as hostile (an XML bomb or XXE)" in lines
    assert f"ONVIF: no device service answered on port {empty_port}" in lines


def test_a_scan_of_a_lab_device_sending_an_xml_bomb_names_it_in_the_host_problems(tmp_path: Path) -> None:
    specs = plan_devices(0, "127.93.12.0/24", None, seed=3, misbehaving={"xml_bomb": 1})
    with LabThread(specs, port_offset=13000, request_wait=2.0) as lab:
        [device] = lab.manifest
        address, port = device["address"], device["services"]["http"]
        db = tmp_path / "bomb.db"
        scan = subprocess.run(
            [sys.executable, "-m", "camaudit", "scan", address, "--db", str(db), "--ports", str(port),
             "--no-discovery", "--json", "-q", "--fail-on", "none"],
            capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
        )
    assert scan.returncode == 0, scan.stderr
    assert "Traceback" not in scan.stderr
    shown = subprocess.run([sys.executable, "-m", "camaudit", "show", "latest", "--db", str(db), "--json"],
                           capture_output=True, text=True, timeout=60)
    [host] = json.loads(shown.stdout)["hosts"]
    problems = host.get("problems", [])
    assert any(p.startswith(f"ONVIF GetSystemDateAndTime on port {port}: {REFUSED}") for p in problems), problems
