"""Listener and check agree, or the check says where they do not (issue 10, item 12).

A real listener and real checks over loopback (127.83.1.21, in this area's 127.83.1.0/24 block),
run as a user runs them. Every probe that would leave loopback is off: --no-upnp, --no-natpmp,
--no-proxy-discovery, --ra-wait 0, and --resolver is the listener itself (never the system's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camaudit.egress import dns, wire
from camaudit.egress.check import CheckOptions, listener_disagreements
from camaudit.egress.listener import dns_answer
from camaudit.egress.results import ALLOWED, BLOCKED, PathResult
from camaudit.lab.listeners import egress_listener
from camaudit.lab.netns import GUARD_ENV

LISTENER = "127.83.1.21"
NO_RESOLVER = "127.83.1.22"  # nothing listens here: a resolver path that cannot reach the listener
ZONE = "egress.test"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {GUARD_ENV: "1"}
SAFE = ["--no-upnp", "--no-natpmp", "--ra-wait", "0", "--no-proxy-discovery", "--max-hops", "1", "--skip", "icmp"]


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("the listener needs root to bind udp/53")
    tmp = tmp_path_factory.mktemp("listen")
    with egress_listener((sys.executable, "-m", "camaudit"), LISTENER, tmp, "--tcp-ports", "18443", "--udp-ports", "53,123,18800", "--dns-zone", ZONE, "--no-icmp", "--duration", "180", ready_within=30) as log:
        yield log


def _check(db: Path, *extra: str, resolver: str = LISTENER) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-m", "camaudit", "egress", "check", "--listener", LISTENER,
                          "--resolver", resolver, "--timeout", "1", "--db", str(db), "--json", *SAFE, *extra],
                         capture_output=True, text=True, timeout=120, env=ENV)
    assert res.returncode in (0, 1), res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def _path(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in doc["paths"] if p["path"] == name)


def test_a_control_without_the_listeners_zone_passes_direct_dns_and_says_what_disagrees(
        listener: Path, tmp_path: Path) -> None:
    doc = _check(tmp_path / "eg.db", "--control", "--tcp-ports", "18443,18444", "--udp-ports", "53,18800",
                 resolver=NO_RESOLVER)
    assert doc["control_passed"] is True
    direct = _path(doc, "dns/direct")
    assert direct["result"] == "allowed", direct  # was REFUSED: the name carried no zone of the listener's
    # The listener said what it serves; the check kept it as evidence and compared it with its options.
    assert direct["evidence"]["extra"]["listener"] == {"zone": ZONE, "tcp": "18443", "udp": "53,123,18800"}
    notes = doc["notes"]
    assert any(f"serves zone {ZONE} but this check was run without --dns-zone" in n
               and "resolver path was not tested" in n for n in notes), notes
    unserved = [n for n in notes if n.startswith("the listener does not listen on")]
    assert len(unserved) == 1 and "tcp/18444" in unserved[0], notes
    assert "18443" not in unserved[0] and "udp/53" not in unserved[0]
    assert _path(doc, "tcp/18444")["result"] == "blocked"  # the RST it got, and the note says why


def test_a_check_that_matches_the_listener_has_no_such_notes(listener: Path, tmp_path: Path) -> None:
    doc = _check(tmp_path / "eg.db", "--control", "--dns-zone", ZONE, "--tcp-ports", "18443", "--udp-ports", "53,18800")
    assert doc["control_passed"] is True
    assert _path(doc, "dns/direct")["result"] == "allowed" and _path(doc, "dns/resolver")["result"] == "allowed"
    assert not [n for n in doc["notes"] if n.startswith("the listener")], doc["notes"]


def test_a_check_with_another_zone_is_told_the_resolver_path_says_nothing(listener: Path, tmp_path: Path) -> None:
    doc = _check(tmp_path / "eg.db", "--dns-zone", "other.test", "--tcp-ports", "18443", "--udp-ports", "53",
                 "--skip", "udp/", "--skip", "ntp", resolver=NO_RESOLVER)
    assert _path(doc, "dns/direct")["result"] == "allowed"
    assert any(f"serves zone {ZONE} but this check used --dns-zone other.test" in n for n in doc["notes"]), doc["notes"]


# -- the same, without sockets -----------------------------------------------------------------------


def test_the_listener_answers_direct_nonce_queries_outside_its_zone() -> None:
    nonce = wire.new_nonce()
    seen: list[str] = []
    facts = wire.ListenerFacts(zone=ZONE, tcp=frozenset({443}), udp=frozenset({53, 123}))
    query = dns.build_query(f"{nonce}.camaudit.invalid", dns.QTYPE_TXT, 0x4242)
    answer = dns_answer(query, ZONE, seen.append, facts)
    resp = dns.parse_response(answer or b"")
    assert resp is not None and resp.rcode == dns.RCODE_NOERROR and seen == [nonce]
    (txt,) = resp.txt()
    assert txt.startswith(f"camaudit-egress {nonce} ") and wire.parse_facts(txt) == facts
    assert answer is not None and not answer[2] & 0x04  # not authoritative: outside the zone
    # Names without a nonce keep their answers: REFUSED outside the zone, NXDOMAIN inside.
    other = dns.parse_response(dns_answer(dns.build_query("www.example.com", dns.QTYPE_A, 1), ZONE, seen.append) or b"")
    assert other is not None and other.rcode == dns.RCODE_REFUSED


def test_echo_facts_are_backward_compatible_and_bounded() -> None:
    nonce = wire.new_nonce()
    facts = wire.ListenerFacts(zone="", tcp=frozenset({80, 443, 8000, 8001, 8002}), udp=frozenset())
    line = wire.echo_line(nonce, "10.0.0.7", facts)
    assert line == f"CAMAUDIT-EGRESS-ECHO {nonce} 10.0.0.7 zone=- tcp=80,443,8000-8002 udp=-\r\n".encode()
    assert wire.parse_echo(line, nonce) == "10.0.0.7"  # what older checks read is unchanged
    assert wire.echo_facts(line, nonce) == facts
    assert wire.echo_facts(wire.echo_line(nonce, "10.0.0.7"), nonce) is None  # an older listener: nothing said
    every_other = wire.ListenerFacts(zone=ZONE, tcp=frozenset(range(1, 65536, 2)), udp=frozenset({53}))
    long = wire.echo_line(nonce, "10.0.0.7", every_other)
    assert len(long) <= wire.MAX_LINE and wire.echo_facts(long, nonce) == wire.ListenerFacts(zone=ZONE)
    for bad in ("tcp=0", "tcp=99999", "tcp=5-1", "tcp=\u00b2", "zone=", "tcp=1-" + "9" * 5000):
        said = wire.parse_facts(bad)
        assert said is None or (said.tcp is None and said.zone is None)


def test_disagreements_name_the_zone_and_the_unserved_ports() -> None:
    said = {"listener": {"zone": ZONE, "tcp": "443", "udp": "53"}}
    paths = [
        PathResult(path="tcp/443", result=ALLOWED, basis="echo", proto="tcp", dst="10.9.9.9", port=443, extra=said),
        PathResult(path="tcp/8443", result=BLOCKED, basis="timeout", proto="tcp", dst="10.9.9.9", port=8443),
        PathResult(path="ntp", result=BLOCKED, basis="timeout", proto="udp", dst="10.9.9.9", port=123),
        PathResult(path="udp/53", result=BLOCKED, basis="timeout", proto="udp", dst="10.9.9.9", port=53),
        # another address the listener said nothing about: no claim is made for it
        PathResult(path="ipv6/tcp/8443", result=BLOCKED, basis="timeout", proto="tcp", dst="2001:db8::9", port=8443),
    ]
    notes = listener_disagreements(CheckOptions(listeners=["10.9.9.9"], dns_zone=None), paths)
    assert notes[0] == (f"the listener serves zone {ZONE} but this check was run without --dns-zone: "
                        "the resolver path was not tested")
    assert notes[1].startswith("the listener does not listen on tcp/8443, udp/123 (ntp), which this check probed")
    assert len(notes) == 2
    assert listener_disagreements(CheckOptions(listeners=["10.9.9.9"], dns_zone=f"x.{ZONE}."), paths[:1]) == []
    assert listener_disagreements(CheckOptions(listeners=["10.9.9.9"]), paths[1:]) == []  # nothing said
    # The nonce came back through the resolver: that path was tested, whatever the zones say.
    resolved = PathResult(path="dns/resolver", result=ALLOWED, basis="echo", proto="udp", dst="10.9.9.8", port=53)
    assert listener_disagreements(CheckOptions(listeners=["10.9.9.9"], dns_zone="other.test"),
                                  [paths[0], resolved]) == []
    assert listener_disagreements(CheckOptions(listeners=["10.9.9.9"], dns_zone="other.test"), paths[:1]) == [
        f"the listener serves zone {ZONE} but this check used --dns-zone other.test: the resolver path asked "
        "for a zone the listener does not serve, so its result says nothing"]
