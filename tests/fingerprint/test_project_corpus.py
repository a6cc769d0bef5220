"""camaudit's own corpus (signatures/corpus.json, issue 14 item 6): every sample sourced, every
Hikvision and Dahua sample attributed to its maker (and brand), no other sample called either.
A ``fragment`` sample (one header line cut from a longer nmap match) must never name the wrong
covered maker, but may be too little to name one."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from camaudit.fingerprint import identify
from camaudit.fingerprint.signatures import WEAK_KINDS
from camaudit.model import Observation
from camaudit.resources import signatures_dir

COVERED_MAKERS = {"hikvision", "dahua"}
SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "fingerprints.json"
NMAP_PROBES = Path("/usr/share/nmap/nmap-service-probes")


def _samples() -> list[dict[str, Any]]:
    doc = json.loads((signatures_dir() / "corpus.json").read_text(encoding="utf-8"))
    samples: list[dict[str, Any]] = doc["samples"]
    return samples


def _identify(sample: dict[str, Any]) -> Any:
    return identify([Observation("127.64.0.1", o["kind"], o["value"], o.get("port")) for o in sample["observations"]])


def test_every_sample_says_where_it_comes_from() -> None:
    samples = _samples()
    ids = [s["id"] for s in samples]
    assert len(ids) == len(set(ids))
    assert {s["provenance"] for s in samples} <= {"tests", "lab", "nmap"}
    assert all(s["source"].strip() and s["observations"] for s in samples)
    counts = Counter(s["provenance"] for s in samples)
    assert counts["tests"] and counts["lab"], counts
    if SHARED.is_file():
        shared_ids = {s["id"] for s in json.loads(SHARED.read_text(encoding="utf-8"))["samples"]}
        assert not shared_ids & set(ids)


@pytest.mark.skipif(not NMAP_PROBES.is_file(), reason="nmap-service-probes not installed")
def test_nmap_samples_are_literal_strings_of_the_line_they_cite() -> None:
    lines = NMAP_PROBES.read_text(encoding="latin-1").splitlines()
    nmap = [s for s in _samples() if s["provenance"] == "nmap"]
    if not nmap or f"({lines[1].strip('# ')})" not in nmap[0]["source"]:
        pytest.skip("another nmap-service-probes version than the one the corpus was built from")
    for sample in nmap:
        line = lines[sample["nmap_line"] - 1]
        assert line.startswith(("match ", "softmatch ")), sample["id"]
        value = sample["observations"][0]["value"]
        # the longest run of the value without characters nmap escapes appears in the line as written
        runs = [r for r in "".join(c if c.isalnum() or c in " -_:=/" else "\n" for c in value).split("\n") if r]
        assert max(runs, key=len) in line, sample["id"]


def test_project_corpus_accuracy() -> None:
    wrong = []
    table: Counter[tuple[str, str, bool]] = Counter()
    for sample in _samples():
        identity = _identify(sample)
        truth = sample["vendor"]
        if truth in COVERED_MAKERS and sample.get("fragment"):
            # one header line out of a longer nmap match: never another covered maker
            ok = identity.vendor in (truth, "unknown") or identity.vendor not in COVERED_MAKERS
        elif truth in COVERED_MAKERS:
            ok = identity.vendor == truth
            brand = sample.get("brand")
            if ok and brand:
                ok = identity.brand == brand
        else:
            ok = identity.vendor not in COVERED_MAKERS
        if all(o["kind"] in WEAK_KINDS for o in sample["observations"]) and identity.confidence >= 0.5:
            ok = False
        group = truth if truth in COVERED_MAKERS else "other"
        table[(sample["provenance"], group, ok)] += 1
        if not ok:
            wrong.append((sample["id"], truth, sample.get("brand"), identity.vendor, identity.brand, identity.confidence))
    print("\n" + "\n".join(f"{p:<6} {g:<10} {'right' if ok else 'WRONG'} {n}" for (p, g, ok), n in sorted(table.items())))
    assert not wrong, wrong
