"""The vendor inventory export: one row per device (and per registered asset not found), for
the CISO team's spreadsheet and for CMDBs (user_asks.md section 9; egress.md section 6 "CSV").

CSV, JSON and XLSX carry the same columns. XLSX needs openpyxl (imported only when asked for).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..assess import current_assessment, scan_view
from ..errors import DependencyError, UsageError
from ..policy import Policy, severity_rank
from ..store import Store
from .csv_report import safe_cell, write_csv

INVENTORY_COLUMNS: tuple[str, ...] = (
    "scan_id", "device_id", "address", "mac", "maker", "brand", "model", "device_type", "firmware", "serial",
    "confidence", "covered", "advisories", "verdict", "verdict_source", "exposed", "segment", "register_status",
    "asset_id", "declared_maker", "declared_brand", "maker_mismatch", "location", "purpose", "department",
    "dpia_ref", "procurement_ref", "open_ports", "findings", "top_severity",
)  # fmt: skip

FORMATS = ("csv", "json", "xlsx")


def inventory_rows(store: Store, scan_ref: str = "latest", policy: Policy | None = None) -> list[dict[str, Any]]:
    """The inventory of one scan: its devices in address order, then registered assets that
    the scan did not find (``register_status`` = ``missing``)."""
    scan = store.scan(scan_ref)
    assessment, findings = current_assessment(store, scan.id, policy)
    view = scan_view(store, scan.id, assessment=assessment)
    rows = []
    for device in view.devices:
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
            advisories=[], open_ports=[], findings=len(mine),
            top_severity=max((f.severity for f in mine), key=severity_rank, default=None),
        )  # fmt: skip
        rows.append(row)
    return rows


def write_inventory(rows: list[dict[str, Any]], fmt: str, path: str | Path) -> Path:
    """Write ``rows`` as ``fmt`` (csv, json or xlsx) to ``path``."""
    path = Path(path)
    if fmt == "csv":
        _write_text(path, write_csv(INVENTORY_COLUMNS, rows))
    elif fmt == "json":
        _write_text(path, json.dumps({"inventory": rows}, indent=2, ensure_ascii=False, default=str) + "\n")
    elif fmt == "xlsx":
        _write_xlsx(rows, path)
    else:
        raise UsageError(f"no inventory format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return path


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _write_xlsx(rows: list[dict[str, Any]], path: Path) -> None:
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
    try:
        book.save(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
