"""Brand-to-maker lineage and the covered-vendor list, as data (signatures/lineage.yaml, covered.yaml).

``resolve("CP_PLUS")`` finds the canonical name a device's presented string stands for and the
maker behind it. Names compare loosely (case, spaces, punctuation ignored: ``CP PLUS``,
``CP_PLUS`` and ``CPPlus`` are one brand), because firmware spells brands many ways
(reference/fingerprinting.md section 3, CP PLUS scopes).

A brand alone never makes a maker: the engine uses lineage to name the brand, to check that a
brand agrees with the technical evidence, and to follow subsidiaries for the covered flag.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import ConfigError
from ..resources import signatures_dir
from ..yamllines import safe_load_fast

_WORDS = re.compile(r"[a-z0-9]+")
#: Legal-form words dropped from the end of a name: "Lorex Technology Inc." is "Lorex Technology".
_LEGAL_FORMS = frozenset(
    {"inc", "ltd", "co", "corp", "corporation", "company", "limited", "llc", "gmbh", "ab", "ag", "sa", "plc"}
)


#: Shortest alias (letters and digits) looked for inside free text.
MIN_TEXT_ALIAS = 5
#: Longest free text searched for a name.
MAX_TEXT = 4096


def _alias_pattern(aliases: Iterable[str]) -> re.Pattern[str]:
    """One pattern for every alias: its words in order, any run of spaces or punctuation
    between them ("Zhejiang  Dahua", "CP_PLUS", "cp plus"), any case, whole words only."""
    alternatives = set()
    for alias in aliases:
        words = _WORDS.findall(alias.lower())
        while len(words) > 1 and words[-1] in _LEGAL_FORMS:
            words.pop()
        if len("".join(words)) >= MIN_TEXT_ALIAS:
            alternatives.add(r"[\W_]*".join(re.escape(w) for w in words))
    body = "|".join(sorted(alternatives, key=len, reverse=True)) or r"(?!)"
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])", re.IGNORECASE)


def loose(name: str) -> str:
    """The comparison key for a presented name: lower case, letters and digits, no legal form."""
    words = _WORDS.findall(name.lower())
    while len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words.pop()
    return "".join(words)


@dataclass(frozen=True, slots=True)
class Name:
    """A canonical name (maker or brand), the maker behind it (None: not established)."""

    name: str
    maker: str | None
    relation: str
    source: str
    aliases: tuple[str, ...] = ()


@dataclass(slots=True)
class Lineage:
    names: dict[str, Name] = field(default_factory=dict)
    #: loose alias -> canonical name
    aliases: dict[str, str] = field(default_factory=dict)
    _text_pattern: re.Pattern[str] | None = None

    def resolve(self, presented: str) -> Name | None:
        canonical = self.aliases.get(loose(presented))
        return self.names.get(canonical) if canonical else None

    def maker_of(self, name: str) -> str | None:
        entry = self.names.get(name)
        return entry.maker if entry else None

    def find_in(self, text: str) -> Name | None:
        """The first maker or brand named as a word in free text (a certificate's O, a realm, an
        SDP session name), in any case and spacing: "HIKVISION", "hikvision digital technology" and
        "Zhejiang  Dahua" all name a maker; "Hik-vision" does not. Aliases shorter than
        :data:`MIN_TEXT_ALIAS` letters (DH, HIK, XM, UNV, Axis) are too short to trust inside free
        text, where they are also ordinary words or parts of model numbers."""
        if self._text_pattern is None:
            self._text_pattern = _alias_pattern(a for n in self.names.values() for a in (n.name, *n.aliases))
        found = self._text_pattern.search(text[:MAX_TEXT])
        if found is None:
            return None
        return self.resolve(found.group(0))


@dataclass(frozen=True, slots=True)
class CoveredEntity:
    name: str
    lists: tuple[str, ...]
    affiliates: tuple[str, ...]
    source: str


@dataclass(slots=True)
class Covered:
    entities: dict[str, CoveredEntity] = field(default_factory=dict)
    #: affiliate/subsidiary name -> covered parent
    affiliates: dict[str, str] = field(default_factory=dict)

    def is_covered(self, vendor: str | None, brand: str | None = None) -> bool:
        """True when the maker is covered, or the brand is a covered maker's own affiliate."""
        if vendor and (vendor in self.entities or vendor in self.affiliates):
            return True
        return bool(brand and (brand in self.entities or brand in self.affiliates))

    def parent(self, name: str) -> str | None:
        if name in self.entities:
            return name
        return self.affiliates.get(name)


def _read(filename: str) -> dict[str, Any]:
    path = signatures_dir() / filename
    try:
        doc = safe_load_fast(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {filename}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{filename}: expected a mapping at the top")
    return doc


def parse_lineage(doc: dict[str, Any]) -> Lineage:
    lineage = Lineage()
    for section, relation_default in (("makers", "maker"), ("brands", "brand")):
        for entry in doc.get(section) or []:
            name = str(entry["name"])
            maker = entry.get("maker", name if section == "makers" else None)
            aliases = tuple(str(a) for a in entry.get("aliases") or [])
            item = Name(
                name=name,
                maker=str(maker) if maker else None,
                relation=str(entry.get("relation", relation_default)),
                source=str(entry.get("source", "")),
                aliases=aliases,
            )
            if name in lineage.names:
                raise ConfigError(f"lineage.yaml: {name!r} is listed twice")
            lineage.names[name] = item
            for alias in (name, *aliases):
                key = loose(alias)
                other = lineage.aliases.get(key)
                if other is not None and other != name:
                    raise ConfigError(f"lineage.yaml: alias {alias!r} names {other!r} and {name!r}")
                lineage.aliases[key] = name
    return lineage


def parse_covered(doc: dict[str, Any]) -> Covered:
    covered = Covered()
    for entry in doc.get("entities") or []:
        name = str(entry["name"])
        affiliates = tuple(str(a["name"]) for a in entry.get("affiliates") or [])
        covered.entities[name] = CoveredEntity(
            name=name,
            lists=tuple(str(x) for x in entry.get("lists") or []),
            affiliates=affiliates,
            source=str(entry.get("source", "")),
        )
        for affiliate in affiliates:
            covered.affiliates[affiliate] = name
    return covered


@functools.cache
def lineage() -> Lineage:
    """The shipped lineage, read once."""
    return parse_lineage(_read("lineage.yaml"))


@functools.cache
def covered() -> Covered:
    """The shipped covered-vendor list, read once."""
    return parse_covered(_read("covered.yaml"))
