"""The UDP discovery driver in loopback mode: unicast only, real sockets, stand-in responders on
127.80.x.y (this suite's block) answering with bytes built from real captures, some of them
misbehaving on purpose. No multicast and no ARP ever happen here (the host's namespace)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the stand-in responders beside us
from disc_responders import Responder, ResponderThread, start  # noqa: E402
from scratch_netns import python_in, scratch_namespace  # noqa: E402

from camaudit.discovery import refusals, udp
from camaudit.discovery.arp import NOTE_NO_ROOT, oui_organisation, plan_sweep
from camaudit.discovery.runner import discover
from camaudit.errors import UsageError
from camaudit.protocols import wsd
from camaudit.protocols.constants import UDP_MAX_DELAY, UDP_MIN_DELAY

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def run_with(responders: Sequence[Responder], work: Callable[[], Awaitable[T]]) -> T:
    """Start the responders, run ``work`` in the same loop, stop them."""

    async def main() -> T:
        transports = [await start(r) for r in responders]
        try:
            return await work()
        finally:
            for t in transports:
                t.close()

    return asyncio.run(main())


def kinds_at(observations: Sequence[Any], address: str) -> list[str]:
    return sorted(o.kind for o in observations if o.address == address)


def test_good_replies_become_observations() -> None:
    responders = [
        Responder("wsd", "127.80.1.1"),
        Responder("wsd", "127.80.1.2", template="wsd_ipycam.xml"),  # unwrapped ProbeMatch
        Responder("sadp", "127.80.1.3"),
        Responder("dhip", "127.80.1.4"),
    ]
    targets = ["127.80.1.1", "127.80.1.2", "127.80.1.3", "127.80.1.4", "127.80.1.5"]
    result = run_with(responders, lambda: discover(targets, timeout=0.4))
    obs = result.observations
    assert kinds_at(obs, "127.80.1.1") == ["mac", "onvif_probe_match", "open_port"]
    assert kinds_at(obs, "127.80.1.2") == ["onvif_probe_match", "open_port"]
    assert kinds_at(obs, "127.80.1.3") == ["mac", "open_port", "sadp"]
    assert kinds_at(obs, "127.80.1.4") == ["dhip", "mac", "open_port"]
    assert kinds_at(obs, "127.80.1.5") == []
    by = {(o.address, o.kind): o for o in obs}
    hik = by[("127.80.1.1", "onvif_probe_match")]
    assert "name/HIKVISION%20DS-2CD2385G1-I" in hik.value and hik.port == 3702
    assert hik.source == "discovery.wsd"
    assert by[("127.80.1.1", "mac")].value == "58:50:ed:1f:e3:85"
    assert by[("127.80.1.3", "sadp")].port == 37020
    assert "<SoftwareVersion>V5.6.2build 190701</SoftwareVersion>" in by[("127.80.1.3", "sadp")].value
    dh = by[("127.80.1.4", "dhip")]
    assert json.loads(dh.value)["params"]["deviceInfo"]["SerialNo"] == "6C01E93PAG69A7D"
    assert by[("127.80.1.4", "open_port")].value == "udp/37810"
    assert by[("127.80.1.4", "mac")].value == "08:ed:ed:00:00:03"
    # Each probe type (NVT, tds:Device, and by unicast wsdp:Device) was sent with its own fresh
    # MessageID. Every target answered or refused (ICMP) each protocol before the repeat was
    # due, so none was repeated: it would only have been answered again.
    ids = [mid for _, mid in responders[0].probes]
    assert len(set(ids)) == 3 and len(ids) == 3
    assert result.notes == []


def test_hostile_and_foreign_replies_are_ignored() -> None:
    bad = [
        Responder("wsd", "127.80.2.1", behaviour="foreign"),  # someone else's MessageID
        Responder("wsd", "127.80.2.2", behaviour="truncated"),
        Responder("wsd", "127.80.2.3", behaviour="oversized"),
        Responder("wsd", "127.80.2.4", behaviour="bomb"),
        Responder("sadp", "127.80.2.5", behaviour="bomb"),
        Responder("sadp", "127.80.2.6", behaviour="truncated"),
        Responder("dhip", "127.80.2.7", behaviour="badheader"),
        Responder("dhip", "127.80.2.8", behaviour="truncated"),
        Responder("dhip", "127.80.2.9", behaviour="oversized"),
        Responder("sadp", "127.80.2.10", behaviour="oversized"),
    ]
    good = Responder("sadp", "127.80.2.11")
    targets = [r.address for r in bad] + [good.address]
    result = run_with([*bad, good], lambda: discover(targets, timeout=0.4))
    assert {o.address for o in result.observations} == {"127.80.2.11"}
    # Every bad responder did get probed and did answer (so the drop is the driver's doing).
    assert all(r.probes for r in bad)
    (note,) = result.notes
    assert note.startswith("discovery replies from 10 addresses ignored")
    assert result.observations and len(result.observations) == 3  # sadp, mac, open_port


def test_duplicates_give_one_observation_each() -> None:
    twice = [Responder(p, "127.80.3.1", behaviour="twice") for p in ("wsd", "sadp", "dhip")]
    result = run_with(twice, lambda: discover(["127.80.3.1"], timeout=0.4))
    kinds = [o.kind for o in result.observations]
    for kind in ("onvif_probe_match", "sadp", "dhip", "open_port"):
        assert kinds.count(kind) == (3 if kind == "open_port" else 1), kind
    # One mac per distinct value: SADP and ONVIF both say 58:50:ed:1f:e3:85, DHIP 08:ed:ed:...
    assert sorted(o.value for o in result.observations if o.kind == "mac") == [
        "08:ed:ed:00:00:03", "58:50:ed:1f:e3:85"]
    assert result.notes == []


def test_observations_handed_on_as_they_come_are_not_kept() -> None:
    # The scan records discovery's answers as they come (issue 15: a sweep of thousands of
    # targets held every answer until discovery ended): with a sink, each observation goes to
    # it once, duplicates still dropped, and the result keeps none.
    def responders() -> list[Responder]:
        return [Responder(p, "127.80.3.2", behaviour="twice") for p in ("wsd", "sadp", "dhip")]

    kept = run_with(responders(), lambda: discover(["127.80.3.2"], timeout=0.4))
    handed: list[Any] = []
    streamed = run_with(responders(), lambda: discover(["127.80.3.2"], timeout=0.4, on_observation=handed.append))
    assert streamed.observations == [] and streamed.notes == kept.notes
    def same(o: Any) -> tuple[str, int | None, str]:  # a WS-Discovery answer names the probe's fresh id
        return o.kind, o.port, "" if o.kind == "onvif_probe_match" else o.value

    assert sorted(map(same, handed)) == sorted(map(same, kept.observations))
    assert len(handed) == len({(o.kind, o.port, o.value) for o in handed}), "each observation once"


def test_repeat_schedule_follows_soap_over_udp() -> None:
    responder = Responder("wsd", "127.80.4.1", behaviour="silent")
    run_with([responder], lambda: udp.udp_discover(["127.80.4.1"], protocols=["wsd"], timeout=0.2))
    times: dict[str | None, list[float]] = {}
    for at, mid in responder.probes:
        times.setdefault(mid, []).append(at)
    # Three Probes (NVT, tds:Device, wsdp:Device), each sent once and repeated once with the
    # SAME MessageID.
    assert len(times) == 3 and all(len(v) == 2 for v in times.values())
    for first, repeat in times.values():
        assert UDP_MIN_DELAY - 0.005 <= repeat - first <= UDP_MAX_DELAY + 0.1


def test_rate_and_total_time_are_bounded() -> None:
    # Silent devices (listening, never answering): nothing refuses, every repeat goes out.
    targets = [f"127.80.5.{i}" for i in range(1, 101)]
    responders = [Responder(proto, a, behaviour="silent") for a in targets for proto in ("wsd", "sadp", "dhip")]
    result, elapsed = timed(responders, lambda: udp.udp_discover(targets, timeout=0.2, rate=2000))
    # 100 targets x (3 WS-Discovery + SADP + DHIP) x (1 + 1 repeat) datagrams at 2000/s.
    assert result.datagrams_sent == 1000
    assert 0.5 + UDP_MIN_DELAY + 0.2 - 0.05 <= elapsed <= 0.5 + UDP_MAX_DELAY + 0.2 + 1.0
    assert result.observations == []


def test_targets_that_refuse_every_protocol_end_discovery_early() -> None:
    # Nothing listens on these addresses' discovery ports: each datagram comes back as an ICMP
    # port unreachable, so nobody will answer. No repeats are sent, the 10 s window is not
    # waited out, and the refusals are not problems to report.
    targets = [f"127.80.14.{i}" for i in range(1, 21)]
    started = time.monotonic()
    result = asyncio.run(udp.udp_discover(targets, timeout=10.0))
    assert time.monotonic() - started < 2.0
    assert result.datagrams_sent == 20 * 5
    assert result.notes == [] and result.observations == []


def test_a_refusal_does_not_cost_a_neighbour_its_datagram() -> None:
    # An ICMP error leaves the socket with a pending error that fails the next sendto, to any
    # address, without sending it. Every other address here refuses; the silent devices between
    # them must still get their Probe and its repeat.
    silent = [Responder("dhip", f"127.80.15.{i}", behaviour="silent") for i in range(1, 41, 2)]
    targets = [f"127.80.15.{i}" for i in range(1, 41)]
    run_with(silent, lambda: udp.udp_discover(targets, protocols=["dhip"], timeout=0.2))
    assert [len(r.probes) for r in silent] == [2] * 20


def test_a_target_that_answers_one_protocol_and_refuses_the_others_settles() -> None:
    responders = [Responder("wsd", "127.80.16.1")]
    result, elapsed = timed(responders, lambda: udp.udp_discover(["127.80.16.1"], timeout=10.0))
    assert elapsed < 3.0
    assert kinds_at(result.observations, "127.80.16.1") == ["mac", "onvif_probe_match", "open_port"]


def test_refusal_records_are_read_strictly() -> None:
    ip, ip6 = (socket.IPPROTO_IP, refusals.IP_RECVERR), (socket.IPPROTO_IPV6, refusals.IPV6_RECVERR)

    def record(level: tuple[int, int], err: int, origin: int) -> list[tuple[int, int, bytes]]:
        return [(*level, struct.pack("=IBBBBII", err, origin, 3, 3, 0, 0, 0) + bytes(16))]

    assert refusals.refused_errno(record(ip, errno.ECONNREFUSED, refusals.SO_EE_ORIGIN_ICMP)) == errno.ECONNREFUSED
    assert refusals.refused_errno(record(ip6, errno.EACCES, refusals.SO_EE_ORIGIN_ICMP6)) == errno.EACCES
    assert refusals.refused_errno(record(ip, errno.ECONNREFUSED, 1)) is None  # local, not ICMP
    assert refusals.refused_errno(record(ip, errno.EMSGSIZE, refusals.SO_EE_ORIGIN_ICMP)) is None
    assert refusals.refused_errno([(socket.SOL_SOCKET, 1, bytes(16))]) is None
    assert refusals.refused_errno([(*ip, b"\x6f\x00")]) is None  # truncated
    assert refusals.refused_errno([]) is None


def timed(responders: Sequence[Responder], work: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    started = time.monotonic()
    result = run_with(responders, work)
    return result, time.monotonic() - started


def test_unicast_discovery_ends_once_every_target_answered_and_settled() -> None:
    # Issue 15: a one-host scan listened 2 s for nothing. Every target answered: the driver
    # stops after a quiet SETTLE_SECONDS, far inside its 10 s window, with every answer kept,
    # the late one (0.4 s, like a device using WS-Discovery's APP_MAX_DELAY) included.
    responders = [Responder("wsd", "127.80.11.1"), Responder("sadp", "127.80.11.1", delay=0.4),
                  Responder("dhip", "127.80.11.2")]
    result, elapsed = timed(responders, lambda: udp.udp_discover(["127.80.11.1", "127.80.11.2"], timeout=10.0))
    assert elapsed < 5.0
    assert kinds_at(result.observations, "127.80.11.1") == ["mac", "onvif_probe_match", "open_port", "open_port", "sadp"]
    assert kinds_at(result.observations, "127.80.11.2") == ["dhip", "mac", "open_port"]


def test_the_quiet_period_grows_with_the_slowest_device() -> None:
    # A device that took 0.5 s to answer is waited for SETTLE_RTTS x 0.5 s after the last answer:
    # its own second answer, 1.1 s after its first, is still kept (a fixed SETTLE_SECONDS
    # would have ended about 0.6 s after the first).
    responders = [Responder("wsd", "127.80.12.1", delay=0.5), Responder("sadp", "127.80.12.1", delay=1.6)]
    result, elapsed = timed(responders, lambda: udp.udp_discover(["127.80.12.1"], timeout=10.0))
    assert "sadp" in kinds_at(result.observations, "127.80.12.1")
    assert elapsed < 6.0


def test_one_silent_target_keeps_the_whole_window() -> None:
    # An address that never answers may be a slow device: the full window is listened to.
    # (127.80.13.2 listens and says nothing, like a device that drops what it does not know.)
    responders = [Responder("wsd", "127.80.13.1")] + [
        Responder(proto, "127.80.13.2", behaviour="silent") for proto in ("wsd", "sadp", "dhip")
    ]
    result, elapsed = timed(responders, lambda: udp.udp_discover(["127.80.13.1", "127.80.13.2"], timeout=1.5))
    assert elapsed >= 1.5
    assert kinds_at(result.observations, "127.80.13.1") == ["mac", "onvif_probe_match", "open_port"]


def test_ipv6_targets_go_out_over_ipv6() -> None:
    # ::1 is this host's own loopback: nobody listens there, so the first datagram is refused
    # (ICMPv6 port unreachable) and not repeated; the IPv6 path must not fail.
    result = asyncio.run(udp.udp_discover(["::1"], protocols=["dhip"], timeout=5.0))
    assert result.datagrams_sent == 1 and result.observations == [] and result.notes == []


def test_all_targets_get_probed_under_a_tight_rate() -> None:
    responders = [Responder("dhip", f"127.80.6.{i}", behaviour="silent") for i in range(1, 41)]
    targets = [r.address for r in responders]
    run_with(responders, lambda: udp.udp_discover(targets, protocols=["dhip"], timeout=0.1, rate=400))
    assert [len(r.probes) for r in responders] == [2] * 40


def test_bad_arguments_are_usage_errors() -> None:
    for kwargs in ({"timeout": 0}, {"rate": -1}):
        with pytest.raises(UsageError):
            asyncio.run(discover(["127.80.7.1"], **kwargs))
    with pytest.raises(UsageError, match="multicast or broadcast"):
        asyncio.run(udp.udp_discover(["239.255.255.250"], timeout=0.1))
    with pytest.raises(UsageError, match="unknown discovery protocol"):
        asyncio.run(udp.udp_discover(["127.80.7.1"], protocols=["ssdp"], timeout=0.1))


def test_loopback_is_never_chosen_for_multicast() -> None:
    # lo holds 127.0.0.0/8, which contains the targets: it must still not be chosen.
    assert udp.choose_interfaces([], ["127.80.8.1"]) == []
    notes: list[str] = []
    assert udp.choose_interfaces(["lo"], ["127.80.8.1"], notes=notes) == []
    assert notes and "lo skipped" in notes[0]
    with pytest.raises(UsageError, match="no network interface named"):
        udp.choose_interfaces(["nosuchif0"], ["127.80.8.1"])


def test_multicast_request_without_a_matching_interface_only_notes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Belt and braces: with the lab guard on, any multicast attempt here would be refused.
    monkeypatch.setenv("CAMAUDIT_REQUIRE_LAB_NETNS", "1")
    result = asyncio.run(discover(["127.80.8.2"], multicast=True, timeout=0.1))
    assert any("multicast discovery skipped" in n for n in result.notes)


def test_arp_plan_uses_only_attached_non_loopback_segments() -> None:
    ifaces = udp.list_interfaces()
    assert plan_sweep(["127.80.9.1"], ifaces) == {}
    assert plan_sweep(["::1", "not-an-ip"], ifaces) == {}


def test_oui_lookup() -> None:
    assert oui_organisation("44:19:b6:00:00:01") == "Hangzhou Hikvision Digital Technology Co.,Ltd."
    assert "Dahua" in (oui_organisation("08:ed:ed:00:00:03") or "")
    assert oui_organisation("02:00:00:00:00:01") is None  # locally administered


@pytest.mark.root
def test_arp_without_root_says_so_once() -> None:
    code = (
        "import asyncio, json; from camaudit.discovery.runner import discover; "
        "r = asyncio.run(discover(['127.80.9.2'], arp=True, timeout=0.2)); print(json.dumps(r.notes))"
    )
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, cwd="/", env={**os.environ, "HOME": "/tmp"},
    )
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip("the unprivileged user cannot read this checkout")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [NOTE_NO_ROOT]


# --- the command line ---------------------------------------------------------------------------


def camaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "camaudit", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )


def test_cli_discover_json() -> None:
    responders = [
        Responder("wsd", "127.80.10.1"),
        Responder("sadp", "127.80.10.1"),
        Responder("dhip", "127.80.10.2"),
        Responder("wsd", "127.80.10.3", behaviour="foreign"),
    ]
    with ResponderThread(responders):
        proc = camaudit("discover", "127.80.10.1-3", "--no-multicast", "--timeout", "0.4", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["addresses"] == 3 and doc["answered"] == 2
    hik, dahua = doc["devices"]
    assert hik["address"] == "127.80.10.1"
    assert hik["answered"] == ["onvif", "sadp"] or hik["answered"] == ["sadp", "onvif"]
    assert hik["mac"] == "58:50:ed:1f:e3:85" and "Hikvision" in hik["oui"]
    assert hik["model"] == "DS-2CD2385G1-I" and hik["firmware"] == "V5.6.2build 190701"
    assert hik["serial"] == "DS-2CD2385G1-I20200414AAWRE33842150"
    assert dahua["answered"] == ["dhip"] and dahua["model"] == "IPC-HDW1431T1-S4"
    assert dahua["firmware"] == "2.800.0000000.13.R"
    assert {o["kind"] for o in dahua["observations"]} == {"dhip", "mac", "open_port"}
    assert any("replies from 1 address ignored" in n for n in doc["notes"])


def test_cli_discover_table() -> None:
    with ResponderThread([Responder("dhip", "127.80.11.1")]):
        proc = camaudit("discover", "127.80.11.1", "127.80.11.2", "--no-multicast", "--timeout", "0.3")
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()
    assert header.split()[:4] == ["ADDRESS", "MAC", "OUI", "ANSWERED"]
    assert row.startswith("127.80.11.1 ") and "dhip" in row and "IPC-HDW1431T1-S4" in row


def test_cli_discover_nothing_answers() -> None:
    proc = camaudit("discover", "127.80.12.1", "--no-multicast", "--timeout", "0.2")
    assert proc.returncode == 0 and proc.stdout.strip() == "No device answered."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["8.8.8.8"], "public (internet) address"),
        (["127.80.13.1", "--timeout", "0", "--no-multicast"], "timeout must be a positive"),
        (["10.99.0.1", "--interface", "nosuchif0"], "no network interface named"),
        (["127.80.13.2", "--no-multicast", "--interface", "nosuchif0"], "no network interface named"),
    ],
)
def test_cli_usage_errors_are_one_line(args: list[str], message: str) -> None:
    proc = camaudit("discover", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_probe_bytes_sent_on_the_wire_are_valid_probes() -> None:
    responder = Responder("wsd", "127.80.14.1", behaviour="silent")
    run_with([responder], lambda: udp.udp_discover(["127.80.14.1"], protocols=["wsd"], timeout=0.1))
    assert responder.probes and all(mid and mid.startswith("uuid:") for _, mid in responder.probes)
    assert wsd.build_probe()[1] not in {mid for _, mid in responder.probes}


# --- against the lab farm (camaudit.lab.farm, loopback mode) ----------------------------------

FARM_SPEC = [
    {"address": "127.80.20.1", "profile": "hikvision-ipc", "mac": "44:19:b6:00:20:01",
     "serial": "DS-2CD2385G1-I20200414AAWRE00000001"},
    {"address": "127.80.20.2", "profile": "dahua-ipc", "mac": "3c:ef:8c:00:20:02",
     "serial": "6C01E93PAG00002"},
    {"address": "127.80.20.3", "profile": "ezviz-camera", "mac": "54:c4:15:00:20:03",
     "serial": "CS-C6TC-32WFR0120170327CCCH000000003"},
    # Negative controls: WS-Discovery peers that are not cameras.
    {"address": "127.80.20.4", "profile": "host-windows", "mac": "02:00:00:00:20:04", "serial": "W1"},
    {"address": "127.80.20.5", "profile": "host-printer", "mac": "02:00:00:00:20:05", "serial": "P1"},
    # Misbehaving cameras: their discovery replies must be refused, not crash the run.
    {"address": "127.80.20.6", "profile": "hikvision-ipc", "mac": "44:19:b6:00:20:06",
     "serial": "DS-2CD2385G1-I20200414AAWRE00000006", "behaviour": "xml_bomb"},
    {"address": "127.80.20.7", "profile": "dahua-ipc", "mac": "3c:ef:8c:00:20:07",
     "serial": "6C01E93PAG00007", "behaviour": "truncated"},
    {"address": "127.80.20.8", "profile": "hikvision-ipc", "mac": "44:19:b6:00:20:08",
     "serial": "DS-2CD2385G1-I20200414AAWRE00000008", "behaviour": "malformed"},
    {"address": "127.80.20.9", "profile": "dahua-ipc", "mac": "3c:ef:8c:00:20:09",
     "serial": "6C01E93PAG00009", "behaviour": "oversized"},
]


@contextlib.contextmanager
def lab_farm(tmp_path: Path, spec_devices: list[dict[str, str]]) -> Iterator[dict[str, dict[str, Any]]]:
    """The lab farm (``camaudit.lab.farm``, a process of its own) serving ``spec_devices``; yields
    its manifest by address."""
    pytest.importorskip("camaudit.lab.farm")
    spec, ready = tmp_path / "spec.json", tmp_path / "ready.json"
    spec.write_text(json.dumps(spec_devices), encoding="utf-8")
    farm = subprocess.Popen(
        [sys.executable, "-m", "camaudit.lab.farm", "--spec", str(spec), "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert farm.poll() is None, farm.stderr.read().decode() if farm.stderr else ""
            assert time.monotonic() < deadline, "the farm did not start"
            time.sleep(0.05)
        yield {d["address"]: d for d in json.loads(ready.read_text(encoding="utf-8"))}
    finally:
        farm.terminate()
        try:
            farm.wait(10)
        except subprocess.TimeoutExpired:
            farm.kill()
            farm.wait(5)


def test_discover_against_the_lab_farm(tmp_path: Path) -> None:
    with lab_farm(tmp_path, FARM_SPEC) as manifest:
        proc = camaudit("discover", "127.80.20.1-9", "--no-multicast", "--timeout", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    found = {d["address"]: d for d in doc["devices"]}
    assert set(found) == {"127.80.20.1", "127.80.20.2", "127.80.20.3"}
    expected_answers = {"127.80.20.1": {"onvif", "sadp"}, "127.80.20.2": {"onvif", "dhip"},
                        "127.80.20.3": {"sadp"}}
    for address, device in found.items():
        truth = manifest[address]
        assert set(device["answered"]) == expected_answers[address]
        assert device["model"] == truth["model"]
        assert device["serial"] == truth["serial"]
        assert device["mac"] == truth["mac"]
        # SADP writes "V5.7.18build 240826" where ISAPI has a space (fingerprinting.md 1.1, 5).
        assert device["firmware"].replace(" ", "") == truth["firmware"].replace(" ", "")
    assert "Hikvision" in found["127.80.20.3"]["oui"]  # the EZVIZ unit carries a Hikvision OUI
    assert any("ignored" in note for note in doc["notes"])


def test_a_host_that_is_no_camera_is_heard_and_not_waited_for(tmp_path: Path) -> None:
    # Issue 15: a Windows host or a printer listens on WS-Discovery but answers only Probes for
    # wsdp:Device (lab.md 8.5), never the camera ones: unicast discovery listened out its whole
    # window for it (one such host alone took 2.7 s). Asked for wsdp:Device too, it answers: it
    # is heard, gives no camera evidence, and is no reply "ignored" either.
    hosts = [{"address": "127.80.21.1", "profile": "host-windows", "mac": "02:00:00:00:21:01", "serial": "W1"},
             {"address": "127.80.21.2", "profile": "host-printer", "mac": "02:00:00:00:21:02", "serial": "P1"}]
    with lab_farm(tmp_path, hosts):
        started = time.monotonic()
        result = asyncio.run(udp.udp_discover(["127.80.21.1", "127.80.21.2"], timeout=10.0))
        elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert result.observations == [] and result.notes == []
    assert result.replies >= 2 and result.ignored == 0


@pytest.mark.root
def test_datagrams_that_cannot_leave_are_not_waited_for() -> None:
    # In an empty namespace of our own: 10.250.0.0/24 has an 'unreachable' route (sendto fails
    # with EHOSTUNREACH, nothing leaves), 10.251.0.0/24 no route at all (ENETUNREACH), and
    # 127.0.0.1 has nobody on the discovery ports (ICMP port unreachable). Nobody can answer, so
    # the 10 s window is not listened to; the missing route is said once, the routine refusals not.
    with scratch_namespace("t80", ["route", "add", "unreachable", "10.250.0.0/24"]) as ns:
        script = (
            "import asyncio, json, time\n"
            "from camaudit.discovery import udp\n"
            "t = time.monotonic()\n"
            "r = asyncio.run(udp.udp_discover(['10.250.0.1', '10.251.0.1', '127.0.0.1'], timeout=10.0))\n"
            "print(json.dumps({'elapsed': time.monotonic() - t, 'notes': r.notes}))\n"
        )
        out = python_in(ns, script, cwd=str(REPO))
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
    assert data["elapsed"] < 3.0
    assert "wsd unicast: network is unreachable for some targets" in data["notes"], data["notes"]
    assert not any("refused" in note.lower() or "no route to host" in note.lower() for note in data["notes"])


class _LateErrors:
    """A socket double for the one race a test cannot stage on loopback: ICMP errors of earlier
    datagrams that arrive late (from ksoftirqd, under load) and fail several sends in a row.
    ``pending`` errors each fail one sendto and wait in the error queue until read."""

    def __init__(self, pending: list[tuple[str, int]], own: int | None = None, stale: int = 0) -> None:
        self.pending = list(pending)
        self.queue: list[tuple[str, int]] = []
        self.own = own
        #: failures whose record was already read (the kernel queues the record, then sets the
        #: socket's pending error: a reader can take the record in between)
        self.stale = stale
        self.sent: list[tuple[str, int]] = []

    def sendto(self, payload: bytes, destination: tuple[str, int]) -> int:
        if self.stale:
            self.stale -= 1
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        if self.pending:
            self.queue.append(self.pending.pop(0))
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        if self.own is not None:
            raise OSError(self.own, os.strerror(self.own))
        self.sent.append(destination)
        return len(payload)

    def recvmsg(self, bufsize: int, ancbufsize: int, flags: int) -> tuple[bytes, list[Any], int, tuple[str, int]]:
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "empty")
        record = struct.pack("=IBBBBII", errno.ECONNREFUSED, refusals.SO_EE_ORIGIN_ICMP, 3, 3, 0, 0, 0)
        return b"", [(socket.IPPROTO_IP, refusals.IP_RECVERR, record)], 0, self.queue.pop(0)


def test_late_icmp_errors_never_cost_a_datagram_nor_blame_its_destination() -> None:
    # Found by the 1,000-device benchmark: under load, three attempts were not enough, the
    # camera's own WS-Discovery Probe was dropped and the camera taken for refusing it.
    refused: list[str] = []
    late = _LateErrors([(f"127.80.17.{i}", 37020) for i in range(1, 6)])
    refusals.send(late, b"probe", ("127.80.17.99", 3702), refused.append)  # type: ignore[arg-type]
    assert late.sent == [("127.80.17.99", 3702)]
    assert refused == [f"127.80.17.{i}" for i in range(1, 6)]
    # A pending error whose record a reader already took (found by the same benchmark: the
    # last Uniview cameras of a sweep were blamed for it): sent again, nobody blamed.
    stale = _LateErrors([("127.80.17.7", 37020)], stale=1)
    refusals.send(stale, b"probe", ("127.80.17.99", 3702), refused.append)  # type: ignore[arg-type]
    assert stale.sent == [("127.80.17.99", 3702)] and refused[-1] == "127.80.17.7"
    # A flood that never stops: the datagram goes back to the caller's transport, unblamed.
    flood = _LateErrors([("127.80.17.1", 37020)] * (refusals.SEND_ATTEMPTS + 5))
    with pytest.raises(BlockingIOError):
        refusals.send(flood, b"probe", ("127.80.17.99", 3702), refused.append)  # type: ignore[arg-type]
    # The datagram's own failure (no route: nothing queued behind it) is raised for the caller.
    with pytest.raises(OSError) as own:
        refusals.send(_LateErrors([], own=errno.ENETUNREACH), b"probe", ("10.251.0.1", 3702),  # type: ignore[arg-type]
                      refused.append)
    assert own.value.errno == errno.ENETUNREACH


def test_probe_ids_are_made_from_a_counter_and_recognised_without_being_kept() -> None:
    # Issue 15: a sweep kept three MessageIDs a target to correlate answers. The ids are now a
    # run's random UUID with a counter in its last 32 bits: an answer correlates only when its
    # RelatesTo is one of the ids issued, exactly as sent.
    ids = udp._MessageIds()
    first = ids.block(3)
    issued = [f"uuid:{ids.uuid_text(first + n)}" for n in range(3)]
    assert len(set(issued)) == 3 and all(wsd_id_shape(i) for i in issued)
    assert [ids.number(i) for i in issued] == [0, 1, 2]
    not_issued = f"uuid:{ids.uuid_text(3)}"
    assert ids.number(not_issued) is None
    other_run = udp._MessageIds()
    other_run.block(3)
    assert ids.number(f"uuid:{other_run.uuid_text(0)}") is None
    assert ids.number(issued[0].upper()) is None and ids.number("urn:" + issued[0]) is None
    assert ids.number(None) is None and ids.number("") is None and ids.number("uuid:not-a-uuid-at-all-but-long-enough!!") is None


def wsd_id_shape(text: str) -> bool:
    """What wsd.new_message_id makes: ``uuid:`` and a version 4 UUID in canonical form."""
    import uuid as uuid_module

    value = uuid_module.UUID(text[5:])
    return text.startswith("uuid:") and str(value) == text[5:] and value.version == 4


# --- windows of targets (issue 15) ---------------------------------------------------------------

WINDOW_TARGETS = [f"127.80.92.{n}" for n in range(1, 41)]


def test_a_sweep_larger_than_a_window_is_heard_whole_with_few_windows_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forty targets in windows of eight: every one answers every protocol once, the rate holds
    across the windows, and no more than OPEN_WINDOWS windows are open at any moment. A window's state
    (its collector, with the digests of all it heard) goes when it closes, not at some later
    garbage collection: that is what keeps discovery's memory from growing with the targets."""
    import gc
    import weakref

    created = udp._Collector.__init__
    alive: set[int] = set()
    most_alive = [0]

    def counting(self: udp._Collector, *args: Any, **kwargs: Any) -> None:
        created(self, *args, **kwargs)
        alive.add(id(self))
        most_alive[0] = max(most_alive[0], len(alive))
        weakref.finalize(self, alive.discard, id(self))

    monkeypatch.setattr(udp._Collector, "__init__", counting)
    responders = [Responder(proto, a) for a in WINDOW_TARGETS for proto in ("wsd", "sadp", "dhip")]
    rate = 400.0
    gc.disable()  # a window must go by reference counting, not wait for the collector
    try:
        result, elapsed = timed(responders, lambda: udp.udp_discover(WINDOW_TARGETS, timeout=2.0, rate=rate,
                                                                       window=8))
    finally:
        gc.enable()
    for address in WINDOW_TARGETS:
        assert kinds_at(result.observations, address).count("onvif_probe_match") == 1, address
        assert kinds_at(result.observations, address).count("sadp") == 1, address
        assert kinds_at(result.observations, address).count("dhip") == 1, address
    # The windows overlap (one listens while the next sends), up to the bound and no further.
    assert most_alive[0] == udp.OPEN_WINDOWS, f"{most_alive[0]} windows were open at once"
    # Five datagrams a target in the first round, at most `rate` a second across the windows.
    first_probes = sorted(min(at for at, _ in r.probes) for r in responders if r.probes)
    assert first_probes[-1] - first_probes[0] >= (len(WINDOW_TARGETS) * 5 - 1) / rate - 0.05
    # Every target answered: each window ends once its answers settle, not after its 2 s window
    # (which would keep the fifth window waiting for the first, over 4 s in all).
    assert elapsed < 3.5


def test_the_window_must_hold_a_target() -> None:
    with pytest.raises(UsageError, match="window"):
        asyncio.run(udp.udp_discover(["127.80.92.1"], window=0))
