"""Properties of the ICMP error record reader (camaudit.discovery.refusals.refused_errno).

Contract: any ancillary data (records of any level, type and length) gives an errno from
REFUSING_ERRNOS or None, never an exception; a record that is not an ICMP-origin error of the
IP_RECVERR / IPV6_RECVERR kind never counts as a refusal.
"""

from __future__ import annotations

import socket
import struct

from fuzzkit import bounded
from hypothesis import given
from hypothesis import strategies as st

from camaudit.discovery import refusals

_KINDS = st.sampled_from([(socket.IPPROTO_IP, refusals.IP_RECVERR), (socket.IPPROTO_IPV6, refusals.IPV6_RECVERR),
                          (socket.SOL_SOCKET, 1), (socket.IPPROTO_IP, 8)])  # fmt: skip
_RECORD = st.tuples(_KINDS, st.one_of(
    st.binary(max_size=64),
    st.builds(lambda e, o, rest: struct.pack("=IBBBB", e, o, 3, 3, 0) + rest,
              st.integers(0, 2**32 - 1), st.integers(0, 255), st.binary(max_size=40)),
)).map(lambda t: (t[0][0], t[0][1], t[1]))  # fmt: skip


@given(st.lists(_RECORD, max_size=5))
def test_refused_errno_is_strict_and_never_raises(ancdata: list[tuple[int, int, bytes]]) -> None:
    found = bounded(refusals.refused_errno, ancdata)
    if found is None:
        return
    assert found in refusals.REFUSING_ERRNOS
    assert any(
        (level, kind) in ((socket.IPPROTO_IP, refusals.IP_RECVERR), (socket.IPPROTO_IPV6, refusals.IPV6_RECVERR))
        and len(data) >= 8 and data[4] in (refusals.SO_EE_ORIGIN_ICMP, refusals.SO_EE_ORIGIN_ICMP6)
        for level, kind, data in ancdata
    )
