"""Advisories (CVE ids) a device's firmware falls under, from signatures/advisories.yaml.

Conservative by rule: a CVE is claimed only when the model matches the advisory's series AND the
firmware version or build date falls in its range. A firmware string that cannot be read, or a
version sitting on a range boundary without the build that would settle it, claims nothing.

Three range forms, from what the sources give (reference/fingerprinting.md section 7):

* ``versions: {from, to}``: Hikvision "V5.4.0 build 160530" style, inclusive on both ends;
* ``build_before: YYYY-MM-DD``: Dahua build date (``2.800.0000016.0.R,build:2020-06-05``);
* ``platforms: {IPC_G5: 5.5.113_210317, ...}``: Hikvision platform firmware names
  (``IPC_G5_EN_STD_5.5.113_210317``), last vulnerable build per platform, inclusive.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import ConfigError
from ..resources import signatures_dir
from ..yamllines import safe_load_fast

_HIK_VERSION = re.compile(r"V?(\d+)\.(\d+)\.(\d+)(?:\s*build\s*(\d{6}))?", re.I)
_PLATFORM = re.compile(r"\b(IPC|IPD)[A-Z]?_([A-Z]\d)_[A-Z]{2}_[A-Z]+_(\d+)\.(\d+)\.(\d+)_(\d{6})\b")
_BUILD_DATE = re.compile(r"build\s*(?:date)?\s*[:=]?\s*(\d{4})[-.](\d{2})[-.](\d{2})", re.I)

Version = tuple[int, int, int, int | None]


def parse_version(text: str) -> Version | None:
    """``V5.6.2build 190701`` -> (5, 6, 2, 190701); ``V5.5.800`` -> (5, 5, 800, None)."""
    match = _HIK_VERSION.search(text)
    if not match:
        return None
    build = int(match.group(4)) if match.group(4) else None
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), build


def parse_build_date(text: str) -> _dt.date | None:
    """The build date a Dahua firmware string carries (``...,build:2020-06-05``), if any."""
    match = _BUILD_DATE.search(text)
    if not match:
        return None
    try:
        return _dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def parse_platform(text: str) -> tuple[str, Version] | None:
    """``IPC_G5_EN_STD_5.5.113_210317`` -> ("IPC_G5", (5, 5, 113, 210317))."""
    match = _PLATFORM.search(text)
    if not match:
        return None
    family, platform = match.group(1), match.group(2)
    version = (int(match.group(3)), int(match.group(4)), int(match.group(5)), int(match.group(6)))
    return f"{family}_{platform}", version


def _compare(a: Version, b: Version) -> int | None:
    """-1, 0, 1; None when only the missing build could decide."""
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    if a[3] is None or b[3] is None:
        return 0 if a[3] is None and b[3] is None else None
    return (a[3] > b[3]) - (a[3] < b[3])


@dataclass(slots=True)
class Rule:
    models: re.Pattern[str]
    version_from: Version | None = None
    version_to: Version | None = None
    version_below: Version | None = None
    build_before: _dt.date | None = None
    platforms: dict[str, Version] = field(default_factory=dict)
    since_build: int | None = None
    heuristic: bool = False

    def applies(self, model: str | None, firmware: str | None) -> bool:
        if not firmware:
            return False
        if self.platforms:
            return self._applies_platform(firmware)
        if not model or not self.models.search(model):
            return False
        if self.build_before is not None:
            built = parse_build_date(firmware)
            return built is not None and built < self.build_before
        version = parse_version(firmware)
        if version is None:
            return False
        if self.version_below is not None:
            floor = self.version_from
            if floor is not None and (_compare(version, floor) or 0) < 0:
                return False
            return version[:3] < self.version_below[:3]
        if self.version_from is None or self.version_to is None:
            return False
        above, below = _compare(version, self.version_from), _compare(version, self.version_to)
        return above is not None and below is not None and above >= 0 and below <= 0

    def _applies_platform(self, firmware: str) -> bool:
        found = parse_platform(firmware)
        if found is None or found[0] not in self.platforms:
            return False
        name, version = found
        if self.since_build is not None and (version[3] or 0) < self.since_build:
            return False
        result = _compare(version, self.platforms[name])
        return result is not None and result <= 0


@dataclass(slots=True)
class Advisory:
    id: str
    vendor: str
    title: str
    rules: list[Rule]
    examples: list[dict[str, Any]] = field(default_factory=list)
    counter_examples: list[dict[str, Any]] = field(default_factory=list)

    def applies(self, vendor: str | None, model: str | None, firmware: str | None) -> bool:
        if vendor != self.vendor:
            return False
        return any(rule.applies(model, firmware) for rule in self.rules)


def _version(text: Any, where: str) -> Version:
    parsed = parse_version(str(text))
    if parsed is None:
        raise ConfigError(f"advisories.yaml: {where}: cannot read version {text!r}")
    return parsed


def _rule(spec: dict[str, Any], where: str) -> Rule:
    rule = Rule(models=re.compile(str(spec.get("models", ".")), re.I), heuristic=bool(spec.get("heuristic")))
    versions = spec.get("versions") or {}
    if "from" in versions:
        rule.version_from = _version(versions["from"], where)
    if "to" in versions:
        rule.version_to = _version(versions["to"], where)
    if "below" in versions:
        rule.version_below = _version(versions["below"], where)
    if "build_before" in spec:
        rule.build_before = _dt.date.fromisoformat(str(spec["build_before"]))
    for name, last in (spec.get("platforms") or {}).items():
        version = parse_version(str(last).replace("_", " build "))
        if version is None:
            raise ConfigError(f"advisories.yaml: {where}: cannot read platform version {last!r}")
        rule.platforms[str(name)] = version
    if "since_build" in spec:
        rule.since_build = int(spec["since_build"])
    if not (rule.platforms or rule.build_before or rule.version_below or (rule.version_from and rule.version_to)):
        raise ConfigError(f"advisories.yaml: {where}: a rule needs a version, build-date or platform range")
    return rule


def parse_advisories(doc: dict[str, Any]) -> list[Advisory]:
    result = []
    for entry in doc.get("advisories") or []:
        cve = str(entry["id"])
        rules = [_rule(r, f"{cve} rule {i + 1}") for i, r in enumerate(entry.get("rules") or [])]
        if not rules:
            raise ConfigError(f"advisories.yaml: {cve}: no rules")
        result.append(
            Advisory(
                id=cve,
                vendor=str(entry["vendor"]),
                title=str(entry.get("title", "")),
                rules=rules,
                examples=list(entry.get("examples") or []),
                counter_examples=list(entry.get("counter_examples") or []),
            )
        )
    return result


def check_examples(advisories: list[Advisory]) -> list[tuple[str, str]]:
    """(advisory id, problem) for every example not claimed or counter-example claimed."""
    problems = []
    for advisory in advisories:
        if not advisory.examples:
            problems.append((advisory.id, "needs at least one example"))
        for label, wanted in (("examples", True), ("counter_examples", False)):
            for example in getattr(advisory, label):
                got = advisory.applies(example.get("vendor", advisory.vendor), example.get("model"),
                                       example.get("firmware"))
                if got != wanted:
                    problems.append((advisory.id, f"{label[:-1].replace('_', '-')} {example} "
                                                  f"{'not claimed' if wanted else 'claimed'}"))
    return problems


@functools.cache
def advisories() -> tuple[Advisory, ...]:
    """The shipped advisories, read once."""
    path = signatures_dir() / "advisories.yaml"
    try:
        doc = safe_load_fast(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read advisories.yaml: {exc}") from exc
    return tuple(parse_advisories(doc))


def advisories_for(vendor: str | None, model: str | None, firmware: str | None) -> list[str]:
    """CVE ids whose model series and firmware range both match, sorted."""
    if not firmware or not vendor:
        return []
    return sorted({a.id for a in advisories() if a.applies(vendor, model, firmware)})
