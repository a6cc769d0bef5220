"""Loopback servers for probe tests: hostile ones, and well-behaved ones with real banners.

Reusable by any test (``from hostile import ...``: pytest puts ``tests/`` on ``sys.path``
because ``tests/conftest.py`` lives there without an ``__init__.py``)::

    with ServerFarm() as farm:
        address = next_address()
        farm.serve(address, 8080, silent())
        farm.serve(address, 8554, rtsp_server(DAHUA_RTSP))
        ...  # probe address

or use the ``farm`` pytest fixture defined here (import it into the test module).

All servers run on one asyncio loop in a background thread, bind only to 127.0.0.0/8 (``serve``
refuses anything else), and are torn down (servers closed, handler tasks cancelled) on exit.
Addresses come from this engineer's block, 127.60.0.0/16 (notes/PREAMBLE.md).

Hostile behaviours: ``silent`` (accepts, never answers), ``header_flood`` (10 MB of headers),
``close_mid_response``, ``garbage`` (binary), ``trickle`` (one byte at a time, slower than any
probe deadline), ``reset`` (SO_LINGER 0: every connection gets an RST).
Well-behaved: ``http_site`` (routes -> canned responses), ``rtsp_server`` (method -> response,
CSeq echoed), ``banner`` (speaks first). Canned responses below are assembled from the facts in
shared/reference/fingerprinting.md and shared/corpus/fingerprints.json, cited per constant;
parts the sources leave open (dates, nonces, lengths) are filled with visibly synthetic values.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import itertools
import os
import random
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import pytest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: Longest any hostile server holds a connection: far beyond any test's probe timeout.
HOLD = 60.0

# --- addresses -------------------------------------------------------------------------------

_BLOCK = ipaddress.ip_network("127.60.0.0/16")
# Spread concurrent test runs over the block so they do not collide on address:port.
_counter = itertools.count((os.getpid() % 200) * 256 + 257)
_counter_lock = threading.Lock()


def next_address() -> str:
    """A fresh loopback address in 127.60.0.0/16 (never .0 or .255 in the last octet)."""
    with _counter_lock:
        while True:
            n = next(_counter) % 65536
            if 0 < n % 256 < 255:
                return str(_BLOCK.network_address + n)


# --- the farm --------------------------------------------------------------------------------


class ServerFarm:
    """An asyncio loop in a background thread that hosts loopback servers."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: (address, port, request bytes) for every request the canned servers parsed.
        self.requests: list[tuple[str, int, bytes]] = []
        #: Connections accepted, per (address, port).
        self.accepted: dict[tuple[str, int], int] = {}
        self._thread = threading.Thread(target=self._run, name="hostile-farm", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def serve(
        self, address: str, port: int, handler: Handler, *, tls: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        """Start ``handler`` for every connection to address:port (loopback only)."""
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"test servers bind to loopback only, not {address}")
        future = asyncio.run_coroutine_threadsafe(self._start(address, port, handler, tls), self._loop)
        future.result(timeout=5)
        return address, port

    async def _start(
        self, address: str, port: int, handler: Handler, tls: ssl.SSLContext | None
    ) -> None:
        key = (address, port)

        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            self.accepted[key] = self.accepted.get(key, 0) + 1
            try:
                await handler(reader, writer)
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
                pass  # the client went away: that is what probes do
            except asyncio.CancelledError:
                pass  # the farm is shutting down; end quietly (asyncio logs cancelled handlers)
            finally:
                self._tasks.discard(task)
                with contextlib.suppress(Exception):
                    writer.close()

        server = await asyncio.start_server(
            wrapped, address, port, ssl=tls, reuse_address=True, ssl_handshake_timeout=5 if tls else None
        )
        self._servers.append(server)

    def record(self, address: str, port: int, request: bytes) -> None:
        self.requests.append((address, port, request))

    def close(self) -> None:
        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> ServerFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def farm() -> Iterator[ServerFarm]:
    """A ServerFarm torn down after the test."""
    with ServerFarm() as servers:
        yield servers


# --- helpers for handlers --------------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader, *, timeout: float = 10.0) -> bytes:
    """Read one request head (up to the blank line); b"" when the client sent nothing or closed."""
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return b""


async def read_anything(reader: asyncio.StreamReader, *, timeout: float = 10.0) -> bytes:
    """Whatever the client sends first (a request, a TLS ClientHello); b"" on silence or close."""
    try:
        return await asyncio.wait_for(reader.read(65536), timeout)
    except TimeoutError:
        return b""


# --- hostile behaviours ----------------------------------------------------------------------


def silent(hold: float = HOLD) -> Handler:
    """(a) Accept, read whatever comes, never answer, hold the connection open."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_drain_forever(reader), hold)

    return handler


async def _drain_forever(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass
    await asyncio.sleep(HOLD)  # the client closed its side: stay quiet anyway


def header_flood(total: int = 10 * 2**20, *, server: str = "App-webs/") -> Handler:
    """(b) After the request: a status line, a Server header, then ``total`` bytes of headers."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_anything(reader)
        writer.write(f"HTTP/1.1 200 OK\r\nServer: {server}\r\n".encode())
        line = b"X-Flood: " + b"a" * 1000 + b"\r\n"
        block = line * 64
        sent = 0
        while sent < total:
            writer.write(block)
            sent += len(block)
            await writer.drain()

    return handler


def close_mid_response(partial: bytes | None = None) -> Handler:
    """(c) After the request: part of a response, then close (a clean FIN, not a reset)."""
    data = partial if partial is not None else (
        b"HTTP/1.1 200 OK\r\nServer: Hikvision-Webs\r\nContent-Type: text/html\r\nContent-Le"
    )

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_anything(reader)
        writer.write(data)
        await writer.drain()
        writer.close()

    return handler


def garbage(size: int = 4096, *, seed: int = 7, first: bool = False) -> Handler:
    """(d) Binary garbage: after the request, or at once when ``first`` (speaks first)."""
    data = random.Random(seed).randbytes(size)
    data = b"\x00\x01\xfe" + data[3:]  # never starts like HTTP/RTSP or a telnet IAC, by construction

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not first:
            await read_anything(reader)
        writer.write(data)
        await writer.drain()
        await asyncio.sleep(HOLD)

    return handler


def trickle(response: bytes | None = None, *, interval: float = 0.25) -> Handler:
    """(e) After the request, answer one byte every ``interval`` seconds."""
    data = response if response is not None else DAHUA_HTTP_ROOT

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_anything(reader)
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(interval)

    return handler


def reset(*, after_request: bool = False) -> Handler:
    """(f) Reset the connection (SO_LINGER on, timeout 0, then close: the kernel sends RST)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if after_request:
            await read_anything(reader, timeout=2)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    return handler


# --- well-behaved servers --------------------------------------------------------------------


def http_site(
    routes: Mapping[str, bytes], *, default: bytes | None = None, farm: ServerFarm | None = None
) -> Handler:
    """Answer GET <path> with ``routes[path]`` (or ``default``, a 404), then close."""
    not_found = default if default is not None else http_response(404, b"", reason="Not Found")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if not request:
            return
        if farm is not None:
            host, port = writer.get_extra_info("sockname")[:2]
            farm.record(host, port, request)
        parts = request.split(b" ", 2)
        path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
        writer.write(routes.get(path, not_found))
        await writer.drain()

    return handler


RtspAnswer = Callable[[str, int], bytes]


def rtsp_server(answers: Mapping[str, RtspAnswer], *, farm: ServerFarm | None = None) -> Handler:
    """Answer each RTSP request by method, with its CSeq, keeping the connection open (RFC 2326)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            if not request:
                return
            if farm is not None:
                host, port = writer.get_extra_info("sockname")[:2]
                farm.record(host, port, request)
            method = request.split(b" ", 1)[0].decode("latin-1")
            cseq = 0
            for line in request.split(b"\r\n"):
                if line.lower().startswith(b"cseq:"):
                    cseq = int(line.split(b":", 1)[1].strip() or b"0")
            answer = answers.get(method)
            if answer is None:
                writer.write(b"RTSP/1.0 501 Not Implemented\r\nCSeq: %d\r\n\r\n" % cseq)
            else:
                writer.write(answer(method, cseq))
            await writer.drain()

    return handler


def banner(data: bytes, *, hold: float = HOLD) -> Handler:
    """Speak first (telnet, FTP), then stay open, ignoring whatever the client says."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_drain_forever(reader), hold)

    return handler


def tls_context(subject: str = "", *, directory: Path | None = None) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``subject`` (RFC 4514,
    most significant RDN last, as recog writes them: ``CN=...,O=...,C=CN``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    name = x509.Name.from_rfc4514_string(subject or HIKVISION_CERT_SUBJECT)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
    return context


# --- canned responses ------------------------------------------------------------------------


def http_response(
    status: int,
    body: bytes,
    *,
    reason: str = "OK",
    headers: list[tuple[str, str]] | None = None,
    content_length_name: str = "Content-Length",
) -> bytes:
    """Assemble a response; header names and order exactly as given (the shape is evidence)."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in (headers or [])]
    if content_length_name:
        lines.append(f"{content_length_name}: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


#: Dahua GET / shape: upper-case CONNECTION/CONTENT-LENGTH/CACHE-CONTROL/CONTENT-TYPE, P3P, a
#: UTF-8 BOM before an XHTML 1.0 Strict doctype (corpus nmap-dahua-http-shape, nmap-service-probes
#: line 10323; fingerprinting.md 4.2) and <title>WEB SERVICE</title> (corpus nuclei-dahua-title).
_DAHUA_BODY = (
    b'\xef\xbb\xbf<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n'
    b"<title>WEB SERVICE</title>\r\n</head>\r\n<body></body>\r\n</html>\r\n"
)
DAHUA_HTTP_ROOT = (
    b"HTTP/1.1 200 OK\r\nCONNECTION: close\r\nCONTENT-LENGTH: %d\r\nP3P: CP=CAO PSA OUR\r\n"
    b"CACHE-CONTROL: max-age=0\r\nCONTENT-TYPE: text/html\r\n\r\n" % len(_DAHUA_BODY)
) + _DAHUA_BODY

#: Hikvision IPC: ``Server: App-webs/`` (corpus nmap-hik-appwebs, nmap line 9679). The sources
#: hold no full Hikvision HTTP capture (fingerprinting.md section 10), so the rest is minimal:
#: a page whose body carries the NUCLEI login-page marker (corpus nuclei-hik-body).
HIKVISION_APPWEBS_ROOT = http_response(
    200,
    b"<html><head><title>  Login &amp; Live\n View </title></head>"
    b"<body>Hikvision Digital Technology</body></html>",
    headers=[("Server", "App-webs/"), ("Content-Type", "text/html")],
)

#: Hikvision NVR: ``Server: DNVRS-Webs`` (corpus nmap-hik-dnvrs / recog-hik-server-3) with the
#: Basic realm="hikvision" challenge (corpus recog-hik-realm-1).
HIKVISION_DNVRS_401 = http_response(
    401,
    b"<html><body>401 Unauthorized</body></html>",
    reason="Unauthorized",
    headers=[
        ("Server", "DNVRS-Webs"),
        ("WWW-Authenticate", 'Basic realm="hikvision"'),
        ("Content-Type", "text/html"),
    ],
)

#: Old Hikvision DVR: ``HTTP/1.0 302 Redirect``, ``Server: Webs``, Location /index.asp on the same
#: host (corpus nmap-hik-plainwebs, nmap line 10168).
def hikvision_webs_redirect(address: str) -> bytes:
    return (
        b"HTTP/1.0 302 Redirect\r\nServer: Webs\r\nDate: Thu Jan  1 00:00:00 1970\r\n"
        b"Pragma: no-cache\r\nCache-Control: no-cache\r\nContent-Type: text/html\r\n"
        b"Location: http://%s/index.asp\r\n\r\n"
        b"<html><head></head><body>This document has moved to a new "
        b'<a href="http://%s/index.asp">location</a>.</body></html>'
    ) % (address.encode(), address.encode())


#: Lorex (Dahua OEM) challenge, verbatim from corpus recog-lorex-realm-1.
LOREX_DIGEST = 'Digest realm="Login to ND011811000000", nonce="ec3682ef24b2cd9cedefe5cc26110000"'

#: recog x509_subjects Hikvision example (corpus recog-hik-x509-1; fingerprinting.md 4.1).
HIKVISION_CERT_SUBJECT = "CN=www.hikvision.com,OU=DVRNVR,O=HIKVISION,L=HangZhou,ST=ZheJiang,C=CN"

#: A favicon-shaped payload (an ICO header, then filler): not a vendor's icon, for hashing tests.
FAVICON_BYTES = bytes.fromhex("000001000100101000000100200068040000") + bytes(range(256)) * 4


def dahua_rtsp() -> dict[str, RtspAnswer]:
    """Dahua RTSP: ``Server: Dahua Rtsp Server``; DESCRIBE without credentials gets 401 with
    ``Basic realm="device"`` (corpus nmap-dahua-rtsp-401, nmap line 12147; fingerprinting.md 4.2)."""
    return {
        "OPTIONS": lambda m, cseq: (
            b"RTSP/1.0 200 OK\r\nCSeq: %d\r\nServer: Dahua Rtsp Server\r\n"
            b"Public: OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, "
            b"SET_PARAMETER\r\n\r\n" % cseq
        ),
        "DESCRIBE": lambda m, cseq: (
            b'RTSP/1.0 401 Unauthorized\r\nCSeq: %d\r\nWWW-Authenticate: Basic realm="device"\r\n'
            b"Server: Dahua Rtsp Server\r\n\r\n" % cseq
        ),
    }


#: Hikvision RTSP SDP lines from fingerprinting.md 4.3 (RETINA hikvision_*): s=Media Presentation,
#: the IMKH Media_header (the reference quotes only the ``494D4B48`` prefix; the tail here is
#: zero-filled), a=appversion:1.0, and an ONVIF metadata track.
HIKVISION_SDP = (
    b"v=0\r\no=- 1109162014219182 1109162014219192 IN IP4 0.0.0.0\r\n"
    b"s=Media Presentation\r\ne=NONE\r\nb=AS:5050\r\nt=0 0\r\n"
    b"a=control:rtsp://0.0.0.0:554/Streaming/Channels/101/\r\n"
    b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n"
    b"a=Media_header:MEDIAINFO=494D4B48010100000400000100000000000000000000000000000000000000000000000000000000;\r\n"
    b"a=appversion:1.0\r\n"
    b"m=application 0 RTP/AVP 107\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\na=control:trackID=3\r\n"
)


def hikvision_rtsp(*, describe_ok: bool = False) -> dict[str, RtspAnswer]:
    """Hikvision RTSP: OPTIONS per corpus nmap-hik-rtsp-7513 (``CSeq: n`` + Public list + a Date
    with two spaces, fingerprinting.md 4.3); DESCRIBE: the two challenges of corpus
    nmap-hik-rtsp-realm (nmap line 12141), or, with ``describe_ok``, 200 and HIKVISION_SDP."""

    def describe(method: str, cseq: int) -> bytes:
        if describe_ok:
            return (
                b"RTSP/1.0 200 OK\r\nCSeq: %d\r\nContent-Type: application/sdp\r\n"
                b"Content-Base: rtsp://0.0.0.0:554/\r\nContent-Length: %d\r\n\r\n"
                % (cseq, len(HIKVISION_SDP))
            ) + HIKVISION_SDP
        return (
            b"RTSP/1.0 401 Unauthorized\r\nCSeq: %d\r\n"
            b'WWW-Authenticate: Digest realm="Hikvision", nonce="00000000000000000000000000000000", '
            b'stale="FALSE"\r\nWWW-Authenticate: Basic realm="/"\r\n'
            b"Date:  Wed, May 05 2021 21:51:17 GMT\r\n\r\n" % cseq
        )

    return {
        "OPTIONS": lambda m, cseq: (
            b"RTSP/1.0 200 OK\r\nCSeq: %d\r\nPublic: OPTIONS, DESCRIBE, PLAY, PAUSE, SETUP, "
            b"TEARDOWN, SET_PARAMETER, GET_PARAMETER\r\nDate:  Wed, May 05 2021 21:51:17 GMT\r\n\r\n"
            % cseq
        ),
        "DESCRIBE": describe,
    }


#: Hikvision telnet prompt (corpus recog-hik-telnet-1), after typical telnetd negotiation
#: (IAC DO ECHO, IAC WILL SUPPRESS-GO-AHEAD, IAC DO NAWS: RFC 857/858/1073 option numbers).
TELNET_HIKVISION = bytes([255, 253, 1, 255, 251, 3, 255, 253, 31]) + b"\r\n192.0.0.64 login: "

#: FTP greeting of an Axis camera (corpus recog-axis-ftp-1), with the 220 code of RFC 959.
FTP_AXIS = b"220 Axis 2100 Network Camera 2.43 Nov 04 2008 ready.\r\n"
