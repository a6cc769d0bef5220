"""`camaudit diff`: devices that appeared, vanished, moved, or changed firmware, identity or
verdict, between two scans of the lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from report_lab import LabDb, LabDevice, write_scan

from camaudit.diff import diff_scans
from camaudit.errors import UsageError
from camaudit.model import Identity
from camaudit.store import open_store


def test_the_lab_diff(lab_db: LabDb) -> None:
    with open_store(lab_db.path) as store:
        result = diff_scans(store)
    assert (result.before.id, result.after.id) == (lab_db.first, lab_db.latest)
    changes = {(c.kind, c.address): c for c in result.changes}
    assert changes[("appeared", "10.20.0.15")].label == "hikvision (ezviz)"
    assert ("vanished", "10.20.0.40") in changes
    moved = changes[("moved", "10.20.0.12")]
    assert (moved.before, moved.after) == ("10.20.0.16", "10.20.0.12")
    firmware = changes[("firmware", "10.20.0.11")]
    assert (firmware.before, firmware.after) == ("V5.2.0 build 140721", "V5.4.0 build 160530")
    verdict = changes[("verdict", "10.20.0.11")]
    assert (verdict.before, verdict.after) == ("CLOSED", "INCONCLUSIVE + EXPOSED")
    assert ("verdict", "10.30.0.5") not in changes, "the closed segment stayed CLOSED"
    assert result.counts() == {"appeared": 1, "vanished": 1, "moved": 1, "firmware": 1, "identity": 0,
                               "verdict": 5, "learned": 0, "not_read": 0, "unchanged": 1}  # fmt: skip
    with open_store(lab_db.path) as store:
        reverse = diff_scans(store, lab_db.latest, lab_db.first)
    assert {(c.kind, c.address) for c in reverse.of_kind("appeared")} == {("appeared", "10.20.0.40")}


def test_identity_change(tmp_path: Path) -> None:
    before = LabDevice("10.50.0.1", "00:40:8c:00:50:01", Identity(vendor="axis", model=None), (), (80,))
    after = LabDevice("10.50.0.1", "00:40:8c:00:50:01", Identity(vendor="hikvision", brand="hilook", model="IPC-B120"), (), (80,))
    with open_store(tmp_path / "d.db") as store:
        a = write_scan(store, [before], [], ["10.50.0.0/24"])
        b = write_scan(store, [after], [], ["10.50.0.0/24"])
        (change,) = diff_scans(store, a, b).changes
    assert change.kind == "identity"
    assert change.before == {"vendor": "axis", "brand": None, "model": None}
    assert change.after == {"vendor": "hikvision", "brand": "hilook", "model": "IPC-B120"}


def test_previous_scan_prefers_the_same_targets(tmp_path: Path) -> None:
    device = LabDevice("10.60.0.1", "00:40:8c:00:60:01", Identity(vendor="axis"), (), (80,))
    with open_store(tmp_path / "p.db") as store:
        a = write_scan(store, [device], [], ["10.60.0.0/24"])
        write_scan(store, [], [], ["10.70.0.0/24"])  # another segment's agent, same store
        c = write_scan(store, [device], [], ["10.60.0.0/24"])
        result = diff_scans(store)
    assert (result.before.id, result.after.id) == (a, c) and result.changes == []


def test_errors(tmp_path: Path) -> None:
    with open_store(tmp_path / "one.db") as store:
        only = write_scan(store, [], [], ["10.0.0.0/24"])
        with pytest.raises(UsageError, match="no earlier scan"):
            diff_scans(store)
        with pytest.raises(UsageError, match="same scan"):
            diff_scans(store, only, only)
        with pytest.raises(UsageError, match="no scan 'nope'"):
            diff_scans(store, "nope")


def test_the_command(lab_db: LabDb) -> None:
    run = subprocess.run([sys.executable, "-m", "camaudit", "diff", "--db", str(lab_db.path), "--json", "--exit-code"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    assert doc["counts"]["appeared"] == 1 and doc["after"]["scan_id"] == lab_db.latest
    text = subprocess.run([sys.executable, "-m", "camaudit", "diff", lab_db.first[:8], "--db", str(lab_db.path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert text.returncode == 0 and "moved     10.20.0.12" in text.stdout and "10.20.0.16 -> 10.20.0.12" in text.stdout
