"""The declared asset register as stored, and its version (content hash and import time)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from ..model import utc_now
from ..register import COLUMNS, Asset

if TYPE_CHECKING:
    from .db import Store


def save_register(store: Store, assets: Sequence[Asset], *, source_file: str, merge: bool = False) -> int:
    now = utc_now()
    rows = [asset.to_json() | {"source_file": source_file, "imported_at": now} for asset in assets]
    with store.write() as db:
        if not merge:
            db.execute("delete from register")
        if rows:
            db.table("register").upsert_all(rows, pk="asset_id")
    return len(rows)


def load_register(store: Store) -> list[Asset]:
    """The register as stored, in asset id order."""
    return [Asset(**{c: row[c] for c in COLUMNS}) for row in store.db.query("select * from register order by asset_id")]


def register_version(store: Store) -> tuple[str, str | None]:
    """(sha256 of the register's content, the latest import time); ('', None) when empty."""
    assets = load_register(store)
    if not assets:
        return "", None
    row = store.db.execute("select max(imported_at) from register").fetchone()
    return content_hash([a.to_json() for a in assets]), (row[0] if row else None)


def content_hash(assets: Sequence[dict[str, Any]]) -> str:
    if not assets:
        return ""
    return sha256(json.dumps(list(assets), sort_keys=True, default=str).encode()).hexdigest()
