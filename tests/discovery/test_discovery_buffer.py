"""Discovery answers wait in the socket while the event loop is busy elsewhere (issue 15:
discovery runs beside the probe stage, so the loop may not read for a while). A burst of
answers larger than the kernel's default receive buffer (208 KB, about 150 answers) must
still be there to read. Loopback only: 127.80.90.1 (this suite's block)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from camaudit.discovery import udp

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
