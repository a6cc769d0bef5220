"""YAML loading that remembers where each mapping started, so that an error in a policy or a
register file can name the line a user has to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UsageError


class LineDict(dict[str, Any]):
    """A mapping from a YAML file, with the 1-based line it starts on."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be plain text", key_node.start_mark
            )
        mapping[str(key)] = loader.construct_object(value_node, deep=True)
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, source: str | Path, error: type[UsageError] = ConfigError) -> Any:
    """Parse YAML text; mappings come back as :class:`LineDict`. A syntax error becomes
    ``error`` naming the file and line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "somewhere"
        raise error(f"{source}, {where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from None


def line_of(value: Any) -> int:
    """The line a mapping started on, or 0 when unknown."""
    return value.line if isinstance(value, LineDict) else 0


def safe_load_fast(text: str) -> Any:
    """``yaml.safe_load``, through libyaml when PyYAML has it: the signature files took about
    0.5 s to read in pure Python against 0.06 s (issue 15: a one-host scan pays it). A document
    libyaml refuses is read again by the pure-Python loader, so that errors say exactly what
    they said before."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        try:
            return yaml.load(text, Loader=loader)  # noqa: S506 - libyaml's SafeLoader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)
