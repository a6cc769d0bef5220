"""Issue 10 items 1, 3 and 4 at the parser level: chunk sizes are hex digits only and every
framing loop moves forward; interim (1xx) responses are skipped, boundedly; the <title> finder is
linear and finds what the old regex found; a malformed Location never raises."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camaudit.protocols.http import (
    MAX_INTERIM,
    MAX_TITLE,
    MessageFramer,
    chunk_size,
    decode_chunked,
    decode_text,
    extract_title,
    location_is_well_formed,
    parse_response,
    redirect_path,
)

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


# --- chunk sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "size"),
    [
        (b"5", 5), (b"5\r", 5), (b"1a;name=value", 26), (b"A \r", 10), (b"0", 0), (b"000", 0),
        (b"ffffffffffffffff", 2**64 - 1),  # 16 digits: the most accepted
        (b"-5", None), (b"+5", None), (b" 5", None), (b"0x5", None), (b"5_0", None), (b"-0", None),
        (b"ffffffffffffffffffff", None), (b"", None), (b";ext", None), (b"5 5", None), (b"\xff", None),
    ],
)
def test_chunk_size_is_hex_digits_only(line: bytes, size: int | None) -> None:
    assert chunk_size(line) == size


@pytest.mark.parametrize("size", [b"-5", b"+5", b" 5", b"0x5", b"ffffffffffffffffffff", b"-0"])
def test_a_bad_chunk_size_ends_decoding_and_is_said(size: bytes) -> None:
    raw = size + b"\r\nabcdefgh\r\n0\r\n\r\n"
    assert decode_chunked(raw) == (raw, False)  # the bytes as they came, never "complete"
    response = parse_response(CHUNKED_HEAD + raw, eof=True)
    assert response is not None and response.body == raw and not response.body_complete
    assert response.problem == (f"chunked body with an invalid chunk size {size.decode()!r}; "
                                "kept the bytes as they came")
    framer = MessageFramer()
    assert not framer.feed(CHUNKED_HEAD + raw)  # not complete: read until the server closes
    assert framer.until_close and framer.bad_chunk_size == size + b"\r"


def test_good_chunked_bodies_have_no_problem() -> None:
    response = parse_response(CHUNKED_HEAD + b"5;x=1\r\nhello\r\n6 \r\n world\r\n0\r\n\r\n")
    assert response is not None and response.body == b"hello world" and response.body_complete
    assert response.problem == ""


@settings(max_examples=400, deadline=None)
@given(body=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_framer_and_parser_always_end_on_any_chunked_input(body: bytes, cuts: list[int]) -> None:
    # Whatever follows a chunked head, in whatever pieces: feed() returns, parse never raises.
    data = CHUNKED_HEAD + body
    framer = MessageFramer()
    start = 0
    for cut in sorted(c + len(CHUNKED_HEAD) for c in cuts) + [len(data)]:
        framer.feed(data[start:cut])
        start = max(start, cut)
    parse_response(data)
    parse_response(data, eof=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"-5", b"5", b"0", b"\r\n", b"\n", b"abcde", b";", b"x", b" "]), max_size=30))
def test_decode_chunked_never_invents_bytes(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    body, _ = decode_chunked(raw)
    assert len(body) <= len(raw)


# --- interim responses -----------------------------------------------------------------------

FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"


def _feed_bytewise(framer: MessageFramer, data: bytes) -> int | None:
    for i in range(len(data)):
        if framer.feed(data[i : i + 1]):
            return i + 1
    return None


@pytest.mark.parametrize("interim", [CONTINUE, EARLY_HINTS, CONTINUE + b"HTTP/1.1 102 Processing\r\n\r\n" + EARLY_HINTS])
def test_interim_responses_are_skipped(interim: bytes) -> None:
    response = parse_response(interim + FINAL)
    assert response is not None and response.status == 200 and response.body == b"hello"
    assert response.body_complete and response.problem == ""
    assert response.interim == interim.count(b"HTTP/1.1 1")
    assert response.head.raw.startswith(b"HTTP/1.1 200 OK")
    framer = MessageFramer()
    assert _feed_bytewise(framer, interim + FINAL + b"EXTRA") == len(interim + FINAL)
    assert framer.head is not None and framer.head.status == 200
    in_one_piece = MessageFramer()
    assert in_one_piece.feed(interim + FINAL) and in_one_piece.head is not None
    assert in_one_piece.head.status == 200


def test_interim_without_a_final_answer_yet_is_incomplete() -> None:
    assert not MessageFramer().feed(CONTINUE)
    assert not MessageFramer().feed(CONTINUE + b"HTTP/1.1 200 OK\r\nContent-Le")


def test_101_is_final() -> None:
    response = parse_response(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n" + FINAL)
    assert response is not None and response.status == 101 and response.interim == 0
    assert MessageFramer().feed(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")


def test_endless_interim_responses_stop_at_the_limit() -> None:
    stream = CONTINUE * 10_000
    framer = MessageFramer()
    assert framer.feed(stream)
    assert framer.too_many_interim and framer.interim == MAX_INTERIM + 1
    assert _feed_bytewise(MessageFramer(), stream) == len(CONTINUE) * (MAX_INTERIM + 1)
    response = parse_response(stream)
    assert response is not None and response.status == 100 and not response.body_complete
    assert response.problem == f"more than {MAX_INTERIM} interim (1xx) responses and no final answer"
    just_enough = parse_response(CONTINUE * MAX_INTERIM + FINAL)
    assert just_enough is not None and just_enough.status == 200 and just_enough.problem == ""


def test_rtsp_framing_is_unchanged_by_interim_handling() -> None:
    # RTSP has no interim answers to skip here: a 1xx is the answer (RFC 2326 section 7.1.1).
    assert MessageFramer(rtsp=True).feed(b"RTSP/1.0 100 Continue\r\nCSeq: 1\r\n\r\n")


# --- <title> -----------------------------------------------------------------------------------

_OLD_TITLE = re.compile(r"<title\b[^>]*>(.*?)(?:</title\s*>|<|$)", re.IGNORECASE | re.DOTALL)


def _old_extract_title(body: bytes) -> str | None:
    """The regex version this replaced, kept as the reference for what a title is."""
    match = _OLD_TITLE.search(decode_text(body))
    if match is None:
        return None
    return re.sub(r"\s+", " ", html.unescape(match.group(1)[: MAX_TITLE * 8])).strip()[:MAX_TITLE]


_TITLE_PIECES = ["<title", "<TITLE", "<Title x='1'", ">", "<", "</title>", "</title >", "</TITLE\n>",
                 " ", "\n", "x", "é", "&amp;", "<titlex", "<b>", "İ", "\u00a0", "a" * 300]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_TITLE_PIECES), max_size=14))
def test_title_finder_agrees_with_the_old_regex(pieces: list[str]) -> None:
    body = "".join(pieces).encode("utf-8")
    assert extract_title(body) == _old_extract_title(body)


def _best_time(fn: Callable[[], object], *, number: int = 10, repeat: int = 5) -> float:
    started = time.perf_counter()
    fn()
    if time.perf_counter() - started > 2.0:
        pytest.fail("one call took over 2 s")
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best


@pytest.mark.parametrize("hostile", [b"<title " * 9362, b"<title" * 10922, b"<TiTlE\t" * 9362])
def test_title_finder_is_linear(hostile: bytes) -> None:
    # 64 KiB either way; the benign page makes the finder scan the whole text too.
    benign = b"<html><body>" + b"x" * (len(hostile) - 46) + b"<title>WEB SERVICE</title></body>"
    assert extract_title(benign) == "WEB SERVICE"
    hostile_time = _best_time(lambda: extract_title(hostile))
    benign_time = _best_time(lambda: extract_title(benign))
    assert hostile_time < 2.0
    assert hostile_time < 20 * max(benign_time, 1e-5), (hostile_time, benign_time)


# --- Location ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "well_formed"),
    [
        ("/index.asp", True), ("http://10.1.2.3/x", True), ("http://[::1]:80/x", True),
        ("http://[::1", False), ("http://[::1]:x/", False), ("http://10.1.2.3:99999/", False),
        ("http://h:-1/", False), ("/a b", False), ("/a\r\nX: y", False), ("/" + "a" * 3000, False),
    ],
)
def test_location_is_well_formed(location: str, well_formed: bool) -> None:
    assert location_is_well_formed(location) is well_formed
    if not well_formed:
        assert redirect_path(location, "10.1.2.3", 80) is None  # and never raises


def test_redirect_path_to_a_bracketed_ipv6_host() -> None:
    assert redirect_path("http://[::1]:8080/login.asp", "::1", 8080) == "/login.asp"
