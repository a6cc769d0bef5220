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

_SUFFIX_ALT = "|".join(re.escape(s) for s in SECRET_SUFFIXES)
# Name parts are bounded ({0,64}): unbounded lazy repeats made hostile input quadratic.
_NAME = r"[A-Za-z_][\w.\-]{0,64}"

# <ns:verificationCode attr="x">anything, even children or CDATA</ns:verificationCode>
_XML_ELEMENT = re.compile(
    rf"<(?P<tag>(?:{_NAME}:)?[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT}))(?P<attrs>\s[^<>]*?)?(?<!/)>"
    rf"(?P<value>.{{0,2048}}?)</(?P=tag)\s*>",
    re.IGNORECASE | re.DOTALL,
)
# An opening secret tag followed by text with no closing tag: a reply cut at the size limit.
_XML_OPEN_TEXT = re.compile(
    rf"(?P<open><(?:{_NAME}:)?[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT})(?:\s[^<>]*?)?(?<!/)>)(?P<value>[^<]+)",
    re.IGNORECASE,
)
_XML_ATTR = re.compile(
    rf"(?P<name>\b[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT}))(?P<eq>\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*')",
    re.IGNORECASE,
)
# table.T2UServer.Key=..., table.DDNS[0].Password=...
_KV_LINE = re.compile(r"^(?P<key>[\w.\[\]\-]{1,256})(?P<eq>[ \t]*=[ \t]*)(?P<value>[^\r\n]*)", re.MULTILINE)
_JSON_MEMBER = re.compile(
    rf"(?P<name>\"[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT})\")(?P<sep>\s*:\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|-?\d[\d.eE+\-]*|true|false)",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]{0,32}://)[^/\s@<>\"']{1,512}@")
_QUERY_PARAM = re.compile(
    rf"(?P<lead>[?&;](?:[\w.\-]{{0,64}}?(?:{_SUFFIX_ALT}))=)(?P<value>[^&\s\"'<>#]*)", re.IGNORECASE
)
_INDEX = re.compile(r"\[\d*\]")


def is_secret_name(name: str) -> bool:
    """True when a field called ``name`` (any case, any dotted prefix) holds a secret."""
    last = _INDEX.sub("", name).rsplit(".", 1)[-1].rsplit(":", 1)[-1].lower()
    return bool(last) and last.endswith(SECRET_SUFFIXES)


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every secret value replaced by ``[REDACTED]``.

    Works on XML, HTML, JSON, ``key=value`` text and free text alike. ``extra_secrets`` are
    literal values (the password camaudit used, for instance) removed wherever they appear,
    so that a device echoing a credential back cannot smuggle it into the store.
    """
    text = _XML_ELEMENT.sub(_replace_element, text)
    text = _XML_OPEN_TEXT.sub(lambda m: m.group("open") + REDACTED, text)
    text = _XML_ATTR.sub(lambda m: f'{m.group("name")}{m.group("eq")}"{REDACTED}"', text)
    text = _JSON_MEMBER.sub(lambda m: f'{m.group("name")}{m.group("sep")}"{REDACTED}"', text)
    text = _KV_LINE.sub(_replace_kv, text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _QUERY_PARAM.sub(lambda m: m.group("lead") + REDACTED, text)
    for secret in sorted({s for s in extra_secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


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
    return f"{match.group('key')}{match.group('eq')}{REDACTED}"
