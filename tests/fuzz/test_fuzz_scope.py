"""Properties of scope parsing (camaudit.scope): any target text parses or raises ScopeError, and
for small ranges the public-address decision equals the brute-force decision over every address."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from fuzzkit import bounded, fuzz_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camaudit.errors import ScopeError
from camaudit.scope import _V4_TABLE, _V6_TABLE, build_scope, classify, expand_target_args, parse_target

SEEDS = [b"10.0.0.5", b"10.0.0.0/24", b"10.0.0.1-10.0.0.50", b"10.0.0.1-50", b"fd00::1-fd00::ff", b"fe80::1%eth0"]
TOKENS = (b"-", b"/", b"::ffff:", b"64:ff9b::", "\u0661".encode(), b"9" * 40, b"%", b",", b" ", b"\x00")

V4_BOUNDS = sorted({int(n.network_address) for n in map(ipaddress.ip_network, (p for p, _, _ in _V4_TABLE))}
                   | {int(n.broadcast_address) + 1 for n in map(ipaddress.ip_network, (p for p, _, _ in _V4_TABLE))})
V6_BOUNDS = sorted({int(n.network_address) for n in map(ipaddress.ip_network, (p for p, _, _ in _V6_TABLE))}
                   | {int(n.broadcast_address) + 1 for n in map(ipaddress.ip_network, (p for p, _, _ in _V6_TABLE))})


@given(fuzz_text(SEEDS, max_size=80, tokens=TOKENS))
def test_parse_target_raises_only_scope_error(text: str) -> None:
    try:
        ranges = bounded(parse_target, text)
    except ScopeError:
        return
    assert all(first.version == last.version and int(first) <= int(last) for first, last in ranges)


def _decision(first: int, count: int, version: int, *, embed: str = "") -> tuple[str, bool]:
    """The range text, and whether some address in it is external (brute force)."""
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    if embed:
        base = int(ipaddress.IPv6Address(embed))
        addresses = [ipaddress.IPv6Address(base + ((first + i) % 2**32)) for i in range(count)]
        if int(addresses[-1]) < int(addresses[0]):
            addresses = addresses[:1]
    else:
        top = 2**32 if version == 4 else 2**128
        addresses = [make(v) for v in range(first, min(first + count, top))]
    text = f"{addresses[0]}-{addresses[-1]}"
    return text, any(classify(ip).cls == "external" for ip in addresses)


def _check(text: str, external: bool) -> None:
    try:
        build_scope([text], max_hosts=2**20)
    except ScopeError as exc:
        assert ("public" in str(exc)) == external, (text, str(exc))
        return
    assert not external, f"{text} holds an external address, yet the scope was accepted"


@given(st.sampled_from(V4_BOUNDS), st.integers(-40, 40), st.integers(1, 64))
def test_v4_range_decision_equals_brute_force(bound: int, shift: int, count: int) -> None:
    first = min(max(bound + shift, 0), 2**32 - 1)
    _check(*_decision(first, count, 4))


@given(st.sampled_from(V6_BOUNDS), st.integers(-40, 40), st.integers(1, 64))
def test_v6_range_decision_equals_brute_force(bound: int, shift: int, count: int) -> None:
    first = min(max(bound + shift, 0), 2**128 - 1)
    _check(*_decision(first, count, 6))


@given(st.sampled_from(V4_BOUNDS), st.integers(-40, 40), st.integers(1, 64),
       st.sampled_from(["::ffff:0:0", "64:ff9b:1::"]))
def test_embedded_v4_range_decision_equals_brute_force(bound: int, shift: int, count: int, embed: str) -> None:
    first = min(max(bound + shift, 0), 2**32 - 1)
    _check(*_decision(first, count, 6, embed=embed))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(exclude_categories=(), exclude_characters="/"), min_size=1, max_size=30))
def test_target_file_names_raise_only_scope_error(tmp_path: Path, name: str) -> None:
    # Names never hold "/": the test must stay inside its own directory (no /dev/zero, no stdin).
    try:
        expand_target_args([f"@{tmp_path}/{name}"])
    except ScopeError:
        pass


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | fuzz_text(SEEDS, tokens=TOKENS).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_target_file_contents_raise_only_scope_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "targets.txt"
    path.write_bytes(content)
    try:
        targets = bounded(expand_target_args, [f"@{path}"])
    except ScopeError:
        return
    assert all(target.strip() and "#" not in target for target in targets)
