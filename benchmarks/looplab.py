"""The loopback lab the whole-scan benchmarks share: start it, hand out its targets, stop it.

``python -m camaudit.lab.farm`` serves the planned devices in a process of its own (never counted
in a measurement) on a block of 127.0.0.0/8; :func:`loopback_lab` starts it, writes the targets
file and the port list every tool is given, and stops it whatever happens. The manifest helpers
score a tool's makers against the lab's truth.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camaudit.lab import plan_devices

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def require_loopback(parser: argparse.ArgumentParser, subnet: str) -> None:
    """A usage error unless ``subnet`` lies inside 127.0.0.0/8 (benchmarks never leave loopback)."""
    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        parser.error(f"--subnet {subnet!r} is not a network")
    if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(LOOPBACK):
        parser.error("the lab must be on loopback (127.0.0.0/8)")


@dataclass(frozen=True)
class LoopbackLab:
    manifest: list[dict[str, Any]]
    #: every TCP port a lab device listens on, as ``--ports`` takes it
    ports: str
    #: a file with every lab address, one a line (``@FILE`` for camaudit, ``-iL`` for nmap)
    targets: Path


@contextmanager
def loopback_lab(devices: int, subnet: str, seed: int, workdir: Path, timeout: float = 300) -> Iterator[LoopbackLab]:
    """A running lab of ``devices`` devices; stopped (SIGTERM, then kill) when the block ends."""
    farm, manifest = start_lab(devices, subnet, seed, workdir, timeout)
    try:
        targets = workdir / "targets.txt"
        targets.write_text("\n".join(e["address"] for e in manifest) + "\n")
        ports = ",".join(map(str, sorted({p for e in manifest for p in e["ports"]["tcp"]})))
        yield LoopbackLab(manifest, ports, targets)
    finally:
        farm.send_signal(signal.SIGTERM)
        try:
            farm.wait(30)
        except subprocess.TimeoutExpired:
            farm.kill()


def start_lab(devices: int, subnet: str, seed: int, workdir: Path, timeout: float) -> tuple[subprocess.Popen[bytes], list[dict[str, Any]]]:
    spec = workdir / "spec.json"
    spec.write_text(json.dumps([d.to_json() for d in plan_devices(devices, subnet, None, seed=seed)]))
    ready = workdir / "ready.json"
    farm = subprocess.Popen([sys.executable, "-m", "camaudit.lab.farm", "--spec", str(spec), "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    while not ready.exists():
        if farm.poll() is not None:
            raise SystemExit(f"the lab did not start: {(farm.stderr.read() if farm.stderr else b'').decode()[-500:]}")
        if time.monotonic() - started > timeout:
            farm.kill()
            raise SystemExit(f"the lab did not come up within {timeout:.0f} s")
        time.sleep(0.05)
    return farm, json.loads(ready.read_text())


def maker_of(entry: dict[str, Any]) -> str | None:
    """The maker a tool should name for a manifest entry; None for the lab's "other" devices."""
    vendor = str(entry.get("vendor") or "")
    return None if vendor in ("", "other", "unknown") else vendor


def camaudit_makers(stdout: str) -> dict[str, str]:
    """address -> the maker ``camaudit scan --json`` named ("unknown" when none)."""
    doc = json.loads(stdout)
    return {h["address"]: str((h.get("identity") or {}).get("vendor") or "unknown") for h in doc["hosts"]}


def score(manifest: list[dict[str, Any]], named: dict[str, bool]) -> dict[str, Any]:
    counted = [e for e in manifest if maker_of(e) is not None]
    missed = [f"{e['address']} ({e['profile']})" for e in counted if not named.get(e["address"])]
    return {"devices_with_a_maker": len(counted), "named_correctly": len(counted) - len(missed),
            "missed": missed[:20]}
