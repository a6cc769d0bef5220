"""TLS probe: handshake, record the certificate's subject and issuer, then speak HTTPS.

The certificate is evidence, never trusted: nothing is verified (cameras ship self-signed
certificates such as ``CN=www.hikvision.com,OU=DVRNVR,O=HIKVISION,...``, fingerprinting.md 4.1,
recog x509_subjects). Old protocol versions and ciphers are allowed, because old cameras
speak nothing else and camaudit only reads what they present. Value of ``tls_cert``:
``subject=<RFC 4514>; issuer=<RFC 4514>`` (DESIGN.md section 3).
"""

from __future__ import annotations

import logging
import ssl
import warnings

from cryptography import x509

from . import Deadline, PortContext
from .http import probe_http

log = logging.getLogger(__name__)

SOURCE = "tls"

#: OpenSSL's SSL_OP_LEGACY_SERVER_CONNECT (the same bit in 1.0.2, 1.1.1 and 3.x): talk to servers
#: that lack RFC 5746 secure renegotiation, i.e. exactly the old cameras this probe is for.
#: ``ssl`` names it only from Python 3.12 on; on 3.11 the name is missing, the value is not.
OP_LEGACY_SERVER_CONNECT: int = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)


def client_context() -> ssl.SSLContext:
    """A client context that accepts any certificate and any protocol the local OpenSSL allows."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # evidence gathering: an unverifiable cert is a finding
    try:
        with warnings.catch_warnings():  # TLS 1.0 is deprecated, and old cameras still speak it
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):  # a build without legacy support: keep its defaults
        log.debug("legacy TLS settings not available", exc_info=True)
    # Without it OpenSSL 3 ends the handshake with UNSAFE_LEGACY_RENEGOTIATION_DISABLED before
    # the certificate is seen. camaudit never renegotiates, so nothing is weakened by allowing it.
    context.options |= OP_LEGACY_SERVER_CONNECT
    return context


def cert_summary(der: bytes) -> str | None:
    """``subject=...; issuer=...`` as RFC 4514 strings, or None when the DER cannot be read."""
    try:
        cert = x509.load_der_x509_certificate(der)
        return f"subject={cert.subject.rfc4514_string()}; issuer={cert.issuer.rfc4514_string()}"
    except (ValueError, TypeError):
        return None


async def probe_tls(ctx: PortContext) -> None:
    """Handshake, certificate, then GET / over the same connection (and favicon after)."""
    deadline = Deadline(ctx.config.timeout)
    context = client_context()
    try:
        stream = await ctx.connect(deadline, tls=context)
    except ssl.SSLError as exc:
        # Not TLS (or a TLS we cannot speak): the port may still answer plain HTTP, within what
        # is left of the same deadline.
        ctx.problem(f"TLS handshake failed ({exc.reason or exc}); tried plain HTTP")
        await probe_http(ctx, deadline=deadline)
        return
    if stream is None:
        return
    ssl_object = stream[1].get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        ctx.problem("the TLS server presented no certificate")
    else:
        summary = cert_summary(der)
        if summary is None:
            ctx.problem(f"the TLS certificate ({len(der)} bytes) could not be parsed")
        else:
            ctx.observe("tls_cert", summary, SOURCE)
    await probe_http(ctx, stream=stream, tls_context=context)
