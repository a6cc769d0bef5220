"""What changed between two scans: devices that appeared, vanished, moved address, or changed
firmware, identity or verdict (user_asks.md section 5, "what changed since last scan?").

Devices are matched across scans by their stable device id (serial, else MAC, else address;
DESIGN.md section 6), so a camera that took a new DHCP lease is "moved", not "vanished" and
"appeared".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .assess import DeviceView, ScanView, scan_view
from .errors import UsageError
from .store import ScanRow, Store, _address_sort_key

#: The identity fields whose change is reported as "identity changed".
IDENTITY_FIELDS = ("vendor", "brand", "model", "device_type", "serial")


@dataclass(frozen=True, slots=True)
class Change:
    device_id: str
    kind: str  # appeared | vanished | moved | firmware | identity | verdict
    address: str
    before: Any = None
    after: Any = None
    label: str = ""  # maker and model, for people

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id, "kind": self.kind, "address": self.address,
            "before": self.before, "after": self.after, "label": self.label,
        }  # fmt: skip


@dataclass(slots=True)
class ScanDiff:
    before: ScanRow
    after: ScanRow
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def counts(self) -> dict[str, int]:
        kinds = ("appeared", "vanished", "moved", "firmware", "identity", "verdict")
        return {k: len(self.of_kind(k)) for k in kinds} | {"unchanged": self.unchanged}

    def to_json(self) -> dict[str, Any]:
        return {
            "before": {"scan_id": self.before.id, "started_at": self.before.started_at, "status": self.before.status},
            "after": {"scan_id": self.after.id, "started_at": self.after.started_at, "status": self.after.status},
            "counts": self.counts(),
            "changes": [c.to_json() for c in self.changes],
        }


def previous_scan(store: Store, scan: ScanRow) -> ScanRow | None:
    """The scan to compare ``scan`` with: the latest earlier one over the same targets, else
    the latest earlier one. Scans still running are skipped."""
    earlier = [
        s for s in store.scans()
        if s.started_at < scan.started_at and s.id != scan.id and s.status != "running"
    ]  # fmt: skip
    same = [s for s in earlier if sorted(s.targets) == sorted(scan.targets)]
    candidates = same or earlier
    return candidates[0] if candidates else None


def _label(device: DeviceView) -> str:
    ident = device.identity or {}
    parts = [device.vendor]
    if ident.get("brand"):
        parts.append(f"({ident['brand']})")
    if ident.get("model"):
        parts.append(str(ident["model"]))
    return " ".join(parts)


def _by_device(view: ScanView) -> dict[str, DeviceView]:
    devices: dict[str, DeviceView] = {}
    for device in view.devices:
        # One device answering on two addresses in one scan: keep the first, by address order.
        devices.setdefault(device.device_id, device)
    return devices


def compare(before: ScanView, after: ScanView) -> ScanDiff:
    """The changes from ``before`` to ``after``, in address order within each kind."""
    old, new = _by_device(before), _by_device(after)
    result = ScanDiff(before.scan, after.scan)
    for device_id, device in new.items():
        if device_id not in old:
            result.changes.append(Change(device_id, "appeared", device.address, None, device.address, _label(device)))
    for device_id, device in old.items():
        if device_id not in new:
            result.changes.append(Change(device_id, "vanished", device.address, device.address, None, _label(device)))
    for device_id in old.keys() & new.keys():
        a, b = old[device_id], new[device_id]
        label = _label(b)
        found: list[Change] = []
        if a.address != b.address:
            found.append(Change(device_id, "moved", b.address, a.address, b.address, label))
        ident_a, ident_b = a.identity or {}, b.identity or {}
        if (ident_a.get("firmware") or None) != (ident_b.get("firmware") or None):
            found.append(Change(device_id, "firmware", b.address, ident_a.get("firmware"), ident_b.get("firmware"), label))
        before_id = {k: ident_a.get(k) for k in IDENTITY_FIELDS if (ident_a.get(k) or None) != (ident_b.get(k) or None)}
        if before_id:
            found.append(Change(device_id, "identity", b.address, before_id, {k: ident_b.get(k) for k in before_id}, label))
        if (a.verdict, a.exposed is not None) != (b.verdict, b.exposed is not None):
            found.append(Change(device_id, "verdict", b.address, _verdict_word(a), _verdict_word(b), label))
        result.changes.extend(found)
        result.unchanged += not found
    order = {"appeared": 0, "vanished": 1, "moved": 2, "firmware": 3, "identity": 4, "verdict": 5}

    result.changes.sort(key=lambda c: (order[c.kind], _address_sort_key(c.address), c.device_id))
    return result


def _verdict_word(device: DeviceView) -> str:
    return device.verdict + (" + EXPOSED" if device.exposed is not None else "")


def diff_scans(store: Store, before_ref: str | None = None, after_ref: str | None = None) -> ScanDiff:
    """Compare two scans of the store. ``after_ref`` defaults to the latest scan and
    ``before_ref`` to the one before it (:func:`previous_scan`)."""
    after = store.scan(after_ref or "latest")
    if before_ref is None:
        before = previous_scan(store, after)
        if before is None:
            raise UsageError(f"scan {after.id} has no earlier scan to compare with; name two scans")
    else:
        before = store.scan(before_ref)
    if before.id == after.id:
        raise UsageError("both names refer to the same scan; name two different scans")
    return compare(scan_view(store, before.id), scan_view(store, after.id))
