"""Check signature and data files (``camaudit signatures verify``; STYLE.md's seven checks).

For signature files:

1. the file validates against signatures/schema.json, and ids are unique across the files checked;
2. regexes compile, and every ``{group: N}`` / ``format`` reference exists in the regex it reads;
3. each signature has 1 to 20 unique examples;
4. each example matches and extracts exactly its ``expect``;
5. each example is matched first by its own signature (within a file the first match wins);
6. no counter-example is matched by its signature, nor attributed by its file to that
   signature's vendor;
7. vendors, brands and device types come from signatures/vocab/, and "unknown"/"generic" are refused.

Also: signatures of weak kinds (OUI, favicon, title, port) stay under 0.5, and a signature that
extracts both a brand and a vendor agrees with lineage.yaml. lineage.yaml, covered.yaml and
advisories.yaml have their own examples, checked here too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from ..model import DEVICE_TYPES
from ..resources import signatures_dir
from . import normalize
from .lineage import lineage, loose, parse_covered, parse_lineage
from .signatures import (
    DATA_FILES,
    WEAK_KINDS,
    Fault,
    Signature,
    compile_file,
    example_input,
    read_document,
    signature_files,
)

MAX_EXAMPLES = 20
#: Names that say nothing: a signature that cannot name a maker extracts no vendor instead.
REFUSED_NAMES = frozenset({"unknown", "generic", "other", "none", "general", "server", "private", "n/a"})
_GROUP_REF = re.compile(r"\{(\d+)\}")

AnyPath = Path | Traversable


@functools.cache
def vocabulary(name: str) -> frozenset[str]:
    """A vocabulary list (``vendors`` or ``device_types``) from signatures/vocab/."""
    text = (signatures_dir() / "vocab" / f"{name}.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


# --------------------------------------------------------------------------- signature files


def verify_signature_files(paths: Iterable[AnyPath]) -> list[Fault]:
    """Every fault in these signature files (an empty list means all checks pass)."""
    faults: list[Fault] = []
    seen_ids: dict[str, str] = {}
    for path in paths:
        doc = read_document(path, faults)
        if doc is None:
            continue
        compile_faults: list[Fault] = []
        entries = compile_file(doc, path.name, compile_faults)
        faults.extend(compile_faults)
        for spec in doc["signatures"]:
            sid = str(spec["id"])
            if sid in seen_ids:
                faults.append(Fault(path.name, "duplicate-id", f"id already used in {seen_ids[sid]}", sid))
            else:
                seen_ids[sid] = path.name
        if compile_faults:
            continue
        for entry in entries:
            group_faults = _check_groups(entry)
            faults.extend(group_faults)
            faults.extend(_check_vocabulary(entry))
            faults.extend(_check_certainty(entry))
            if not group_faults:
                faults.extend(_check_examples(entry, entries))
    return faults


def _regex_groups(pattern: str | None) -> int:
    return re.compile(pattern).groups if pattern else -1


def _check_groups(entry: Signature) -> list[Fault]:
    faults = []
    primary = next(
        (m["pattern"] for m in entry.source["match"] if m["type"] == "regex" and not m.get("negative")),
        None,
    )
    for name, spec in (entry.source.get("extract") or {}).items():
        for alternative in spec if isinstance(spec, list) else [spec]:
            if not isinstance(alternative, dict):
                continue
            pattern = alternative.get("regex", primary)
            available = _regex_groups(pattern)
            wanted = [int(alternative["group"])] if "group" in alternative else []
            wanted += [int(g) for g in _GROUP_REF.findall(str(alternative.get("format", "")))]
            for group in wanted:
                if available < 0:
                    faults.append(Fault(entry.file, "group-mismatch",
                                        f"extract.{name} uses group {group} but there is no regex to read it",
                                        entry.id))
                elif group > available:
                    faults.append(Fault(entry.file, "group-mismatch",
                                        f"extract.{name} uses group {group}, its regex has {available}",
                                        entry.id))
    return faults


def _declared_values(spec: Any) -> list[str]:
    """Constant values and map outputs an extractor can produce (lineage maps excluded)."""
    values: list[str] = []
    for alternative in spec if isinstance(spec, list) else [spec]:
        if isinstance(alternative, str):
            values.append(alternative)
        elif isinstance(alternative, dict) and isinstance(alternative.get("map"), dict):
            values.extend(str(v) for v in alternative["map"].values())
    return values


def _check_vocabulary(entry: Signature) -> list[Fault]:
    faults = []
    extract = entry.source.get("extract") or {}
    allowed = {"vendor": vocabulary("vendors"), "brand": vocabulary("vendors"),
               "device_type": vocabulary("device_types")}
    for name, words in allowed.items():
        for value in _declared_values(extract.get(name, [])):
            if name != "device_type" and value.lower() in REFUSED_NAMES:
                faults.append(Fault(entry.file, "vocabulary", f"{name} {value!r} says nothing; extract no {name} instead", entry.id))
            elif value not in words:
                faults.append(Fault(entry.file, "vocabulary", f"{name} {value!r} is not in signatures/vocab", entry.id))
    vendor = extract.get("vendor")
    if isinstance(vendor, str):
        for brand in _declared_values(extract.get("brand", [])):
            maker = lineage().maker_of(brand)
            if brand != vendor and maker != vendor:
                faults.append(Fault(entry.file, "lineage",
                                    f"brand {brand!r} is made by {maker!r} in lineage.yaml, not {vendor!r}",
                                    entry.id))
    return faults


def _check_certainty(entry: Signature) -> list[Fault]:
    if entry.kind in WEAK_KINDS and entry.certainty >= 0.5:
        return [Fault(entry.file, "weak-certainty",
                      f"{entry.kind} is weak evidence: certainty must stay under 0.5, not {entry.certainty}",
                      entry.id)]
    return []


def first_match(entries: Sequence[Signature], kind: str, text: str) -> tuple[Signature, dict[str, str]] | None:
    parts = normalize.parts_for(kind, text)
    for entry in entries:
        extracted = entry.match(parts)
        if extracted is not None:
            return entry, extracted
    return None


def _check_examples(entry: Signature, entries: Sequence[Signature]) -> list[Fault]:
    faults = []
    examples = entry.examples
    if not examples:
        faults.append(Fault(entry.file, "missing-examples", "a signature needs at least one example", entry.id))
    if len(examples) > MAX_EXAMPLES:
        faults.append(Fault(entry.file, "too-many-examples",
                            f"{len(examples)} examples, at most {MAX_EXAMPLES}", entry.id))
    inputs = [example_input(e) for e in examples]
    if len(set(inputs)) != len(inputs):
        faults.append(Fault(entry.file, "duplicate-example", "the same example input appears twice", entry.id))
    for number, example in enumerate(examples, 1):
        text = example_input(example)
        expected = {k: str(v) for k, v in (example.get("expect") or {}).items()}
        own = entry.match(normalize.parts_for(entry.kind, text))
        if own is None:
            faults.append(Fault(entry.file, "example-mismatch", f"example {number} does not match", entry.id))
            continue
        if own != expected:
            faults.append(Fault(entry.file, "example-mismatch",
                                f"example {number} extracts {own}, expected {expected}", entry.id))
        winner = first_match(entries, entry.kind, text)
        if winner is not None and winner[0] is not entry:
            faults.append(Fault(entry.file, "example-shadowed",
                                f"example {number} is matched first by {winner[0].id}", entry.id))
    vendor = (entry.source.get("extract") or {}).get("vendor")
    for number, counter in enumerate(entry.counter_examples, 1):
        text = example_input(counter)
        if entry.match(normalize.parts_for(entry.kind, text)) is not None:
            faults.append(Fault(entry.file, "counter-example-matched",
                                f"counter-example {number} is matched by its own signature", entry.id))
            continue
        winner = first_match(entries, entry.kind, text)
        if winner is not None and isinstance(vendor, str) and winner[1].get("vendor") == vendor:
            faults.append(Fault(entry.file, "counter-example-matched",
                                f"counter-example {number} is still attributed to {vendor} by {winner[0].id}",
                                entry.id))
    return faults


# --------------------------------------------------------------------------- data files


def _load_yaml(path: AnyPath, faults: list[Fault]) -> dict[str, Any] | None:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        faults.append(Fault(path.name, "yaml", str(exc).replace("\n", " ")))
        return None
    if not isinstance(doc, dict):
        faults.append(Fault(path.name, "schema", "expected a mapping at the top"))
        return None
    return doc


def verify_lineage_file(path: AnyPath) -> list[Fault]:
    faults: list[Fault] = []
    doc = _load_yaml(path, faults)
    if doc is None:
        return faults
    try:
        data = parse_lineage(doc)
    except Exception as exc:  # noqa: BLE001 - report any malformed entry as a fault
        return [Fault(path.name, "schema", str(exc))]
    names = vocabulary("vendors")
    for section in ("makers", "brands"):
        for entry in doc.get(section) or []:
            name = str(entry.get("name"))
            if name not in names:
                faults.append(Fault(path.name, "vocabulary", f"{name!r} is not in signatures/vocab/vendors.txt", name))
            maker = entry.get("maker")
            if maker and maker not in data.names:
                faults.append(Fault(path.name, "lineage", f"maker {maker!r} is not listed under makers", name))
            if not entry.get("source"):
                faults.append(Fault(path.name, "schema", "every entry needs its source", name))
            if not entry.get("examples"):
                faults.append(Fault(path.name, "missing-examples", "every entry needs examples", name))
            for example in entry.get("examples") or []:
                found = data.resolve(str(example))
                if found is None or found.name != name:
                    faults.append(Fault(path.name, "example-mismatch",
                                        f"{example!r} resolves to {found.name if found else None!r}", name))
            for counter in entry.get("counter_examples") or []:
                found = data.resolve(str(counter))
                if found is not None and found.name == name:
                    faults.append(Fault(path.name, "counter-example-matched", f"{counter!r} resolves to {name}", name))
    return faults


def verify_covered_file(path: AnyPath) -> list[Fault]:
    faults: list[Fault] = []
    doc = _load_yaml(path, faults)
    if doc is None:
        return faults
    data = parse_covered(doc)
    for entry in doc.get("entities") or []:
        name = str(entry.get("name"))
        if not entry.get("source") or not entry.get("lists"):
            faults.append(Fault(path.name, "schema", "every entity needs its lists and source", name))
        for affiliate in entry.get("affiliates") or []:
            if not affiliate.get("source"):
                faults.append(Fault(path.name, "schema", f"affiliate {affiliate.get('name')!r} needs a source", name))
        if not entry.get("examples"):
            faults.append(Fault(path.name, "missing-examples", "every entity needs examples", name))
        for label, wanted in (("examples", True), ("counter_examples", False)):
            for example in entry.get(label) or []:
                vendor, brand = example.get("vendor"), example.get("brand")
                if data.is_covered(vendor, brand) != wanted:
                    faults.append(Fault(path.name, "example-mismatch",
                                        f"{example} should {'' if wanted else 'not '}be covered", name))
    for entry in doc.get("not_covered") or []:
        if data.is_covered(str(entry.get("name"))):
            faults.append(Fault(path.name, "example-mismatch", "listed as not covered but covered", str(entry.get("name"))))
    return faults


def verify_advisories_file(path: AnyPath) -> list[Fault]:
    from .advisories import check_examples, parse_advisories

    faults: list[Fault] = []
    doc = _load_yaml(path, faults)
    if doc is None:
        return faults
    try:
        advisories = parse_advisories(doc)
    except Exception as exc:  # noqa: BLE001 - a malformed entry is a fault to report
        return [Fault(path.name, "schema", str(exc))]
    for advisory, problem in check_examples(advisories):
        faults.append(Fault(path.name, "example-mismatch", problem, advisory))
    return faults


_DATA_VERIFIERS = {
    "lineage.yaml": verify_lineage_file,
    "covered.yaml": verify_covered_file,
    "advisories.yaml": verify_advisories_file,
}


def verify(paths: Sequence[AnyPath] | None = None) -> list[Fault]:
    """Verify the given files (signature or data files), or everything shipped."""
    if not paths:
        base = signatures_dir()
        paths = [*signature_files(), *(base / name for name in sorted(DATA_FILES))]
    faults: list[Fault] = []
    signature_paths = []
    for path in paths:
        checker = _DATA_VERIFIERS.get(path.name)
        if checker is not None:
            faults.extend(checker(path))
        else:
            signature_paths.append(path)
    faults.extend(verify_signature_files(signature_paths))
    return faults


def device_types_match_model() -> bool:
    """The device-type vocabulary is exactly camaudit.model.DEVICE_TYPES."""
    return vocabulary("device_types") == DEVICE_TYPES


__all__ = ["loose", "verify", "verify_signature_files", "vocabulary", "device_types_match_model"]
