"""`camaudit identify --nmap-xml` on XML that real nmap -sV produced against camaudit's lab:
every device comes out as the lab's manifest says it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "nmap"


def test_identify_nmap_xml_from_the_lab_matches_the_manifest() -> None:
    manifest = {e["address"]: e for e in json.loads((DATA / "lab-sV.manifest.json").read_text())}
    done = subprocess.run(
        [sys.executable, "-m", "camaudit", "identify", "--nmap-xml", str(DATA / "lab-sV.xml")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {line["id"] for line in lines} == set(manifest)
    for line in lines:
        truth = manifest[line["id"]]
        expected = truth["vendor"] if truth["vendor"] != "other" else "unknown"
        assert line["vendor"] == expected, (line["id"], truth["profile"], line)
        if truth["vendor"] == "dahua" and truth["brand"]:
            assert line["brand"] == truth["brand"], line
        if expected in ("hikvision", "dahua"):
            assert line["covered"] is True and line["signatures"]
