"""Credential checks of the lab devices: HTTP/RTSP Basic and Digest (RFC 7616 with MD5, the
variant cameras use) and ONVIF WS-UsernameToken (WS-Security UsernameToken Profile 1.0:
PasswordDigest = Base64(SHA-1(nonce + created + password)))."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from xml.etree.ElementTree import Element

from .context import LAB_PASSWORD, LAB_USERNAME

_DIGEST_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def check_authorization(value: str | None, method: str, username: str = LAB_USERNAME,
                        password: str = LAB_PASSWORD) -> bool:
    """True when an ``Authorization`` header carries the lab credentials (Basic or Digest).

    Digest nonces are not tracked: any nonce is accepted as long as the response hash is right,
    which is what a test client needs and all a lab device must prove.
    """
    if not value:
        return False
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(decoded, f"{username}:{password}")
    if scheme.lower() != "digest":
        return False
    params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _DIGEST_PARAM.finditer(rest)}
    if params.get("username") != username or "response" not in params:
        return False
    ha1 = _md5(f"{username}:{params.get('realm', '')}:{password}")
    ha2 = _md5(f"{method}:{params.get('uri', '')}")
    if params.get("qop"):
        expected = _md5(":".join((ha1, params.get("nonce", ""), params.get("nc", ""),
                                  params.get("cnonce", ""), params["qop"], ha2)))
    else:
        expected = _md5(f"{ha1}:{params.get('nonce', '')}:{ha2}")
    return hmac.compare_digest(expected, params["response"].lower())


def check_username_token(header: Element | None, username: str = LAB_USERNAME,
                         password: str = LAB_PASSWORD) -> bool | None:
    """Check a SOAP Header's WS-Security UsernameToken.

    Returns None when there is no token at all, False when there is a wrong one, True when it is
    right (PasswordDigest or PasswordText).
    """
    if header is None:
        return None
    token = header.find(f"{{{WSSE_NS}}}Security/{{{WSSE_NS}}}UsernameToken")
    if token is None:
        return None
    user = (token.findtext(f"{{{WSSE_NS}}}Username") or "").strip()
    pw_el = token.find(f"{{{WSSE_NS}}}Password")
    if pw_el is None or user != username:
        return False
    given = (pw_el.text or "").strip()
    if pw_el.get("Type", "").endswith("#PasswordText"):
        return hmac.compare_digest(given, password)
    nonce_text = (token.findtext(f"{{{WSSE_NS}}}Nonce") or "").strip()
    created = (token.findtext(f"{{{WSU_NS}}}Created") or "").strip()
    try:
        nonce = base64.b64decode(nonce_text)
    except (binascii.Error, ValueError):
        return False
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode(), usedforsecurity=False).digest())
    return hmac.compare_digest(digest.decode(), given)
