"""The findings policy: rules, read from YAML (``config/policy.yaml``), that turn what a scan
established about each device, declared asset and segment into findings with severities.

Users change severities and add rules by editing a copy of the file and passing it with
``--policy``; no code. A file that cannot be used raises :class:`ConfigError` naming the rule
and the line.

A rule::

    - id: covered-egress-open          # unique, kebab-case
      subject: device                  # device (default) | asset | segment
      severity: critical               # info | low | medium | high | critical
      when: {covered: true, verdict: OPEN}
      title: {en: "...", nl: "..."}    # or one string
      detail: {en: "{maker} at {address} ...", nl: "..."}   # {fact} placeholders
      status: fail                     # OCSF compliance status: fail | warning | pass
      standards: ["NDAA FY2019 s.889"] # optional, carried into the OCSF export
      remediation: {en: "...", nl: "..."}

``when`` maps fact names to a condition: a value (equal, case-insensitive), a list (any of),
or one operator: ``{not: value-or-list}``, ``{min: n}``, ``{max: n}``, ``{contains: text}``.
All conditions must hold; an empty ``when`` matches every subject of its kind.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .model.findings import SEVERITIES as SEVERITIES
from .model.findings import severity_rank as severity_rank
from .resources import config_dir
from .yamllines import line_of, load_yaml

SUBJECT_KINDS: tuple[str, ...] = ("device", "asset", "segment")
STATUSES: tuple[str, ...] = ("fail", "warning", "pass")
LANGUAGES: tuple[str, ...] = ("en", "nl")
OPERATORS: tuple[str, ...] = ("not", "min", "max", "contains")

#: The facts each kind of subject offers to conditions and to detail templates.
FACTS: dict[str, tuple[str, ...]] = {
    "device": (
        "address", "device_id", "mac", "maker", "vendor", "brand", "model", "firmware", "serial",
        "device_type", "confidence", "identified", "covered", "covered_confirmed", "internet_config", "internet_settings", "advisories", "has_advisories",
        "verdict", "verdict_source", "verdict_text", "qualifiers", "missing", "exposed", "register", "asset_id",
        "declared_maker", "declared_brand", "maker_mismatch", "mismatch", "location", "department",
        "segment",
    ),
    "asset": (
        "asset_id", "address", "mac", "serial", "declared_maker", "declared_brand", "declared_model",
        "location", "purpose", "department", "segment", "dpia_ref", "procurement_ref", "register",
        "declared", "identifiers",
    ),
    "segment": ("segment", "verdict", "verdict_text", "qualifiers", "missing", "exposed", "devices", "covered_devices"),
}  # fmt: skip

_RULE_KEYS = frozenset({"id", "subject", "severity", "when", "title", "detail", "status", "standards", "remediation"})
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")



@dataclass(frozen=True, slots=True)
class Condition:
    fact: str
    op: str  # eq | in | not | min | max | contains
    value: Any

    def holds(self, facts: Mapping[str, Any]) -> bool:
        actual = facts.get(self.fact)
        if self.op == "eq":
            return _equal(actual, self.value)
        if self.op == "in":
            return any(_equal(actual, v) for v in self.value)
        if self.op == "not":
            values = self.value if isinstance(self.value, list) else [self.value]
            return not any(_equal(actual, v) for v in values)
        if self.op == "contains":
            if isinstance(actual, list | tuple):
                return any(_equal(item, self.value) for item in actual)
            return str(self.value).lower() in str(actual or "").lower()
        if not isinstance(actual, int | float) or isinstance(actual, bool):
            return False
        return bool(actual >= self.value if self.op == "min" else actual <= self.value)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return bool(actual) is expected if isinstance(expected, bool) else False
    if expected is None:
        return actual in (None, "")
    if isinstance(expected, str) and isinstance(actual, str):
        return actual.lower() == expected.lower()
    return bool(actual == expected)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    subject: str
    severity: str
    conditions: tuple[Condition, ...]
    title: dict[str, str]
    detail: dict[str, str]
    status: str = "fail"
    standards: tuple[str, ...] = ()
    remediation: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return all(condition.holds(facts) for condition in self.conditions)

    def text(self, which: str, facts: Mapping[str, Any], lang: str = "en") -> str:
        """The rule's title, detail or remediation in ``lang`` (English when not translated),
        with the subject's facts filled in."""
        texts: dict[str, str] = getattr(self, which)
        template = texts.get(lang) or texts.get("en") or ""
        return _tidy(template.format_map(_Facts(facts)))


def _tidy(text: str) -> str:
    """Close the gaps that empty facts leave: doubled spaces, a space before punctuation,
    empty brackets."""
    text = " ".join(text.split())
    text = re.sub(r"\(\s*[,;]?\s*\)", "", text)
    text = re.sub(r"\(\s*[,;]?\s*", "(", text)
    text = re.sub(r"\s+([,.;:)])", r"\1", text)
    text = re.sub(r"([,;])(?=[,;)])", "", text)
    return " ".join(text.split())


class _Facts(dict[str, Any]):
    def __init__(self, facts: Mapping[str, Any]) -> None:
        super().__init__({k: _display(v) for k, v in facts.items()})

    def __missing__(self, key: str) -> str:
        return ""


def _display(value: Any) -> str:
    """How a fact reads inside a sentence."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_display(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_display(v)}" for k, v in value.items())
    return str(value)


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]
    source: str = ""
    #: sha256 of the policy text: an assessment names the policy it applied by this.
    content_hash: str = ""

    def for_subject(self, kind: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.subject == kind]

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


# -- loading -------------------------------------------------------------------------------


def default_policy_path() -> Traversable:
    return config_dir() / "policy.yaml"


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file (the shipped ``config/policy.yaml`` when ``path`` is None)."""
    if path is None:
        source: Traversable | Path = default_policy_path()
        name = "the default policy (config/policy.yaml)"
    else:
        source = Path(path)
        name = str(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no policy file at {name}") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the policy {name}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the policy {name}: {exc.strerror}") from None
    return parse_policy(text, name)


def parse_policy(text: str, source: str = "policy") -> Policy:
    document = load_yaml(text, source)
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise ConfigError(f"{source}: a policy is a mapping with a `rules:` list")
    version = document.get("version", 1)
    if version != 1:
        raise ConfigError(f"{source}, line {line_of(document)}: policy version {version!r} is not supported (1 is)")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(document["rules"], start=1):
        rule = _parse_rule(entry, index, source)
        if rule.id in seen:
            raise ConfigError(f"{source}, line {rule.line}: rule {rule.id!r} is defined twice (first at line {seen[rule.id]})")
        seen[rule.id] = rule.line
        rules.append(rule)
    return Policy(tuple(rules), source, hashlib.sha256(text.encode()).hexdigest())


def _parse_rule(entry: Any, index: int, source: str) -> Rule:
    line = line_of(entry)
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: rule {index} is not a mapping (id, severity, when, title, ...)")
    rule_id = entry.get("id")
    label = f"rule {rule_id!r}" if rule_id else f"rule {index}"

    def fail(message: str) -> ConfigError:
        return ConfigError(f"{source}, line {line}, {label}: {message}")

    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        raise fail("needs an `id` of lower-case letters, digits and hyphens")
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)}; a rule has {', '.join(sorted(_RULE_KEYS))}")
    subject = entry.get("subject", "device")
    if subject not in SUBJECT_KINDS:
        raise fail(f"subject {subject!r} is not one of {', '.join(SUBJECT_KINDS)}")
    severity = entry.get("severity")
    if severity not in SEVERITIES:
        raise fail(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    status = entry.get("status", "fail")
    if status not in STATUSES:
        raise fail(f"status {status!r} is not one of {', '.join(STATUSES)}")
    when = entry.get("when") or {}
    if not isinstance(when, dict):
        raise fail("`when` must map facts to conditions")
    conditions = tuple(_parse_condition(fact, value, subject, fail) for fact, value in when.items())
    title = _texts(entry.get("title"), "title", fail, required=True)
    detail = _texts(entry.get("detail"), "detail", fail, required=False) or title
    remediation = _texts(entry.get("remediation"), "remediation", fail, required=False)
    standards = entry.get("standards") or []
    if not isinstance(standards, list) or not all(isinstance(s, str) for s in standards):
        raise fail("`standards` must be a list of names")
    for which, texts in (("title", title), ("detail", detail), ("remediation", remediation)):
        for text in texts.values():
            _check_template(text, subject, f"{which}", fail)
    return Rule(
        id=rule_id, subject=subject, severity=severity, conditions=conditions, title=title, detail=detail,
        status=status, standards=tuple(standards), remediation=remediation, line=line,
    )


def _texts(value: Any, what: str, fail: Any, *, required: bool) -> dict[str, str]:
    if value is None:
        if required:
            raise fail(f"needs a `{what}`")
        return {}
    if isinstance(value, str):
        return {"en": value}
    if isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values()):
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise fail(f"`{what}` has language(s) {', '.join(unknown)}; known: {', '.join(LANGUAGES)}")
        if "en" not in value:
            raise fail(f"`{what}` needs an English (en) text")
        return dict(value)
    raise fail(f"`{what}` must be text, or a mapping of language to text")


def _check_template(text: str, subject: str, what: str, fail: Any) -> None:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise fail(f"the {what} text is not a valid template ({exc}); write {{{{ and }}}} for braces") from None
    for name in fields:
        if name not in FACTS[subject]:
            raise fail(f"the {what} text uses {{{name}}}, which a {subject} does not have; known: {', '.join(FACTS[subject])}")


def _parse_condition(fact: str, value: Any, subject: str, fail: Any) -> Condition:
    if fact not in FACTS[subject]:
        raise fail(f"`when` names {fact!r}, which a {subject} does not have; known: {', '.join(FACTS[subject])}")
    if isinstance(value, list):
        return Condition(fact, "in", tuple(value))
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in OPERATORS:
            raise fail(f"the condition on {fact!r} must be a value, a list, or one of {', '.join(OPERATORS)}")
        op, operand = next(iter(value.items()))
        if op in ("min", "max") and (not isinstance(operand, int | float) or isinstance(operand, bool)):
            raise fail(f"`{op}` on {fact!r} needs a number")
        return Condition(fact, op, operand)
    return Condition(fact, "eq", value)
