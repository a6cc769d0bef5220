"""MAC addresses and their IEEE registrants.

The registrant comes from netaddr's copy of the IEEE MA-L registry (netaddr 1.3.0 lists 67
Hikvision and 28 Dahua blocks, more than nmap 7.93: reference/oui.json ``_meta.caveats``). The
facts about which registrant is which maker, the brand-registered blocks (Lorex, Amcrest, Swann)
and the name collisions ("Shanghai Dahua Scale Factory", "Hangzhou H3C") live in
``signatures/mac.yaml``, copied from reference/oui.json with its sources.

Lenient on input: a MAC in any common notation, and also the registry lines that public
fingerprint sets carry instead of a MAC (``BC-BA-C2   (hex)  Hangzhou ...``,
``2CA59C Hangzhou ...``, ``MA-M,402C761,...``), which give a prefix only.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

_HEX_RUN = re.compile(
    r"^\s*(?:MA-[LMS]\s*,\s*)?((?:[0-9A-Fa-f]{2}[:\-.]?){2,5}[0-9A-Fa-f]{2})([0-9A-Fa-f])?(?![0-9A-Fa-f])"
)
_DOTTED = re.compile(r"^\s*([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})\s*$")


def normalize(text: str) -> str | None:
    """A MAC or prefix as lower-case colon-separated octets (``aa:bb:cc[:...]``), or None.

    A 28-bit MA-M prefix keeps its seventh nibble: ``40:2c:76:1``.
    """
    dotted = _DOTTED.match(text)
    if dotted:
        text = "".join(dotted.groups())
    match = _HEX_RUN.match(text)
    if not match:
        return None
    digits = re.sub(r"[^0-9A-Fa-f]", "", match.group(1)).lower()
    if len(digits) % 2 or not 6 <= len(digits) <= 12:
        return None
    octets = [digits[i : i + 2] for i in range(0, len(digits), 2)]
    result = ":".join(octets)
    if match.group(2) and len(octets) == 3:
        result += ":" + match.group(2).lower()
    return result


def is_locally_administered(mac: str) -> bool:
    """Second hex digit 2, 6, A or E: a randomised or assigned-by-software MAC, no OUI."""
    return len(mac) >= 2 and mac[1] in "26ae"


@functools.cache
def _registry_dir() -> Path | None:
    """Where netaddr keeps its registry files, found without importing netaddr: its import loads
    the whole OUI index into memory (about 11 MB resident, issue 15), for the few prefixes a
    scan looks up."""
    spec = importlib.util.find_spec("netaddr")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a core dependency
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "eui"
    return folder if (folder / "oui.idx").is_file() and (folder / "oui.txt").is_file() else None


@functools.cache
def _index() -> bytes | None:
    """netaddr's registry index (``key,offset,size`` lines, about 650 kB), read once per process:
    a sweep of a segment looks up tens of prefixes, and reading it per prefix cost 3 ms each."""
    folder = _registry_dir()
    if folder is None:  # pragma: no cover - netaddr is a core dependency
        return None
    try:
        return b"\n" + (folder / "oui.idx").read_bytes()
    except OSError:
        return None


@functools.lru_cache(maxsize=4096)
def registrant(prefix: str) -> str | None:
    """The IEEE MA-L registrant of the first three octets, from netaddr's copy of the registry.

    Read straight from its index (``key,offset,size`` lines) and registry text, the way netaddr
    itself reads a record, without building netaddr's in-memory index."""
    digits = prefix.replace(":", "").replace("-", "").replace(".", "")[:6]
    if len(digits) != 6:
        return None
    try:
        key = int(digits, 16)
    except ValueError:
        return None
    folder = _registry_dir()
    index = _index()
    if folder is None or index is None:  # pragma: no cover - netaddr is a core dependency
        return None
    try:
        at = index.find(b"\n%d," % key)
        if at < 0:
            return None
        _, offset, size = index[at + 1:index.find(b"\n", at + 1)].split(b",")
        with (folder / "oui.txt").open("rb") as registry:
            registry.seek(int(offset))
            record = registry.read(int(size))
    except (OSError, ValueError):
        return None
    first = record.split(b"\n", 1)[0].decode("utf-8", "replace")
    if "(hex)" not in first:
        return None
    return first.split("(hex)", 1)[1].strip() or None


def mac_parts(text: str) -> dict[str, str]:
    """Parts for a ``mac`` observation: ``value`` (normalised), ``oui`` and ``registrant``."""
    mac = normalize(text)
    if mac is None:
        return {"value": text.strip().lower(), "oui": "", "registrant": ""}
    if is_locally_administered(mac):
        return {"value": mac, "oui": "", "registrant": ""}
    return {"value": mac, "oui": mac[:8], "registrant": registrant(mac[:8]) or ""}
