"""A small JSON Schema checker for the subset that signatures/schema.json uses.

signatures/schema.json is a standard draft 2020-12 schema, so editors and other tools can use it;
this module checks the keywords it relies on (type, enum, const, properties, required,
additionalProperties, items, minItems, maxItems, minLength, pattern, minimum, maximum,
exclusiveMinimum, exclusiveMaximum, anyOf, oneOf, $ref to #/$defs) without another dependency.
Messages name the path of the offending value, e.g. ``signatures[3].certainty: 1.5 > 0.99``.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def validate(doc: Any, schema: dict[str, Any]) -> list[str]:
    """Every violation of ``schema`` in ``doc``, as readable one-line messages."""
    errors: list[str] = []
    _check(doc, schema, schema, "", errors)
    return errors


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str, errors: list[str]) -> None:
    where = path or "(top)"
    if "$ref" in schema:
        ref = str(schema["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        _check(value, target, root, path, errors)
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, n) for n in names):
            errors.append(f"{where}: expected {' or '.join(names)}, got {type(value).__name__}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: must be {schema['const']!r}")
    for alt_key in ("anyOf", "oneOf"):
        if alt_key in schema:
            passing = 0
            for alternative in schema[alt_key]:
                trial: list[str] = []
                _check(value, alternative, root, path, trial)
                passing += not trial
            if passing == 0 or (alt_key == "oneOf" and passing > 1):
                errors.append(f"{where}: does not fit any allowed form")
    if isinstance(value, dict):
        _check_object(value, schema, root, path, errors)
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: needs at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: at most {schema['maxItems']} item(s) allowed")
        if "items" in schema:
            for index, item in enumerate(value):
                _check(item, schema["items"], root, f"{path}[{index}]", errors)
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    elif _is_type(value, "number"):
        number = float(value)
        for key, sign in (("minimum", "<"), ("maximum", ">"), ("exclusiveMinimum", "<="), ("exclusiveMaximum", ">=")):
            if key not in schema:
                continue
            bound = float(schema[key])
            broken = {"<": number < bound, ">": number > bound, "<=": number <= bound, ">=": number >= bound}[sign]
            if broken:
                errors.append(f"{where}: {value} {sign} {schema[key]}")


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str,
                  errors: list[str]) -> None:
    where = path or "(top)"
    for key in schema.get("required", []):
        if key not in value:
            errors.append(f"{where}: missing required field {key!r}")
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        child = f"{path}.{key}" if path else str(key)
        if key in properties:
            _check(item, properties[key], root, child, errors)
        elif extra is False:
            errors.append(f"{where}: unknown field {key!r}")
        elif isinstance(extra, dict):
            _check(item, extra, root, child, errors)
