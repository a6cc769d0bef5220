"""The declared asset register: what the organisation says it has, read from CSV or YAML, kept
in the store, and reconciled with what each scan found.

Reconciliation answers four questions per scan (issue 7, peers.md "diff against a declared
inventory"): which registered assets were found, which cameras were found but not registered
(the one bought below the procurement threshold), which registered assets were not found, and
where the declared maker or brand differs from the identified one (a "Lorex" that is a Dahua).

The columns are documented in ``config/register.example.csv``.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .model.findings import address_order
from .store import Store
from .yamllines import line_of, load_yaml

log = logging.getLogger(__name__)

#: The register's columns, in file order.
COLUMNS: tuple[str, ...] = (
    "asset_id",
    "address",
    "mac",
    "serial",
    "declared_maker",
    "declared_brand",
    "declared_model",
    "location",
    "purpose",
    "department",
    "segment",
    "dpia_ref",
    "procurement_ref",
)

#: Header spellings people use for the same column (normalised: lower case, underscores).
_ALIASES: dict[str, str] = {
    "id": "asset_id",
    "asset": "asset_id",
    "asset_tag": "asset_id",
    "ip": "address",
    "ip_address": "address",
    "mac_address": "mac",
    "serial_number": "serial",
    "maker": "declared_maker",
    "manufacturer": "declared_maker",
    "vendor": "declared_maker",
    "brand": "declared_brand",
    "model": "declared_model",
    "owner": "department",
    "owning_department": "department",
    "network": "segment",
    "vlan": "segment",
    "network_segment": "segment",
    "dpia": "dpia_ref",
    "dpia_reference": "dpia_ref",
    "procurement": "procurement_ref",
    "procurement_reference": "procurement_ref",
    "contract": "procurement_ref",
}

_MAX_REGISTER_BYTES = 32 * 1024 * 1024
_MAC_HEX = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Asset:
    """One declared asset."""

    asset_id: str
    address: str | None = None
    mac: str | None = None
    serial: str | None = None
    declared_maker: str | None = None
    declared_brand: str | None = None
    declared_model: str | None = None
    location: str | None = None
    purpose: str | None = None
    department: str | None = None
    segment: str | None = None
    dpia_ref: str | None = None
    procurement_ref: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ImportResult:
    imported: int
    replaced: bool
    warnings: list[str] = field(default_factory=list)


# -- reading -------------------------------------------------------------------------------


def normalise_mac(text: str) -> str | None:
    """``AA-BB-CC-DD-EE-FF``, ``aabb.ccdd.eeff`` or ``aabbccddeeff`` -> ``aa:bb:cc:dd:ee:ff``."""
    digits = re.sub(r"[^0-9a-fA-F]", "", text).lower()
    if not _MAC_HEX.fullmatch(digits) or len(re.sub(r"[0-9a-fA-F:.\-\s]", "", text)) > 0:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _column_name(header: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    return _ALIASES.get(key, key)


def _asset_from_fields(fields: dict[str, Any], where: str, warnings: list[str]) -> Asset:
    values: dict[str, str | None] = {}
    for raw_key, raw_value in fields.items():
        key = _column_name(str(raw_key))
        if key not in COLUMNS:
            continue
        text = "" if raw_value is None else str(raw_value).strip()
        values[key] = text or None
    asset_id = values.get("asset_id")
    if not asset_id:
        raise InputError(f"{where}: the asset id is empty; every asset needs one")
    address = values.get("address")
    if address:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise InputError(f"{where}: {address!r} is not an IP address (asset {asset_id})") from None
    mac = values.get("mac")
    if mac:
        normalised = normalise_mac(mac)
        if normalised is None:
            raise InputError(f"{where}: {mac!r} is not a MAC address (asset {asset_id})")
        mac = normalised
    if not (address or mac or values.get("serial")):
        warnings.append(f"{where}: asset {asset_id} has no address, MAC or serial, so no scan can find it")
    values.update({"asset_id": asset_id, "address": address, "mac": mac})
    return Asset(**values)  # type: ignore[arg-type]


def _warn_unknown_columns(headers: Iterable[str], source: str, warnings: list[str]) -> None:
    unknown = sorted({h for h in headers if h and _column_name(h) not in COLUMNS})
    if unknown:
        warnings.append(f"{source}: ignoring column(s) {', '.join(unknown)} (known: {', '.join(COLUMNS)})")


def parse_register_csv(text: str, source: str = "register") -> tuple[list[Asset], list[str]]:
    """Parse a register in CSV (comma, semicolon or tab separated, as spreadsheets save it)."""
    warnings: list[str] = []
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{source}: the register is empty")
    header = lines[0]
    delimiter = max(",;\t", key=header.count)
    reader = csv.DictReader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    headers = [h or "" for h in (reader.fieldnames or [])]
    if "asset_id" not in {_column_name(h) for h in headers}:
        raise InputError(
            f"{source}: the first line must name the columns, with an asset_id column "
            f"(see config/register.example.csv); found {_printable(', '.join(headers)) or 'nothing'}"
        )
    _warn_unknown_columns(headers, source, warnings)
    assets = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise InputError(f"{source}, row {number}: more fields than the header names")
        assets.append(_asset_from_fields(row, f"{source}, row {number}", warnings))
    return assets, warnings


def parse_register_yaml(text: str, source: str = "register") -> tuple[list[Asset], list[str]]:
    """Parse a register in YAML: a list of assets, or a mapping with an ``assets`` list."""
    warnings: list[str] = []
    document = load_yaml(text, source, error=InputError)
    if isinstance(document, dict):
        document = document.get("assets")
    if not isinstance(document, list):
        raise InputError(f"{source}: expected a list of assets (or `assets:` with a list)")
    assets = []
    for index, entry in enumerate(document, start=1):
        line = line_of(entry)
        where = f"{source}, line {line}" if line else f"{source}, asset {index}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: each asset must be a mapping of column: value")
        _warn_unknown_columns(entry, where, warnings)
        assets.append(_asset_from_fields(entry, where, warnings))
    return assets, warnings


def read_register(path: str | Path) -> tuple[list[Asset], list[str]]:
    """Read a register file (``.csv``/``.tsv``/``.txt`` or ``.yaml``/``.yml``); InputError on
    anything that cannot be used, naming the row or line."""
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_REGISTER_BYTES:
            raise InputError(f"{path}: larger than {_MAX_REGISTER_BYTES // 2**20} MiB; is it the register?")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no register file at {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a register file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # spreadsheets on Windows save this
    if path.suffix.lower() in (".yaml", ".yml"):
        assets, warnings = parse_register_yaml(text, str(path))
    else:
        assets, warnings = parse_register_csv(text, str(path))
    seen: dict[str, int] = {}
    for index, asset in enumerate(assets):
        if asset.asset_id in seen:
            raise InputError(f"{path}: asset id {asset.asset_id!r} appears twice (entries {seen[asset.asset_id] + 1} and {index + 1})")
        seen[asset.asset_id] = index
    for attribute in ("serial", "mac", "address"):
        owners: dict[str, str] = {}
        for asset in assets:
            value = getattr(asset, attribute)
            if value and value in owners:
                warnings.append(f"{path}: {attribute} {value} is declared for both {owners[value]} and {asset.asset_id}")
            elif value:
                owners[value] = asset.asset_id
    return assets, warnings


# -- the store -----------------------------------------------------------------------------


def import_register(store: Store, path: str | Path, *, merge: bool = False, site: str = "default") -> ImportResult:
    """Read ``path`` and store it as the site's register. The file is the whole register, so it
    replaces the one stored, unless ``merge`` (then assets are added or updated by id)."""
    from .store import register as stored

    assets, warnings = read_register(path)
    imported = stored.save_register(store, assets, source_file=Path(path).name, merge=merge, site=site)
    return ImportResult(imported=imported, replaced=not merge, warnings=warnings)


def load_register(store: Store, site: str = "default") -> list[Asset]:
    """A site's register as stored, in asset id order."""
    from .store import register as stored

    return stored.load_register(store, site)


# -- reconciliation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """What reconciliation needs of one device a scan found."""

    address: str
    device_id: str
    mac: str | None = None
    serial: str | None = None
    vendor: str = "unknown"
    brand: str | None = None
    model: str | None = None

    @property
    def identified(self) -> bool:
        return self.vendor not in ("", "unknown")


@dataclass(frozen=True, slots=True)
class Reconciled:
    """One line of reconciliation: a matched pair, an unregistered device, or a missing asset."""

    status: str  # matched | unregistered | missing
    asset: Asset | None = None
    device: FoundDevice | None = None
    matched_by: str | None = None
    maker_mismatch: bool = False
    detail: str = ""

    @property
    def entry(self) -> str:
        return f"asset:{self.asset.asset_id}" if self.asset else f"device:{self.device.device_id if self.device else ''}"

    def to_row(self, scan_id: str) -> dict[str, Any]:
        return {
            "scan_id": scan_id,
            "entry": self.entry,
            "status": self.status,
            "asset_id": self.asset.asset_id if self.asset else None,
            "device_id": self.device.device_id if self.device else None,
            "address": self.device.address if self.device else (self.asset.address if self.asset else None),
            "matched_by": self.matched_by,
            "declared_maker": self.asset.declared_maker if self.asset else None,
            "declared_brand": self.asset.declared_brand if self.asset else None,
            "identified_vendor": self.device.vendor if self.device else None,
            "identified_brand": self.device.brand if self.device else None,
            "maker_mismatch": int(self.maker_mismatch),
            "detail": self.detail,
        }


def _name_key(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").lower())


def _same_name(declared: str, identified: str) -> bool:
    """Declared names carry legal suffixes ("Hangzhou Hikvision Digital Technology Co.");
    identified ones are the short vocabulary ("hikvision"): containment either way agrees."""
    a, b = _name_key(declared), _name_key(identified)
    return bool(a and b) and (a in b or b in a)


def _mismatch(asset: Asset, device: FoundDevice) -> str:
    """Why the declared maker or brand disagrees with the identified one, or ``""``."""
    if not device.identified:
        return ""
    reasons = []
    if asset.declared_maker and not _same_name(asset.declared_maker, device.vendor):
        shown = device.vendor + (f" (sold as {device.brand})" if device.brand else "")
        reasons.append(f"declared maker {asset.declared_maker}, identified maker {shown}")
    if asset.declared_brand and device.brand and not _same_name(asset.declared_brand, device.brand):
        reasons.append(f"declared brand {asset.declared_brand}, identified brand {device.brand}")
    return "; ".join(reasons)


def _serials_conflict(asset: Asset, device: FoundDevice) -> bool:
    return bool(asset.serial and device.serial and _name_key(asset.serial) != _name_key(device.serial))


def reconcile(devices: Sequence[FoundDevice], assets: Sequence[Asset]) -> list[Reconciled]:
    """Pair found devices with declared assets: all serial matches first, then MAC, then
    address, so that a camera that moved address still pairs with its asset by serial. A
    device found at a registered address whose serial contradicts the asset's is not that
    asset. Unidentified hosts that match no asset are left out (a printer is not an
    unregistered camera); matched ones are kept, said to be unidentified."""
    pairs: dict[str, tuple[Asset, str]] = {}  # device_id -> (asset, matched_by)
    claimed: set[str] = set()
    notes: dict[str, str] = {}
    for attribute in ("serial", "mac", "address"):
        index: dict[str, Asset] = {}
        for asset in assets:
            value = getattr(asset, attribute)
            if value and asset.asset_id not in claimed:
                index.setdefault(_name_key(value) if attribute == "serial" else value, asset)
        for device in devices:
            value = getattr(device, attribute)
            if device.device_id in pairs or not value:
                continue
            candidate = index.get(_name_key(value) if attribute == "serial" else value)
            if candidate is None or candidate.asset_id in claimed:
                continue
            asset = candidate
            if _serials_conflict(asset, device):
                notes[device.device_id] = (
                    f"{attribute} {value} is registered to {asset.asset_id} (serial {asset.serial}), "
                    f"but the device found there reports serial {device.serial}"
                )
                continue
            pairs[device.device_id] = (asset, attribute)
            claimed.add(asset.asset_id)
    result: list[Reconciled] = []
    for device in devices:
        if device.device_id in pairs:
            asset, how = pairs[device.device_id]
            why = _mismatch(asset, device)
            detail = why or ("" if device.identified else "found, but its maker could not be identified")
            result.append(Reconciled("matched", asset, device, how, bool(why), detail))
        elif device.identified:
            result.append(Reconciled("unregistered", None, device, detail=notes.get(device.device_id, "")))
    for asset in assets:
        if asset.asset_id not in claimed:
            result.append(Reconciled("missing", asset, None))
    return result


class Reconciliation:
    """:func:`reconcile` for a scan whose devices are read one at a time, never all at once
    (issue 15). Only a device whose serial, MAC or address is in the register can pair with an
    asset or be noted against one, so :meth:`settle` pairs just those, in address order, with
    :func:`reconcile` itself; :meth:`of` then says what any device is, exactly as
    :func:`reconcile` over every device would. What it holds grows with the register, not with
    the scan."""

    def __init__(self, assets: Sequence[Asset]) -> None:
        self.assets = list(assets)
        self._serials = {_name_key(a.serial) for a in self.assets if a.serial}
        self._macs = {a.mac for a in self.assets if a.mac}
        self._addresses = {a.address for a in self.assets if a.address}
        self._settled: dict[tuple[str, str], Reconciled] = {}  # (device id, address) -> its line
        #: The assets no device paired with, in the register's order (after :meth:`settle`).
        self.missing: list[Reconciled] = [Reconciled("missing", asset, None) for asset in self.assets]

    def may_pair(self, device: FoundDevice) -> bool:
        """Whether the device has a serial, MAC or address that the register holds."""
        return bool((device.serial and _name_key(device.serial) in self._serials)
                    or (device.mac and device.mac in self._macs) or device.address in self._addresses)

    def settle(self, candidates: Iterable[FoundDevice]) -> None:
        """Pair the devices that :meth:`may_pair` (others are ignored), in address order as a
        scan lists its devices."""
        chosen = sorted((d for d in candidates if self.may_pair(d)), key=lambda d: address_order(d.address))
        self._settled, self.missing = {}, []
        for item in reconcile(chosen, self.assets):
            if item.device is None:
                self.missing.append(item)
            else:
                self._settled[item.device.device_id, item.device.address] = item

    def of(self, device: FoundDevice) -> Reconciled | None:
        """The device's line of reconciliation; None for an unidentified host no asset names."""
        paired = self._settled.get((device.device_id, device.address))
        if paired is not None:
            return paired
        return Reconciled("unregistered", None, device) if device.identified else None


def _printable(text: str, limit: int = 120) -> str:
    """A file's text as it may be shown in a one-line message: a binary file given by mistake
    must not write control bytes to the user's terminal."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")
