"""The address-class table (reference/egress.md section 4) and target parsing."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from camaudit.errors import ScopeError
from camaudit.scope import (
    _V4_TABLE,
    _V6_TABLE,
    AddressClass,
    IPAddress,
    build_scope,
    classify,
    expand_target_args,
    is_external,
    parse_target,
    shown_address,
)

# One row per line of the reference table, plus the cases where CPython's is_private/is_global
# disagree between patch releases (CVE-2024-4032).
CLASS_CASES = [
    ("0.1.2.3", AddressClass.LOCAL),
    ("10.20.30.40", AddressClass.INTERNAL),
    ("172.16.0.1", AddressClass.INTERNAL),
    ("172.31.255.254", AddressClass.INTERNAL),
    ("172.32.0.1", AddressClass.EXTERNAL),
    ("192.168.1.1", AddressClass.INTERNAL),
    ("100.64.1.1", AddressClass.AMBIGUOUS),
    ("127.0.0.1", AddressClass.LOCAL),
    ("169.254.10.10", AddressClass.LOCAL),
    ("192.0.0.8", AddressClass.INTERNAL),
    ("192.0.0.9", AddressClass.EXTERNAL),
    ("192.0.0.10", AddressClass.EXTERNAL),
    ("192.0.2.7", AddressClass.ANOMALY),
    ("198.51.100.7", AddressClass.ANOMALY),
    ("203.0.113.53", AddressClass.ANOMALY),
    ("192.88.99.1", AddressClass.EXTERNAL),
    ("198.18.0.1", AddressClass.INTERNAL),
    ("198.19.255.255", AddressClass.INTERNAL),
    ("224.0.0.251", AddressClass.LOCAL),
    ("239.255.255.250", AddressClass.LOCAL),
    ("240.0.0.1", AddressClass.LOCAL),
    ("255.255.255.255", AddressClass.LOCAL),
    ("8.8.8.8", AddressClass.EXTERNAL),
    ("::", AddressClass.LOCAL),
    ("::1", AddressClass.LOCAL),
    ("::ffff:10.0.0.1", AddressClass.INTERNAL),
    ("::ffff:8.8.8.8", AddressClass.EXTERNAL),
    ("::10.0.0.1", AddressClass.INTERNAL),  # IPv4-compatible (deprecated) follows its IPv4 address
    ("::8.8.8.8", AddressClass.EXTERNAL),
    ("::2", AddressClass.LOCAL),
    ("64:ff9b::808:808", AddressClass.EXTERNAL),
    ("64:ff9b:1::a00:1", AddressClass.INTERNAL),
    ("100::1", AddressClass.LOCAL),
    ("2001::1", AddressClass.EXTERNAL),
    ("2001:db8::1", AddressClass.ANOMALY),
    ("2002::1", AddressClass.EXTERNAL),
    ("fd00::1", AddressClass.INTERNAL),
    ("fe80::1", AddressClass.LOCAL),
    ("fec0::1", AddressClass.INTERNAL),
    ("ff02::c", AddressClass.LOCAL),
    ("2a00:1450::1", AddressClass.EXTERNAL),
    ("4000::1", AddressClass.LOCAL),
]


@pytest.mark.parametrize(("address", "expected"), CLASS_CASES)
def test_address_class_table(address: str, expected: AddressClass) -> None:
    assert classify(address).cls is expected


def test_classification_carries_its_reason() -> None:
    assert "RFC 1918" in classify("10.0.0.1").reason
    assert "Teredo" in classify("2001::5").reason


def test_declared_internal_ranges_override_the_table() -> None:
    own = [ipaddress.ip_network("145.0.0.0/16")]
    assert classify("145.0.3.4", internal_extra=own).cls is AddressClass.INTERNAL
    assert is_external("145.0.3.4")


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("10.0.0.5", "10.0.0.5", "10.0.0.5"),
        ("10.0.0.0/30", "10.0.0.1", "10.0.0.2"),  # network and broadcast never answer
        ("10.0.0.4/31", "10.0.0.4", "10.0.0.5"),
        ("10.0.0.1-10.0.0.50", "10.0.0.1", "10.0.0.50"),
        ("10.0.0.1-50", "10.0.0.1", "10.0.0.50"),
        ("fd00::1-fd00::3", "fd00::1", "fd00::3"),
    ],
)
def test_parse_target(text: str, first: str, last: str) -> None:
    [(a, b)] = parse_target(text)
    assert (str(a), str(b)) == (first, last)


@pytest.mark.parametrize("text", ["10.0.0.300", "camera.local", "10.0.0.9-10.0.0.1", "10.0.0.1-fd00::1", "", "10.0.0.0/33"])
def test_bad_targets_are_refused_with_a_message(text: str) -> None:
    with pytest.raises(ScopeError) as err:
        parse_target(text)
    assert str(err.value)


def test_scope_merges_overlaps_and_applies_exclusions() -> None:
    scope = build_scope(["10.1.0.0/29", "10.1.0.3-10.1.0.9", "10.1.0.2"], exclude=["10.1.0.4", "10.1.0.8-9"])
    assert scope.addresses() == ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.5", "10.1.0.6", "10.1.0.7"]
    assert len(scope) == 6


def test_public_addresses_are_refused_unless_allowed() -> None:
    with pytest.raises(ScopeError, match="--allow-public"):
        build_scope(["8.8.8.0/30"])
    # A range that only touches public space at its far end is refused too.
    with pytest.raises(ScopeError, match="172.32.0.0"):
        build_scope(["172.31.255.250-172.32.0.3"])
    assert len(build_scope(["8.8.8.8"], allow_public=True)) == 1


def test_host_cap_is_enforced_and_can_be_raised() -> None:
    with pytest.raises(ScopeError, match="--max-hosts"):
        build_scope(["10.0.0.0/8"])
    assert len(build_scope(["10.0.0.0/15"], max_hosts=200_000)) == 131_070


def test_large_public_check_is_fast() -> None:
    # Walking table boundaries, not addresses: a /8 check must not enumerate 16M addresses.
    with pytest.raises(ScopeError, match="--max-hosts"):
        build_scope(["10.0.0.0/8", "192.168.0.0/16"])


def test_target_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "targets.txt"
    listing.write_text("# cameras at the pool\n10.9.0.1\n10.9.0.10-12  # works yard\n\n10.9.1.0/30\n")
    scope = build_scope([f"@{listing}"])
    assert scope.addresses() == ["10.9.0.1", "10.9.0.10", "10.9.0.11", "10.9.0.12", "10.9.1.1", "10.9.1.2"]
    with pytest.raises(ScopeError, match="cannot read target file"):
        build_scope([f"@{tmp_path / 'missing.txt'}"])


def test_exclusions_that_remove_everything_are_an_error() -> None:
    with pytest.raises(ScopeError, match="exclusions remove every"):
        build_scope(["10.0.0.1"], exclude=["10.0.0.0/24"])


# Issue 10 item 2: ranges and CIDRs that cross an embedded-IPv4 boundary into public space.
@pytest.mark.parametrize(
    ("target", "public"),
    [
        ("::ffff:10.255.255.254-::ffff:11.0.0.1", "::ffff:b00:0"),
        ("::ffff:192.0.0.0/120", "::ffff:c000:9"),
        ("::ffff:172.31.255.254-::ffff:172.32.0.1", "::ffff:ac20:0"),
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff-2000::1", "2000::"),
        ("64:ff9b:1::aff:ffff-64:ff9b:1::b00:1", "64:ff9b:1::b00:0"),
        ("::10.255.255.254-::11.0.0.1", "::b00:0"),  # IPv4-compatible
        ("64:ff9b::a00:0/120", "64:ff9b::a00:0"),  # well-known NAT64: external whatever it embeds
        # Local-use NAT64 repeats the IPv4 table every 2**32 addresses: the first period holds
        # only 255.255.255.255, the last only 0.0.0.0 (both local), the whole one between them
        # holds public space.
        ("64:ff9b:1::ffff:ffff-64:ff9b:1:0:0:2:0:0", "64:ff9b:1:0:0:1:100:0"),
        ("::ffff:0:0/96", "::ffff:100:0"),
        ("::/0", "::100:0"),
    ],
)
def test_embedded_ipv4_ranges_are_refused_at_their_first_public_address(target: str, public: str) -> None:
    with pytest.raises(ScopeError, match="--allow-public") as err:
        build_scope([target])
    assert str(err.value).startswith(f"{shown_address(ipaddress.ip_address(public))} is a public")


def test_refusals_show_an_ipv4_mapped_address_with_its_ipv4_part_dotted() -> None:
    with pytest.raises(ScopeError) as err:
        build_scope(["::ffff:10.255.255.254-::ffff:11.0.0.1"])
    assert str(err.value).startswith("::ffff:11.0.0.0 is a public")


@pytest.mark.parametrize(
    "target",
    [
        "::ffff:10.0.0.0-::ffff:10.0.255.255",
        "::ffff:192.0.0.0-::ffff:192.0.0.8",
        "64:ff9b:1::a00:0/112",
        "64:ff9b:1:0:0:5:a00:0/112",
        "::10.1.0.0/112",
        "::ffff:172.16.0.0-::ffff:172.16.255.255",
        "1fff:ffff:ffff:ffff:ffff:ffff:ffff:0/112",
    ],
)
def test_embedded_ipv4_ranges_inside_internal_space_are_accepted(target: str) -> None:
    assert len(build_scope([target])) > 0


def _interesting_points() -> list[int]:
    """Addresses where the class changes: the IPv4 table's edges, the IPv6 table's, and the
    IPv4 edges mapped into each IPv6 block that embeds IPv4 (in several 2**32 periods)."""
    v4_edges = sorted(
        {0, 2**32 - 1}
        | {int(ipaddress.ip_network(p).network_address) for p, _, _ in _V4_TABLE}
        | {int(ipaddress.ip_network(p).broadcast_address) + 1 for p, _, _ in _V4_TABLE}
    )
    v6_prefixes = [p for p, _, _ in _V6_TABLE] + ["2000::/3", "::ffff:0:0/96", "::/96", "64:ff9b:1::/48"]
    points = []
    for edge in v4_edges:
        points.append(edge)
        for base in ("::", "::ffff:0:0", "64:ff9b:1::", "64:ff9b:1:0:0:7:0:0", "64:ff9b:1:ffff:ffff:ffff::"):
            points.append((1 << 128) + int(ipaddress.IPv6Address(base)) + edge)
    for prefix in v6_prefixes:
        net = ipaddress.IPv6Network(prefix)
        points += [(1 << 128) + int(net.network_address), (1 << 128) + int(net.broadcast_address) + 1]
    return points


def _to_range(anchor: int, offset: int, length: int) -> tuple[IPAddress, IPAddress] | None:
    """An inclusive range near ``anchor`` (values from 2**128 up stand for IPv6)."""
    if anchor >= 1 << 128:
        make: type[IPAddress] = ipaddress.IPv6Address
        top = 2**128 - 1
        anchor -= 1 << 128
    else:
        make, top = ipaddress.IPv4Address, 2**32 - 1
    first = anchor + offset
    last = first + length
    if first < 0 or last > top:
        return None
    return make(first), make(last)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    anchor=st.sampled_from(_interesting_points()),
    offset=st.integers(min_value=-300, max_value=300),
    length=st.integers(min_value=0, max_value=600),
)
def test_public_check_agrees_with_classifying_every_address(anchor: int, offset: int, length: int) -> None:
    """Property: a small range is refused exactly when one of its addresses is external, naming
    the first; it carries the CGNAT note exactly when one of its addresses is ambiguous."""
    bounds = _to_range(anchor, offset, length)
    assume(bounds is not None)
    assert bounds is not None
    first, last = bounds
    make = type(first)
    classes = [classify(make(value)).cls for value in range(int(first), int(last) + 1)]
    externals = [int(first) + i for i, cls in enumerate(classes) if cls is AddressClass.EXTERNAL]
    target = f"{first}-{last}"
    if externals:
        with pytest.raises(ScopeError) as err:
            build_scope([target])
        assert str(err.value).startswith(f"{shown_address(make(externals[0]))} is a public")
    else:
        scope = build_scope([target])
        has_cgnat = AddressClass.AMBIGUOUS in classes
        assert bool(scope.notes) == has_cgnat
        if has_cgnat:
            assert "RFC 6598" in scope.notes[0] and "ambiguous" in scope.notes[0]


def test_cgnat_is_scanned_with_a_note_unless_excluded() -> None:
    scope = build_scope(["100.64.0.1"])
    assert scope.addresses() == ["100.64.0.1"]
    [note] = scope.notes
    assert note.startswith("the scope includes 100.64.0.1, shared address space (carrier-grade NAT, RFC 6598")
    assert build_scope(["10.0.0.1"]).notes == ()
    assert build_scope(["10.0.0.1", "100.64.0.1-100.64.0.3"], exclude=["100.64.0.0/10"]).notes == ()
    [note] = build_scope(["::ffff:100.127.255.255"]).notes
    assert "::ffff:647f:ffff" in note


@pytest.mark.parametrize("name", ["@targets\x00.txt", "@targets-\ud800.txt"], ids=["nul", "lone-surrogate"])
def test_impossible_target_file_names_are_a_usage_error(name: str) -> None:
    with pytest.raises(ScopeError, match="cannot be a target file name") as err:
        expand_target_args([name])
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


def test_an_endless_target_file_is_refused_without_reading_it_all() -> None:
    """A mistaken path (/dev/zero never ends) is refused after a bounded read, in one line."""
    with pytest.raises(ScopeError, match="larger than 16 MiB") as err:
        expand_target_args(["@/dev/zero"])
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
