"""Accuracy on real data: every corpus sample that has a kind goes through the engine.

Asserted: every Hikvision and Dahua positive (EZVIZ counted as Hikvision, its maker) is attributed
to its maker; a sample that proves only a Hikvision or Dahua brand (the corpus labels a Lorex OUI
"other", brand Lorex) is attributed to the brand's lineage maker, as a weak hint; no negative is attributed to Hikvision or Dahua; a lone weak signal (OUI, favicon)
stays under 0.5. ``pytest -s`` prints the table per vendor and kind.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from camaudit.fingerprint import identify
from camaudit.fingerprint.lineage import lineage
from camaudit.model import Observation

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "fingerprints.json"
WEAK = {"mac", "favicon_mmh3", "favicon_md5"}
COVERED_MAKERS = {"hikvision", "dahua"}

pytestmark = pytest.mark.skipif(not CORPUS.is_file(), reason="../shared/corpus/fingerprints.json not present")


def _maker(label: str) -> str:
    name = lineage().resolve(label)
    return name.maker if name is not None and name.maker else label


def _run() -> list[dict]:
    samples = json.loads(CORPUS.read_text(encoding="utf-8"))["samples"]
    rows = []
    for sample in samples:
        if not sample.get("kind"):
            continue
        identity = identify([Observation("127.64.0.1", sample["kind"], sample["sample"])])
        truth = _maker(sample["vendor"])
        brand_maker = _maker(sample["oem_brand"]) if sample.get("oem_brand") else None
        if truth == "other" and brand_maker in COVERED_MAKERS:
            # A sample that proves only a brand (a Lorex or Amcrest OUI): issue 14 item 4 has the
            # OEM lineage name the brand's maker, as a weak hint (checked below), never more.
            truth = brand_maker
        if truth in COVERED_MAKERS:
            ok = identity.vendor == truth
        else:
            ok = identity.vendor not in COVERED_MAKERS
        if sample["kind"] in WEAK and identity.confidence >= 0.5:
            ok = False
        rows.append({"id": sample["id"], "truth": truth, "kind": sample["kind"], "vendor": identity.vendor,
                     "brand": identity.brand, "confidence": identity.confidence, "ok": ok})
    return rows


def _table(rows: list[dict]) -> str:
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        group = row["truth"] if row["truth"] in COVERED_MAKERS else "negative"
        cells[(group, row["kind"])].append(row)
    lines = [f"{'truth':<10} {'kind':<22} {'n':>3} {'correct':>7} {'named hik/dahua':>15} {'mean conf':>9}"]
    for (group, kind), items in sorted(cells.items()):
        named = sum(1 for r in items if r["vendor"] in COVERED_MAKERS)
        mean = sum(r["confidence"] for r in items) / len(items)
        lines.append(f"{group:<10} {kind:<22} {len(items):>3} {sum(r['ok'] for r in items):>7} "
                     f"{named:>15} {mean:>9.2f}")
    total = len(rows)
    lines.append(f"{'all':<10} {'':<22} {total:>3} {sum(r['ok'] for r in rows):>7}")
    return "\n".join(lines)


def test_corpus_accuracy_table() -> None:
    rows = _run()
    print("\n" + _table(rows))
    failures = [r for r in rows if not r["ok"]]
    assert not failures, failures
    positives = [r for r in rows if r["truth"] in COVERED_MAKERS]
    negatives = [r for r in rows if r["truth"] not in COVERED_MAKERS]
    assert len(positives) >= 50 and len(negatives) >= 80
    assert all(r["vendor"] == r["truth"] for r in positives)
    assert not any(r["vendor"] in COVERED_MAKERS for r in negatives)
    for row in rows:
        if row["kind"] in WEAK:
            assert row["confidence"] < 0.5, row


def test_brand_registrant_ouis_name_brand_and_lineage_maker_weakly() -> None:
    """Issue 14 (lab defect): a Lorex OUI gave brand lorex with maker unknown and covered false.
    A brand's own OUI names maker and brand together through the lineage, still as a weak hint."""
    rows = {r["id"]: r for r in _run()}
    assert (rows["oui-001f54"]["vendor"], rows["oui-001f54"]["brand"]) == ("dahua", "lorex")
    assert (rows["oui-9c8ecd"]["vendor"], rows["oui-9c8ecd"]["brand"]) == ("dahua", "amcrest")
    assert (rows["oui-588fcf"]["vendor"], rows["oui-588fcf"]["brand"]) == ("hikvision", "ezviz")
    for sample_id in ("oui-001f54", "oui-9c8ecd", "oui-588fcf"):
        assert rows[sample_id]["confidence"] < 0.5
    assert rows["oui-neg-shanghai-dahua-scale"]["vendor"] == "unknown"
