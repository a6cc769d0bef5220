"""A TLS 1.2 server the way old cameras speak it: no RFC 5746 secure renegotiation.

No stock server can be told to leave out the ``renegotiation_info`` extension (OpenSSL always
sends it, and ``ssl.OP_NO_RENEGOTIATION`` only refuses renegotiation), so this is a minimal TLS 1.2
server written out by hand: one cipher suite, TLS_RSA_WITH_AES_128_GCM_SHA256 (0x009c, RFC 5288;
RSA key exchange, RFC 5246 section 7.4.7.1), a ServerHello with no extensions at all, then one
HTTP answer over the secured connection. It checks nothing it receives (a test stand-in, not a
TLS implementation): the client's Finished is computed, not verified.

Use it with the hostile farm (``farm.serve(address, port, legacy_tls_server(...))``), loopback only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import os
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding
from hostile import Handler

SUITE = 0x009C  # TLS_RSA_WITH_AES_128_GCM_SHA256
HANDSHAKE, CHANGE_CIPHER_SPEC, APPLICATION_DATA = 22, 20, 23
TLS12 = b"\x03\x03"


def _prf(secret: bytes, label: bytes, seed: bytes, size: int) -> bytes:
    """TLS 1.2 PRF with SHA-256 (RFC 5246 section 5)."""
    out, a = b"", label + seed
    while len(out) < size:
        a = hmac.digest(secret, a, "sha256")
        out += hmac.digest(secret, a + label + seed, "sha256")
    return out[:size]


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def _record(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + TLS12 + struct.pack("!H", len(body)) + body


async def _read_record(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(5)
    return header[0], await reader.readexactly(struct.unpack("!H", header[3:5])[0])


def self_signed(subject: str) -> tuple[rsa.RSAPrivateKey, bytes]:
    """An RSA key (RSA key exchange needs one) and a self-signed certificate, DER."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name.from_rfc4514_string(subject)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(Encoding.DER)


def legacy_tls_server(subject: str, http_answer: bytes) -> Handler:
    """Handshake without renegotiation_info, then answer the first request with ``http_answer``."""
    key, der = self_signed(subject)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind, hello = await _read_record(reader)
        if kind != HANDSHAKE or hello[0] != 1:
            return
        client_random = hello[6:38]
        pos = 38 + 1 + hello[38]  # past the session id
        suites_len = struct.unpack("!H", hello[pos : pos + 2])[0]
        suites = hello[pos + 2 : pos + 2 + suites_len]
        if SUITE.to_bytes(2, "big") not in [suites[i : i + 2] for i in range(0, len(suites), 2)]:
            return  # the client does not offer RSA key exchange: nothing to talk about
        server_random = os.urandom(32)
        # version, random, empty session id, the suite, no compression, and NO extensions: in
        # particular no renegotiation_info (RFC 5746), like firmware from before 2010.
        server_hello = _handshake(2, TLS12 + server_random + b"\x00" + SUITE.to_bytes(2, "big") + b"\x00")
        cert_list = len(der).to_bytes(3, "big") + der
        certificate = _handshake(11, len(cert_list).to_bytes(3, "big") + cert_list)
        done = _handshake(14, b"")
        transcript = hello + server_hello + certificate + done
        writer.write(_record(HANDSHAKE, server_hello + certificate + done))
        await writer.drain()

        kind, exchange = await _read_record(reader)
        if kind != HANDSHAKE or exchange[0] != 16:
            return
        premaster = key.decrypt(exchange[6:], padding.PKCS1v15())  # 4-byte header, 2-byte length
        transcript += exchange
        # No extended_master_secret was agreed (the ServerHello has no extensions).
        master = _prf(premaster, b"master secret", client_random + server_random, 48)
        client_verify = _prf(master, b"client finished", hashlib.sha256(transcript).digest(), 12)
        transcript += _handshake(20, client_verify)
        block = _prf(master, b"key expansion", server_random + client_random, 40)
        client_key, server_key = AESGCM(block[0:16]), AESGCM(block[16:32])
        client_iv, server_iv = block[32:36], block[36:40]
        for _ in range(2):  # ChangeCipherSpec, then the (encrypted) Finished
            await _read_record(reader)
        server_verify = _prf(master, b"server finished", hashlib.sha256(transcript).digest(), 12)

        def seal(kind: int, seq: int, plain: bytes) -> bytes:
            explicit = seq.to_bytes(8, "big")
            aad = explicit + bytes([kind]) + TLS12 + struct.pack("!H", len(plain))
            return _record(kind, explicit + server_key.encrypt(server_iv + explicit, plain, aad))

        writer.write(_record(CHANGE_CIPHER_SPEC, b"\x01") + seal(HANDSHAKE, 0, _handshake(20, server_verify)))
        await writer.drain()
        kind, data = await _read_record(reader)
        if kind == APPLICATION_DATA:
            explicit, sealed = data[:8], data[8:]
            aad = (1).to_bytes(8, "big") + bytes([kind]) + TLS12 + struct.pack("!H", len(sealed) - 16)
            # The request (record 1: the Finished was 0); decrypting it proves the keys agree.
            client_key.decrypt(client_iv + explicit, sealed, aad)
            writer.write(seal(APPLICATION_DATA, 1, http_answer))
            await writer.drain()

    return handler
