"""Scan scope: target parsing, exclusions and camaudit's own address-class table.

The internal/external decision never uses ``ipaddress.is_private``/``is_global``: their answers
changed between CPython patch releases (CVE-2024-4032). The table below follows
reference/egress.md section 4 (RFC 6890 and the RFCs it cites), and is unit-tested row by row.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .errors import ScopeError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Above this many addresses a scan must be asked for explicitly (--max-hosts).
DEFAULT_MAX_HOSTS = 65_536


class AddressClass(StrEnum):
    INTERNAL = "internal"  # an organisation's own space (RFC 1918, ULA, ...)
    LOCAL = "local"  # this host or this link: loopback, link-local, multicast, unspecified
    AMBIGUOUS = "ambiguous"  # CGNAT: ISP-side space unless the organisation says otherwise
    ANOMALY = "anomaly"  # documentation ranges: should never be seen on a real network
    EXTERNAL = "external"  # the internet


# (prefix, class, reason). Most specific prefixes are found first by longest-prefix match.
_V4_TABLE: tuple[tuple[str, AddressClass, str], ...] = (
    ("0.0.0.0/8", AddressClass.LOCAL, "this network (RFC 1122)"),
    ("10.0.0.0/8", AddressClass.INTERNAL, "private (RFC 1918)"),
    ("100.64.0.0/10", AddressClass.AMBIGUOUS, "shared address space / CGNAT (RFC 6598)"),
    ("127.0.0.0/8", AddressClass.LOCAL, "loopback (RFC 1122)"),
    ("169.254.0.0/16", AddressClass.LOCAL, "link-local (RFC 3927)"),
    ("172.16.0.0/12", AddressClass.INTERNAL, "private (RFC 1918)"),
    ("192.0.0.0/24", AddressClass.INTERNAL, "IETF protocol assignments (RFC 6890)"),
    ("192.0.0.9/32", AddressClass.EXTERNAL, "globally reachable PCP anycast (RFC 7723)"),
    ("192.0.0.10/32", AddressClass.EXTERNAL, "globally reachable TURN anycast (RFC 8155)"),
    ("192.0.2.0/24", AddressClass.ANOMALY, "documentation TEST-NET-1 (RFC 5737)"),
    ("192.88.99.0/24", AddressClass.EXTERNAL, "6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", AddressClass.INTERNAL, "private (RFC 1918)"),
    ("198.18.0.0/15", AddressClass.INTERNAL, "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", AddressClass.ANOMALY, "documentation TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", AddressClass.ANOMALY, "documentation TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", AddressClass.LOCAL, "multicast (RFC 5771)"),
    ("240.0.0.0/4", AddressClass.LOCAL, "reserved (RFC 1112)"),
    ("255.255.255.255/32", AddressClass.LOCAL, "limited broadcast (RFC 919)"),
)

_V6_TABLE: tuple[tuple[str, AddressClass, str], ...] = (
    ("::/128", AddressClass.LOCAL, "unspecified (RFC 4291)"),
    ("::1/128", AddressClass.LOCAL, "loopback (RFC 4291)"),
    ("64:ff9b::/96", AddressClass.EXTERNAL, "NAT64 well-known prefix (RFC 6052)"),
    ("100::/64", AddressClass.LOCAL, "discard-only (RFC 6666)"),
    ("2001::/32", AddressClass.EXTERNAL, "Teredo tunnel (RFC 4380)"),
    ("2001:db8::/32", AddressClass.ANOMALY, "documentation (RFC 3849)"),
    ("2002::/16", AddressClass.EXTERNAL, "6to4 tunnel (RFC 3056)"),
    ("fc00::/7", AddressClass.INTERNAL, "unique local (RFC 4193)"),
    ("fe80::/10", AddressClass.LOCAL, "link-local (RFC 4291)"),
    ("fec0::/10", AddressClass.INTERNAL, "site-local, deprecated (RFC 3879)"),
    ("ff00::/8", AddressClass.LOCAL, "multicast (RFC 4291)"),
)


def _compile(table: Sequence[tuple[str, AddressClass, str]]) -> list[tuple[IPNetwork, AddressClass, str]]:
    rows = [(ipaddress.ip_network(p), c, r) for p, c, r in table]
    rows.sort(key=lambda row: row[0].prefixlen, reverse=True)  # longest prefix first
    return rows


_V4 = _compile(_V4_TABLE)
_V6 = _compile(_V6_TABLE)


@dataclass(frozen=True, slots=True)
class Classification:
    cls: AddressClass
    reason: str


def classify(address: str | IPAddress, *, internal_extra: Iterable[IPNetwork] = ()) -> Classification:
    """Classify one address. ``internal_extra`` adds an organisation's own public ranges."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    for net in internal_extra:
        if ip.version == net.version and ip in net:
            return Classification(AddressClass.INTERNAL, f"declared internal ({net})")
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return classify(embedded, internal_extra=internal_extra)
        rows = _V6
    else:
        rows = _V4
    for net, cls, reason in rows:
        if ip in net:
            return Classification(cls, reason)
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _V6_GLOBAL_UNICAST:
        return Classification(AddressClass.LOCAL, "reserved IPv6 space")
    return Classification(AddressClass.EXTERNAL, "global unicast")


#: IPv6 blocks whose class follows the IPv4 address in their low 32 bits (egress.md section 4):
#: IPv4-mapped ::ffff:0:0/96 and local-use NAT64 64:ff9b:1::/48 (RFC 8215) per the reference;
#: IPv4-compatible ::/96 (RFC 4291, deprecated) too, because a host that still routes it (a
#: sit tunnel) sends the packet to that IPv4 address. Its first two addresses, :: and ::1, keep
#: their own rows. The well-known NAT64 prefix 64:ff9b::/96 is external as a whole (a row).
_EMBEDDED_V4_BLOCKS: tuple[IPNetwork, ...] = (
    ipaddress.IPv6Network("::ffff:0:0/96"),
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)
_V4_IN_V6_MASK = 0xFFFF_FFFF
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address whose class ``ip`` takes, or None when ``ip`` has its own class."""
    if int(ip) <= 1:  # :: and ::1 are the unspecified and loopback addresses, not IPv4-compatible
        return None
    for block in _EMBEDDED_V4_BLOCKS:
        if ip in block:
            return ipaddress.IPv4Address(int(ip) & _V4_IN_V6_MASK)
    return None


def is_external(address: str | IPAddress) -> bool:
    """True for addresses on the internet side: egress to them leaves the organisation."""
    return classify(address).cls is AddressClass.EXTERNAL


@dataclass(frozen=True, slots=True)
class Scope:
    """A parsed, validated set of targets. Iterating yields each address once, in order."""

    targets: tuple[str, ...]
    networks: tuple[tuple[IPAddress, IPAddress], ...]  # inclusive ranges, merged
    excluded: tuple[tuple[IPAddress, IPAddress], ...]
    size: int
    #: Things the user should know about the scope (CGNAT space in it, for one).
    notes: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[IPAddress]:
        for first, last in self.networks:
            cls = type(first)
            for value in range(int(first), int(last) + 1):
                ip = cls(value)
                if not _in_ranges(ip, self.excluded):
                    yield ip

    def __len__(self) -> int:
        return self.size

    def addresses(self) -> list[str]:
        return [str(ip) for ip in self]


def _in_ranges(ip: IPAddress, ranges: Sequence[tuple[IPAddress, IPAddress]]) -> bool:
    value = int(ip)
    return any(a.version == ip.version and int(a) <= value <= int(b) for a, b in ranges)


def parse_target(text: str) -> list[tuple[IPAddress, IPAddress]]:
    """Parse one target: an address, a CIDR, or a range ``A-B`` (``10.0.0.1-10.0.0.50`` or
    ``10.0.0.1-50``). Returns inclusive ranges. Raises ScopeError with the reason."""
    text = text.strip()
    if not text:
        raise ScopeError("an empty target was given")
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            if net.num_addresses > 2 and net.version == 4:
                # Hosts only: the network and broadcast addresses never answer (lab.md section 3).
                return [(net.network_address + 1, net.broadcast_address - 1)]
            return [(net.network_address, net.broadcast_address)]
        if "-" in text:
            start_text, end_text = (part.strip() for part in text.split("-", 1))
            start = ipaddress.ip_address(start_text)
            if "." not in end_text and ":" not in end_text and start.version == 4:
                end = ipaddress.ip_address(".".join(start_text.split(".")[:3] + [end_text]))
            else:
                end = ipaddress.ip_address(end_text)
            if start.version != end.version:
                raise ScopeError(f"{text!r}: the range mixes IPv4 and IPv6")
            if int(end) < int(start):
                raise ScopeError(f"{text!r}: the range ends before it starts")
            return [(start, end)]
        ip = ipaddress.ip_address(text)
        return [(ip, ip)]
    except ValueError as exc:
        raise ScopeError(
            f"{text!r} is not an address, a CIDR network or a range "
            "(examples: 10.0.0.5, 10.0.0.0/24, 10.0.0.1-10.0.0.50)"
        ) from exc


def shown_address(address: IPAddress) -> str:
    """An address as a person reads it: an IPv4-mapped one with its IPv4 part dotted
    (``::ffff:11.0.0.0``, which Python 3.11 prints as ``::ffff:b00:0``)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


#: A target file larger than this is refused: a list of networks is kilobytes, and a mistaken
#: path (/dev/zero, a disk image) must not be read into memory for ever.
MAX_TARGET_FILE_BYTES = 16 * 1024 * 1024


def _read_target_file(path: Path) -> str:
    with path.open("rb") as handle:
        data = handle.read(MAX_TARGET_FILE_BYTES + 1)
    if len(data) > MAX_TARGET_FILE_BYTES:
        raise ScopeError(f"target file {str(path)!r} is larger than {MAX_TARGET_FILE_BYTES // (1024 * 1024)} MiB: "
                         "is it really a list of targets?")
    return data.decode("utf-8")


def expand_target_args(args: Iterable[str]) -> list[str]:
    """Expand ``@file`` arguments (one target per line, ``#`` comments) into targets."""
    targets: list[str] = []
    for arg in args:
        if arg.startswith("@"):
            path = Path(arg[1:])
            try:
                text = _read_target_file(path)
            except OSError as exc:
                raise ScopeError(f"cannot read target file {str(path)!r}: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise ScopeError(f"target file {str(path)!r} is not UTF-8 text") from exc
            except ValueError as exc:
                # A NUL byte or a lone surrogate: no file can have that name.
                raise ScopeError(f"{str(path)!r} cannot be a target file name") from exc
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                targets.extend(part for part in line.replace(",", " ").split() if part)
        else:
            targets.extend(part for part in arg.split(",") if part.strip())
    return targets


def _merge(ranges: list[tuple[IPAddress, IPAddress]]) -> list[tuple[IPAddress, IPAddress]]:
    ranges = sorted(ranges, key=lambda r: (r[0].version, int(r[0])))
    merged: list[tuple[IPAddress, IPAddress]] = []
    for first, last in ranges:
        if merged and merged[-1][0].version == first.version and int(first) <= int(merged[-1][1]) + 1:
            if int(last) > int(merged[-1][1]):
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _count(ranges: Sequence[tuple[IPAddress, IPAddress]]) -> int:
    return sum(int(b) - int(a) + 1 for a, b in ranges)


def _overlap(a: tuple[IPAddress, IPAddress], b: tuple[IPAddress, IPAddress]) -> int:
    if a[0].version != b[0].version:
        return 0
    lo, hi = max(int(a[0]), int(b[0])), min(int(a[1]), int(b[1]))
    return max(0, hi - lo + 1)


def build_scope(
    targets: Iterable[str],
    *,
    exclude: Iterable[str] = (),
    allow_public: bool = False,
    max_hosts: int = DEFAULT_MAX_HOSTS,
) -> Scope:
    """Parse, check and size the targets. Raises ScopeError on anything a user must fix."""
    target_list = expand_target_args(targets)
    if not target_list:
        raise ScopeError("no targets given: name addresses, CIDR networks, ranges or @file lists")
    ranges: list[tuple[IPAddress, IPAddress]] = []
    for target in target_list:
        ranges.extend(parse_target(target))
    merged = _merge(ranges)
    excluded = _merge([r for text in expand_target_args(exclude) for r in parse_target(text)])

    if not allow_public:
        for first, last in merged:
            public = _first_external(first, last)
            if public is not None:
                raise ScopeError(
                    f"{shown_address(public)} is a public (internet) address; camaudit scans only internal "
                    "networks unless you pass --allow-public"
                )
    size = _count(merged) - sum(_overlap(r, x) for r in merged for x in excluded)
    if size > max_hosts:
        raise ScopeError(
            f"the targets hold {size:,} addresses, more than the cap of {max_hosts:,}; "
            "narrow them or raise the cap with --max-hosts N"
        )
    if size == 0:
        raise ScopeError("the exclusions remove every target address")
    note = _ambiguous_note(_subtract(merged, excluded))
    notes = (note,) if note is not None else ()
    return Scope(tuple(target_list), tuple(merged), tuple(excluded), size, notes)


def _boundaries(table: Sequence[tuple[IPNetwork, AddressClass, str]], extra: Iterable[IPNetwork]) -> tuple[int, ...]:
    points = {0}
    for net in [row[0] for row in table] + list(extra):
        points.update((int(net.network_address), int(net.broadcast_address) + 1))
    return tuple(sorted(points))


# Where the class can change: the start of every row and the address after its end.
_V4_BOUNDARIES = _boundaries(_V4, ())
_V6_BOUNDARIES = _boundaries(_V6, (_V6_GLOBAL_UNICAST, *_EMBEDDED_V4_BLOCKS))


def _class_boundaries(first: IPAddress, last: IPAddress) -> list[int]:
    """``first`` and every address in [first, last] whose class may differ from the address
    before it, in order: the class is constant from each one up to the next.

    Inside a block that embeds IPv4 (``_EMBEDDED_V4_BLOCKS``) the class repeats every 2**32
    addresses, so the IPv4 boundaries are mapped into the first, second and last period the
    range touches: periods in between are whole and identical to the second one.
    """
    lo, hi = int(first), int(last)
    points = {lo}
    if first.version == 4:
        points.update(p for p in _V4_BOUNDARIES if lo <= p <= hi)
        return sorted(points)
    points.update(p for p in _V6_BOUNDARIES if lo <= p <= hi)
    for block in _EMBEDDED_V4_BLOCKS:
        start, end = max(lo, int(block.network_address)), min(hi, int(block.broadcast_address))
        if start > end:
            continue
        first_period, last_period = start >> 32, end >> 32
        for period in {first_period, min(first_period + 1, last_period), last_period}:
            base = period << 32
            points.update(base + p for p in _V4_BOUNDARIES if start <= base + p <= end)
    return sorted(points)


def _first_of_class(first: IPAddress, last: IPAddress, wanted: AddressClass) -> IPAddress | None:
    """The first address of class ``wanted`` in [first, last], found without enumerating the
    range (a /8, or an IPv6 /64, must not take seconds)."""
    make = type(first)
    for value in _class_boundaries(first, last):
        ip = make(value)
        if classify(ip).cls is wanted:
            return ip
    return None


def _first_external(first: IPAddress, last: IPAddress) -> IPAddress | None:
    """The first external address in [first, last], or None."""
    return _first_of_class(first, last, AddressClass.EXTERNAL)


def _subtract(
    ranges: Sequence[tuple[IPAddress, IPAddress]], excluded: Sequence[tuple[IPAddress, IPAddress]]
) -> list[tuple[IPAddress, IPAddress]]:
    """``ranges`` less ``excluded`` (both merged), as inclusive ranges."""
    out: list[tuple[IPAddress, IPAddress]] = []
    for first, last in ranges:
        make = type(first)
        lo, hi = int(first), int(last)
        for x_first, x_last in excluded:
            if x_first.version != first.version or int(x_last) < lo or int(x_first) > hi:
                continue
            if int(x_first) > lo:
                out.append((make(lo), make(int(x_first) - 1)))
            lo = int(x_last) + 1
            if lo > hi:
                break
        if lo <= hi:
            out.append((make(lo), make(hi)))
    return out


def _ambiguous_note(ranges: Sequence[tuple[IPAddress, IPAddress]]) -> str | None:
    """The note a scan carries when its scope holds shared address space (CGNAT, RFC 6598).

    reference/egress.md section 4 classes it "ambiguous": ISP-side space, internal only if the
    organisation uses it deliberately; not global, so it is scanned, but flagged.
    """
    for first, last in ranges:
        ip = _first_of_class(first, last, AddressClass.AMBIGUOUS)
        if ip is not None:
            return (
                f"the scope includes {ip}, shared address space (carrier-grade NAT, RFC 6598, "
                "100.64.0.0/10): camaudit classes it as ambiguous, not internal, because it is "
                "usually the provider's side of a NAT; it was scanned as asked, but confirm that "
                "your organisation uses this space itself"
            )
    return None
