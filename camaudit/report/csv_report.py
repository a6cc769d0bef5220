"""The CSV report: one row per finding, with the device or asset it concerns, for the
spreadsheet an auditor works through. (The one-row-per-device inventory is ``camaudit export
inventory``.)

Cells that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@`` ...) are prefixed with
an apostrophe: device-supplied text must not run in the auditor's spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FINDING_COLUMNS = (
    "severity", "rule", "title", "subject", "detail", "address", "maker", "brand", "model", "firmware",
    "serial", "covered", "verdict", "register", "asset_id", "location", "scan_id", "finding_id",
)  # fmt: skip

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A value as a spreadsheet should show it: never a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        value = "; ".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return out.getvalue()


def render_csv(doc: dict[str, Any]) -> str:
    devices = {d["address"]: d for d in doc["devices"]}
    rows = []
    for f in doc["findings"]:
        d = devices.get(f["subject"], {})
        rows.append(
            {
                "severity": f["severity"], "rule": f["rule"], "title": f["title"], "subject": f["subject"],
                "detail": f["detail"], "address": d.get("address"), "maker": d.get("vendor"),
                "brand": d.get("brand"), "model": d.get("model"), "firmware": d.get("firmware"),
                "serial": d.get("serial"), "covered": d.get("covered") if d else None,
                "verdict": d.get("verdict"), "register": d.get("register"), "asset_id": d.get("asset_id"),
                "location": d.get("location"), "scan_id": f["scan_id"], "finding_id": f["id"],
            }  # fmt: skip
        )
    return write_csv(FINDING_COLUMNS, rows)
