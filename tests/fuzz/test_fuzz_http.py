"""Properties of the HTTP parsers (camaudit.protocols.http) and the digest challenge parser.

Contract: bytes in, model or None out, never an exception, bounded time (fuzzkit.bounded).
Round trips: a body chunked by the test de-chunks to itself; a well-formed response fed to
MessageFramer in any split is complete exactly when its last byte arrives.
"""

from __future__ import annotations

from fuzzkit import bounded, fuzz_bytes, fuzz_text, mutated, observation_values
from hypothesis import example, given
from hypothesis import strategies as st

from camaudit.probes.vendor_api import parse_challenge
from camaudit.protocols import http

RESPONSES = observation_values("http_headers", "http_server", "http_www_authenticate", "http_body") + [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html\r\n\r\n"
    b"1a\r\n<html><title>WEB SERVICE</ti\r\n8\r\ntle></ht\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n<title>Hikvision</title>abcdef",
    b"HTTP/1.0 401 Unauthorized\nWWW-Authenticate: Digest realm=\"Hikvision\", nonce=\"abc\", qop=\"auth\"\n\n",
]
CHUNKED_BODIES = [b"5\r\nhello\r\n0\r\n\r\n", b"1a;ext=1\r\n" + b"x" * 26 + b"\r\n0\r\n\r\n", b"3\nabc\n0\n\n"]
CHUNKED_RESPONSES = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + c for c in CHUNKED_BODIES]
TITLES = observation_values("http_title", "http_body") + [b"<html><head><title>WEB SERVICE</title></head></html>"]
CHALLENGES = observation_values("http_www_authenticate", "rtsp_www_authenticate") + [
    b'Digest realm="IP Camera(21388)", nonce="6e7a5a6b", stale="FALSE", qop="auth", algorithm=MD5'
]
CHUNK_TOKENS = (b"-3\n", b"-4\r\n", b"-1\r\n", b"0x1\r\n", b"+5\r\n", b"\xd9\xa3\r\n", b"f" * 40 + b"\r\n", b"zz\r\n")
TITLE_TOKENS = (b"<title ", b"<title", b"<title>", b"</title", b"<TITLE x=", b"<", b">")
REDIRECT_TOKENS = (b"http://[::1", b"https://[", b"[", b"]", b":99999", b":-1", b"@", b"//", b"\xef\xbc\x8f")
LOCATIONS = [b"/doc/page/login.asp", b"http://10.0.0.5/index.asp?x=1", b"https://[fe80::1]:443/a", b"doc/page"]

#: Chunk-size lines: negative sizes that step back onto their own line, and other non-hex shapes.
HOSTILE_SIZE_LINES = (b"-3\n", b"-4\r\n", b"-5;x\r\n", b"-1\r\n", b"-ff\r\n", b"0x5\r\n", b"+5\r\n", b"5 5\r\n",
                      "\u0665\r\n".encode(), b"f" * 40 + b"\r\n", b"zz\r\n", b"\r\n")


@st.composite
def hostile_chunked(draw: st.DrawFn) -> bytes:
    """A chunked body whose size lines are sometimes right and sometimes hostile (structured,
    because random mutation rarely lands a token exactly at the start of a size line)."""
    out = b""
    for data in draw(st.lists(st.binary(max_size=20), min_size=1, max_size=5)):
        if draw(st.booleans()):
            out += b"%x" % len(data) + draw(st.sampled_from([b"\r\n", b"\n", b";x=1\r\n"]))
        else:
            out += draw(st.sampled_from(HOSTILE_SIZE_LINES))
        out += data + b"\r\n"
    return out + draw(st.sampled_from([b"0\r\n\r\n", b""]))


HOSTILE_CHUNKED_RESPONSES = hostile_chunked().map(
    lambda body: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
)



@given(st.one_of(fuzz_bytes(RESPONSES, tokens=TITLE_TOKENS), HOSTILE_CHUNKED_RESPONSES), st.booleans())
def test_parse_response_never_raises(data: bytes, eof: bool) -> None:
    response = bounded(http.parse_response, data, eof=eof)
    if response is not None:
        assert response.head.raw == data[: len(response.head.raw)]
        assert len(response.head.headers) <= http.MAX_HEADERS
        bounded(lambda: (response.content_type, response.head.content_length, response.head.text()))


@given(fuzz_bytes(RESPONSES), st.sampled_from([("HTTP",), ("RTSP", "HTTP")]))
def test_parse_head_never_raises(data: bytes, protocols: tuple[str, ...]) -> None:
    head = bounded(http.parse_head, data, protocols=protocols)
    if head is not None:
        assert 100 <= head.status <= 999
        assert head.content_length is None or head.content_length >= 0


@given(st.one_of(fuzz_bytes(CHUNKED_BODIES, tokens=CHUNK_TOKENS), hostile_chunked()))
def test_decode_chunked_never_raises_or_hangs(data: bytes) -> None:
    body, _done = bounded(http.decode_chunked, data)
    assert len(body) <= len(data)


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.booleans())
def test_decode_chunked_round_trip(chunks: list[bytes], bare_lf: bool) -> None:
    end = b"\n" if bare_lf else b"\r\n"
    wire = b"".join(b"%x%s%s%s" % (len(c), end, c, end) for c in chunks) + b"0" + end + end
    assert http.decode_chunked(wire) == (b"".join(chunks), True)


@given(st.one_of(fuzz_bytes(RESPONSES), HOSTILE_CHUNKED_RESPONSES),
       st.lists(st.integers(1, 4096), max_size=6), st.booleans())
def test_message_framer_never_raises_or_hangs(data: bytes, cuts: list[int], rtsp: bool) -> None:
    framer = http.MessageFramer(rtsp=rtsp)
    pos = 0
    for size in [*cuts, len(data)]:
        bounded(framer.feed, data[pos : pos + size])
        pos += size
    bounded(lambda: (framer.foreign, framer.until_close))


@st.composite
def framed_responses(draw: st.DrawFn) -> tuple[bytes, bytes]:
    body = draw(st.binary(max_size=600))
    if draw(st.booleans()):
        pieces, rest = [], body
        while rest:
            size = draw(st.integers(1, len(rest)))
            pieces.append(rest[:size])
            rest = rest[size:]
        framing = b"Transfer-Encoding: chunked\r\n"
        wire = b"".join(b"%X\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        framing = b"Content-Length: %d\r\n" % len(body)
        wire = body
    return b"HTTP/1.1 200 OK\r\nServer: x\r\n" + framing + b"\r\n" + wire, body


@given(framed_responses(), st.lists(st.integers(1, 700), max_size=8))
@example(  # found by the campaign: complete at the last-chunk line, two bytes before the end
    (b"HTTP/1.1 200 OK\r\nServer: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\x00\r\n4\r\n\x00\x00\x00\x00\r\n0\r\n\r\n",
     b"\x00" * 5), [76])
def test_message_framer_is_done_exactly_at_the_end(case: tuple[bytes, bytes], cuts: list[int]) -> None:
    data, body = case
    framer = http.MessageFramer()
    # A chunked message is complete at its last-chunk line ("0\r\n"): the empty trailer section
    # after it says nothing about the body, and a device that leaves it out must not cost a
    # read timeout. So the framer may finish up to those last two bytes early, never before.
    end = len(data) - 2 if b"Transfer-Encoding: chunked" in data else len(data)
    pos, done = 0, False
    for size in cuts:
        if pos + size >= end:
            break
        assert not framer.feed(data[pos : pos + size]), "complete before the last byte"
        pos += size
    done = framer.feed(data[pos:])
    assert done
    response = http.parse_response(data)
    assert response is not None and response.body == body and response.body_complete


@given(fuzz_bytes(TITLES, tokens=TITLE_TOKENS), st.sampled_from([None, "text/html; charset=gbk", "text/html; charset=x-bogus", "utf-16"]))
def test_extract_title_never_raises_and_is_bounded(body: bytes, content_type: str | None) -> None:
    title = bounded(http.extract_title, body, content_type)
    assert title is None or len(title) <= http.MAX_TITLE


@given(fuzz_bytes(TITLES), fuzz_text([b"text/html; charset=utf-8"], max_size=80))
def test_decode_text_and_charset_never_raise(body: bytes, content_type: str) -> None:
    bounded(http.decode_text, body, content_type)
    bounded(http.looks_like_html, content_type, body)
    bounded(http.favicon_hashes, body)


@given(fuzz_text(LOCATIONS, max_size=300, tokens=REDIRECT_TOKENS), st.sampled_from(["10.0.0.5", "fe80::1", "::1"]), st.integers(1, 65535),
       st.booleans())
def test_redirect_path_never_raises(location: str, address: str, port: int, tls: bool) -> None:
    path = bounded(http.redirect_path, location, address, port, tls=tls)
    if path is not None:
        assert path.startswith("/")
        assert not any(c in path for c in "\r\n\x00 \t")


@given(fuzz_text(CHALLENGES, max_size=5000))
def test_parse_challenge_never_raises(header: str) -> None:
    params = bounded(parse_challenge, header)
    if params is not None:
        assert "realm" in params and "nonce" in params


@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True),
                       st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40), max_size=6),
       st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40),
       st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40))
def test_parse_challenge_round_trip(extra: dict[str, str], realm: str, nonce: str) -> None:
    """Quoted values (RFC 7616 quoted-string, backslash escapes) read back as written."""
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    params = {k.lower(): v for k, v in extra.items() if k.lower() not in ("realm", "nonce")}
    params.update(realm=realm, nonce=nonce)
    header = "Digest " + ", ".join(f"{k}={quoted(v)}" for k, v in params.items())
    assert parse_challenge(header) == params


@given(mutated([b"/", b"/ISAPI/System/deviceInfo", b"/cgi-bin/magicBox.cgi?action=getSystemInfo"]).map(
    lambda b: b.decode("latin-1")), st.sampled_from(["10.0.0.5", "fd00::5"]), st.integers(1, 65535), st.booleans())
def test_build_get_refuses_or_builds_one_request_line(path: str, address: str, port: int, tls: bool) -> None:
    try:
        request = http.build_get(address, port, path, tls=tls)
    except (ValueError, UnicodeEncodeError):
        return
    assert request.count(b"\r\n\r\n") == 1 and request.endswith(b"\r\n\r\n")
    assert request.split(b"\r\n", 1)[0] == f"GET {path} HTTP/1.1".encode("ascii")
