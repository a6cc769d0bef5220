"""camaudit.protocols.http: pure request building and lenient, bounded response parsing."""

from __future__ import annotations

import base64
import hashlib

import mmh3
import pytest

from camaudit.protocols.http import (
    MAX_HEADERS,
    MessageFramer,
    build_get,
    decode_chunked,
    extract_title,
    favicon_hashes,
    looks_like_html,
    parse_head,
    parse_response,
    redirect_path,
)

# Assembled from corpus nmap-dahua-http-shape (nmap-service-probes line 10323): the upper-case
# header names and the BOM + XHTML Strict doctype are the Dahua tell; title per nuclei-dahua-title.
_DAHUA_BODY = (
    b'\xef\xbb\xbf<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN">'
    b"<html><head><title>WEB SERVICE</title></head></html>"
)
DAHUA = (
    b"HTTP/1.1 200 OK\r\nCONNECTION: close\r\nCONTENT-LENGTH: %d\r\nP3P: CP=CAO PSA OUR\r\n"
    b"CACHE-CONTROL: max-age=0\r\nCONTENT-TYPE: text/html\r\n\r\n" % len(_DAHUA_BODY)
) + _DAHUA_BODY
# corpus nmap-hik-plainwebs (nmap line 10168): an old Hikvision DVR redirects to /index.asp.
HIK_WEBS_302 = (
    b"HTTP/1.0 302 Redirect\r\nServer: Webs\r\nLocation: http://10.1.2.3/index.asp\r\n\r\n"
)
# corpus recog-lorex-realm-1 (recog http_wwwauth.xml), and recog-hik-realm-1 after it.
LOREX_401 = (
    b"HTTP/1.1 401 Unauthorized\r\n"
    b'WWW-Authenticate: Digest realm="Login to ND011811000000", nonce="ec3682ef24b2cd9cedefe5cc26110000"\r\n'
    b'WWW-Authenticate: Basic realm="hikvision"\r\nContent-Length: 0\r\n\r\n'
)


def test_build_get_is_plain_http11_with_host_and_honest_agent() -> None:
    request = build_get("127.60.0.1", 8080, "/", user_agent="camaudit/0.1.0")
    assert request.startswith(b"GET / HTTP/1.1\r\nHost: 127.60.0.1:8080\r\n")
    assert b"User-Agent: camaudit/0.1.0\r\n" in request
    assert b"Connection: close\r\n" in request
    assert request.endswith(b"\r\n\r\n")
    assert b"Host: 127.60.0.1\r\n" in build_get("127.60.0.1", 80)
    assert b"Host: 127.60.0.1\r\n" in build_get("127.60.0.1", 443, tls=True)
    assert b"Host: [::1]:8080\r\n" in build_get("::1", 8080)


@pytest.mark.parametrize("path", ["index.asp", "/a b", "/x\r\nInjected: 1", "/\x00"])
def test_build_get_refuses_unsafe_paths(path: str) -> None:
    with pytest.raises(ValueError):
        build_get("127.0.0.1", 80, path)


def test_dahua_shape_keeps_header_case_order_and_raw_block() -> None:
    response = parse_response(DAHUA)
    assert response is not None
    head = response.head
    assert (head.protocol, head.status, head.reason) == ("HTTP/1.1", 200, "OK")
    assert [name for name, _ in head.headers] == [
        "CONNECTION", "CONTENT-LENGTH", "P3P", "CACHE-CONTROL", "CONTENT-TYPE",
    ]  # fmt: skip
    assert head.get("content-length") == str(len(_DAHUA_BODY))  # lookups ignore case
    assert head.text() == DAHUA.split(b"\r\n\r\n")[0].decode("latin-1")
    assert response.body.startswith(b"\xef\xbb\xbf<!DOCTYPE") and response.body_complete
    assert extract_title(response.body, response.content_type) == "WEB SERVICE"


def test_repeated_www_authenticate_kept_verbatim_and_in_order() -> None:
    head = parse_head(LOREX_401)
    assert head is not None
    assert head.get_all("WWW-Authenticate") == [
        'Digest realm="Login to ND011811000000", nonce="ec3682ef24b2cd9cedefe5cc26110000"',
        'Basic realm="hikvision"',
    ]


def test_lenient_syntax_bare_lf_folding_no_reason_and_colonless_lines() -> None:
    data = b"HTTP/1.0 200\nServer: Boa/0.94.14rc21\nX-Folded: one\n two\nnot a header\n\nbody"
    response = parse_response(data, eof=True)
    assert response is not None
    assert response.head.reason == ""
    assert response.head.get("Server") == "Boa/0.94.14rc21"  # corpus recog-boa-1
    assert response.head.get("X-Folded") == "one two"
    assert len(response.head.headers) == 2
    assert response.body == b"body" and response.body_complete


def test_until_close_body_is_complete_only_at_eof() -> None:
    data = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\npartial"
    open_ended = parse_response(data)
    assert open_ended is not None and not open_ended.body_complete
    closed = parse_response(data, eof=True)
    assert closed is not None and closed.body_complete


def test_chunked_body_is_decoded() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    response = parse_response(data)
    assert response is not None
    assert response.body == b"hello world" and response.body_complete


@pytest.mark.parametrize(
    ("raw", "body", "complete"),
    [
        (b"5\r\nhel", b"hel", False),  # cut inside a chunk
        (b"5\r\nhello\r\n", b"hello", False),  # last chunk missing
        (b"zz\r\nhello", b"zz\r\nhello", False),  # not chunked after all: keep the bytes
        (b"5\nhello\n0\n\n", b"hello", True),  # bare LF line ends
        (b"ffffffffffff\r\nab", b"ab", False),  # absurd size: only what arrived
    ],
)
def test_decode_chunked_is_lenient_and_never_invents_bytes(raw: bytes, body: bytes, complete: bool) -> None:
    assert decode_chunked(raw) == (body, complete)


def test_content_length_cuts_body_and_flags_short_bodies() -> None:
    response = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcdEXTRA")
    assert response is not None and response.body == b"abcd" and response.body_complete
    short = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\nabcd")
    assert short is not None and short.body == b"abcd" and not short.body_complete
    conflicting = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n")
    assert conflicting is not None and conflicting.content_length is None


def test_no_body_statuses() -> None:
    response = parse_response(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n")
    assert response is not None and response.body == b"" and response.body_complete


# --- truncated, garbage, oversized: named attack cases ----------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x01\xfe\xff" * 100, id="binary-garbage"),
        pytest.param(b"\x00\x00\x00\x10\x00\x00\x00\x1e\x00\x00\x00\x1e\x00\x00\x00\x00", id="hik-sdk-8000"),
        pytest.param(b"SSH-2.0-dropbear\r\n", id="ssh-banner"),
        pytest.param(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n", id="rtsp-on-http"),
        pytest.param(b"HTTP/1.1 OK\r\n\r\n", id="no-status-code"),
        pytest.param(b"HTTP/1.1 2000 OK\r\n\r\n", id="four-digit-status"),
        pytest.param(b"<html>no status line</html>", id="headless-html"),
        pytest.param(b"HTTP/", id="cut-in-version"),
    ],
)
def test_non_http_input_gives_none(data: bytes) -> None:
    assert parse_head(data) is None
    assert parse_response(data) is None


def test_truncated_head_keeps_complete_lines_only() -> None:
    data = b"HTTP/1.1 200 OK\r\nServer: Hikvision-Webs\r\nContent-Type: text/html\r\nContent-Le"
    head = parse_head(data)
    assert head is not None and not head.complete
    assert head.headers == (("Server", "Hikvision-Webs"), ("Content-Type", "text/html"))
    assert head.raw == data
    response = parse_response(data)
    assert response is not None and response.body == b"" and not response.body_complete


def test_oversized_head_is_bounded_in_header_count() -> None:
    data = b"HTTP/1.1 200 OK\r\nServer: App-webs/\r\n" + b"X-Flood: aaaa\r\n" * 10_000
    head = parse_head(data)
    assert head is not None and not head.complete
    assert head.get("Server") == "App-webs/"
    assert len(head.headers) == MAX_HEADERS


def test_header_value_bytes_are_not_lost() -> None:
    head = parse_head(b"HTTP/1.1 200 OK\r\nServer: caf\xe9\xff\x00\r\n\r\n")
    assert head is not None
    assert head.get("Server") == "caf\xe9\xff\x00"
    assert "\x00" not in head.text()  # NUL never reaches the store


# --- titles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "title"),
    [
        (b"<html><TITLE>Network Camera</TITLE>", "Network Camera"),  # corpus nuclei-neg-generic-netcam
        (b"<title lang='en'>\n  NETSurveillance   WEB \r\n</title>", "NETSurveillance WEB"),  # recog-xm-title-1
        (b"<title>Login &amp; Live&#32;View &lt;3</title>", "Login & Live View <3"),
        (b"<title></title>", ""),  # Amcrest, corpus nmap-amcrest-http-shape
        (b"<title>never closed", "never closed"),
        (b"<title>open<script>x</script>", "open"),
        (b"<html>no title</html>", None),
        (
            "<title>CPPLUS DVR \u2013Web View</title>".encode(),  # corpus nmap-cpplus-title
            "CPPLUS DVR \u2013Web View",
        ),
    ],
)
def test_extract_title(body: bytes, title: str | None) -> None:
    assert extract_title(body) == title


def test_title_uses_declared_charset_and_is_bounded() -> None:
    gbk = "\u6d77\u5eb7\u5a01\u89c6".encode("gbk")  # "Hikvision" in Chinese, declared as GBK
    assert extract_title(b"<title>" + gbk + b"</title>", "text/html; charset=GBK") == "\u6d77\u5eb7\u5a01\u89c6"
    meta = b'<meta charset="gb2312"><title>' + gbk + b"</title>"
    assert extract_title(meta) == "\u6d77\u5eb7\u5a01\u89c6"
    assert extract_title(b"<title>x</title>", "text/html; charset=no-such-codec") == "x"
    long_title = extract_title(b"<title>" + b"A" * 100_000 + b"</title>")
    assert long_title is not None and len(long_title) == 256


# --- favicon and redirects -------------------------------------------------------------------


def test_favicon_hash_is_shodan_style_base64_with_newlines() -> None:
    icon = bytes(range(256)) * 3  # long enough that base64 wraps at 76 characters
    mmh3_value, md5_value = favicon_hashes(icon)
    assert mmh3_value == str(mmh3.hash(base64.encodebytes(icon)))
    assert mmh3_value != str(mmh3.hash(base64.b64encode(icon)))  # the newlines matter
    assert int(mmh3_value) < 2**31  # signed 32-bit, as nuclei writes e.g. -1466785234
    assert md5_value == hashlib.md5(icon).hexdigest()


@pytest.mark.parametrize(
    ("content_type", "body", "html"),
    [
        ("text/html; charset=utf-8", b"\x00\x00\x01\x00", True),
        ("", b"\xef\xbb\xbf  <!DOCTYPE html><html>", True),
        ("", b"\r\n<HTML><body>", True),
        ("image/x-icon", b"\x00\x00\x01\x00\x01\x00", False),
        ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>", False),
    ],
)
def test_looks_like_html(content_type: str, body: bytes, html: bool) -> None:
    assert looks_like_html(content_type, body) is html


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/index.asp", "/index.asp"),  # corpus nmap-hik-plainwebs
        ("http://10.1.2.3/index.asp", "/index.asp"),
        ("http://10.1.2.3:80/doc/page/login.asp?_=1", "/doc/page/login.asp?_=1"),
        ("doc/page/login.asp", "/doc/page/login.asp"),
        ("http://10.1.2.4/index.asp", None),  # another host: never followed
        ("http://10.1.2.3:8080/", None),  # another port
        ("https://10.1.2.3/", None),  # another scheme
        ("//evil.example/x", None),
        ("http://10.1.2.3:99999/", None),
        ("/x\r\nSet-Cookie: a", None),
        ("", None),
    ],
)
def test_redirect_path_same_host_only(location: str, expected: str | None) -> None:
    assert redirect_path(location, "10.1.2.3", 80) == expected


# --- the incremental framer ------------------------------------------------------------------


def _feed_bytewise(framer: MessageFramer, data: bytes) -> int | None:
    """Feed one byte at a time; the index after which the framer said 'complete'."""
    for i in range(len(data)):
        if framer.feed(data[i : i + 1]):
            return i + 1
    return None


def test_framer_completes_exactly_at_the_end_of_content_length() -> None:
    assert _feed_bytewise(MessageFramer(), DAHUA + b"TRAILING") == len(DAHUA)


def test_framer_handles_chunked_split_anywhere() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert _feed_bytewise(MessageFramer(), data) == len(data) - 2  # done at the 0-size line


def test_framer_until_close_and_foreign() -> None:
    framer = MessageFramer()
    assert not framer.feed(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody")
    assert framer.until_close and not framer.foreign
    binary = MessageFramer()
    binary.feed(b"\x00\x00\x00\x10")
    assert binary.foreign
    assert not MessageFramer().foreign
    partial = MessageFramer()
    partial.feed(b"HTT")
    assert not partial.foreign


def test_framer_no_body_statuses_complete_at_head() -> None:
    assert MessageFramer().feed(b"HTTP/1.1 204 No Content\r\n\r\n")
