"""One address across scans, grouped for reading (``camaudit show ADDRESS``): who the device
was (each distinct identity, with the scans that saw it), the evidence behind it (each distinct
observation once, with how many scans recorded it), and the egress verdict it carried in each
scan. Reads the store only.
"""

from __future__ import annotations

from typing import Any

from ..assess import scan_view
from ..store import Store
from ..store import assessments as stored_assessments

#: Evidence kinds that arrive by UDP (the discovery protocols): their port is a UDP port.
UDP_KINDS = frozenset({"sadp", "dhip", "onvif_probe_match", "mdns", "upnp", "snmp_sysdescr"})
#: Scans whose verdicts are looked up (newest first); older ones show their identity only.
MAX_VERDICT_SCANS = 50
_IDENTITY_FIELDS = ("vendor", "brand", "model", "device_type", "firmware", "serial")


def port_label(kind: str, port: int | None, source: str | None = "") -> str:
    """``tcp/80``, ``udp/37020`` (discovery answers are UDP), or "" without a port."""
    if port is None:
        return ""
    udp = kind in UDP_KINDS or (source or "").startswith("discovery.")
    return f"{'udp' if udp else 'tcp'}/{port}"


def summarise_history(store: Store, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The grouped view of :func:`camaudit.store.observations.address_history` (newest first):
    ``identities``, ``evidence``, ``verdicts``, ``ports``."""
    identities: list[dict[str, Any]] = []
    evidence: dict[tuple[str, str, str], dict[str, Any]] = {}
    ports: dict[str, dict[str, Any]] = {}
    verdicts = []
    for index, entry in enumerate(history):
        host = entry.get("host") or {}
        when = entry["started_at"]
        ident = host.get("identity") or {}
        key: dict[str, Any] = {f: ident.get(f) for f in _IDENTITY_FIELDS}
        if ident:
            key["vendor"] = key["vendor"] or "unknown"
        group = next((g for g in identities if g["identity"] == key and g["site"] == entry["site"]), None)
        if group is None:
            group = {"identity": key, "site": entry["site"], "confidence": ident.get("confidence"),
                     "signatures": [s.get("id") for s in ident.get("signatures", []) if isinstance(s, dict)],
                     "scans": [], "first_seen": when, "last_seen": when}  # fmt: skip
            identities.append(group)
        group["scans"].append(entry["scan_id"])
        group["first_seen"] = min(group["first_seen"], when)
        group["last_seen"] = max(group["last_seen"], when)
        for port in host.get("ports", []):
            seen = ports.setdefault(f"tcp/{port}", {"port": f"tcp/{port}", "scans": 0})
            seen["scans"] += 1
        for obs in host.get("observations", []):
            where = port_label(obs["kind"], obs.get("port"), obs.get("source"))
            item = evidence.setdefault((obs["kind"], where, obs["value"]), {
                "kind": obs["kind"], "port": where, "value": obs["value"], "scans": 0,
                "first_seen": when, "last_seen": when})  # fmt: skip
            if not item.get("_last") == entry["scan_id"]:
                item["scans"] += 1
                item["_last"] = entry["scan_id"]
            item["first_seen"] = min(item["first_seen"], when)
            item["last_seen"] = max(item["last_seen"], when)
        if index < MAX_VERDICT_SCANS:
            verdicts.append(_verdict(store, entry))
    for item in evidence.values():
        item.pop("_last", None)
    return {"scans": len(history), "identities": identities, "ports": list(ports.values()),
            "evidence": list(evidence.values()), "verdicts": verdicts}  # fmt: skip


def _verdict(store: Store, entry: dict[str, Any]) -> dict[str, Any]:
    """The verdict the address carried in one scan, as that scan's latest assessment saw it."""
    result: dict[str, Any] = {"scan_id": entry["scan_id"], "started_at": entry["started_at"], "verdict": None,
                              "source": None}  # fmt: skip
    host = entry.get("host") or {}
    if not host.get("identity"):
        return result  # never identified (a sweep-only scan): no verdict was carried
    assessment = stored_assessments.latest_assessment(store, entry["scan_id"])
    view = scan_view(store, entry["scan_id"], assessment=assessment)
    device = next((d for d in view.devices if d.address == host.get("address")), None)
    if device is not None:
        result["verdict"] = device.verdict
        result["source"] = device.verdict_source or None
    return result
