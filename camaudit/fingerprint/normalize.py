"""Turn one observation value into the text parts that signatures match (pure, no I/O).

Evidence arrives in many shapes: a bare ``Server`` value, a whole header block, an nmap match
fragment (``Server: App-webs/``), a SADP XML reply, a DHIP JSON body with or without its binary
header, an OUI registry line instead of a MAC. Signatures should not care: each kind gets one
normalised ``value`` part, and structured kinds (XML, JSON, ``key=value``) are flattened into
``path=value`` lines so that a regex reads the same fields whatever the whitespace, the
attribute order or the JSON nesting.

A response-shaped value (``HTTP/...`` or ``RTSP/...`` status line, or ``Name: value`` header
lines) is also *expanded*: its ``Server`` and ``WWW-Authenticate`` headers, title and body become
derived observations of their own kinds, so that one full capture is read by every signature
file that knows a part of it. Derived items remember the observation they came from.

Every input is untrusted: parsing is bounded, XML goes through defusedxml, and a parse failure
falls back to a lenient scrape instead of raising.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from defusedxml import ElementTree as SafeET

from . import oui

#: Structured values larger than this are scraped, not parsed (a device controls the size).
MAX_PARSE_CHARS = 64 * 1024
#: At most this many flattened fields per value.
MAX_FIELDS = 400
#: Deepest XML/JSON nesting flattened; real device replies nest a handful of levels, and a
#: hostile reply nested thousands deep must not exhaust the interpreter's recursion limit.
MAX_DEPTH = 32
#: Longest name kept per path segment, and the longest flattened text: a path repeats its
#: parents' names on every line, so unbounded names would multiply the text regexes scan.
MAX_NAME_CHARS = 64
MAX_FLAT_CHARS = 32 * 1024

# Lines are stripped before matching, so the value runs to the end of the line: a lazy value
# followed by ``\s*$`` backtracks quadratically over a long run of inner whitespace.
_HEADER_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,63}):[ \t]*(.*)$")
_STATUS_LINE = re.compile(r"^(?:HTTP|RTSP)/\d\.\d\s+\d{3}")
# Hostile text is scanned in linear time: no scan may run past the next ``<`` of another tag.
_TITLE_OPEN = re.compile(r"<title", re.I)
_TITLE_CLOSE = re.compile(r"</title\s*>", re.I)
_TAG = re.compile(r"<[^<>]*>")
_WS = re.compile(r"\s+")
_XML_LEAF = re.compile(r"<([A-Za-z_][\w.:-]{0,127})(?:\s[^<>]*)?>([^<]*)</\1\s*>")
_XML_FIRST_TAG = re.compile(r"<([A-Za-z_][\w.:-]*)[\s>]")
_XMLNS = re.compile(r"""\sxmlns(?::\w+)?\s*=\s*["']([^"']+)["']""")
_JSON_PAIR = re.compile(r'"([\w.-]{1,64})"\s*:\s*(?:"((?:[^"\\]|\\.){0,512})"|(-?\d[\w.]*|true|false))')
_SCOPES = re.compile(r"<(?:\w+:)?Scopes(?:\s[^<>]*)?>([^<]*)</(?:\w+:)?Scopes\s*>")
_TYPES = re.compile(r"<(?:\w+:)?Types(?:\s[^<>]*)?>([^<]*)</(?:\w+:)?Types\s*>")
_XADDRS = re.compile(r"<(?:\w+:)?XAddrs(?:\s[^<>]*)?>([^<]*)</(?:\w+:)?XAddrs\s*>")

#: Kinds whose value is a response header value, and the header each one names.
_HEADER_KINDS = {
    "http_server": "server",
    "rtsp_server": "server",
    "http_www_authenticate": "www-authenticate",
    "rtsp_www_authenticate": "www-authenticate",
}
_XML_KINDS = frozenset({"sadp", "isapi_device_info", "upnp"})
# Free-text fields that may name a maker (issue 14 item 2), offered as parts of their own so a
# signature reads them whatever their place, spacing or case in the value.
# A lookbehind, not a consumed separator plus ``\s*``: that rescans a run of whitespace from
# every position in it (quadratic on hostile text).
_DN_NAME = re.compile(r"""(?i)(?<![a-z0-9])(?:O|OU|CN)[ \t]*=[ \t]*("[^"\n]{0,256}"|[^,;/+\n]{0,256})""")
_SDP_NAME = re.compile(r"(?m)^[si][ \t]*=[ \t]*([^\r\n]{0,256})")
_REALM = re.compile(r"""(?i)\brealm\s*=\s*(?:"([^"\n]{0,256})"|([^,\s"]{1,256}))""")
_JSON_KINDS = frozenset({"dhip", "onvif_device_info", "isapi_device_info"})


@dataclass(frozen=True, slots=True)
class Item:
    """One matchable piece of evidence: a kind, its parts, and whether it was derived."""

    kind: str
    parts: dict[str, str]
    derived: bool = False


# --------------------------------------------------------------------------- public API


def parts_for(kind: str, value: str) -> dict[str, str]:
    """The parts one value offers to signatures of ``kind``: always ``value`` and ``raw``."""
    raw = value
    parts: dict[str, str] = {"raw": raw}
    if kind in _HEADER_KINDS:
        headers = header_values(raw, _HEADER_KINDS[kind])
        parts["value"] = headers[0] if headers else raw.strip()
        if _HEADER_KINDS[kind] == "www-authenticate":
            add_realm(parts)
    elif kind == "tls_cert":
        parts["value"] = raw.strip()
        parts["names"] = "\n".join(v.strip().strip('"').strip() for v in _DN_NAME.findall(raw[:MAX_PARSE_CHARS]))
    elif kind == "mac":
        parts.update(oui.mac_parts(raw))
    elif kind == "http_title":
        parts["value"] = clean_title(raw)
    elif kind in ("favicon_mmh3", "favicon_md5"):
        parts["value"] = raw.strip().lower()
    elif kind == "onvif_probe_match":
        parts["value"] = onvif_scopes_text(raw)
    elif kind == "dahua_cgi":
        parts["value"] = "\n".join(
            line.strip() for line in raw.replace("\r", "\n").split("\n") if line.strip()
        )
    elif kind in _XML_KINDS or kind in _JSON_KINDS:
        parts["value"] = flatten_structured(raw, kind)
    elif kind in ("http_headers", "rtsp_response", "http_body"):
        parts["value"] = raw
        if kind == "rtsp_response":
            parts["sdp_names"] = "\n".join(v.strip() for v in _SDP_NAME.findall(raw[:MAX_PARSE_CHARS]))
    else:
        parts["value"] = raw.strip()
    return parts


def expand(kind: str, value: str) -> Iterator[Item]:
    """The item for the observation itself, then items derived from a response inside it."""
    yield Item(kind, parts_for(kind, value))
    family = "rtsp" if kind.startswith("rtsp") else "http" if kind.startswith("http") else None
    if family is None:
        return
    status, headers, body = split_response(value)
    if not headers and status is None:
        if kind == "http_body":
            title = find_title(value[:MAX_PARSE_CHARS])
            if title is not None:
                yield Item("http_title", parts_for("http_title", title), True)
        return
    seen_first = {name: False for name in ("server", "www-authenticate")}
    for name, header_value in headers:
        derived_kind = {"server": f"{family}_server", "www-authenticate": f"{family}_www_authenticate"}
        if name in derived_kind:
            target = derived_kind[name]
            # The observation's own kind already matched its first such header.
            if target == kind and not seen_first[name]:
                seen_first[name] = True
                continue
            derived = {"raw": header_value, "value": header_value}
            if name == "www-authenticate":
                add_realm(derived)
            yield Item(target, derived, True)
    whole_kind = "rtsp_response" if family == "rtsp" else "http_headers"
    if kind != whole_kind and status is not None:
        yield Item(whole_kind, parts_for(whole_kind, value), True)
    if family == "http" and body:
        if kind != "http_body":
            yield Item("http_body", parts_for("http_body", body), True)
        title = find_title(body[:MAX_PARSE_CHARS])
        if title is not None and kind != "http_title":
            yield Item("http_title", parts_for("http_title", title), True)


# --------------------------------------------------------------------------- helpers


def split_response(text: str) -> tuple[str | None, list[tuple[str, str]], str]:
    """Split a status line, header lines (lower-cased names) and body, leniently.

    Works on whole responses and on header fragments without a status line (nmap match
    fragments); returns no headers when the text does not look like a header block.
    """
    text = text[:MAX_PARSE_CHARS]
    head, sep, body = text.partition("\r\n\r\n")
    if not sep:
        head, sep, body = text.partition("\n\n")
    lines = head.replace("\r\n", "\n").split("\n")
    status = None
    if lines and _STATUS_LINE.match(lines[0].strip()):
        status = lines.pop(0).strip()
    headers: list[tuple[str, str]] = []
    for line in lines:
        match = _HEADER_LINE.match(line.strip())
        if match:
            headers.append((match.group(1).lower(), match.group(2).rstrip()))
    if status is None and not headers:
        return None, [], text
    return status, headers, body


def add_realm(parts: dict[str, str]) -> None:
    """A challenge's realm as part ``realm`` (quoted or not, any case of the parameter name)."""
    found = _REALM.search(parts["value"][:MAX_PARSE_CHARS])
    if found:
        parts["realm"] = (found.group(1) if found.group(1) is not None else found.group(2)).strip()


def header_values(text: str, name: str) -> list[str]:
    """Values of header ``name`` when ``text`` holds header lines, else an empty list."""
    if ":" not in text:
        return []
    _status, headers, _body = split_response(text)
    return [v for n, v in headers if n == name]


def find_title(text: str) -> str | None:
    """The text between the first ``<title...>`` and the ``</title`` after it, else None.

    Plain searches, not a regex: a lazy ``<title>(.*?)</title>`` rescans the rest of the text
    from every ``<title>`` of a hostile page that never closes one (quadratic).
    """
    start = _TITLE_OPEN.search(text)
    if start is None:
        return None
    open_end = text.find(">", start.end())
    if open_end < 0:
        return None
    close = _TITLE_CLOSE.search(text, open_end)
    if close is None:
        return None
    return text[open_end + 1 : close.start()]


def clean_title(text: str) -> str:
    """``<title>WEB SERVICE</title>`` and ``WEB SERVICE`` both become ``WEB SERVICE``."""
    title = find_title(text)
    if title is not None:
        text = title
    text = _TAG.sub("", text)
    return _WS.sub(" ", html.unescape(text)).strip()


def onvif_scopes_text(text: str) -> str:
    """Scopes (URL-decoded, one per line), then ``types=`` and ``xaddrs=`` lines when present.

    Accepts a whole ProbeMatch XML or just its space separated Scopes string.
    """
    text = text[:MAX_PARSE_CHARS]
    scopes_match = _SCOPES.search(text)
    scopes = scopes_match.group(1) if scopes_match else ("" if "<" in text else text)
    lines = [urllib.parse.unquote(s) for s in scopes.split() if s]
    for label, pattern in (("types", _TYPES), ("xaddrs", _XADDRS)):
        found = pattern.search(text)
        if found:
            lines.append(f"{label}={_WS.sub(' ', found.group(1)).strip()}")
    return "\n".join(lines)


def flatten_structured(text: str, kind: str) -> str:
    """XML or JSON flattened into ``path=value`` lines (``@xmlns=...`` for XML namespaces)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    brace = stripped.find("{")
    angle = stripped.find("<")
    if angle >= 0 and (brace < 0 or angle < brace):
        return _flatten_xml(stripped[angle:])
    if brace >= 0:
        # A JSON escape such as "\udfff" decodes to a lone surrogate, which no UTF-8 writer (the
        # store, the reports, the CLI) can encode: such a character becomes "?" here.
        return _flatten_json(stripped[brace:]).encode("utf-8", "replace").decode("utf-8")
    return "\n".join(line.strip() for line in stripped.splitlines() if line.strip())


def _flatten_xml(text: str) -> str:
    lines: list[str] = []
    for ns in dict.fromkeys(_XMLNS.findall(text[:4096])):
        lines.append(f"@xmlns={ns}")
    if len(text) <= MAX_PARSE_CHARS:
        try:
            root = SafeET.fromstring(text)
        except Exception:  # noqa: BLE001 - any parse failure (malformed, hostile, too deep) -> scrape
            root = None
        if root is not None:
            _walk_xml(root, "", lines, 0)
            return "\n".join(lines[: MAX_FIELDS + 8])[:MAX_FLAT_CHARS]
    first = _XML_FIRST_TAG.search(text)
    root_name = _local(first.group(1))[:MAX_NAME_CHARS] if first else "?"
    for tag, value in _XML_LEAF.findall(text[:MAX_PARSE_CHARS])[:MAX_FIELDS]:
        lines.append(f"{root_name}.{_local(tag)[:MAX_NAME_CHARS]}={_one_line(html.unescape(value))}")
    return "\n".join(lines)[:MAX_FLAT_CHARS]


def _walk_xml(element: Any, prefix: str, lines: list[str], depth: int) -> None:
    if len(lines) > MAX_FIELDS or depth > MAX_DEPTH:
        return
    name = _local(element.tag)[:MAX_NAME_CHARS]
    path = f"{prefix}.{name}" if prefix else name
    for attr, value in element.attrib.items():
        lines.append(f"{path}@{_local(attr)[:MAX_NAME_CHARS]}={_one_line(value)}")
    children = list(element)
    if not children:
        lines.append(f"{path}={_one_line(element.text or '')}")
        return
    for child in children:
        _walk_xml(child, path, lines, depth + 1)


def _flatten_json(text: str) -> str:
    lines: list[str] = []
    if len(text) <= MAX_PARSE_CHARS:
        try:
            doc, _end = json.JSONDecoder().raw_decode(text)
        except (ValueError, RecursionError):  # malformed, too deep, or a number too long to convert
            doc = None
        if isinstance(doc, dict | list):
            _walk_json(doc, "", lines, 0)
            return "\n".join(lines)[:MAX_FLAT_CHARS]
    for key, str_value, bare in _JSON_PAIR.findall(text[:MAX_PARSE_CHARS])[:MAX_FIELDS]:
        lines.append(f"{key}={_one_line(str_value or bare)}")
    return "\n".join(lines)[:MAX_FLAT_CHARS]


def _walk_json(node: Any, path: str, lines: list[str], depth: int) -> None:
    if len(lines) > MAX_FIELDS or depth > MAX_DEPTH:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            name = str(key)[:MAX_NAME_CHARS]
            _walk_json(value, f"{path}.{name}" if path else name, lines, depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node[:50]):
            _walk_json(value, f"{path}[{index}]", lines, depth + 1)
    elif node is None:
        lines.append(f"{path}=")
    elif isinstance(node, bool):
        lines.append(f"{path}={'true' if node else 'false'}")
    else:
        lines.append(f"{path}={_one_line(str(node))}")


def _local(tag: str) -> str:
    """``{ns}Name`` and ``ns:Name`` become ``Name``."""
    return str(tag).rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _one_line(value: str) -> str:
    return _WS.sub(" ", value).strip()[:1024]
