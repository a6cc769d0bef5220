"""Shared pieces of the namespace-lab benchmarks (discovery_lab.py, arp_vs_nmap.py).

A lab is built with camaudit.lab.netns (design B: macvlans in one namespace, the scanner in its
own) and torn down on every way out: normal end, error, Ctrl-C (KeyboardInterrupt) and SIGTERM
(turned into SystemExit here). Teardown stops the lab's processes by PID and deletes only the
lab's own namespaces; both signals are ignored while it runs, so a second Ctrl-C cannot cut it
short. Every command a benchmark times runs inside the scanner namespace (``ip netns exec``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from camaudit.lab import netns
from camaudit.lab.netns import Topology

REPO = Path(__file__).resolve().parents[1]


def _sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def lab(specs: Sequence[dict[str, Any]], *, farm: bool) -> Iterator[Topology]:
    """Build the lab for ``specs`` (and serve them from the lab farm when ``farm``); always
    tear it down. Needs root."""
    netns.require_root()
    previous = signal.signal(signal.SIGTERM, _sigterm)
    topo: Topology | None = None
    try:
        topo = netns.build_topology(netns.devices_from_specs(specs))  # removes itself on failure
        if farm:
            netns.start_farm(topo, specs)
        yield topo
    finally:
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if topo is not None:
                left = netns.teardown(topo)
                if left:
                    print(f"lab namespaces left behind: {', '.join(left)}", file=sys.stderr)  # noqa: T201
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, previous)


def camaudit_argv(*args: str) -> list[str]:
    """``camaudit ARGS`` run from this checkout, with the lab guard on (senders refuse to run
    outside a clab-* namespace)."""
    return ["env", f"PYTHONPATH={REPO}", f"{netns.GUARD_ENV}=1", sys.executable, "-m", "camaudit", *args]


def timed(topo: Topology, argv: Sequence[str], timeout: float) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run ``argv`` in the scanner namespace; (wall seconds, CPU seconds of it and its children,
    the result). The wall time includes ``ip netns exec`` (a few ms, the same for every tool)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(topo.exec_argv("scan", argv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def flush_scanner_neighbours(topo: Topology) -> None:
    """Forget what the scanner's kernel learnt (dynamic neighbour entries only), so that every
    run starts as a first run on the segment does."""
    topo.run("scan", ["ip", "neigh", "flush", "dev", "scan0"], check=False, timeout=10)


def scanner_neighbours(topo: Topology) -> int:
    out = topo.run("scan", ["ip", "neigh", "show", "dev", "scan0"], check=False, timeout=10).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def neighbour_overflows() -> int | None:
    """How many "neighbor table overflow" lines the kernel log holds (None: dmesg unreadable).
    The table is global (lab.md 2.4): a rise during a run means answers may have been lost."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return len(re.findall(r"neighbo(?:u)?r table overflow", out.stdout))


def machine_facts(nmap: str | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cores": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "gc_thresh3": _read_int("/proc/sys/net/ipv4/neigh/default/gc_thresh3"),
        # Other labs share the kernel's neighbour table (lab.md 2.4): say how many namespaces.
        "namespaces_on_host": len(netns.list_lab_namespaces()),
    }
    if nmap and shutil.which(nmap):
        out = subprocess.run([nmap, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
        facts["nmap"] = out.splitlines()[0] if out else "?"
    return facts


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def dump(report: dict[str, Any]) -> None:
    print(json.dumps(report, indent=2))  # noqa: T201
