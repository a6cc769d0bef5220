"""Memory of a full `camaudit scan` of the loopback lab (issue 15 item 1): the peak resident
memory of the scan's whole process tree stays under a bound, and grows little from 50 to 200
devices. The scan keeps no host's evidence once the host is identified, so what is left to grow
is small (benchmarks/README.md, "Memory against the number of devices", for 1,000 to 5,000
devices; tests/test_scan_streaming.py for the mechanisms). The lab farm runs in this test's
process, so it is not counted.

Addresses: 127.78.64.0/20, inside this area's test block (127.78.0.0/16). Memory is measured,
not time: the limits on time only prove that nothing hangs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from camaudit.lab import plan_devices
from camaudit.lab.measure import Measured, run_measured
from camaudit.lab.runner import LabThread

#: The goal is 150 MB for 1,000 devices (benchmarks/README.md); 100 devices measured about
#: 100 MB after issue 15 and about 400 MB before it. The bound leaves room for other Pythons.
PEAK_BOUND_MB = 160


def _scan(lab: list[dict[str, Any]], tmp_path: Path, name: str) -> Measured:
    ports = sorted({p for entry in lab for p in entry["ports"]["tcp"]})
    targets = tmp_path / f"{name}.targets"
    targets.write_text("\n".join(entry["address"] for entry in lab) + "\n")
    measured = run_measured(
        [sys.executable, "-m", "camaudit", "scan", f"@{targets}", "--db", str(tmp_path / f"{name}.db"), "--json",
         "-q", "--fail-on", "none", "--ports", ",".join(map(str, ports))],
        timeout=600,
    )
    assert measured.returncode == 0, measured.stderr[-3000:]
    found = {h["address"] for h in json.loads(measured.stdout)["hosts"]}
    assert {entry["address"] for entry in lab} <= found, "every lab device is found"
    return measured


@pytest.mark.slow
def test_a_scan_of_a_hundred_devices_stays_under_the_memory_bound(tmp_path: Path) -> None:
    specs = plan_devices(100, "127.78.64.0/20", None, seed=15)
    with LabThread(specs) as lab:
        measured = _scan(lab.manifest, tmp_path, "hundred")
    assert measured.peak_rss_mb < PEAK_BOUND_MB, f"peak {measured.peak_rss_mb:.0f} MB"


@pytest.mark.slow
def test_four_times_the_devices_do_not_take_materially_more_memory(tmp_path: Path) -> None:
    specs = plan_devices(200, "127.78.64.0/20", None, seed=16)
    with LabThread(specs) as lab:
        small = _scan(lab.manifest[:50], tmp_path, "fifty")
        large = _scan(lab.manifest, tmp_path, "two-hundred")
    # Before issue 15 the fixed cost hid any growth (about 400 MB either way); the ratio is
    # asked of the lean scan: what grows per device must stay small against what is fixed.
    assert large.peak_rss_mb < PEAK_BOUND_MB, f"peak {large.peak_rss_mb:.0f} MB"
    assert large.peak_rss_mb / small.peak_rss_mb < 1.25, (small.peak_rss_mb, large.peak_rss_mb)
