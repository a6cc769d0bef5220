"""The declared asset register as stored, and its version (content hash and import time)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from ..model import DEFAULT_SITE, utc_now
from ..register import COLUMNS, Asset
from .scans import ensure_site

if TYPE_CHECKING:
    from .db import Store


def save_register(store: Store, assets: Sequence[Asset], *, source_file: str, merge: bool = False,
                  site: str = DEFAULT_SITE) -> int:
    """Store a site's register: it replaces the site's, unless ``merge`` (add or update by id)."""
    now = utc_now()
    rows = [asset.to_json() | {"site": site, "source_file": source_file, "imported_at": now} for asset in assets]
    with store.write() as db:
        ensure_site(db, site)
        if not merge:
            db.execute("delete from register where site = ?", [site])
        if rows:
            db.table("register").upsert_all(rows, pk=("site", "asset_id"))
    return len(rows)


def load_register(store: Store, site: str = DEFAULT_SITE) -> list[Asset]:
    """A site's register as stored, in asset id order."""
    return [Asset(**{c: row[c] for c in COLUMNS})
            for row in store.db.query("select * from register where site = ? order by asset_id", [site])]


def register_version(store: Store, site: str = DEFAULT_SITE) -> tuple[str, str | None]:
    """(sha256 of the site's register content, its latest import time); ('', None) when empty."""
    assets = load_register(store, site)
    if not assets:
        return "", None
    row = store.db.execute("select max(imported_at) from register where site = ?", [site]).fetchone()
    return content_hash([a.to_json() for a in assets]), (row[0] if row else None)


def content_hash(assets: Sequence[dict[str, Any]]) -> str:
    if not assets:
        return ""
    return sha256(json.dumps(list(assets), sort_keys=True, default=str).encode()).hexdigest()
