"""camaudit.store.sql.upsert: sqlite-utils' upsert semantics as one cached statement (issue 15)."""

from __future__ import annotations

import sqlite3

import pytest

from camaudit.store.sql import upsert


def test_upsert_inserts_then_updates_only_the_given_columns() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("create table t (site text, id text, a text, b text, primary key (site, id))")
    upsert(conn, "t", {"site": "s", "id": "1", "a": "first", "b": "kept"}, ("site", "id"))
    upsert(conn, "t", {"site": "s", "id": "1", "a": "second"}, ("site", "id"))
    upsert(conn, "t", {"site": "s", "id": "2", "a": "other"}, ("site", "id"))
    upsert(conn, "t", {"site": "s", "id": "2"}, ("site", "id"))  # only the key: nothing to update
    assert conn.execute("select site, id, a, b from t order by id").fetchall() == [
        ("s", "1", "second", "kept"), ("s", "2", "other", None)]


def test_upsert_refuses_a_name_that_is_not_an_identifier() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("create table t (id text primary key, a text)")
    with pytest.raises(ValueError, match="not a table or column name"):
        upsert(conn, "t", {"id": "1", 'a" = 1; drop table t; --': "x"}, ("id",))
    with pytest.raises(ValueError):
        upsert(conn, "t; drop table t", {"id": "1"}, ("id",))
    assert conn.execute("select count(*) from t").fetchone() == (0,)
