"""Discovery does not hold up the probes (issue 15 item 2): discovery mostly listens for late
answers, so it runs beside the probe stage instead of before it. Addresses: 127.78.80.0/24,
inside this area's test block."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from camaudit.audit import run_scan
from camaudit.config import load_config
from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread


def test_the_probes_finish_while_discovery_still_listens(tmp_path: Path) -> None:
    specs = plan_devices(1, "127.78.80.0/24", "hikvision=1", seed=15)
    with LabThread(specs) as lab:
        device = lab.manifest[0]
        # Discovery listens 20 s after its last datagram; probing one host takes a few seconds.
        config = load_config(None, targets=[device["address"]], db_path=str(tmp_path / "s.db"),
                             ports=tuple(device["ports"]["tcp"]), discovery_timeout=20.0)
        events: list[tuple[str, int, int]] = []
        stop = threading.Event()

        def progress(stage: str, done: int, total: int) -> None:
            events.append((stage, done, total))
            if stage == "probe" and done == total:
                stop.set()  # the probes are done: end the scan; discovery is cancelled

        started = time.monotonic()
        result = run_scan(config, progress=progress, stop=stop)
        elapsed = time.monotonic() - started
    assert ("probe", 1, 1) in events
    assert ("discover", 1, 1) not in events[: events.index(("probe", 1, 1))], events
    assert result.status == "interrupted"
    assert [h.address for h in result.hosts] == [device["address"]]
    assert elapsed < 18, "discovery's listening window was cut short by the stop (does not hang)"
