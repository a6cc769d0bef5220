"""The estate report end to end on the loopback lab (127.77.21.0/24, this module's block): two
sites scanned through the CLI, an egress control and check recorded as egress runs of one site,
a register that declares at one site a device found at the other, and `report --estate` in
JSON, Markdown and PDF.

Every address is on loopback; the egress check runs with every probe towards the host's own
network off (as tests/test_estate_lab.py does), so all packets stay on 127/8.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camaudit.lab import plan_devices
from camaudit.lab.listeners import egress_listener
from camaudit.lab.netns import GUARD_ENV
from camaudit.lab.runner import LabThread

SUBNET = "127.77.21.0/24"
LISTENER = "127.77.21.250"
TCP, UDP = "18543", "18900"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("CAMAUDIT_")} | {GUARD_ENV: "1"}
CREDENTIALS = {"CAMAUDIT_USERNAME": "admin", "CAMAUDIT_PASSWORD": "camaudit-lab"}  # the published lab credential
CLI = [sys.executable, "-m", "camaudit"]
SAFE_EGRESS = ["--resolver", LISTENER, "--tcp-ports", TCP, "--udp-ports", UDP, "--no-upnp", "--no-natpmp",
               "--no-proxy-discovery", "--ra-wait", "0", "--max-hops", "0", "--skip", "icmp", "--timeout", "1"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or ENV)


@pytest.fixture(scope="module")
def lab() -> Iterator[list[dict[str, Any]]]:
    specs = plan_devices(3, subnet=SUBNET, mix="hikvision=2,dahua=1", seed=11)
    with LabThread(specs) as running:
        yield running.manifest


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("listen")
    with egress_listener(CLI, LISTENER, tmp, "--tcp-ports", TCP, "--udp-ports", UDP, "--no-icmp", "--duration", "300",
                         ready_within=30, env=ENV) as log:
        yield log


def scan(lab: list[dict[str, Any]], db: Path, site: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    ports = sorted({p for e in lab for p in e["ports"]["tcp"]})
    done = run("scan", *(e["address"] for e in lab), "--db", str(db), "--json", "--ports", ",".join(map(str, ports)),
               "--no-discovery", "--fail-on", "none", "-q", "--site", site, env=env)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_estate_report_of_two_lab_sites(lab: list[dict[str, Any]], listener: Path, tmp_path: Path) -> None:
    db = tmp_path / "central.db"
    werf = scan(lab, db, "werf", env=ENV | CREDENTIALS)  # with credentials: the serials are read
    serials = {h["address"]: h["identity"]["serial"] for h in werf["hosts"] if (h.get("identity") or {}).get("serial")}
    assert serials, "the lab devices tell their serials to a scan with credentials"
    address, serial = sorted(serials.items())[0]
    register = tmp_path / "zwembad.csv"
    register.write_text(f"asset_id,serial,declared_maker\nZW-9,{serial},Hikvision\n")
    assert run("register", "import", str(register), "--db", str(db), "--site", "zwembad").returncode == 0
    for extra in (["--control"], ["--segment", SUBNET]):
        done = run("egress", "check", "--listener", LISTENER, *extra, *SAFE_EGRESS, "--db", str(db), "--site", "zwembad",
                   "--json")
        assert done.returncode in (0, 1), done.stderr
    check = json.loads(done.stdout)
    zwembad = scan(lab, db, "zwembad")  # after the check: the scan's assessment uses the site's egress run

    out = tmp_path / "estate.json"
    done = run("report", "--estate", "--db", str(db), "-o", str(out), "--fail-on", "none", "--max-age", "7d")
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    sites = {s["site"]: s for s in doc["sites"]}
    assert sites["zwembad"]["scan"]["scan_id"] == zwembad["scan_id"] and sites["werf"]["scan"]["scan_id"] == werf["scan_id"]
    assert doc["flags"] == [], "both sites' latest scans completed just now"
    # the check's run is the site's, named in the estate entry and in the statement's footer
    assert check["run_id"] in [r["run_id"] for r in sites["zwembad"]["site_egress_runs"]]
    assert check["run_id"] in sites["zwembad"]["statement"]["reproducibility"]["egress_runs"]
    # the listener answers on loopback: the conclusion is built from the verdict's codes
    # (the sensor's check is OPEN; the devices do not carry it: their placement was not matched)
    conclusion = sites["zwembad"]["conclusion"]
    assert conclusion["code"] == "conclusion_open_segment" and conclusion["segments"] == SUBNET, conclusion
    assert sites["zwembad"]["conclusion_text"].startswith(f"zwembad: OPEN from the sensor on {SUBNET} (egress observed on ")
    assert sites["zwembad"]["conclusion_text"].endswith("none of its 3 devices was shown to use that path")
    assert any(c["code"] == "statement_vantage" for c in sites["zwembad"]["statement"]["codes"])
    assert sites["werf"]["conclusion"]["code"] == "conclusion_none"
    # declared at zwembad, found at werf by its serial
    cross = [(c["asset_id"], c["declared_site"], c["found_site"], c["matched_by"]) for c in doc["register_across_sites"]]
    assert ("ZW-9", "zwembad", "werf", "serial") in cross
    assert {s["site"]: s["devices"] for s in doc["inventory"]["by_site"]} == {"werf": len(lab), "zwembad": len(lab)}

    md = tmp_path / "estate-nl.md"
    assert run("report", "--estate", "--db", str(db), "-o", str(md), "--lang", "nl", "--fail-on", "none").returncode == 0
    text = md.read_text()
    assert "zwembad: OPEN vanaf de sensor op" in text and "werf: GEEN OORDEEL" in text and "ZW-9 is geregistreerd bij zwembad" in text
