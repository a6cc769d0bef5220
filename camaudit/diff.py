"""What changed between two scans: devices that appeared, vanished, moved address, or changed
firmware, identity or verdict (user_asks.md section 5, "what changed since last scan?").

Devices are matched across scans of one site by their stable device id (serial, else MAC, else
address, resolved per site with promotion: camaudit.store.devices), so a camera that took a new
DHCP lease is "moved", not "vanished" and "appeared", and a camera whose serial a scan with
credentials learnt is the same device with a "learned" change, not a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .assess import DeviceView, ScanView, scan_view
from .errors import UsageError
from .model import Scan
from .store import Store, _address_sort_key
from .store import assessments as stored_assessments

#: The identity fields whose change is reported as "identity changed".
IDENTITY_FIELDS = ("vendor", "brand", "model", "device_type", "serial")


@dataclass(frozen=True, slots=True)
class Change:
    device_id: str
    kind: str  # appeared | vanished | moved | firmware | identity | verdict | learned | not_read
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
    before: Scan
    after: Scan
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def counts(self) -> dict[str, int]:
        kinds = ("appeared", "vanished", "moved", "firmware", "identity", "verdict", "learned", "not_read")
        return {k: len(self.of_kind(k)) for k in kinds} | {"unchanged": self.unchanged}

    def to_json(self) -> dict[str, Any]:
        return {
            "before": {"scan_id": self.before.id, "started_at": self.before.started_at, "status": self.before.status},
            "after": {"scan_id": self.after.id, "started_at": self.after.started_at, "status": self.after.status},
            "counts": self.counts(),
            "changes": [c.to_json() for c in self.changes],
        }


def previous_scan(store: Store, scan: Scan) -> Scan | None:
    """The scan to compare ``scan`` with: the latest earlier one of its site over the same
    targets, else the latest earlier one of its site. Scans still running are skipped."""
    earlier = [
        s for s in store.scans(site=scan.site)
        if s.started_at < scan.started_at and s.id != scan.id and s.status != "running"
    ]  # fmt: skip
    same = [s for s in earlier if sorted(s.targets) == sorted(scan.targets)]
    candidates = same or earlier
    return candidates[0] if candidates else None


def _label(device: DeviceView) -> str:
    ident = device.identity_doc()
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
        ident_a, ident_b = a.identity_doc(), b.identity_doc()
        # A value one scan read and the other did not (a scan without credentials reads less) is
        # no change of the device: "learned" when it was read now, "not_read" when not this time.
        # (Another maker is another identity altogether: then every difference is a change.)
        same_maker = not (_known(ident_a.get("vendor")) and _known(ident_b.get("vendor"))
                          and ident_a.get("vendor") != ident_b.get("vendor"))
        learned = {k: ident_b.get(k) for k in (*IDENTITY_FIELDS, "firmware")
                   if same_maker and not _known(ident_a.get(k)) and _known(ident_b.get(k))}
        unread = {k: ident_a.get(k) for k in (*IDENTITY_FIELDS, "firmware")
                  if same_maker and _known(ident_a.get(k)) and not _known(ident_b.get(k))}
        if (ident_a.get("firmware") or None) != (ident_b.get("firmware") or None) and \
                "firmware" not in learned and "firmware" not in unread:
            found.append(Change(device_id, "firmware", b.address, ident_a.get("firmware"), ident_b.get("firmware"), label))
        before_id = {k: ident_a.get(k) for k in IDENTITY_FIELDS
                     if (ident_a.get(k) or None) != (ident_b.get(k) or None) and k not in learned and k not in unread}
        if before_id:
            found.append(Change(device_id, "identity", b.address, before_id, {k: ident_b.get(k) for k in before_id}, label))
        if (a.verdict, a.exposed is not None) != (b.verdict, b.exposed is not None):
            found.append(Change(device_id, "verdict", b.address, _verdict_word(a), _verdict_word(b), label))
        if learned:
            found.append(Change(device_id, "learned", b.address, {k: None for k in learned}, learned, label))
        if unread:
            found.append(Change(device_id, "not_read", b.address, unread, {k: None for k in unread}, label))
        result.changes.extend(found)
        result.unchanged += not found
    order = {"appeared": 0, "vanished": 1, "moved": 2, "firmware": 3, "identity": 4, "verdict": 5, "learned": 6,
             "not_read": 7}

    result.changes.sort(key=lambda c: (order[c.kind], _address_sort_key(c.address), c.device_id))
    return result


def _known(value: object) -> bool:
    return value not in (None, "", "unknown")


def _verdict_word(device: DeviceView) -> str:
    return device.verdict + (" + EXPOSED" if device.exposed is not None else "")


def diff_scans(store: Store, before_ref: str | None = None, after_ref: str | None = None, *,
               site: str | None = None) -> ScanDiff:
    """Compare two scans of one site. ``after_ref`` defaults to the latest scan (of ``site``,
    else of any site) and ``before_ref`` to the one before it (:func:`previous_scan`)."""
    after = store.scan(after_ref or "latest", site=site)
    if before_ref is None:
        before = previous_scan(store, after)
        if before is None:
            raise UsageError(f"scan {after.id} has no earlier scan to compare with; name two scans")
    else:
        before = store.scan(before_ref)
    if before.id == after.id:
        raise UsageError("both names refer to the same scan; name two different scans")
    if before.site != after.site:
        raise UsageError(f"scan {before.id[:8]} is of site {before.site!r} and scan {after.id[:8]} of site "
                         f"{after.site!r}: devices are compared within one site")
    return compare(_view(store, before), _view(store, after))


def _view(store: Store, scan: Scan) -> ScanView:
    """A scan as its latest assessment saw it (verdicts and register), or as it is now."""
    return scan_view(store, scan.id, assessment=stored_assessments.latest_assessment(store, scan.id))
