"""Small things users trip on (issue 13 item 9), through the command as users run it, on real
stores: UDP discovery ports are labelled UDP, `show ADDRESS` is grouped, `scans` never cuts an
id in a pipe, a sweep-only summary does not call hosts "not identified", and the demo says its
loopback notes are expected."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from camaudit.model import Identity, Observation
from camaudit.store import open_store

CLI = [sys.executable, "-m", "camaudit"]
ADDRESS = "10.70.0.5"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # stdout is a pipe here, never a terminal: what a script or `| grep` sees.
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, cwd=cwd)


def _two_scans(db: Path) -> list[str]:
    """Two camera scans of one Hikvision device (a firmware update between them), each with a
    SADP answer (UDP 37020) and an HTTP Server header (TCP 80)."""
    ids = []
    with open_store(db) as store:
        for firmware in ("V5.5.0 build 170725", "V5.7.3 build 220112"):
            scan_id = store.start_scan(targets=["10.70.0.0/24"], addresses=254)
            store.add_services(scan_id, [(ADDRESS, 80)])
            store.add_observations(scan_id, [
                Observation(ADDRESS, "sadp", f"<ProbeMatch><SoftwareVersion>{firmware}</SoftwareVersion></ProbeMatch>",
                            37020, "discovery.sadp"),
                Observation(ADDRESS, "http_server", "App-webs/", 80, "http"),
            ])  # fmt: skip
            store.add_identity(scan_id, ADDRESS, Identity(vendor="hikvision", model="DS-2CD2143G0-I", firmware=firmware,
                                                          device_type="camera", confidence=0.9, covered=True))  # fmt: skip
            store.finish_scan(scan_id, "complete")
            ids.append(scan_id)
    return ids


def test_show_labels_udp_discovery_ports_as_udp(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    _two_scans(db)
    shown = run("show", "latest", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    sadp = next(line for line in shown.stdout.splitlines() if line.strip().startswith("sadp"))
    assert "udp/37020" in sadp and "tcp/37020" not in shown.stdout
    http = next(line for line in shown.stdout.splitlines() if line.strip().startswith("http_server"))
    assert "tcp/80" in http


def test_show_address_groups_identity_evidence_and_verdict_across_scans(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    first, latest = _two_scans(db)
    shown = run("show", ADDRESS, "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert f"{ADDRESS}: seen in 2 scan(s)" in text
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections[1:] == ["identity", "egress verdict", "open ports", "evidence", "scans"]
    identity = text.split("\nidentity\n")[1].split("\n\n")[0]
    assert "firmware V5.7.3 build 220112" in identity and "firmware V5.5.0 build 170725" in identity
    assert identity.count("1 scan(s)") == 2, "one identity per firmware, each with its scans"
    evidence = text.split("\nevidence\n")[1].split("\n\n")[0].splitlines()
    assert any("App-webs/" in line and "[2 of 2 scans]" in line for line in evidence), "the same evidence once, counted"
    assert sum("App-webs/" in line for line in evidence) == 1
    assert any("udp/37020" in line for line in evidence)
    assert "tcp/80 (2 of 2)" in text and "no egress verdict recorded" in text
    assert first in text and latest in text
    doc = json.loads(run("show", ADDRESS, "--db", str(db), "--json").stdout)
    assert [h["scan_id"] for h in doc["history"]] == [latest, first], "the history keeps its shape"
    assert len(doc["summary"]["identities"]) == 2 and doc["summary"]["scans"] == 2
    assert {v["verdict"] for v in doc["summary"]["verdicts"]} == {"NONE"}


def test_scans_never_cuts_ids_in_a_pipe(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with open_store(db) as store:
        ids = [store.start_scan(targets=[f"10.{i}.0.0/16" for i in range(1, 30)], addresses=1900000) for _ in range(2)]
        for scan_id in ids:
            store.finish_scan(scan_id, "complete")
    listed = run("scans", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    for scan_id in ids:
        assert scan_id in listed.stdout, listed.stdout
    assert "…" not in listed.stdout
    assert "10.29.0.0/16" in listed.stdout, "the targets are not cut in a pipe either"


def test_a_sweep_only_summary_does_not_call_hosts_not_identified(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with socket.socket() as listener:
        listener.bind(("127.83.14.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        swept = run("scan", "127.83.14.1", "--sweep-only", "--ports", str(port), "--db", str(db))
        assert swept.returncode == 0, swept.stderr
        assert "1 answered (sweep only: no identification was attempted)" in swept.stdout
        assert "not identified" not in swept.stdout
        shown = run("show", "latest", "--db", str(db))
        assert shown.returncode == 0 and "sweep only" in shown.stdout and "not identified" not in shown.stdout


def test_demo_says_its_loopback_notes_are_expected() -> None:
    from camaudit.lab.demo import demo_notes

    notes = demo_notes(["multicast discovery skipped: no local interface is on a target network",
                        "ARP sweep: no target is on a directly attached IPv4 segment",
                        "ARP sweep skipped: needs root", "3 hosts did not answer in time"])  # fmt: skip
    assert all("expected in the demo" in n and "loopback" in n for n in notes[:3])
    assert notes[3] == "3 hosts did not answer in time"


def test_the_demo_command_prints_them_so(tmp_path: Path) -> None:
    demo = subprocess.run([*CLI, "demo", "--out", str(tmp_path), "--devices", "3", "--subnet", "127.82.11.0/24"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    loopback = [line for line in demo.stdout.splitlines() if line.startswith("Note:") and ("multicast" in line or "ARP" in line)]
    assert loopback and all("expected in the demo" in line for line in loopback)
