"""Parsers keep their contract on hostile bytes: model or None out, never an exception, never a hang.

One regression test per defect found when camaudit was attacked as a hostile network would
(issue 10, item 4): unknown or non-text XML encodings, Unicode digits that pass ``isdigit()`` but
not ``int()``, runs of digits past CPython's int conversion limit, negative chunk sizes, codecs
that refuse ``errors="replace"``, broken IPv6 literals, lone surrogates from JSON escapes.
The hypothesis properties over all parsers live elsewhere; these are the specific cases.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from camaudit.probes import onvif
from camaudit.protocols import dahua_cgi, dhip, http, isapi, rtsp, sadp, wsd

NOW = "2026-01-01T00:00:00.000000+00:00"

#: Encodings a device may name in its XML prolog that expat cannot use: unknown to Python, or
#: Python codecs that are not text encodings. Each once raised LookupError out of the parser.
HOSTILE_XML_ENCODINGS = ["x-bogus", "hex", "rot13", "base64", "zlib"]

SADP_MATCH = "<ProbeMatch><DeviceSN>SN1</DeviceSN><MAC>58-50-ed-1f-e3-85</MAC></ProbeMatch>"
WSD_MATCH = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Body><d:ProbeMatches><d:ProbeMatch>'
    "<d:Types>dn:NetworkVideoTransmitter</d:Types></d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"
)
WSD_PROBE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Body><d:Probe/></s:Body></s:Envelope>'
)


def with_encoding(document: str, encoding: str) -> bytes:
    return f'<?xml version="1.0" encoding="{encoding}"?>{document}'.encode()


# --- XML: the encoding named in the prolog --------------------------------------------------------


@pytest.mark.parametrize("encoding", HOSTILE_XML_ENCODINGS)
def test_sadp_reply_and_inquiry_with_an_unusable_xml_encoding_are_none(encoding: str) -> None:
    assert sadp.parse_reply(with_encoding(SADP_MATCH, encoding), "10.0.0.1", NOW) is None
    probe, _ = sadp.build_probe()
    assert sadp.is_inquiry(probe.replace(b'encoding="utf-8"', f'encoding="{encoding}"'.encode())) is False


@pytest.mark.parametrize("encoding", HOSTILE_XML_ENCODINGS)
def test_wsd_reply_and_probe_with_an_unusable_xml_encoding_are_none(encoding: str) -> None:
    assert wsd.parse_reply(with_encoding(WSD_MATCH, encoding), "10.0.0.1", NOW) is None
    assert wsd.is_probe(with_encoding(WSD_PROBE, encoding)) is False
    assert wsd.probe_message_id(with_encoding(WSD_PROBE, encoding)) is None


def test_the_same_documents_parse_with_an_honest_encoding() -> None:
    """The refusals above are about the encoding, not about the documents."""
    reply = sadp.parse_reply(with_encoding(SADP_MATCH, "utf-8"), "10.0.0.1", NOW)
    assert reply is not None and reply.serial == "SN1"
    assert wsd.parse_reply(with_encoding(WSD_MATCH, "utf-8"), "10.0.0.1", NOW) is not None
    assert wsd.is_probe(with_encoding(WSD_PROBE, "utf-8"))


@pytest.mark.parametrize(
    "data",
    [
        # A BOM that contradicts the declared encoding, both ways round.
        b"\xef\xbb\xbf" + with_encoding(SADP_MATCH, "utf-16"),
        b"\xff\xfe" + with_encoding(SADP_MATCH, "utf-8").decode().encode("utf-16-le"),
        # A multi-byte encoding expat cannot take from Python, and a lying one.
        with_encoding(SADP_MATCH, "big5"),
        with_encoding(SADP_MATCH, "utf-32"),
        # defusedxml refusals: an internal entity, an external DTD.
        b'<!DOCTYPE x [<!ENTITY a "58-50-ed-1f-e3-85">]><ProbeMatch><MAC>&a;</MAC></ProbeMatch>',
        b'<!DOCTYPE x SYSTEM "http://127.0.0.1/x.dtd"><ProbeMatch><MAC>58-50-ed-1f-e3-85</MAC></ProbeMatch>',
    ],
)
def test_xml_parsers_refuse_lying_encodings_and_dtds_without_raising(data: bytes) -> None:
    assert sadp.parse_reply(data, "10.0.0.1", NOW) is None
    assert wsd.parse_reply(data, "10.0.0.1", NOW) is None
    # ISAPI parses without forbid_dtd (nothing is fetched either way): only "no exception" here.
    isapi.parse_document(data)


# --- numbers: Unicode digits and runs of digits -------------------------------------------------------


def test_rtsp_cseq_with_unicode_digits_is_none() -> None:
    # "²" (Latin-1 0xB2) passes str.isdigit() but int() refuses it.
    response = rtsp.parse_response(b"RTSP/1.0 200 OK\r\nCSeq: 4\xb2\r\n\r\n")
    assert response is not None and response.cseq is None
    assert rtsp.parse_response(b"RTSP/1.0 200 OK\r\nCSeq: 4\r\n\r\n").cseq == 4  # type: ignore[union-attr]


@pytest.mark.parametrize("length", [b"4\xb2", b"\xb9\xb2", b"\xb3"])
def test_content_length_with_unicode_digits_is_no_content_length(length: bytes) -> None:
    head = b"Content-Length: " + length + b"\r\n\r\n"
    response = http.parse_response(b"HTTP/1.1 200 OK\r\n" + head + b"abcd", eof=True)
    assert response is not None
    assert response.head.content_length is None
    assert response.body == b"abcd"  # read until close, as without a Content-Length
    described = rtsp.parse_response(b"RTSP/1.0 200 OK\r\n" + head + b"v=0")
    assert described is not None and described.body == b""
    framer = http.MessageFramer(rtsp=True)
    assert framer.feed(b"RTSP/1.0 200 OK\r\n" + head) is True  # no usable length: no body


def test_dahua_table_index_past_the_int_conversion_limit_is_skipped() -> None:
    huge = "1" * 5000  # int() raises past 4300 digits
    kv = dahua_cgi.parse_kv(
        f"table.UPnP.Enable=true\ntable.UPnP.MapTable[{huge}].Enable=true\ntable.UPnP.MapTable[0].Enable=true\n"
        f"table.DDNS[{huge}].Enable=true\ntable.DDNS[0].Enable=false\n"
    )
    assert kv is not None
    assert dahua_cgi.upnp(kv) == (True, [{"Enable": True}])
    assert dahua_cgi.ddns(kv) == [{"Enable": False}]


def test_onvif_clock_with_an_impossible_year_is_no_offset() -> None:
    time = {"Hour": 0, "Minute": 0, "Second": 0}
    for year in (10**20, float("inf")):  # OverflowError, not ValueError, out of datetime()/int()
        utc = {"UTCDateTime": {"Date": {"Year": year, "Month": 1, "Day": 1}, "Time": time}}
        assert onvif._clock_offset(utc) is None
    sane = {"UTCDateTime": {"Date": {"Year": 2026, "Month": 1, "Day": 1}, "Time": time}}
    assert onvif._clock_offset(sane) is not None


# --- chunked bodies: a negative size walked the decoder backwards, for ever ----------------------------


def _finishes(code: str, timeout: float = 60.0) -> str:
    """Run ``code`` in a fresh interpreter; its stdout, or fail when it does not end in time.
    A subprocess, because a parser stuck in a loop cannot be stopped from a thread."""
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter, our own code
            [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish within {timeout} s: {code.strip()}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("chunks", [b"-4\r\n", b"-7\r\nxx\r\n", b"+4\r\nabcd\r\n0\r\n\r\n", b"0x4\r\nabcd\r\n"])
def test_chunk_sizes_that_are_not_hex_digits_end_decoding(chunks: bytes) -> None:
    out = _finishes(
        f"""
        from camaudit.protocols.http import MessageFramer, decode_chunked
        body, done = decode_chunked({chunks!r})
        framer = MessageFramer()
        complete = framer.feed(b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n" + {chunks!r})
        print(body == {chunks!r}, done, complete, framer.until_close)
        """
    )
    # Not chunked after all: the bytes are kept as they came, and the body runs until close.
    assert out == "True False False True"


def test_well_formed_chunks_still_decode() -> None:
    assert http.decode_chunked(b"4;ext=1\r\nabcd\r\nA\r\n0123456789\r\n0\r\n\r\n") == (b"abcd0123456789", True)
    framer = http.MessageFramer()
    assert framer.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")


# --- text: charsets a device may name ------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["undefined", "idna", "punycode", "hex", "unicode_escape"])
def test_a_charset_python_cannot_decode_leniently_falls_back_to_utf8(charset: str) -> None:
    body = "<title>caf\u00e9 \\x41</title>".encode() + b"\xff"
    assert http.charset_of(f"text/html; charset={charset}", body) is None
    assert http.extract_title(body, f"text/html; charset={charset}") == "caf\u00e9 \\x41"
    meta = f'<meta charset="{charset}">'.encode() + body
    assert http.extract_title(meta) == "caf\u00e9 \\x41"
    assert http.charset_of("text/html; charset=gbk") == "gbk"  # a real charset is still honoured


# --- redirects ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", ["http://[::1/index.asp", "http://[fe80::1%zz/x", "/caf\u00e9.asp"])
def test_unusable_redirect_locations_are_not_followed(location: str) -> None:
    """A broken IPv6 literal made urlsplit raise; a non-ASCII path made build_get raise."""
    assert http.redirect_path(location, "10.0.0.1", 80) is None


# --- DHIP: lone surrogates from JSON escapes -------------------------------------------------------------


def test_dhip_fields_with_lone_surrogates_are_utf8_encodable() -> None:
    body = (
        b'{"method":"client.notifyDevInfo","mac":"3c:ef:8c:00:00:01","params":{"deviceInfo":'
        b'{"DeviceType":"IPC-\\ud800X","SerialNo":"\\udfffSN","IPv4Address":{"IPAddress":"10.0.0.\\ud83d"}}}}'
    )
    reply = dhip.parse_reply(dhip.frame(body), "10.0.0.1", NOW)
    assert reply is not None
    assert reply.model == "IPC-?X" and reply.serial == "?SN" and reply.ipv4 == "10.0.0.?"
    for value in reply.to_json().values():
        if isinstance(value, str):
            value.encode("utf-8")  # what the store and the reports do with it
