"""Issue 10 item 5: one address flooding discovery answers (2,153 ProbeMatches in 2 s) gets a
handful of observations per protocol, and a problem saying the cap was hit.

Unicast on loopback only (127.93.21.0/24 and 127.93.22.0/24, this suite's block): stand-in
responders from disc_responders.py, one of them answering every probe hundreds of times, each
answer naming a new device. No multicast, no ARP.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the stand-in responders beside us
from disc_responders import Responder, render, start  # noqa: E402

from camaudit.discovery.runner import discover
from camaudit.protocols import dhip, wsd

T = TypeVar("T")
#: "A handful" (camaudit.discovery.udp.MAX_ANSWERS_PER_ADDRESS is 5); spelled out so that this
#: test also runs, and fails, against code without the cap.
HANDFUL = 5
FLOOD = 50  # answers to every single probe (more would overflow the socket buffer, losing the neighbour too)


class Flooder(Responder):
    """Answers each probe FLOOD times, every answer a different device (endpoint, serial, MAC)."""

    def replies(self, data: bytes) -> list[bytes]:
        if not super().replies(data):  # a real probe of this protocol (and recorded as such)
            return []
        relates = wsd.probe_message_id(data) or "" if self.proto == "wsd" else ""
        answers = []
        for n in range(FLOOD):
            mac = f"02:93:00:{n >> 8:02x}:{n & 255:02x}:{len(self.probes) & 255:02x}"
            if self.proto == "wsd":
                body = render("wsd_hikvision.xml", address=self.address, relates_to=relates)
                body = body.replace(b"3fa1fe68-b915-4053-a3e1-5850ed1fe385", str(uuid.uuid4()).encode())
                answers.append(body.replace(b"58:50:ed:1f:e3:85", mac.encode()))
            elif self.proto == "sadp":
                body = render("sadp_hikvision.xml", address=self.address)
                body = body.replace(b"AAWRE33842150", uuid.uuid4().hex[:13].upper().encode())
                answers.append(body.replace(b"58-50-ed-1f-e3-85", mac.replace(":", "-").encode()))
            else:
                body = render("dhip_dahua.json", address=self.address)
                body = body.replace(b"6C01E93PAG69A7D", uuid.uuid4().hex[:15].upper().encode())
                answers.append(dhip.frame(body.replace(b"08:ed:ed:00:00:03", mac.encode()) + b"\n"))
        return answers


def run_with(responders: Sequence[Responder], work: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        transports = [await start(r) for r in responders]
        try:
            return await work()
        finally:
            for transport in transports:
                transport.close()

    return asyncio.run(main())


@contextmanager
def responders_in_background(responders: Sequence[Responder]) -> Iterator[None]:
    """The responders on a loop of their own, so a camaudit subprocess can be run against them."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    transports: list[asyncio.DatagramTransport] = []

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def begin() -> None:
            transports.extend([await start(r) for r in responders])
            ready.set()

        loop.run_until_complete(begin())
        loop.run_forever()
        for transport in transports:
            transport.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_a_flooding_address_is_capped_per_protocol_and_the_cap_is_a_problem() -> None:
    responders = [
        Flooder("wsd", "127.93.21.1"),
        Flooder("sadp", "127.93.21.2"),
        Flooder("dhip", "127.93.21.3"),
        Responder("wsd", "127.93.21.4"),  # a well-behaved neighbour
        Responder("sadp", "127.93.21.4"),
    ]
    targets = ["127.93.21.1", "127.93.21.2", "127.93.21.3", "127.93.21.4"]
    result = run_with(responders, lambda: discover(targets, timeout=1.0, rate=500))
    counts = Counter((o.address, o.kind) for o in result.observations)
    for address, kind, name in (("127.93.21.1", "onvif_probe_match", "WS-Discovery"),
                                ("127.93.21.2", "sadp", "SADP"), ("127.93.21.3", "dhip", "DHIP")):
        assert 1 <= counts[(address, kind)] <= HANDFUL, counts
        assert 1 <= counts[(address, "mac")] <= HANDFUL, counts
        [problem] = result.problems[address]
        assert problem.startswith(f"{name} discovery: answers capped at {HANDFUL} from this address; ")
        assert "more dropped" in problem
    # The neighbour is untouched: one answer per protocol, no problem.
    assert counts[("127.93.21.4", "onvif_probe_match")] == 1 and counts[("127.93.21.4", "sadp")] == 1
    assert "127.93.21.4" not in result.problems


def test_a_scan_stores_a_handful_from_a_flooding_address_and_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "camaudit.toml"
    config.write_text("[discovery]\narp = false\nmulticast = false\ntimeout = 1.0\n")
    db = tmp_path / "flood.db"
    with responders_in_background([Flooder("wsd", "127.93.22.1"), Flooder("dhip", "127.93.22.1")]):
        scan = subprocess.run(
            [sys.executable, "-m", "camaudit", "scan", "127.93.22.1", "--db", str(db), "--config", str(config),
             "--ports", "9", "--no-interrogate", "--json", "-q", "--fail-on", "none"],
            capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
        )
        listed = subprocess.run(
            [sys.executable, "-m", "camaudit", "discover", "127.93.22.1", "--no-multicast", "--timeout", "1",
             "--json"],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
    assert scan.returncode == 0, scan.stderr
    with closing(sqlite3.connect(db)) as conn:
        stored = dict(conn.execute("select kind, count(*) from observations where address = '127.93.22.1' "
                                   "group by kind").fetchall())
        problems = json.loads(conn.execute("select problems from hosts where address = '127.93.22.1'")
                              .fetchone()[0] or "[]")
    assert 1 <= stored["onvif_probe_match"] <= HANDFUL and 1 <= stored["dhip"] <= HANDFUL, stored
    assert stored["mac"] <= 2 * HANDFUL, stored
    assert sorted(p.split(" discovery:")[0] for p in problems) == ["DHIP", "WS-Discovery"], problems
    # `camaudit discover --json` names the problem beside the device.
    assert listed.returncode == 0, listed.stderr
    [device] = json.loads(listed.stdout)["devices"]
    assert len(device["problems"]) == 2 and all("capped" in p for p in device["problems"])
