"""Scale: 200 devices come up at once; 1,000 in under 30 s and 500 MB (issue 3 item 2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread


def test_two_hundred_devices_come_up_quickly() -> None:
    specs = plan_devices(200, "127.78.20.0/22", None, seed=3)
    started = time.monotonic()
    with LabThread(specs, port_offset=10000) as lab:
        elapsed = time.monotonic() - started
        assert len(lab.manifest) == 200
    assert elapsed < 5.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_a_thousand_devices_in_a_process_of_their_own(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([d.to_json() for d in plan_devices(1000, "127.78.32.0/20", None, seed=4)]))
    ready = tmp_path / "ready.json"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "camaudit.lab.farm", "--spec", str(spec),
                             "--ready-file", str(ready), "--port-offset", "10000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() - started < 30, "1,000 devices took 30 s or more"
            time.sleep(0.05)
        assert len(json.loads(ready.read_text())) == 1000
        assert _rss_mb(proc.pid) < 500
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
