"""Offline identification of evidence gathered elsewhere (``camaudit identify``, DESIGN.md section 4).

Input, one JSON object per line::

    {"id": "any string", "observations": [{"kind": "http_server", "value": "App-webs/", "port": 80}]}

Output, one object per input line in the same order: the contract's fields, or
``{"id": ..., "error": ...}`` for a line that cannot be used (processing goes on). Observation
kinds camaudit does not know are skipped and named in ``ignored_kinds``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ..model import OBSERVATION_KINDS, Identity, Observation, bounded_text
from .engine import Engine, default_engine
from .nmap_xml import NmapHost

#: Observations need an address; offline input has none, so one placeholder stands in.
PLACEHOLDER_ADDRESS = "0.0.0.0"
#: Longest input line read (a line holds one device's evidence).
MAX_LINE_CHARS = 4 * 1024 * 1024
#: Most observations read for one device.
MAX_OBSERVATIONS = 2000

CONTRACT_FIELDS = (
    "vendor", "brand", "device_type", "model", "firmware", "serial",
    "confidence", "covered", "advisories", "signatures",
)


class LineError(ValueError):
    """A line that cannot be used; the message is what the output line says."""


def identity_record(record_id: Any, identity: Identity) -> dict[str, Any]:
    """The contract's output object for one device (plus ``conflicts`` and the per-field
    evidence ``fields``, both additive)."""
    doc = identity.to_json()
    out: dict[str, Any] = {"id": record_id}
    for name in CONTRACT_FIELDS:
        out[name] = doc[name]
    out["conflicts"] = doc["conflicts"]
    out["fields"] = doc["fields"]
    return out


def parse_line(line: str) -> tuple[Any, list[Observation], list[str]]:
    """(id, observations, ignored kinds) from one input line; :class:`LineError` if unusable."""
    if len(line) > MAX_LINE_CHARS:
        raise LineError(f"line longer than {MAX_LINE_CHARS} characters")
    try:
        doc = json.loads(line)
    except ValueError as exc:  # also a number too long to convert
        raise LineError(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise LineError("not valid JSON: nested too deeply") from exc
    if not isinstance(doc, dict):
        raise LineError("expected a JSON object with 'id' and 'observations'")
    raw = doc.get("observations")
    if not isinstance(raw, list):
        raise LineError("'observations' must be a list")
    if len(raw) > MAX_OBSERVATIONS:
        raise LineError(f"more than {MAX_OBSERVATIONS} observations")
    observations: list[Observation] = []
    ignored: list[str] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise LineError(f"observation {index} is not an object")
        kind, value, port = item.get("kind"), item.get("value"), item.get("port")
        if not isinstance(kind, str):
            raise LineError(f"observation {index} has no 'kind' string")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise LineError(f"observation {index} has no 'value' string")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
            raise LineError(f"observation {index} has an invalid 'port'")
        if kind not in OBSERVATION_KINDS:
            if kind not in ignored:
                ignored.append(kind)
            continue
        observations.append(Observation(PLACEHOLDER_ADDRESS, kind, bounded_text(str(value)), port, source="input"))
    return doc.get("id"), observations, ignored


def _salvage_id(line: str) -> Any:
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return doc.get("id") if isinstance(doc, dict) else None


def identify_lines(lines: Iterable[str], engine: Engine | None = None) -> Iterator[dict[str, Any]]:
    """One output object per non-blank input line, in order."""
    engine = engine or default_engine()
    for line in lines:
        if not line.strip():
            continue
        try:
            record_id, observations, ignored = parse_line(line)
        except LineError as exc:
            yield {"id": _salvage_id(line), "error": str(exc)}
            continue
        out = identity_record(record_id, engine.identify(observations))
        if ignored:
            out["ignored_kinds"] = ignored
        yield out


def identify_stream(stream: IO[bytes], engine: Engine | None = None) -> Iterator[dict[str, Any]]:
    """:func:`identify_lines` over a byte stream (a file or standard input, read alike).

    The bytes are decoded as UTF-8 leniently: a byte that is not UTF-8 becomes U+FFFD in its
    own line and the other lines go on. Evidence comes from anywhere, and the decoding must not
    depend on the caller's locale or PYTHONIOENCODING.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace")
    try:
        yield from identify_lines(text, engine)
    finally:
        text.detach()  # the caller owns the stream: leave it open


def identify_nmap_hosts(hosts: Iterable[NmapHost], engine: Engine | None = None) -> Iterator[dict[str, Any]]:
    """One output object per nmap host, id = the host address."""
    engine = engine or default_engine()
    for host in hosts:
        yield identity_record(host.address, engine.identify(host.observations))
