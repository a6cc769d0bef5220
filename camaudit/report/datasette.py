"""Datasette metadata for a camaudit database: every table and column described, so the
store opens in Datasette as it is and explains itself (``datasette camaudit.db -m FILE``).

The descriptions live in ``config/datasette-metadata.json``, written for a database file named
``camaudit.db``; :func:`metadata_for` re-keys them for another file name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..resources import config_dir


def shipped_metadata() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((config_dir() / "datasette-metadata.json").read_text(encoding="utf-8"))
    return document


def metadata_for(db_path: str | Path) -> dict[str, Any]:
    """The metadata keyed by the database name Datasette gives ``db_path`` (its file stem)."""
    document = shipped_metadata()
    tables = document["databases"].pop("camaudit")
    document["databases"][Path(db_path).stem] = tables
    return document
