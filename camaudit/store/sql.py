"""Small SQL helpers shared by the store's modules (no store state here)."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any


@functools.cache
def _upsert_sql(table: str, columns: tuple[str, ...], pk: tuple[str, ...]) -> str:
    for name in (table, *columns, *pk):
        if not name.isidentifier() or not name.isascii():
            raise ValueError(f"not a table or column name: {name!r}")
    names = ", ".join(f'"{c}"' for c in columns)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in pk)
    conflict = ", ".join(f'"{c}"' for c in pk)
    action = f"do update set {updates}" if updates else "do nothing"
    placeholders = ", ".join("?" for _ in columns)
    # Only checked identifiers are formatted in; every value is a parameter.
    return f'insert into "{table}" ({names}) values ({placeholders}) on conflict ({conflict}) {action}'  # noqa: S608


def upsert(conn: sqlite3.Connection, table: str, row: dict[str, Any], pk: tuple[str, ...]) -> None:
    """Insert ``row``, or update the given columns of the row with its primary key ``pk``: what
    sqlite-utils' Table.upsert does, as one cached statement (the per-host writes of a scan
    called upsert thousands of times, and its table look-ups were a few % of the scan's CPU,
    issue 15). Table and column names are camaudit's own, never a device's."""
    columns = tuple(row)
    conn.execute(_upsert_sql(table, columns, pk), [row[c] for c in columns])
