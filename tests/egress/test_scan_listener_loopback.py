"""`camaudit scan --listener` on loopback (127.44.0.0/24): the scan runs the egress check and
gives every host a verdict. Every probe that would leave for the host's own network is off
(--no-upnp, --no-natpmp, --no-proxy-discovery, --ra-wait 0, --resolver the listener), so all
packets stay on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from camaudit.lab import plan_devices
from camaudit.lab.listeners import egress_listener
from camaudit.lab.netns import GUARD_ENV
from camaudit.lab.runner import LabThread

LISTENER = "127.44.0.250"
TCP, UDP = "18443", "18800"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {GUARD_ENV: "1"}


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("listen")
    with egress_listener((sys.executable, "-m", "camaudit"), LISTENER, tmp, "--tcp-ports", TCP, "--udp-ports", UDP, "--no-icmp", "--duration", "120", ready_within=15) as log:
        yield log


def test_scan_with_a_listener_on_loopback(listener: Path, tmp_path: Path) -> None:
    specs = plan_devices(3, subnet="127.44.0.0/24", mix="hikvision=2,axis=1", seed=3)
    with LabThread(specs) as lab:
        manifest = lab.manifest
        ports = sorted({p for e in manifest for p in e["ports"]["tcp"]})
        done = subprocess.run(
            [sys.executable, "-m", "camaudit", "scan", *(e["address"] for e in manifest), "--db", str(tmp_path / "s.db"),
             "--json", "--ports", ",".join(map(str, ports)), "--no-discovery", "--fail-on", "none",
             "--listener", LISTENER, "--resolver", LISTENER, "--egress-tcp-ports", TCP, "--egress-udp-ports", UDP,
             "--no-upnp", "--no-natpmp", "--no-proxy-discovery", "--ra-wait", "0", "--max-hops", "2",
             "--egress-skip", "icmp"],
            capture_output=True, text=True, timeout=180, env=ENV,
        )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    egress = doc["egress"]
    allowed = {p["path"] for p in egress["paths"] if p["result"] == "allowed"}
    assert {"tcp/18443", "udp/18800"} <= allowed
    assert egress["verdict"] == "OPEN"  # the listener answered: from this vantage, egress exists
    # The probes towards the host's own network were not sent, so they cannot have a result.
    by_path = {p["path"]: p["result"] for p in egress["paths"]}
    for path in ("upnp", "natpmp", "proxy"):
        assert by_path.get(path, "unknown") != "allowed"
    for host in doc["hosts"]:
        verdict = host["verdict"]
        assert verdict["verdict"] in ("OPEN", "EXPOSED", "CLOSED", "INCONCLUSIVE")
        assert {"qualifiers", "missing", "paths"} <= set(verdict)
        # qualifiers and missing stay English sentences (a contract); the codes sit beside them
        assert all(isinstance(q, str) for q in verdict["qualifiers"] + verdict["missing"]) and verdict["missing"]
        assert len(verdict["missing_codes"]) == len(verdict["missing"])
        assert all(isinstance(c, dict) and c["code"] for c in verdict["qualifier_codes"] + verdict["missing_codes"])
        # every not-verified read of the scan JSON is a sentence with its code beside it
        settings = host.get("settings") or {}
        if settings:
            assert len(settings["not_verified"]) == len(settings["not_verified_codes"])
        # A skipped path means no device here can be CLOSED.
        assert verdict["verdict"] != "CLOSED"
    seen = listener.read_text()
    assert next(p for p in egress["paths"] if p["path"] == "tcp/18443")["evidence"]["nonce"] in seen


def test_the_console_and_the_report_agree_on_the_segment(listener: Path, tmp_path: Path) -> None:
    """The scan's console names the segment's verdict, the one the report shows, and the sensor's
    own check as such; a loopback listener is called what it is (not the internet)."""
    specs = plan_devices(2, subnet="127.44.1.0/24", mix="hikvision=1,axis=1", seed=5)
    db = str(tmp_path / "c.db")
    with LabThread(specs) as lab:
        manifest = lab.manifest
        ports = sorted({p for e in manifest for p in e["ports"]["tcp"]})
        done = subprocess.run(
            [sys.executable, "-m", "camaudit", "scan", *(e["address"] for e in manifest), "--db", db,
             "--ports", ",".join(map(str, ports)), "--no-discovery", "-q",
             "--listener", LISTENER, "--resolver", LISTENER, "--egress-tcp-ports", TCP, "--egress-udp-ports", UDP,
             "--no-upnp", "--no-natpmp", "--no-proxy-discovery", "--ra-wait", "0", "--max-hops", "0",
             "--egress-skip", "icmp"],
            capture_output=True, text=True, timeout=180, env=ENV,
        )
    assert done.returncode == 0, done.stderr
    report = subprocess.run([sys.executable, "-m", "camaudit", "report", "--db", db, "-o", "-", "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    (segment,) = json.loads(report.stdout)["segments"]
    headline = next(line for line in done.stdout.splitlines() if line.startswith("egress verdict of segment"))
    assert headline == f"egress verdict of segment {segment['segment']}: {segment['verdict']}", done.stdout
    sensor = next(line for line in done.stdout.splitlines() if "the sensor's own check from this vantage" in line)
    assert LISTENER in sensor and "listener_not_internet" in sensor, sensor
    # The report names the listener (and what class of address it is), the sensor's run and
    # vantage, and shows the paths as a table with the nonce the listener echoed.
    evidence = segment["egress_evidence"]
    assert evidence["listeners"] == [{"address": LISTENER, "class": "local", "why": "loopback (RFC 1122)"}]
    assert evidence["run_id"] and evidence["vantage"]["addresses"]
    rows = {p["path"]: p for p in evidence["paths"]}
    assert rows["tcp/18443"]["nonce_seen"] and rows["tcp/18443"]["result"] == "allowed"
    assert rows["tcp/18443"]["nonce"] in listener.read_text()
    html = tmp_path / "r.html"
    assert subprocess.run([sys.executable, "-m", "camaudit", "report", "--db", db, "-o", str(html)],
                          capture_output=True, text=True, timeout=120).returncode == 0
    page = html.read_text()
    assert '<tr data-path="tcp/18443" data-result="allowed">' in page and 'data-listener-class="local"' in page
