"""camaudit.protocols.rtsp: OPTIONS/DESCRIBE builders and the RTSP response parser."""

from __future__ import annotations

import pytest

from camaudit.protocols.http import MessageFramer
from camaudit.protocols.rtsp import (
    build_describe,
    build_options,
    parse_response,
    parse_sdp,
    rtsp_url,
)

# corpus nmap-hik-rtsp-realm (nmap-service-probes line 12141), nonce zero-filled.
HIK_401 = (
    b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n"
    b'WWW-Authenticate: Digest realm="Hikvision", nonce="00000000000000000000000000000000", stale="FALSE"\r\n'
    b'WWW-Authenticate: Basic realm="/"\r\nDate:  Wed, May 05 2021 21:51:17 GMT\r\n\r\n'
)
# corpus nmap-dahua-rtsp-405 (nmap line 11363): the header order of that capture.
DAHUA_405 = (
    b"RTSP/1.0 405 Method Not Allowed\r\nServer: Dahua Rtsp Server\r\nContent-Length: 0\r\nCSeq: 0\r\n\r\n"
)
# Dahua SDP tokens per fingerprinting.md 4.2 (RETINA dahua_*).
DAHUA_SDP = (
    b"v=0\r\no=- 2251938191 2251938191 IN IP4 0.0.0.0\r\ns=Media Server\r\nc=IN IP4 0.0.0.0\r\n"
    b"t=0 0\r\na=control:*\r\na=packetization-supported:DH\r\na=rtppayload-supported:DH\r\n"
    b"m=video 0 RTP/AVP 96\r\na=control:trackID=0\r\n"
)
DAHUA_200 = (
    b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nServer: Rtsp Server/3.0\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" % len(DAHUA_SDP)
) + DAHUA_SDP


def test_builders() -> None:
    url = rtsp_url("127.60.0.1", 8554)
    assert url == "rtsp://127.60.0.1:8554/"
    assert rtsp_url("127.60.0.1", 554) == "rtsp://127.60.0.1/"
    assert rtsp_url("::1", 554) == "rtsp://[::1]/"
    options = build_options(url, 1, user_agent="camaudit/0.1.0")
    assert options == (
        b"OPTIONS rtsp://127.60.0.1:8554/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: camaudit/0.1.0\r\n\r\n"
    )
    describe = build_describe(url, 2)
    assert describe.startswith(b"DESCRIBE rtsp://127.60.0.1:8554/ RTSP/1.0\r\nCSeq: 2\r\n")
    assert b"Accept: application/sdp\r\n" in describe
    assert b"Authorization" not in options + describe  # never credentials
    with pytest.raises(ValueError):
        build_options("rtsp://x/\r\nInjected: 1")


def test_hikvision_401_keeps_both_challenges_verbatim() -> None:
    response = parse_response(HIK_401)
    assert response is not None
    assert (response.status, response.cseq) == (401, 2)
    assert response.head.get_all("WWW-Authenticate") == [
        'Digest realm="Hikvision", nonce="00000000000000000000000000000000", stale="FALSE"',
        'Basic realm="/"',
    ]
    assert response.head.get("Date") == "Wed, May 05 2021 21:51:17 GMT"
    assert "Date:  Wed" in response.text()  # the double space survives in the raw text
    assert response.body == b"" and response.body_complete


def test_dahua_405_without_body() -> None:
    response = parse_response(DAHUA_405)
    assert response is not None
    assert response.head.get("Server") == "Dahua Rtsp Server"
    assert response.cseq == 0
    assert response.text() == DAHUA_405.decode("latin-1")


def test_sdp_body_parsed_and_kept_raw() -> None:
    response = parse_response(DAHUA_200 + b"RTSP/1.0 200 OK\r\n")  # a pipelined extra is not ours
    assert response is not None and response.body_complete
    assert response.raw == DAHUA_200
    sdp = response.sdp
    assert sdp is not None
    assert ("s", "Media Server") in sdp
    assert ("a", "packetization-supported:DH") in sdp
    assert response.text().endswith("a=control:trackID=0\r\n")


def test_no_content_length_means_no_body() -> None:
    response = parse_response(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\nv=0\r\n")
    assert response is not None and response.body == b"" and response.sdp is None


def test_http_shaped_answer_on_an_rtsp_port_is_accepted() -> None:
    # corpus nmap-neg-axis-rtsp (nmap line 12055)
    data = b"HTTP/1.0 501 Not Implemented\r\nAllow: DESCRIBE, GET_PARAMETER, PAUSE, PLAY, SETUP, SET_PARAMETER, TEARDOWN\r\n\r\n"
    response = parse_response(data)
    assert response is not None and response.head.protocol == "HTTP/1.0" and response.status == 501


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x01\xfe" * 50, id="garbage"),
        pytest.param(b"SIP/2.0 200 OK\r\n\r\n", id="other-protocol"),
        pytest.param(b"RTSP/1.0 abc Bad\r\n\r\n", id="bad-status"),
    ],
)
def test_garbage_gives_none(data: bytes) -> None:
    assert parse_response(data) is None


def test_truncated_body_is_partial() -> None:
    response = parse_response(DAHUA_200[:-20])
    assert response is not None and not response.body_complete
    assert response.head.get("Server") == "Rtsp Server/3.0"
    cut_head = parse_response(b"RTSP/1.0 401 Unauthorized\r\nServer: Dahua Rtsp Server\r\nWWW-Auth")
    assert cut_head is not None and not cut_head.head.complete
    assert cut_head.head.get_all("WWW-Authenticate") == []


def test_bad_cseq_and_sdp_lines_are_tolerated() -> None:
    response = parse_response(b"RTSP/1.0 200 OK\r\nCSeq: 99999999999999999999\r\n\r\n")
    assert response is not None and response.cseq is None
    assert parse_sdp(b"v=0\r\nnot sdp\r\n=x\r\n\xff\xfe\r\na=ok\r\n") == [("v", "0"), ("a", "ok")]
    assert len(parse_sdp(b"a=x\r\n" * 10_000)) == 500


def test_rtsp_framer_stops_at_head_without_content_length() -> None:
    framer = MessageFramer(rtsp=True)
    assert framer.feed(HIK_401)
    sdp_framer = MessageFramer(rtsp=True)
    assert not sdp_framer.feed(DAHUA_200[:-1])
    assert sdp_framer.feed(DAHUA_200[-1:])
