"""The estate model end to end through the CLI on the loopback lab (127.77.2.0/24, this module's
block; issue 11): each symptom the issue names, as a user meets it.

Every address is on loopback; egress checks run with every probe towards the host's own network
off (--no-upnp, --no-natpmp, --no-proxy-discovery, --ra-wait 0, --max-hops 0, --resolver the
listener), so all packets stay on 127/8.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camaudit.lab import plan_devices
from camaudit.lab.listeners import egress_listener
from camaudit.lab.netns import GUARD_ENV
from camaudit.lab.runner import LabThread

SUBNET = "127.77.2.0/24"
LISTENER = "127.77.2.250"
TCP, UDP = "18443", "18800"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("CAMAUDIT_")} | {GUARD_ENV: "1"}
CREDENTIALS = {"CAMAUDIT_USERNAME": "admin", "CAMAUDIT_PASSWORD": "camaudit-lab"}  # the published lab credential
CLI = [sys.executable, "-m", "camaudit"]
SAFE_EGRESS = ["--resolver", LISTENER, "--tcp-ports", TCP, "--udp-ports", UDP, "--no-upnp", "--no-natpmp",
               "--no-proxy-discovery", "--ra-wait", "0", "--max-hops", "0", "--skip", "icmp", "--timeout", "1"]


@pytest.fixture(scope="module")
def lab() -> Iterator[list[dict[str, Any]]]:
    specs = plan_devices(4, subnet=SUBNET, mix="hikvision=2,dahua=1,axis=1", seed=7)
    with LabThread(specs) as running:
        yield running.manifest


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or ENV)


def scan(lab: list[dict[str, Any]], db: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    ports = sorted({p for e in lab for p in e["ports"]["tcp"]})
    done = run("scan", *(e["address"] for e in lab), "--db", str(db), "--json", "--ports", ",".join(map(str, ports)),
               "--no-discovery", "--fail-on", "none", "-q", *extra, env=env)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def json_of(*args: str) -> Any:
    done = run(*args)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def report_json(db: Path, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / f"r{time.monotonic_ns()}.json"
    done = run("report", "--db", str(db), "-o", str(out), "--fail-on", "none", *extra)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("listen")
    with egress_listener(CLI, LISTENER, tmp, "--tcp-ports", TCP, "--udp-ports", UDP, "--no-icmp", "--duration", "300", ready_within=30, env=ENV) as log:
        yield log


def test_a_scan_with_credentials_after_one_without_diffs_as_the_same_devices(lab: list[dict[str, Any]], tmp_path: Path) -> None:
    """Issue 11: "42 appeared, 42 vanished" when the second scan learnt the serials."""
    db = tmp_path / "creds.db"
    scan(lab, db)
    second = scan(lab, db, env=ENV | CREDENTIALS)
    learned_serials = [h for h in second["hosts"] if (h.get("identity") or {}).get("serial")]
    assert learned_serials, "the lab devices tell their serials to a scan with credentials"
    diff = json_of("diff", "--db", str(db), "--json")
    assert diff["counts"]["appeared"] == 0 and diff["counts"]["vanished"] == 0, diff["changes"]
    learned = [c for c in diff["changes"] if c["kind"] == "learned"]
    assert {c["address"] for c in learned} >= {h["address"] for h in learned_serials}
    assert all(c["device_id"].startswith("serial:") for c in learned)
    # ... and the other way round: a later scan without credentials is the same devices, whose
    # serials were not read this time.
    scan(lab, db)
    again = json_of("diff", "--db", str(db), "--json")
    assert again["counts"]["appeared"] == 0 and again["counts"]["vanished"] == 0, again["changes"]
    assert {c["address"] for c in again["changes"] if c["kind"] == "not_read"} >= {h["address"] for h in learned_serials}


def test_an_egress_check_is_an_egress_run_not_the_latest_scan(lab: list[dict[str, Any]], listener: Path,
                                                              tmp_path: Path) -> None:
    """Issue 11: `egress check --db audit.db` made a host-less scan that became `latest`."""
    db = tmp_path / "egress.db"
    register = tmp_path / "register.csv"
    register.write_text("asset_id,address,declared_maker,segment\n"
                        + "".join(f"A-{i},{e['address']},{e['vendor']},{SUBNET}\n" for i, e in enumerate(lab)))
    assert run("register", "import", str(register), "--db", str(db)).returncode == 0
    first = scan(lab, db)
    for extra in (["--control"], ["--segment", SUBNET]):
        done = run("egress", "check", "--listener", LISTENER, *extra, *SAFE_EGRESS, "--db", str(db), "--json")
        assert done.returncode in (0, 1), done.stderr
    check = json.loads(done.stdout)
    assert check["scan_id"] is None and check["site"] == "default" and check["verdict"] == "OPEN"
    scans = json_of("scans", "--db", str(db), "--json")["scans"]
    assert [s["scan_id"] for s in scans] == [first["scan_id"]] and scans[0]["site"] == "default"
    shown = json_of("show", "latest", "--db", str(db), "--json")
    assert shown["scan_id"] == first["scan_id"] and len(shown["hosts"]) == len(lab) and shown["site"] == "default"
    doc = report_json(db, tmp_path)
    assert doc["scan"]["scan_id"] == first["scan_id"]
    assert doc["register"]["missing"] == 0, "every registered asset was found by the scan"
    # The scan's assessment was made when it ended, before the check: the report says the run
    # is not in it. Reassessing picks up the site's egress run on the scan's segment within the
    # control window, and the report says which.
    assert doc["egress_runs"] == [] and doc["egress_runs_not_assessed"] == [check["run_id"]]
    doc = report_json(db, tmp_path, "--reassess")
    assert doc["egress_runs"] == [check["run_id"]] and doc["egress_runs_not_assessed"] == []
    assert any(s["segment"] == SUBNET and s["verdict"] == "OPEN" for s in doc["segments"])
    no_earlier = run("diff", "--db", str(db))
    assert no_earlier.returncode == 2 and "no earlier scan" in no_earlier.stderr


def test_re_reporting_never_rewrites_an_assessment(lab: list[dict[str, Any]], tmp_path: Path) -> None:
    """Issue 11: after a `register import`, re-reporting an old scan changed its findings."""
    db = tmp_path / "frozen.db"
    scanned = scan(lab, db)
    before = report_json(db, tmp_path)
    register = tmp_path / "register.csv"
    register.write_text("asset_id,address,declared_maker\nX-1,127.77.2.90,Bosch\nX-2,127.77.2.91,Axis\n"
                        + "".join(f"A-{i},{e['address']},Hanwha\n" for i, e in enumerate(lab)))
    assert run("register", "import", str(register), "--db", str(db)).returncode == 0
    again = report_json(db, tmp_path)
    assert again["summary"]["findings"] == before["summary"]["findings"]
    assert [f["id"] for f in again["findings"]] == [f["id"] for f in before["findings"]]
    assert again["register"] == before["register"]
    assert again["assessment"] == before["assessment"]
    # `assess` makes a new assessment with today's register; the report then shows it and names it.
    made = json_of("assess", scanned["scan_id"][:8], "--db", str(db), "--json")
    assert made["assessment_id"] != before["assessment"]["assessment_id"] and made["register_hash"]
    latest = report_json(db, tmp_path)
    assert latest["assessment"]["assessment_id"] == made["assessment_id"]
    assert latest["register"]["missing"] == 2 and latest["summary"]["findings"] != before["summary"]["findings"]
    md = tmp_path / "r.md"
    assert run("report", "--db", str(db), "-o", str(md), "--fail-on", "none").returncode == 0
    assert made["assessment_id"] in md.read_text()
    # --reassess makes yet another one, explicitly.
    third = report_json(db, tmp_path, "--reassess")
    assert third["assessment"]["assessment_id"] not in (made["assessment_id"], before["assessment"]["assessment_id"])


def test_an_interrupted_scan_still_says_what_it_saw(lab: list[dict[str, Any]], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: a scan stopped by Ctrl-C reported "0 identified, 0 findings"."""
    from camaudit.audit import run_scan, scan_hosts
    from camaudit.config import load_config

    for key in CREDENTIALS:
        monkeypatch.delenv(key, raising=False)
    db = tmp_path / "stopped.db"
    ports = tuple(sorted({p for e in lab for p in e["ports"]["tcp"]}))
    config = load_config(None, targets=[e["address"] for e in lab], db_path=str(db), ports=ports,
                         discovery_enabled=False, interrogate=False)
    stop = threading.Event()

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "probe" and done >= 1:
            stop.set()  # as Ctrl-C does: the scan stops after the first host's probes

    result = run_scan(config, progress=progress, stop=stop)
    assert result.status == "interrupted"
    assert result.finding_summary.total, "the interrupted scan is assessed on what it stored"
    identified = [h for h in scan_hosts(str(db), result.scan_id) if h.identity and h.identity.vendor != "unknown"]
    assert identified
    md = tmp_path / "stopped.md"
    done = run("report", "--db", str(db), "-o", str(md), "--fail-on", "none")
    assert done.returncode == 0, done.stderr
    text = md.read_text()
    assert "INTERRUPTED SCAN" in text.split("## ")[0], "the banner opens the report"
    html = tmp_path / "stopped.html"
    assert run("report", "--db", str(db), "-o", str(html), "--fail-on", "none", "--lang", "nl").returncode == 0
    assert 'id="scan-banner"' in html.read_text() and "ONDERBROKEN SCAN" in html.read_text()
    doc = report_json(db, tmp_path)
    assert doc["summary"]["identified"] >= 1 and sum(doc["summary"]["findings"].values()) >= 1
    assert doc["assessment"]["reason"].startswith("interrupted")


def test_two_sites_with_the_same_addresses_never_collide(lab: list[dict[str, Any]], tmp_path: Path) -> None:
    db = tmp_path / "sites.db"
    a = scan(lab, db, "--site", "town-hall")
    b = scan(lab, db, "--site", "depot", env=ENV | CREDENTIALS)
    assert a["site"] == "town-hall" and b["site"] == "depot"
    only_a = json_of("scans", "--db", str(db), "--site", "town-hall", "--json")["scans"]
    assert [s["scan_id"] for s in only_a] == [a["scan_id"]]
    assert json_of("show", "latest", "--db", str(db), "--site", "town-hall", "--json")["scan_id"] == a["scan_id"]
    # The depot's scan learnt serials; the town hall's devices at the same addresses stay its own.
    ids_a = {h["address"]: h["identity"]["device_id"] for h in json_of("show", a["scan_id"], "--db", str(db), "--json")["hosts"]}
    assert all(i.startswith("addr:") for i in ids_a.values()), ids_a
    history = json_of("show", lab[0]["address"], "--db", str(db), "--json")["history"]
    assert {h["site"] for h in history} == {"town-hall", "depot"}
    no_pair = run("diff", "--db", str(db), "--site", "depot")
    assert no_pair.returncode == 2 and "no earlier scan" in no_pair.stderr
    bad = run("scan", "127.77.2.1", "--db", str(db), "--site", "no spaces please")
    assert bad.returncode == 2 and "site" in bad.stderr and "Traceback" not in bad.stderr
