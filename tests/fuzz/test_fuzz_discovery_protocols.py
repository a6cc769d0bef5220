"""Properties of the discovery parsers: WS-Discovery, SADP, DHIP (camaudit.protocols.wsd/sadp/dhip).

Contract: any datagram parses to a reply or None, never an exception, in bounded time; the UDP
driver's collector takes any datagram without raising, keeps each answer once, and keeps a
WS-Discovery answer only when it relates to one of the run's probes. Round
trips: each builder's probe is recognised by the matching ``is_*`` function, a Probe's MessageID
reads back, and a framed DHIP reply parses back to the device information it carried.
"""

from __future__ import annotations

import json

from fuzzkit import bounded, capture, fuzz_bytes
from hypothesis import given
from hypothesis import strategies as st

from camaudit.discovery import udp
from camaudit.model import Observation
from camaudit.protocols import dhip, sadp, wsd
from camaudit.protocols.constants import DHIP_MAX_LEN

WSD_SEEDS = [capture(n) for n in ("wsd_dahua.xml", "wsd_hikvision.xml", "wsd_ipycam.xml")] + [wsd.build_probe()[0]]
SADP_SEEDS = [capture(n) for n in ("sadp_hikvision.xml", "sadp_ezviz.xml")] + [sadp.build_probe()[0]]
DHIP_SEEDS = [dhip.frame(capture("dhip_dahua.json")), dhip.build_probe()[0]]
XML_TOKENS = (b'<?xml version="1.0" encoding="x-bogus"?>', b'encoding="x-bogus"', b'encoding="utf-16"',
              b"<!DOCTYPE x [<!ENTITY a \"b\">]>", b"&a;", b"<a>" * 400, b"\x00", b"\xff\xfe")
JSON_TOKENS = (b"1" * 5000, b"[" * 5000, b'{"a":' * 5000, b"\\udfff", b"1e999", b"NaN", b"\x00")



@given(fuzz_bytes(WSD_SEEDS, tokens=XML_TOKENS))
def test_wsd_parsers_never_raise(data: bytes) -> None:
    reply = bounded(wsd.parse_reply, data, "127.0.0.1", "2026-01-01T00:00:00Z")
    if reply is not None:
        assert len(reply.matches) <= wsd.MAX_MATCHES
        for match in reply.matches:
            bounded(match.to_json)
            bounded(lambda m=match: m.is_camera)
    bounded(wsd.is_probe, data)
    bounded(wsd.probe_message_id, data)


@given(fuzz_bytes(SADP_SEEDS, tokens=XML_TOKENS))
def test_sadp_parsers_never_raise(data: bytes) -> None:
    reply = bounded(sadp.parse_reply, data, "127.0.0.1", "2026-01-01T00:00:00Z")
    if reply is not None:
        assert len(reply.fields) <= sadp.MAX_FIELDS
        bounded(reply.to_json)
    bounded(sadp.is_inquiry, data)


@given(fuzz_bytes(DHIP_SEEDS, tokens=JSON_TOKENS))
def test_dhip_parsers_never_raise(data: bytes) -> None:
    reply = bounded(dhip.parse_reply, data, "127.0.0.1", "2026-01-01T00:00:00Z")
    if reply is not None:
        bounded(reply.to_json)
    bounded(dhip.is_search, data)
    bounded(dhip.parse_body, data[32:], "127.0.0.1", "2026-01-01T00:00:00Z")


# Printable text without leading/trailing blanks: XML normalises line ends and the parser strips.
_ID_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFFFD, exclude_categories=("Cs", "Cc", "Zs",
                                                                                                "Zl", "Zp")),
                   min_size=1, max_size=80)


@given(_ID_TEXT)
def test_wsd_probe_round_trip(message_id: str) -> None:
    probe, returned = wsd.build_probe(message_id=message_id)
    assert returned == message_id
    assert wsd.is_probe(probe)
    assert wsd.probe_message_id(probe) == message_id
    assert wsd.parse_reply(probe, "127.0.0.1", "now") is None  # our own probe is not a reply


@given(st.uuids())
def test_sadp_probe_round_trip(probe_uuid: object) -> None:
    probe, returned = sadp.build_probe(str(probe_uuid))
    assert returned == str(probe_uuid).upper()
    assert sadp.is_inquiry(probe)
    assert sadp.parse_reply(probe, "127.0.0.1", "now") is None


_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=30))
_JSON_VALUES = st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


@given(st.dictionaries(st.text(max_size=16), _JSON_VALUES, max_size=12), st.text(max_size=20))
def test_dhip_reply_round_trip(info: dict[str, object], mac: str) -> None:
    body = json.dumps({"mac": mac, "method": "client.notifyDevInfo", "params": {"deviceInfo": info}}).encode()
    reply = dhip.parse_reply(dhip.frame(body), "127.0.0.1", "now")
    if len(body) + 32 > DHIP_MAX_LEN:
        assert reply is None
        return
    assert reply is not None
    assert reply.info == info
    assert reply.mac_text == (mac[:64] or None)
    assert dhip.is_search(dhip.build_probe()[0]) and not dhip.is_search(dhip.frame(body))


# --- the driver's collector: correlation and de-duplication of whatever comes back -------------

#: One run's probe ids (the collector recognises them by shape, without keeping them).
RUN_IDS = udp._MessageIds()
RUN_IDS.block(3)
ISSUED = tuple(f"uuid:{RUN_IDS.uuid_text(n)}" for n in range(3))


#: Ids no probe of the run carries: the next number of the run, and another run's first.
FOREIGN = (f"uuid:{RUN_IDS.uuid_text(3)}", f"uuid:{udp._MessageIds().uuid_text(0)}")


def _answering(seed: bytes, relates_to: str = ISSUED[0]) -> bytes:
    """A captured reply as a device would send it to the probe ``relates_to``."""
    return (seed.replace(b"{{RELATES_TO}}", relates_to.encode()).replace(b"{{ADDRESS}}", b"127.0.0.1")
            .replace(b"{{MESSAGE_ID}}", b"uuid:00000000-0000-4000-8000-000000000001"))


COLLECTOR_SEEDS = [_answering(s) for s in WSD_SEEDS + SADP_SEEDS + DHIP_SEEDS]
COLLECTOR_SEEDS += [_answering(s, foreign) for s in WSD_SEEDS for foreign in FOREIGN]


@given(st.sampled_from(("wsd", "sadp", "dhip")), fuzz_bytes(COLLECTOR_SEEDS, tokens=XML_TOKENS + JSON_TOKENS))
def test_discovery_collector_never_raises_and_keeps_each_answer_once(proto: str, data: bytes) -> None:
    handed: list[Observation] = []
    collector = udp._Collector(udp.UdpDiscoveryResult(), handed.append)
    collector.ids = RUN_IDS
    bounded(collector.handle, proto, data, ("127.0.0.1", 3702))
    first = len(handed)
    bounded(collector.handle, proto, data, ("127.0.0.1", 3702))  # the same datagram again
    assert len(handed) == first, "a repeated datagram gave observations again"
    assert len({(o.kind, o.value, o.port) for o in handed}) == len(handed)
    if proto == "wsd" and handed:
        reply = wsd.parse_reply(data, "127.0.0.1", "2026-01-01T00:00:00Z")
        assert reply is not None and reply.relates_to in ISSUED, "an answer to no probe of ours was kept"
