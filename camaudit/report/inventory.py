"""The vendor inventory export: one row per device (and per registered asset not found), for
the CISO team's spreadsheet and for CMDBs (user_asks.md section 9; egress.md section 6 "CSV").

CSV, JSON and XLSX carry the same columns (new columns are only ever added). Each format can
go to a file or, with ``-o -``, to stdout (:func:`render_inventory` gives the bytes).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ..assess import DeviceView, current_assessment, scan_view
from ..errors import DependencyError, UsageError
from ..fingerprint.oui import is_locally_administered, normalize, registrant
from ..model.verdicts import english
from ..policy import Policy, severity_rank
from ..store import Store
from ..store import devices as stored_devices
from ..store.observations import observations_of_scan, open_services
from .address_history import UDP_KINDS
from .csv_report import safe_cell, write_csv

INVENTORY_COLUMNS: tuple[str, ...] = (
    "scan_id", "device_id", "address", "mac", "maker", "brand", "model", "device_type", "firmware", "serial",
    "confidence", "covered", "advisories", "verdict", "verdict_source", "exposed", "segment", "register_status",
    "asset_id", "declared_maker", "declared_brand", "maker_mismatch", "location", "purpose", "department",
    "dpia_ref", "procurement_ref", "open_ports", "findings", "top_severity",
    # Added in issue 13 (additive: the columns above keep their order).
    "site", "first_seen", "last_seen", "mac_vendor", "hostname", "open_services", "verdict_text",
)  # fmt: skip

#: The service a port speaks, from the kind of evidence recorded on it (when nmap named none).
_SERVICE_OF_KIND = {
    "http_server": "http", "http_www_authenticate": "http", "http_headers": "http", "http_title": "http",
    "http_body": "http", "favicon_mmh3": "http", "favicon_md5": "http", "tls_cert": "https",
    "rtsp_server": "rtsp", "rtsp_www_authenticate": "rtsp", "rtsp_response": "rtsp",
    "telnet_banner": "telnet", "ftp_banner": "ftp", "isapi_device_info": "http", "dahua_cgi": "http",
    # discovery answers: the UDP port answered, so the service is open
    "sadp": "sadp", "dhip": "dhip", "onvif_probe_match": "ws-discovery", "mdns": "mdns", "upnp": "ssdp",
    "snmp_sysdescr": "snmp",
}  # fmt: skip


FORMATS = ("csv", "json", "xlsx")


def inventory_rows(store: Store, scan_ref: str = "latest", policy: Policy | None = None) -> list[dict[str, Any]]:
    """The inventory of one scan: its devices in address order, then registered assets that
    the scan did not find (``register_status`` = ``missing``)."""
    scan = store.scan(scan_ref)
    assessment, findings = current_assessment(store, scan.id, policy)
    view = scan_view(store, scan.id, assessment=assessment)
    known = {d.id: d for d in stored_devices.devices(store, scan.site)}
    services, hostnames = _services_and_hostnames(store, scan.id)
    rows = []
    for device in view.devices:
        record = known.get(device.device_id)
        ident = device.identity_doc()
        asset = device.asset
        mine = [f for f in findings if f.subject == device.address]
        rows.append(
            {
                "scan_id": view.scan.id,
                "device_id": device.device_id,
                "address": device.address,
                "mac": device.mac,
                "maker": device.vendor,
                "brand": ident.get("brand"),
                "model": ident.get("model"),
                "device_type": ident.get("device_type"),
                "firmware": ident.get("firmware"),
                "serial": ident.get("serial"),
                "confidence": ident.get("confidence"),
                "covered": device.covered,
                "advisories": list(ident.get("advisories") or []),
                "verdict": device.verdict,
                "verdict_source": device.verdict_source or None,
                "exposed": device.exposed is not None,
                "segment": device.segment,
                "register_status": device.register,
                "asset_id": asset.asset_id if asset else None,
                "declared_maker": asset.declared_maker if asset else None,
                "declared_brand": asset.declared_brand if asset else None,
                "maker_mismatch": bool(device.reconciled and device.reconciled.maker_mismatch),
                "location": asset.location if asset else None,
                "purpose": asset.purpose if asset else None,
                "department": asset.department if asset else None,
                "dpia_ref": asset.dpia_ref if asset else None,
                "procurement_ref": asset.procurement_ref if asset else None,
                "open_ports": device.ports,
                "findings": len(mine),
                "top_severity": max((f.severity for f in mine), key=severity_rank, default=None),
                "site": view.scan.site,
                "first_seen": record.first_seen if record else None,
                "last_seen": record.last_seen if record else None,
                "mac_vendor": mac_vendor(device.mac),
                "hostname": hostnames.get(device.address),
                "open_services": _open_services(device, services.get(device.address, {})),
                "verdict_text": verdict_text(device),
            }
        )
    for item in view.missing_assets:
        asset = item.asset
        assert asset is not None
        row: dict[str, Any] = dict.fromkeys(INVENTORY_COLUMNS)
        mine = [f for f in findings if f.subject == f"asset:{asset.asset_id}"]
        row.update(
            scan_id=view.scan.id, address=asset.address, mac=asset.mac, serial=asset.serial,
            register_status="missing", asset_id=asset.asset_id, declared_maker=asset.declared_maker,
            declared_brand=asset.declared_brand, model=asset.declared_model, location=asset.location,
            purpose=asset.purpose, department=asset.department, segment=asset.segment,
            dpia_ref=asset.dpia_ref, procurement_ref=asset.procurement_ref, verdict=None, covered=None,
            advisories=[], open_ports=[], findings=len(mine), site=view.scan.site, mac_vendor=mac_vendor(asset.mac),
            open_services=[], verdict_text="not found by this scan",
            top_severity=max((f.severity for f in mine), key=severity_rank, default=None),
        )  # fmt: skip
        rows.append(row)
    return rows


def mac_vendor(mac: str | None) -> str | None:
    """The IEEE registrant of a MAC's prefix; None for no MAC or a locally administered one."""
    normal = normalize(mac or "")
    if normal is None or is_locally_administered(normal):
        return None
    return registrant(normal[:8])


def verdict_text(device: DeviceView) -> str:
    """The device's egress verdict in words: the verdict, where it comes from and, for an
    INCONCLUSIVE one, what is missing."""
    if device.verdict == "NONE":
        return "no egress verdict recorded"
    text = device.verdict
    if device.verdict_source:
        text += f" ({device.verdict_source})"
    row = device.verdict_row
    if device.verdict == "INCONCLUSIVE" and row is not None and row.missing:
        text += "; missing: " + "; ".join(english(row.missing))
    elif row is not None and row.qualifiers:
        text += "; " + "; ".join(english(row.qualifiers))
    return text


def _services_and_hostnames(store: Store, scan_id: str) -> tuple[dict[str, dict[tuple[str, int], str]], dict[str, str]]:
    """Per address: the service each port speaks (by nmap's name, else by the evidence on it),
    and the host name nmap or a device reported."""
    services: dict[str, dict[tuple[str, int], str]] = {}
    hostnames: dict[str, str] = {}
    for address, open_ports in open_services(store, scan_id).items():
        for proto_port in open_ports:
            services.setdefault(address, {}).setdefault(proto_port, "")
    for obs in observations_of_scan(store, scan_id):
        if obs.kind == "hostname" and obs.value.strip():
            hostnames.setdefault(obs.address, obs.value.strip())
        if obs.port is None:
            continue
        ports = services.setdefault(obs.address, {})
        proto = "udp" if obs.kind in UDP_KINDS or obs.source.startswith("discovery.") else "tcp"
        if obs.kind == "open_port":
            proto = obs.value.partition("/")[0] or "tcp"
            ports.setdefault((proto, obs.port), "")
        elif obs.kind == "nmap_service":
            name = next((line[8:] for line in obs.value.splitlines() if line.startswith("service=")), "")
            if name:
                ports[(proto, obs.port)] = name  # nmap's own name wins over a guess from the evidence
        elif obs.kind in _SERVICE_OF_KIND and not ports.get((proto, obs.port)):
            ports[(proto, obs.port)] = _SERVICE_OF_KIND[obs.kind]
    return services, hostnames


def _open_services(device: DeviceView, named: dict[tuple[str, int], str]) -> list[str]:
    """``tcp/80 http``, ``tcp/554 rtsp``, ``tcp/8000``: every open port, named where known."""
    ports = dict(named)
    for port in device.ports:
        ports.setdefault(("tcp", port), "")
    return [f"{proto}/{port} {name}".strip() for (proto, port), name in sorted(ports.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


def render_inventory(rows: list[dict[str, Any]], fmt: str) -> bytes:
    """``rows`` as ``fmt`` (csv, json or xlsx), as the bytes of the file."""
    if fmt == "csv":
        return write_csv(INVENTORY_COLUMNS, rows).encode("utf-8")
    if fmt == "json":
        return (json.dumps({"inventory": rows}, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    if fmt == "xlsx":
        return _xlsx_bytes(rows)
    raise UsageError(f"no inventory format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_inventory(rows: list[dict[str, Any]], fmt: str, path: str | Path) -> Path:
    """Write ``rows`` as ``fmt`` (csv, json or xlsx) to ``path``."""
    path = Path(path)
    data = render_inventory(rows, fmt)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return path


def _xlsx_bytes(rows: list[dict[str, Any]]) -> bytes:
    try:
        from openpyxl import Workbook  # type: ignore[import-untyped]
        from openpyxl.styles import Font  # type: ignore[import-untyped]
        from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]
    except ImportError:
        raise DependencyError("XLSX export needs openpyxl: pip install openpyxl (or use --format csv)") from None
    book = Workbook()
    sheet = book.active
    sheet.title = "inventory"
    sheet.append(list(INVENTORY_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        # openpyxl stores a string that starts with "=" as a formula: safe_cell defuses it.
        sheet.append([safe_cell(row.get(c)) for c in INVENTORY_COLUMNS])
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for index, column in enumerate(INVENTORY_COLUMNS, start=1):
        width = max([len(column)] + [len(str(r.get(column) or "")) for r in rows[:500]])
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 8), 48)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
