"""Discovery does not hold up the probes (issue 15 item 2): discovery mostly listens for late
answers, so it runs beside the probe stage instead of before it. Addresses: 127.78.80.0/24,
inside this area's test block."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from camaudit.audit import run_scan, scan_hosts
from camaudit.config import load_config
from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread


def test_the_probes_finish_while_discovery_still_listens(tmp_path: Path) -> None:
    specs = plan_devices(1, "127.78.80.0/24", "hikvision=1", seed=15)
    with LabThread(specs) as lab, contextlib.ExitStack() as stack:
        device = lab.manifest[0]
        # Discovery listens 20 s after its last datagram, since .250 never answers it: its
        # discovery ports are open and say nothing (closed ones would refuse, and end it early).
        for port in (3702, 37020, 37810):
            silent = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            silent.bind(("127.78.80.250", port))
        # Probing one host takes a few seconds.
        config = load_config(None, targets=[device["address"], "127.78.80.250"], db_path=str(tmp_path / "s.db"),
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
    assert [h.address for h in scan_hosts(str(config.db_path), result.scan_id)] == [device["address"]]
    assert elapsed < 18, "discovery's listening window was cut short by the stop (does not hang)"


def test_a_host_is_interrogated_while_another_is_still_probed(tmp_path: Path) -> None:
    # Issue 15: interrogation waited for every host's probes; a host's probes mostly wait on
    # banners (the Hikvision's SDK port 8000 says nothing until asked: a 1 s wait), and its
    # interrogation is mostly CPU, so each host now goes on to its interrogation as soon as its
    # own probes are done.
    specs = plan_devices(2, "127.78.81.0/24", "hikvision-ipc=1,uniview-camera=1", seed=15)
    with LabThread(specs) as lab, socket.socket() as silent:
        by_profile = {d["profile"]: d for d in lab.manifest}
        slow = by_profile["hikvision-ipc"]["address"]
        assert 8000 in by_profile["hikvision-ipc"]["ports"]["tcp"]
        assert 8000 not in by_profile["uniview-camera"]["ports"]["tcp"]
        # One more port on the slow host that accepts and never says a word: its probe waits
        # for a banner, then for an answer to HTTP, the whole probe timeout (5 s), so that the
        # fast host's interrogation is done well before, even on a loaded machine.
        silent.bind((slow, 0))
        silent.listen(4)
        ports = tuple(sorted({p for d in lab.manifest for p in d["ports"]["tcp"]} | {silent.getsockname()[1]}))
        config = load_config(None, targets=[d["address"] for d in lab.manifest], db_path=str(tmp_path / "s.db"),
                             ports=ports, discovery_enabled=False)
        events: list[tuple[str, int, int]] = []
        result = run_scan(config, progress=lambda stage, done, total: events.append((stage, done, total)))
    assert result.status == "complete"
    assert ("interrogate", 1, 2) in events and ("probe", 2, 2) in events
    assert events.index(("interrogate", 1, 2)) < events.index(("probe", 2, 2)), events
    recorded = list(scan_hosts(config.db_path, result.scan_id))
    makers = {h.address: h.identity.vendor if h.identity else None for h in recorded}
    assert makers[by_profile["hikvision-ipc"]["address"]] == "hikvision"
    assert {h.address for h in recorded if h.settings} == {d["address"] for d in lab.manifest}
