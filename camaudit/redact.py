"""Redaction of secrets in device replies before anything is stored, logged or reported.

Devices answer configuration reads with secrets in them: the Hik-Connect ``verificationCode``,
the Ehome ``key``, Dahua ``T2UServer.Key``/``Username``, DDNS, e-mail and FTP passwords
(reference/egress.md section 2.5). camaudit keeps a redacted copy as evidence and nothing else.

Redaction is by field *name*, in every shape a device uses: XML elements and attributes,
``key=value`` lines (Dahua CGI), JSON members, URL user-info and query parameters. It is
deliberately greedy: a field whose name merely ends like a secret is hidden too, because a
redacted harmless value costs little and a stored secret cannot be taken back.

We do not keep a hash of the raw reply either: the rest of a reply is predictable, so a hash
of a document holding a six-letter verification code can be brute-forced back to the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

#: A field is secret when its last name component (lower case, ``[n]`` indexes dropped) ends
#: with one of these. ``key`` covers Ehome ``key`` and Dahua ``Key``; ``username`` covers the
#: P2P/DDNS account names that pair with those secrets (egress.md section 2.5). A bare ``token``
#: is not listed: ONVIF uses ``token`` for every object identifier.
SECRET_SUFFIXES: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "key",
    "accesstoken",
    "authtoken",
    "verificationcode",
    "verifycode",
    "username",
    "user_name",
    "psk",
    "community",
)

#: Plural names hold several secrets: Dahua names its WLAN keys ``Keys[0]``..``Keys[3]``.
_PLURAL_SUFFIXES = tuple(f"{suffix}s" for suffix in SECRET_SUFFIXES)
# A secret suffix, maybe plural.
_SUFFIX_ALT = "(?:" + "|".join(re.escape(s) for s in SECRET_SUFFIXES) + ")s?"
# Name parts are bounded ({0,64}): unbounded lazy repeats made hostile input quadratic.
_NAME = r"[A-Za-z_][\w.\-]{0,64}"

# <ns:verificationCode attr="x">anything, even children or CDATA</ns:verificationCode>
_XML_ELEMENT = re.compile(
    rf"<(?P<tag>(?:{_NAME}:)?[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT}))(?P<attrs>\s[^<>]*?)?(?<!/)>"
    rf"(?P<value>.{{0,2048}}?)</(?P=tag)\s*>",
    re.IGNORECASE | re.DOTALL,
)
# An opening secret tag followed by text or a CDATA section that the element pattern did not
# take: a reply cut at the size limit, or a value longer than its 2 KiB bound. An unterminated
# CDATA section runs to the end of the text.
_XML_OPEN_TEXT = re.compile(
    rf"(?P<open><(?:{_NAME}:)?[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT})(?:\s[^<>]*?)?(?<!/)>)"
    r"(?P<value>[^<]+|<!\[CDATA\[.*?(?:\]\]>|\Z))",
    re.IGNORECASE | re.DOTALL,
)
_XML_ATTR = re.compile(
    rf"(?P<name>\b[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT}))(?P<eq>\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*')",
    re.IGNORECASE,
)
# <user name=x password=secret> (HTML-style, unquoted): looked for only inside a tag, since
# outside one ``name=value`` is a key=value line or a query parameter.
_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_UNQUOTED_ATTR = re.compile(
    rf"(?P<name>\b[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT}))(?P<eq>\s*=\s*)(?P<value>(?:[^\s\"'<>=`/]|/(?!>))+)",
    re.IGNORECASE,
)
# table.T2UServer.Key=..., table.DDNS[0].Password=...
_KV_LINE = re.compile(r"^(?P<lead>[ \t]{0,64})(?P<key>[\w.\[\]\-]{1,256})(?P<eq>[ \t]*=[ \t]*)(?P<value>[^\r\n]*)", re.MULTILINE)
_JSON_MEMBER = re.compile(
    rf"(?P<name>\"[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT})\")(?P<sep>\s*:\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|-?\d[\d.eE+\-]*|true|false)",
    re.IGNORECASE,
)
# A secret-named member whose value is an object or an array: the whole value goes.
_JSON_CONTAINER = re.compile(rf"(?P<name>\"[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT})\")(?P<sep>\s*:\s*)[\[{{]", re.IGNORECASE)
# What matters when finding where a JSON value ends: strings (an unterminated one runs to the
# end), brackets, and runs of anything else.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)|[\[\]{}]|[^"\[\]{}]+', re.DOTALL)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]{0,32}://)[^/\s@<>\"']{1,512}@")
_QUERY_PARAM = re.compile(
    rf"(?P<lead>[?&;](?:[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT}))=)(?P<value>[^&\s\"'<>#]*)", re.IGNORECASE
)
_INDEX = re.compile(r"\[\d*\]")


def is_secret_name(name: str) -> bool:
    """True when a field called ``name`` (any case, any dotted prefix) holds a secret."""
    last = _INDEX.sub("", name).rsplit(".", 1)[-1].rsplit(":", 1)[-1].lower()
    return bool(last) and last.endswith(SECRET_SUFFIXES + _PLURAL_SUFFIXES)


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every secret value replaced by ``[REDACTED]``.

    Works on XML, HTML, JSON, ``key=value`` text and free text alike. ``extra_secrets`` are
    literal values (the password camaudit used, for instance) removed wherever they appear,
    so that a device echoing a credential back cannot smuggle it into the store.
    """
    text = _XML_ELEMENT.sub(_replace_element, text)
    text = _XML_OPEN_TEXT.sub(lambda m: m.group("open") + REDACTED, text)
    text = _XML_ATTR.sub(lambda m: f'{m.group("name")}{m.group("eq")}"{REDACTED}"', text)
    text = _TAG.sub(_redact_unquoted_attrs, text)
    text = _redact_json_containers(text)
    text = _JSON_MEMBER.sub(lambda m: f'{m.group("name")}{m.group("sep")}"{REDACTED}"', text)
    text = _KV_LINE.sub(_replace_kv, text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _QUERY_PARAM.sub(lambda m: m.group("lead") + REDACTED, text)
    literals = {form for s in extra_secrets if len(s) >= 3 for form in _echo_forms(s)}
    for secret in sorted(literals, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _echo_forms(secret: str) -> set[str]:
    """``secret`` as a device may echo it: as is, XML/HTML-escaped (``&amp;``, ``&lt;``,
    ``&quot;`` or ``&#34;`` ...) and JSON-escaped."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    base = secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for dq, sq in (('"', "'"), ("&quot;", "&apos;"), ("&quot;", "&#39;"), ("&#34;", "&#39;"), ("&#x22;", "&#x27;")):
        forms.add(base.replace('"', dq).replace("'", sq))
    return forms


def _redact_unquoted_attrs(match: re.Match[str]) -> str:
    return _UNQUOTED_ATTR.sub(lambda m: f'{m.group("name")}{m.group("eq")}"{REDACTED}"', match.group(0))


def _redact_json_containers(text: str) -> str:
    """Replace the object or array value of every secret-named JSON member by ``"[REDACTED]"``.
    A value with no end (a reply cut at the size limit) is redacted to the end of the text."""
    out: list[str] = []
    pos = 0
    while (match := _JSON_CONTAINER.search(text, pos)) is not None:
        start = match.end() - 1  # the opening bracket
        end = _json_value_end(text, start)
        out.append(text[pos:start])
        inner = text[start + 1 : end - 1] if end - start >= 2 else ""
        out.append(text[start:end] if not inner.strip() and end > start + 1 else f'"{REDACTED}"')
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _json_value_end(text: str, start: int) -> int:
    """The index just past the object or array opening at ``start``, or len(text)."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text, start):
        kind = token.group(0)[0]
        if kind in "[{":
            depth += 1
        elif kind in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    return len(text)


def redact_obj(value: Any, extra_secrets: Iterable[str] = ()) -> Any:
    """Redact a JSON-like structure: secret-named members lose their whole value."""
    secrets = tuple(extra_secrets)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if is_secret_name(name) and item not in (None, "", [], {}):
                out[name] = REDACTED
            else:
                out[name] = redact_obj(item, secrets)
        return out
    if isinstance(value, list | tuple):
        return [redact_obj(item, secrets) for item in value]
    if isinstance(value, str):
        return redact(value, secrets)
    return value


def _replace_element(match: re.Match[str]) -> str:
    if not match.group("value").strip():
        return match.group(0)
    attrs = match.group("attrs") or ""
    tag = match.group("tag")
    return f"<{tag}{attrs}>{REDACTED}</{tag}>"


def _replace_kv(match: re.Match[str]) -> str:
    if not is_secret_name(match.group("key")) or not match.group("value"):
        return match.group(0)
    return f"{match.group('lead')}{match.group('key')}{match.group('eq')}{REDACTED}"
