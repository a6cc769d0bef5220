"""Signature files: load, validate, compile, match (STYLE.md "Signature format").

A file holds the signatures for one observation kind::

    kind: http_server
    description: ...
    signatures:
      - id: hikvision-app-webs
        description: ...
        match:                    # regex | word | equals | hash | oui; part, case_insensitive, negative
          - {type: regex, pattern: '^App-webs/$'}
        condition: and            # how the matchers combine
        extract:                  # a constant, {group: N} of the first regex matcher, or
          vendor: hikvision       # {regex, group | format, map: {...} | lineage, part}; a list of
          device_type: camera     # such extractors means "the first that yields a value"
        certainty: 0.7
        notes: ...
        references: [...]
        examples: [{input: "App-webs/", expect: {vendor: hikvision, device_type: camera}}]
        counter_examples: ["GoAhead-Webs"]

Within a file the first signature that matches wins (recog's rule), so that each example can be
checked to be matched by its own signature first. Files are read once and cached.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..model import MAX_OBSERVATION_VALUE
from ..resources import signatures_dir
from ..yamllines import safe_load_fast
from . import normalize
from .lineage import lineage
from .schema import validate as schema_validate

log = logging.getLogger(__name__)

#: The fields a signature may extract (Identity fields, DESIGN.md section 4).
FIELDS = ("vendor", "brand", "model", "firmware", "serial", "device_type")
#: Data files in signatures/ that are not signature files.
DATA_FILES = frozenset({"lineage.yaml", "covered.yaml", "advisories.yaml"})
#: A signature at or above this certainty decides the vendor on its own (DESIGN.md section 4).
STRONG = 0.9
#: Kinds whose signatures are weak by nature (a lone one must stay under 0.5, issue 5 item 6).
WEAK_KINDS = frozenset({"mac", "favicon_mmh3", "favicon_md5", "http_title", "open_port"})

_FORMAT_REF = re.compile(r"\{(\d+)\}")


class SignatureError(ConfigError):
    """A signature file that cannot be used; ``faults`` lists every problem found."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        self.faults = list(faults)
        super().__init__("; ".join(str(f) for f in self.faults[:5]))


@dataclass(frozen=True, slots=True)
class Fault:
    """One problem in a signature or data file, with the check that found it."""

    file: str
    code: str
    message: str
    signature: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}: {self.signature}" if self.signature else self.file
        return f"{where}: [{self.code}] {self.message}"


# --------------------------------------------------------------------------- matchers


@dataclass(slots=True)
class Matcher:
    type: str
    part: str
    negative: bool
    regex: re.Pattern[str] | None = None
    words: tuple[str, ...] = ()
    words_all: bool = False
    values: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    case_insensitive: bool = False

    def test(self, parts: Mapping[str, str]) -> re.Match[str] | bool:
        """A regex match object (for extraction), True/False for other types."""
        result = self._test(parts)
        if self.negative:
            return not result
        return result

    def _test(self, parts: Mapping[str, str]) -> re.Match[str] | bool:
        if self.type == "oui":
            return self._test_oui(parts)
        text = parts.get(self.part)
        if text is None:
            return False
        if self.regex is not None:
            return self.regex.search(text) or False
        if self.case_insensitive:
            text = text.lower()
        if self.type == "word":
            hits = (w in text for w in self.words)
            return all(hits) if self.words_all else any(hits)
        return text.strip() in self.values

    def _test_oui(self, parts: Mapping[str, str]) -> bool:
        value = parts.get("value", "")
        if parts.get("oui") and any(value.startswith(p) for p in self.prefixes):
            return True
        registrant = parts.get("registrant", "")
        return bool(self.regex is not None and registrant and self.regex.search(registrant))


@dataclass(slots=True)
class Extractor:
    """Yields one field value from a match, or None (then the next alternative is tried)."""

    constant: str | None = None
    group: int | None = None
    regex: re.Pattern[str] | None = None
    part: str = "value"
    format: str | None = None
    mapping: dict[str, str] | None = None
    #: "lineage": the canonical name the value stands for; "lineage-maker": that name only
    #: when it is a maker's own name (a brand string never makes a vendor); the "-text" forms
    #: find the first such name inside free text (a certificate O, a realm, an SDP s= line)
    lineage_mode: str | None = None

    def extract(self, parts: Mapping[str, str], primary: re.Match[str] | None) -> str | None:
        if self.constant is not None:
            return self.constant
        match = primary
        if self.regex is not None:
            match = self.regex.search(parts.get(self.part, ""))
        if match is None:
            return None
        if self.format is not None:
            try:
                value = _FORMAT_REF.sub(lambda m: match.group(int(m.group(1))) or "", self.format)
            except IndexError:
                return None
        else:
            try:
                value = match.group(self.group or 0) or ""
            except IndexError:  # a group the regex lacks: the verifier reports it
                return None
        value = value.strip()
        if not value:
            return None
        if self.lineage_mode is not None:
            # "-text" modes look for a name anywhere in free text; the others resolve the whole value
            text_mode = self.lineage_mode.endswith("-text")
            name = lineage().find_in(value) if text_mode else lineage().resolve(value)
            if name is None or (self.lineage_mode.startswith("lineage-maker") and name.relation != "maker"):
                return None
            return name.name
        if self.mapping is not None:
            return self.mapping.get(value.lower())
        return value


@dataclass(slots=True)
class Signature:
    id: str
    kind: str
    file: str
    description: str
    certainty: float
    matchers: list[Matcher]
    condition_all: bool
    extractors: dict[str, list[Extractor]]
    notes: str = ""
    references: list[str] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    counter_examples: list[Any] = field(default_factory=list)
    #: the raw YAML entry, for the verifier
    source: dict[str, Any] = field(default_factory=dict)
    #: when set, the signature matches only if one of these fields was extracted
    requires_any: tuple[str, ...] = ()

    @property
    def strong(self) -> bool:
        return self.certainty >= STRONG

    def match(self, parts: Mapping[str, str]) -> dict[str, str] | None:
        """The extracted fields when this signature matches ``parts``, else None."""
        primary: re.Match[str] | None = None
        matched_any = False
        for matcher in self.matchers:
            result = matcher.test(parts)
            if result:
                matched_any = True
                if primary is None and isinstance(result, re.Match) and not matcher.negative:
                    primary = result
                if not self.condition_all:
                    break
            elif self.condition_all:
                return None
        if not matched_any:
            return None
        if primary is None:
            # Under "or", a later regex may still hold the capture groups the extractors use.
            for matcher in self.matchers:
                if matcher.regex is not None and not matcher.negative and matcher.type == "regex":
                    found = matcher.test(parts)
                    if isinstance(found, re.Match):
                        primary = found
                        break
        extracted: dict[str, str] = {}
        for name, alternatives in self.extractors.items():
            for extractor in alternatives:
                value = extractor.extract(parts, primary)
                if value is not None:
                    extracted[name] = value
                    break
        if self.requires_any and not any(extracted.get(name) for name in self.requires_any):
            return None
        # A brand is the name presented when it differs from the maker (DESIGN.md section 4).
        if extracted.get("brand") is not None and extracted.get("brand") == extracted.get("vendor"):
            del extracted["brand"]
        return extracted


@dataclass(slots=True)
class SignatureSet:
    """Compiled signatures, grouped by kind, each kind's files in order."""

    signatures: list[Signature] = field(default_factory=list)
    by_kind: dict[str, list[list[Signature]]] = field(default_factory=dict)

    def add_file(self, entries: list[Signature]) -> None:
        if not entries:
            return
        self.signatures.extend(entries)
        self.by_kind.setdefault(entries[0].kind, []).append(entries)

    def match(self, kind: str, parts: Mapping[str, str]) -> list[tuple[Signature, dict[str, str]]]:
        """Per file of this kind, the first signature that matches, with its extraction."""
        hits: list[tuple[Signature, dict[str, str]]] = []
        for entries in self.by_kind.get(kind, ()):
            for signature in entries:
                extracted = signature.match(parts)
                if extracted is not None:
                    hits.append((signature, extracted))
                    break
        return hits

    def match_value(self, kind: str, value: str) -> list[tuple[str, Signature, dict[str, str]]]:
        """Every hit for one observation value, derived parts included: (kind read, sig, fields)."""
        hits = []
        # Device text is bounded like an Observation value before any regex reads it.
        for item in normalize.expand(kind, value[:MAX_OBSERVATION_VALUE]):
            for signature, extracted in self.match(item.kind, item.parts):
                hits.append((item.kind, signature, extracted))
        return hits


# --------------------------------------------------------------------------- compiling


def example_input(example: Any) -> str:
    """The raw input of an example or counter-example (a string, or {input | input_b64})."""
    if isinstance(example, str):
        return example
    if isinstance(example, dict):
        if "input_b64" in example:
            import base64

            return base64.b64decode(example["input_b64"]).decode("utf-8", errors="replace")
        return str(example.get("input", ""))
    return str(example)


def _compile_regex(pattern: str, ci: bool, where: str, faults: list[Fault], file: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.IGNORECASE if ci else 0)
    except re.error as exc:
        faults.append(Fault(file, "bad-regex", f"{where}: {exc} in {pattern!r}"))
        return None


def _compile_matcher(spec: dict[str, Any], kind: str, sid: str, file: str, faults: list[Fault]) -> Matcher | None:
    mtype = spec["type"]
    ci = bool(spec.get("case_insensitive", False))
    matcher = Matcher(
        type=mtype,
        part=str(spec.get("part", "value")),
        negative=bool(spec.get("negative", False)),
        case_insensitive=ci,
    )
    where = f"signature {sid}"
    if mtype == "regex":
        matcher.regex = _compile_regex(str(spec["pattern"]), ci, where, faults, file)
        if matcher.regex is None:
            return None
    elif mtype == "word":
        words = [str(w) for w in spec["words"]]
        matcher.words = tuple(w.lower() for w in words) if ci else tuple(words)
        matcher.words_all = spec.get("condition", "or") == "and"
    elif mtype in ("equals", "hash"):
        values = [str(v).strip() for v in spec["values"]]
        if mtype == "hash":
            values = [v.lower() for v in values]
            matcher.case_insensitive = True
        elif ci:
            values = [v.lower() for v in values]
        matcher.values = frozenset(values)
    elif mtype == "oui":
        matcher.prefixes = tuple(p.lower().replace("-", ":") for p in spec.get("prefixes", []))
        if "registrant" in spec:
            matcher.regex = _compile_regex(str(spec["registrant"]), True, where, faults, file)
    return matcher


def _compile_extractor(spec: Any, sid: str, file: str, faults: list[Fault]) -> Extractor | None:
    if isinstance(spec, str | int | float):
        return Extractor(constant=str(spec))
    extractor = Extractor(group=spec.get("group"), part=str(spec.get("part", "value")))
    extractor.format = spec.get("format")
    if "regex" in spec:
        extractor.regex = _compile_regex(str(spec["regex"]), bool(spec.get("case_insensitive")),
                                         f"signature {sid} extractor", faults, file)
        if extractor.regex is None:
            return None
    mapping = spec.get("map")
    if mapping in ("lineage", "lineage-maker", "lineage-text", "lineage-maker-text"):
        extractor.lineage_mode = str(mapping)
    elif isinstance(mapping, dict):
        extractor.mapping = {str(k).lower(): str(v) for k, v in mapping.items()}
    return extractor


def compile_file(doc: dict[str, Any], file: str, faults: list[Fault]) -> list[Signature]:
    """Compile one validated document; problems are appended to ``faults``."""
    kind = str(doc["kind"])
    entries: list[Signature] = []
    for spec in doc["signatures"]:
        sid = str(spec["id"])
        before = len(faults)
        matchers = [_compile_matcher(m, kind, sid, file, faults) for m in spec["match"]]
        extractors: dict[str, list[Extractor]] = {}
        for name, value in (spec.get("extract") or {}).items():
            alternatives = value if isinstance(value, list) else [value]
            compiled = [_compile_extractor(a, sid, file, faults) for a in alternatives]
            extractors[name] = [c for c in compiled if c is not None]
        if len(faults) > before:
            for i in range(before, len(faults)):
                if faults[i].signature is None:
                    faults[i] = Fault(faults[i].file, faults[i].code, faults[i].message, sid)
            continue
        entries.append(
            Signature(
                id=sid,
                kind=kind,
                file=file,
                description=str(spec.get("description", "")),
                certainty=float(spec["certainty"]),
                matchers=[m for m in matchers if m is not None],
                condition_all=spec.get("condition", "and") == "and",
                extractors=extractors,
                notes=str(spec.get("notes", "")),
                references=[str(r) for r in spec.get("references") or []],
                examples=list(spec.get("examples") or []),
                counter_examples=list(spec.get("counter_examples") or []),
                source=spec,
                requires_any=tuple(str(n) for n in spec.get("requires_any") or ()),
            )
        )
    return entries


@functools.cache
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((signatures_dir() / "schema.json").read_text(encoding="utf-8"))
    return doc


def read_document(path: Path | Traversable, faults: list[Fault]) -> dict[str, Any] | None:
    """Read and schema-check one signature file; None (with faults) when unusable."""
    name = path.name
    try:
        doc = safe_load_fast(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        faults.append(Fault(name, "unreadable", str(exc)))
        return None
    except yaml.YAMLError as exc:
        faults.append(Fault(name, "yaml", f"not valid YAML: {exc}".replace("\n", " ")))
        return None
    errors = schema_validate(doc, schema())
    if errors:
        for error in errors[:10]:
            faults.append(Fault(name, "schema", error))
        return None
    assert isinstance(doc, dict)
    return doc


def signature_files(folder: Path | Traversable | None = None) -> list[Path | Traversable]:
    """The signature files of a folder (the shipped one by default), sorted by name."""
    base = folder if folder is not None else signatures_dir()
    return sorted(
        (p for p in base.iterdir() if p.name.endswith(".yaml") and p.name not in DATA_FILES),
        key=lambda p: p.name,
    )


def load(paths: Iterable[Path | Traversable]) -> SignatureSet:
    """Load and compile files; raise :class:`SignatureError` listing every fault."""
    faults: list[Fault] = []
    result = SignatureSet()
    seen: dict[str, str] = {}
    for path in paths:
        doc = read_document(path, faults)
        if doc is None:
            continue
        entries = compile_file(doc, path.name, faults)
        for entry in entries:
            if entry.id in seen:
                faults.append(Fault(path.name, "duplicate-id", f"id also used in {seen[entry.id]}", entry.id))
            seen[entry.id] = path.name
        result.add_file(entries)
    if faults:
        raise SignatureError(faults)
    return result


@functools.cache
def default_set() -> SignatureSet:
    """The shipped signatures, compiled once per process."""
    return load(signature_files())
