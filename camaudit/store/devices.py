"""Devices of a site, stable across scans: identities per scan, the devices they resolve to,
sightings and aliases.

A device's key, per site (DESIGN.md section 6): ``serial:<SERIAL>`` when the device told its
serial, else ``mac:<mac>`` when its MAC is known, else ``addr:<address>``. Resolution, when a
scan identifies a host:

1. a serial is the key; devices of the site known by a weaker key for the same device (its MAC,
   or its address) are promoted: merged into the serial's device, their sightings and
   identities moved, the weaker key kept as an alias, so history is kept;
2. without a serial, a MAC resolves to the site's device with that MAC (one known by serial
   when a scan once read it), else ``mac:<mac>``, and the address's weaker device is promoted;
3. with neither, the address resolves to the device last sighted at that address in this site
   (one known by a stronger key when an earlier scan learnt it), unless that device was
   identified as another maker; else ``addr:<address>``.

So the same network scanned with and without credentials keeps its device ids, and two sites
that use the same addresses never share a device.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..model import Device, Identity, Sighting, utc_now
from .scans import ensure_site, site_of_scan
from .sql import upsert

if TYPE_CHECKING:
    from .db import Store


def device_key(*, serial: str | None, mac: str | None, address: str) -> str:
    """A device's key within its site: serial, else MAC, else address (DESIGN.md section 6)."""
    if serial:
        return f"serial:{serial.strip().upper()}"
    if mac:
        return f"mac:{mac.strip().lower()}"
    return f"addr:{address}"


def _device_row(db: Any, site: str, device_id: str) -> dict[str, Any] | None:
    rows = list(db.query("select * from devices where site = ? and id = ?", [site, device_id]))
    return rows[0] if rows else None


def _resolve(db: Any, site: str, address: str, serial: str | None, mac: str | None,
             vendor: str | None) -> tuple[str, list[str]]:
    """The device id for this host, and the weaker device ids to merge into it."""
    mac = mac.strip().lower() if mac else None
    weaker = [f"addr:{address}"]
    if serial:
        key = device_key(serial=serial, mac=None, address=address)
        if mac:
            weaker.insert(0, f"mac:{mac}")
        return key, weaker
    if mac:
        row = db.execute("select id from devices where site = ? and lower(mac) = ? order by "
                         "case key_kind when 'serial' then 0 when 'mac' then 1 else 2 end, last_seen desc limit 1",
                         [site, mac]).fetchone()
        return (str(row[0]) if row else f"mac:{mac}"), weaker
    own = f"addr:{address}"
    alias = db.execute("select device_id from device_aliases where site = ? and alias = ?", [site, own]).fetchone()
    last = db.execute("select g.device_id from sightings g join scans s on s.id = g.scan_id "
                      "where g.site = ? and g.address = ? order by s.started_at desc, g.last_seen desc limit 1",
                      [site, address]).fetchone()
    for candidate in (last[0] if last else None, alias[0] if alias else None):
        if not candidate or candidate == own:
            continue
        known = _device_row(db, site, candidate)
        if known is None:
            continue
        if vendor and known.get("vendor") and known["vendor"] not in ("unknown", vendor):
            continue  # another maker at this address: another device
        return str(candidate), []
    return own, []


def _merge(db: Any, site: str, weak: str, strong: str, scan_id: str) -> None:
    """Promote the device known by ``weak`` to ``strong``: its sightings and identities move,
    ``weak`` becomes an alias of ``strong``."""
    old = _device_row(db, site, weak)
    if old is None or weak == strong:
        return
    new = _device_row(db, site, strong)
    if new is not None and old["first_seen"] and old["first_seen"] < (new["first_seen"] or old["first_seen"]):
        db.execute("update devices set first_seen = ? where site = ? and id = ?", [old["first_seen"], site, strong])
    # Sightings: one per scan, device and address; a scan that saw both keeps one.
    for row in list(db.query("select * from sightings where site = ? and device_id = ?", [site, weak])):
        db.execute("delete from sightings where scan_id = ? and device_id = ? and address = ?",
                   [row["scan_id"], weak, row["address"]])
        db.table("sightings").insert(row | {"device_id": strong}, pk=("scan_id", "device_id", "address"), ignore=True)
    db.execute("update identities set device_id = ? where device_id = ? and scan_id in "
               "(select id from scans where site = ?)", [strong, weak, site])
    db.execute("update verdicts set device_id = ? where device_id = ? and site = ?", [strong, weak, site])
    db.execute("update device_aliases set device_id = ? where site = ? and device_id = ?", [strong, site, weak])
    db.table("device_aliases").insert({"site": site, "alias": weak, "device_id": strong, "scan_id": scan_id,
                                       "merged_at": utc_now()}, pk=("site", "alias"), replace=True)
    db.execute("delete from devices where site = ? and id = ?", [site, weak])


def add_identity(store: Store, scan_id: str, address: str, identity: Identity, *, mac: str | None = None) -> str:
    """Record a host's identity in this scan, resolve it to its device of the site (promoting a
    device known by a weaker key) and record the sighting; returns the device id."""
    now = utc_now()
    site = site_of_scan(store, scan_id)
    with store.write() as db:
        ensure_site(db, site)
        vendor = identity.vendor if identity.vendor != "unknown" else None
        device_id, weaker = _resolve(db, site, address, identity.serial, mac, vendor)
        existing = _device_row(db, site, device_id)
        row = {
            "site": site, "id": device_id, "key_kind": device_id.split(":", 1)[0],
            "first_seen": existing["first_seen"] if existing else now, "last_seen": now,
            "serial": identity.serial or (existing or {}).get("serial"),
            "mac": mac or (existing or {}).get("mac"),
            "vendor": vendor or (existing or {}).get("vendor") or identity.vendor,
            "brand": identity.brand or (existing or {}).get("brand"),
            "model": identity.model or (existing or {}).get("model"),
        }  # fmt: skip
        upsert(db.conn, "devices", row, ("site", "id"))
        for weak in weaker:
            if weak != device_id:
                _merge(db, site, weak, device_id, scan_id)
        upsert(
            db.conn, "identities",
            {
                "scan_id": scan_id, "address": address, "device_id": device_id, "vendor": identity.vendor,
                "brand": identity.brand, "device_type": identity.device_type, "model": identity.model,
                "firmware": identity.firmware, "serial": identity.serial, "confidence": round(identity.confidence, 3),
                "covered": int(identity.covered), "advisories": json.dumps(identity.advisories),
                "signatures": json.dumps([s.to_json() for s in identity.signatures]),
                "conflicts": json.dumps(identity.conflicts), "identified_at": now,
                "fields": json.dumps({name: source.to_json() for name, source in identity.fields.items()}),
            },
            ("scan_id", "address"),
        )  # fmt: skip
        seen = db.execute("select first_seen from sightings where scan_id = ? and device_id = ? and address = ?",
                          [scan_id, device_id, address]).fetchone()
        upsert(db.conn, "sightings", {"site": site, "scan_id": scan_id, "device_id": device_id, "address": address,
                                      "first_seen": seen[0] if seen else now, "last_seen": now},
               ("scan_id", "device_id", "address"))
    return device_id


def devices(store: Store, site: str) -> list[Device]:
    aliases: dict[str, list[str]] = {}
    for r in store.db.query("select alias, device_id from device_aliases where site = ? order by alias", [site]):
        aliases.setdefault(r["device_id"], []).append(r["alias"])
    return [Device(site=r["site"], id=r["id"], first_seen=r["first_seen"], last_seen=r["last_seen"], serial=r["serial"],
                   mac=r["mac"], vendor=r["vendor"], brand=r["brand"], model=r["model"], aliases=aliases.get(r["id"], []))
            for r in store.db.query("select * from devices where site = ? order by id", [site])]


def sightings(store: Store, *, scan_id: str | None = None, site: str | None = None,
              device_id: str | None = None) -> list[Sighting]:
    clauses, params = [], []
    for column, value in (("scan_id", scan_id), ("site", site), ("device_id", device_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = (" where " + " and ".join(clauses)) if clauses else ""
    return [Sighting(r["site"], r["scan_id"], r["device_id"], r["address"], r["first_seen"], r["last_seen"])
            for r in store.db.query(f"select * from sightings{where} order by first_seen", params)]  # noqa: S608


def macs_of_scan(store: Store, scan_id: str, addresses: Sequence[str]) -> dict[str, str]:
    """device id -> the MAC its device row holds, for the devices identified in this scan at
    ``addresses`` (a page of the scan's hosts)."""
    site = site_of_scan(store, scan_id)
    # Only placeholders are put in the statement; the addresses are parameters.
    statement = ("select d.id, d.mac from devices d join identities i on i.device_id = d.id "  # noqa: S608
                 f"where i.scan_id = ? and d.site = ? and i.address in ({', '.join('?' * len(addresses))})")
    return {r[0]: r[1] for r in store.db.execute(statement, [scan_id, site, *addresses]).fetchall() if r[1]}
