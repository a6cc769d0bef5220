"""`camaudit scan` against the loopback lab (127.42.0.0/24): every emulated device is found,
and its identity matches the manifest (issue 5 item 7, issue 3's manifest contract)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread

MIX = "hikvision=4,dahua=4,ezviz=1,lorex=1,amcrest=1,axis=1,hanwha=1,bosch=1,xiongmai=1,other=2"


@pytest.fixture(scope="module")
def lab() -> Iterator[list[dict[str, Any]]]:
    specs = plan_devices(17, subnet="127.42.0.0/24", mix=MIX, seed=11)
    with LabThread(specs) as running:
        yield running.manifest


@pytest.fixture(scope="module")
def scanned(lab: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    db = tmp_path_factory.mktemp("scan") / "lab.db"
    ports = sorted({p for entry in lab for p in entry["ports"]["tcp"]})
    targets = [entry["address"] for entry in lab]
    done = subprocess.run(
        [sys.executable, "-m", "camaudit", "scan", *targets, "--db", str(db), "--json",
         "--ports", ",".join(map(str, ports)), "--fail-on", "none"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), db


def test_every_lab_device_is_found(lab: list[dict[str, Any]], scanned: tuple[dict[str, Any], Path]) -> None:
    doc, _ = scanned
    found = {h["address"]: h for h in doc["hosts"]}
    for entry in lab:
        assert entry["address"] in found, entry
        assert set(entry["ports"]["tcp"]) <= set(found[entry["address"]]["ports"])


def test_identities_match_the_manifest(lab: list[dict[str, Any]], scanned: tuple[dict[str, Any], Path]) -> None:
    doc, _ = scanned
    found = {h["address"]: h for h in doc["hosts"]}
    wrong = []
    for entry in lab:
        ident = found[entry["address"]]["identity"]
        expected_vendor = entry["vendor"] if entry["vendor"] != "other" else "unknown"
        if ident["vendor"] != expected_vendor:
            wrong.append((entry["profile"], expected_vendor, ident["vendor"]))
        elif entry["vendor"] in ("hikvision", "dahua") and entry["brand"] and ident["brand"] != entry["brand"]:
            wrong.append((entry["profile"], entry["brand"], ident["brand"]))
        if ident["vendor"] in ("hikvision", "dahua"):
            assert ident["covered"] is True
            assert ident["signatures"], "an identity lists the evidence behind it"
    assert not wrong, wrong


def test_identity_is_stored_with_a_stable_device_id(scanned: tuple[dict[str, Any], Path]) -> None:
    doc, db = scanned
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select address, device_id, vendor from identities where scan_id = ?", [doc["scan_id"]]).fetchall()
    assert len(rows) == len(doc["hosts"])
    by_address = {a: (d, v) for a, d, v in rows}
    for host in doc["hosts"]:
        device_id, vendor = by_address[host["address"]]
        assert vendor == host["identity"]["vendor"]
        serial = host["identity"]["serial"]
        if serial:
            assert device_id == f"serial:{serial.upper()}"


def _web_port(ports: list[int]) -> int | None:
    """The device's HTTP port: 80, or 10080 where the lab moved it up (not root: lab.md section 6)."""
    return next((p for p in ports if p in (80, 10080)), None)


def test_without_credentials_settings_are_not_verified(scanned: tuple[dict[str, Any], Path]) -> None:
    doc, _ = scanned
    covered = [h for h in doc["hosts"] if h["identity"]["vendor"] in ("hikvision", "dahua") and _web_port(h["ports"])]
    assert covered
    for host in covered:
        settings = host["settings"]
        # Nothing was read with a password: registration is never reported as "off".
        for service in settings["cloud"].values():
            assert service.get("registered") is not True
        assert settings["not_verified"], host["address"]


def test_with_credentials_the_devices_own_settings_are_read(lab: list[dict[str, Any]], tmp_path: Path) -> None:
    dahua = [e for e in lab if e["vendor"] == "dahua" and _web_port(e["ports"]["tcp"])][:2]
    assert dahua
    ports = sorted({p for e in dahua for p in e["ports"]["tcp"]})
    env = dict(os.environ, CAMAUDIT_USERNAME="admin", CAMAUDIT_PASSWORD="camaudit-lab")
    done = subprocess.run(
        [sys.executable, "-m", "camaudit", "scan", *(e["address"] for e in dahua), "--db", str(tmp_path / "c.db"),
         "--json", "--ports", ",".join(map(str, ports)), "--fail-on", "none", "--no-discovery"],
        capture_output=True, text=True, timeout=180, env=env,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    for host in doc["hosts"]:
        settings = host["settings"]
        assert settings["gateway"], host["address"]
        assert "dahua_p2p" in settings["cloud"], settings["cloud"]
    # Public DNS or a P2P service switched on is a configuration finding, whatever the verdict.
    configured = {f["subject"]: f for f in doc["findings"] if f["rule"] == "device-configured-for-internet"}
    for host in doc["hosts"]:
        settings = host["settings"]
        risky = any(not d.startswith(("10.", "127.", "192.168.")) for d in settings["dns"] or []) or any(
            s.get("enabled") is True for s in settings["cloud"].values())
        assert (host["address"] in configured) == risky, (host["address"], settings["dns"], settings["cloud"])
    assert configured, "the lab's Dahua devices report public DNS or P2P: the rule must fire"
    for finding in configured.values():
        assert "point to the internet" in finding["detail"]
    # The password never reaches the store.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("c.db*"))
    assert b"camaudit-lab" not in raw


def test_assessment_needs_no_field_sources(scanned: tuple[dict[str, Any], Path]) -> None:
    # Assessing reads identities without their per-field sources (issue 15: they were the
    # largest part of what assessing a large scan held). The policy never reads them: on a real
    # lab scan, the findings of the lean view are exactly those of the full one reports use.
    from camaudit.assess import evaluate, scan_view
    from camaudit.policy import load_policy
    from camaudit.store import open_store

    _, db = scanned
    policy = load_policy()
    with open_store(db) as store:
        full = scan_view(store, "latest")
        lean = scan_view(store, "latest", field_sources=False)
    assert any(d.identity is not None and d.identity.fields for d in full.devices)
    assert all(not d.identity.fields for d in lean.devices if d.identity is not None)
    findings = [f.to_json() for f in evaluate(full, policy)]
    assert findings and [f.to_json() for f in evaluate(lean, policy)] == findings
