"""The SQLite file itself: schema, secret, pragmas, and refusing a file from a newer hcserver."""

from __future__ import annotations

import sqlite3

import pytest

from persistence.store import SCHEMA_VERSION, SchemaTooNew, Store
from tests.persistence.helpers import async_test, rows


@async_test
async def test_first_open_creates_the_schema_and_a_secret_that_stays(tmp_path):
    db = tmp_path / "data.db"
    store = await Store.open(db)
    secret = await store.secret()
    assert isinstance(secret, bytes) and len(secret) == 32
    assert await store.pragma("journal_mode") == "wal"
    await store.close()

    store = await Store.open(db)
    assert await store.secret() == secret
    await store.close()
    assert rows(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(SCHEMA_VERSION,)]
    tables = {name for (name,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables >= {"meta", "projects", "checks", "channels", "pings", "flips", "notifications"}


@async_test
async def test_two_files_get_different_secrets(tmp_path):
    a = await Store.open(tmp_path / "a.db")
    b = await Store.open(tmp_path / "b.db")
    assert await a.secret() != await b.secret()
    await a.close()
    await b.close()


@async_test
async def test_a_file_from_a_newer_hcserver_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "data.db"
    store = await Store.open(db)
    await store.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    before = db.read_bytes()

    with pytest.raises(SchemaTooNew, match=rf"schema version {SCHEMA_VERSION + 1}.*newer hcserver"):
        await Store.open(db)
    assert db.read_bytes() == before


@async_test
async def test_a_damaged_secret_is_not_silently_replaced(tmp_path):
    db = tmp_path / "data.db"
    store = await Store.open(db)
    await store.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = x'0102' WHERE key = 'secret'")
    conn.commit()
    conn.close()
    # A new secret would silently invalidate every stored API key hash.
    with pytest.raises(RuntimeError, match="secret is damaged"):
        await Store.open(db)


@async_test
async def test_memory_database_works_with_one_connection(tmp_path):
    store = await Store.open(":memory:")
    assert len(await store.secret()) == 32
    assert await store.count_pings() == 0
    await store.close()
