"""Discovery answers wait in the socket while the event loop is busy elsewhere (issue 15:
discovery runs beside the probe stage, so the loop may not read for a while). A burst of
answers larger than the kernel's default receive buffer (208 KB, about 150 answers) must
still be there to read. Loopback only: 127.80.90.1 and 127.80.91.0/24 (this suite's block)."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the stand-in responders beside us
from disc_responders import Responder, ResponderThread  # noqa: E402

from camaudit.discovery import udp
from camaudit.protocols.constants import UDP_MAX_DELAY

ANSWERS = 1000
ANSWER = b"<ProbeMatch>" + b"x" * 1000 + b"</ProbeMatch>"  # about the size of a real ProbeMatch


def test_a_burst_of_answers_is_kept_while_nobody_reads() -> None:
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    if rmem_max < 4 * 1024 * 1024:
        pytest.skip(f"net.core.rmem_max is {rmem_max}: the kernel caps the buffer below what a burst needs")
    receiver = udp._open_socket(socket.AF_INET)
    try:
        port = receiver.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as device:
            device.bind(("127.80.90.1", 0))
            for _ in range(ANSWERS):  # the event loop is "busy": nobody reads meanwhile
                device.sendto(ANSWER, ("127.0.0.1", port))
        received = 0
        while True:
            try:
                receiver.recv(65536)
            except BlockingIOError:
                break
            received += 1
    finally:
        receiver.close()
    assert received == ANSWERS


# --- a busy event loop (issue 15) ----------------------------------------------------------------

BUSY_TARGETS = [f"127.80.91.{n}" for n in range(1, 61)]
#: How long each turn of the hogged event loop takes: a scan's probe stage parsing and identifying
#: beside discovery. A datagram transport reads one datagram per socket per turn.
BUSY_TURN = 0.15


def test_answers_waiting_behind_a_busy_event_loop_are_read_as_they_come() -> None:
    """Sixty devices answer at once (from a thread of their own) while every turn of the scan's
    event loop takes 150 ms. The answers wait in the socket. They must be read while discovery
    listens, not one a turn: all of them, and soon enough that discovery sees every target has
    answered and ends early (SETTLE_SECONDS), instead of listening out its whole window for
    answers it already has."""
    # The quiet period counts from when the answers were read (SETTLE_RTTS times the slowest),
    # so a busy loop lengthens it: about 5 s here. Without reading what waits, 10 s.
    window = 10.0
    with ResponderThread([Responder("wsd", address) for address in BUSY_TARGETS]):

        async def main() -> tuple[udp.UdpDiscoveryResult, float]:
            done = asyncio.Event()

            async def hog() -> None:
                while not done.is_set():
                    time.sleep(BUSY_TURN)
                    await asyncio.sleep(0)

            hogging = asyncio.create_task(hog())
            started = time.monotonic()
            try:
                result = await udp.udp_discover(BUSY_TARGETS, protocols=("wsd",), timeout=window)
                return result, time.monotonic() - started
            finally:
                done.set()
                await hogging

        result, took = asyncio.run(main())
    answered = {o.address for o in result.observations if o.kind == "onvif_probe_match"}
    assert sorted(set(BUSY_TARGETS) - answered) == []
    # One datagram a turn would need 120 turns (18 s) for the 120 answers to two Probes each.
    assert took < window - 1.5, f"discovery took {took:.1f} s: the answers were not read as they came"


def test_answers_that_came_in_time_are_read_when_the_loop_was_busy_through_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop is busy from the last datagram until after the listening window: no turn is
    left in which to read. The answers came in time and wait in the socket; they are read
    before the socket is closed."""
    listen = udp._listen

    async def busy_then_listen(*args: Any) -> None:
        time.sleep(args[-1] + 0.2)  # the whole window (the last argument), without one turn
        await listen(*args[:-1], 0.0)  # and the window is over

    monkeypatch.setattr(udp, "_listen", busy_then_listen)
    targets = BUSY_TARGETS[:20]
    # The answers come after the repeat is out (UDP_MAX_DELAY), so none is read before.
    late = UDP_MAX_DELAY + 0.2
    with ResponderThread([Responder("wsd", address, delay=late) for address in targets]):
        result = asyncio.run(udp.udp_discover(targets, protocols=("wsd",), timeout=0.5))
    answered = {o.address for o in result.observations if o.kind == "onvif_probe_match"}
    assert sorted(set(targets) - answered) == []
