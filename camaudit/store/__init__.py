"""The evidence store: SQLite written through sqlite-utils, behind numbered migrations
(:mod:`.schema`). :mod:`.db` holds the connection and transactions; each domain's SQL lives in
its own module (:mod:`.scans`, :mod:`.observations`, :mod:`.devices`, :mod:`.verdicts`,
:mod:`.egress`, :mod:`.assessments`, :mod:`.register`), and reads return the types of
:mod:`camaudit.model`. No SQL lives outside this package.
"""

from __future__ import annotations

from ..model import SCAN_STATUSES, Scan
from ..model.findings import address_order as _address_sort_key
from .db import BUSY_TIMEOUT_MS, Store, open_store, store_error
from .devices import device_key
from .observations import identity_from_row, observation_id
from .scans import mark_interrupted_elsewhere, stale_note
from .schema import REQUIRED_TABLES, migrations

#: The row type 0.1 returned for a scan; a Scan now.
ScanRow = Scan

__all__ = [
    "BUSY_TIMEOUT_MS", "REQUIRED_TABLES", "SCAN_STATUSES", "Scan", "ScanRow", "Store", "_address_sort_key",
    "device_key", "identity_from_row", "mark_interrupted_elsewhere", "migrations", "observation_id", "open_store",
    "stale_note", "store_error",
]
