"""The address-class table (reference/egress.md section 4) and target parsing."""

from __future__ import annotations

import ipaddress

import pytest

from camaudit.errors import ScopeError
from camaudit.scope import AddressClass, build_scope, classify, is_external, parse_target

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
