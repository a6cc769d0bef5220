"""``camaudit demo``: start a loopback lab, scan it with everything camaudit has, write the
evidence store (and the HTML report once reporting exists), tear the lab down."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .plan import plan_devices
from .runner import LabThread

log = logging.getLogger(__name__)

DB_NAME = "camaudit-demo.db"
HTML_NAME = "camaudit-demo.html"


@dataclass
class DemoResult:
    db_path: Path
    html_path: Path | None
    scan_status: str
    devices: int
    seconds: float
    lab_vendors: Counter[str] = field(default_factory=Counter)
    hosts_found: int = 0
    open_ports: int = 0
    identified_vendors: Counter[str] = field(default_factory=Counter)
    identities_available: bool = False
    notes: list[str] = field(default_factory=list)


def write_html_report(db_path: Path, html_path: Path) -> Path | None:
    """Write the HTML report of the store at ``db_path`` beside it; returns the path written."""
    from ..report import write_demo_report

    return write_demo_report(db_path, html_path)


def _as_ranges(addresses: list[str]) -> list[str]:
    """Consecutive addresses as ``first-last`` ranges, as a person would write the targets (the
    report shows them)."""
    import ipaddress

    values = sorted(int(ipaddress.ip_address(a)) for a in addresses)
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return [
        str(ipaddress.ip_address(a)) if a == b else f"{ipaddress.ip_address(a)}-{ipaddress.ip_address(b)}"
        for a, b in runs
    ]


def _clear(db_path: Path) -> None:
    """A demo store holds one demo: remove an earlier one (and its WAL files)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def run_demo(out_dir: str | Path = ".", *, devices: int = 40, seed: int = 0,
             subnet: str = "127.77.0.0/16",
             progress: Callable[[str, int, int], None] | None = None) -> DemoResult:
    """Lab up, scan, store, lab down. Returns what the summary needs."""
    from ..audit import run_scan, scan_hosts  # the lead's pipeline: imported late, it pulls in every stage
    from ..config import load_config

    out = Path(out_dir)
    if not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is not a directory")
    if devices < 1:
        raise UsageError("the demo needs at least one device")
    started = time.monotonic()
    db_path = out / DB_NAME
    _clear(db_path)
    specs = plan_devices(devices, subnet, None, seed)
    with LabThread(specs) as lab:
        manifest = lab.manifest
        ports = sorted({p for entry in manifest for p in entry["ports"]["tcp"]})
        config = load_config(targets=_as_ranges([e["address"] for e in manifest]), ports=ports, db_path=str(db_path))
        result = run_scan(config, progress=progress)
    html = write_html_report(db_path, out / HTML_NAME)
    demo = DemoResult(db_path=db_path, html_path=html, scan_status=result.status, devices=len(manifest),
                      seconds=time.monotonic() - started, notes=demo_notes(result.notes))
    demo.lab_vendors = Counter(_label(e["vendor"], e["brand"]) for e in manifest)
    demo.hosts_found = result.hosts_found
    demo.open_ports = result.open_ports
    identities = [h.identity for h in scan_hosts(str(db_path), result.scan_id) if h.identity is not None]
    demo.identities_available = bool(identities)
    demo.identified_vendors = Counter(_label(i.vendor, i.brand) for i in identities)
    return demo


#: Scan notes that the demo's loopback network causes by design, and why they are expected.
LOOPBACK_NOTES = ("multicast discovery", "ARP sweep")
LOOPBACK_EXPLANATION = ("expected in the demo: its devices are on loopback, which carries no multicast and no ARP; "
                        "on a real camera segment both run")


def demo_notes(notes: list[str]) -> list[str]:
    """The scan's notes, those about multicast and ARP saying that the demo expects them."""
    return [f"{note} ({LOOPBACK_EXPLANATION})" if note.startswith(LOOPBACK_NOTES) else note for note in notes]


def _label(vendor: Any, brand: Any) -> str:
    return f"{vendor} ({brand})" if brand else str(vendor)
