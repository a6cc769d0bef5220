"""Properties of the RTSP parser (camaudit.protocols.rtsp): any bytes give a response or None,
never an exception; every property of a parsed response is safe to read."""

from __future__ import annotations

from fuzzkit import bounded, fuzz_bytes, observation_values
from hypothesis import given
from hypothesis import strategies as st

from camaudit.protocols import rtsp

SEEDS = observation_values("rtsp_response", "rtsp_server", "rtsp_www_authenticate") + [
    b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 60\r\n\r\n"
    b"v=0\r\ns=Media Presentation\r\na=Media_header:MEDIAINFO=494D4B48;\r\n",
    b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"device\"\r\n\r\n",
]
TOKENS = ("\r\nCSeq: 4\u00b2\r\n".encode(), "\r\nCSeq: \u0663\r\n".encode(), b"\r\nCSeq: 99999999999999999999\r\n",
          b"\r\nContent-Length: -1\r\n", b"v=0\r\n", b"a=" * 1000)


#: CSeq values. Heads are decoded as Latin-1, where superscripts (0xB2, 0xB3, 0xB9) pass
#: str.isdigit() but not int().
HOSTILE_CSEQ = st.one_of(st.sampled_from(["4\u00b2", "\u00b9", "\u00b3", "\u00bd", "9" * 12, "-1", "1 2", ""]),
                         st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), min_size=1, max_size=4))
STRUCTURED = st.builds(
    lambda cseq, status: f"RTSP/1.0 {status} OK\r\nCSeq: {cseq}\r\nServer: x\r\n\r\n".encode("latin-1"),
    HOSTILE_CSEQ, st.integers(100, 999))


@given(st.one_of(fuzz_bytes(SEEDS, tokens=TOKENS), STRUCTURED))
def test_parse_response_never_raises(data: bytes) -> None:
    response = bounded(rtsp.parse_response, data)
    if response is not None:
        assert response.raw == data[: len(response.raw)]
        bounded(lambda: (response.status, response.cseq, response.sdp, response.text()))
        sdp = response.sdp
        assert sdp is None or len(sdp) <= rtsp.MAX_SDP_LINES


@given(fuzz_bytes(SEEDS[-2:]))
def test_parse_sdp_never_raises(body: bytes) -> None:
    lines = bounded(rtsp.parse_sdp, body)
    assert all(len(kind) == 1 and kind.isalpha() for kind, _ in lines)


@given(st.integers(0, 999_999_999),  # the parser reads up to nine digits: camaudit sends small ones
        st.sampled_from(["10.0.0.5", "fd00::5"]), st.integers(1, 65535))
def test_requests_round_trip_their_cseq(cseq: int, address: str, port: int) -> None:
    url = rtsp.rtsp_url(address, port, "/Streaming/Channels/101")
    for request in (rtsp.build_options(url, cseq), rtsp.build_describe(url, cseq)):
        reply = request.replace(request.split(b"\r\n", 1)[0], b"RTSP/1.0 200 OK")
        parsed = rtsp.parse_response(reply)
        assert parsed is not None and parsed.cseq == cseq
