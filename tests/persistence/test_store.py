"""The SQLite file itself: schema, secret, pragmas, each check's ring of pings, and refusing a file from a
newer hcserver."""

from __future__ import annotations

import sqlite3

import pytest

from persistence.store import SCHEMA_VERSION, SchemaTooNew, Store
from persistence.writebehind import WriteBehind
from tests.persistence.helpers import T0, async_test, check, open_writer, ping, project, rows


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


@async_test
async def test_a_checks_pings_fill_its_ring_and_then_overwrite_the_oldest(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=10)
    wb.project_changed(project())
    c = check()
    for i in range(25):
        wb.ping_recorded(c, *ping(c, T0 + i, body=b"run %d" % (i + 1)))
        if i % 4 == 3:
            assert await wb.flush_once()
    await wb.close()
    assert rows(db, "SELECT slot, n FROM pings ORDER BY n") == [(n % 10, n) for n in range(16, 26)]

    wb = await open_writer(db, ping_log_limit=10)
    assert [p.body for p in await wb.recent_pings(c, 3)] == [b"run 25", b"run 24", b"run 23"]
    assert await wb.get_ping(c, 16) is not None and await wb.get_ping(c, 15) is None
    await wb.close()


@async_test
async def test_a_store_opened_with_another_ping_log_limit_keeps_each_checks_newest_pings(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=10)
    wb.project_changed(project())
    a, b = check(), check()
    for i in range(12):
        wb.ping_recorded(a, *ping(a, T0 + i))
    for i in range(3):
        wb.ping_recorded(b, *ping(b, T0 + i))
    await wb.close()

    store = await Store.open(db, ping_log_limit=4)
    await store.close()
    assert rows(db, "SELECT check_id, slot, n FROM pings WHERE check_id = ? ORDER BY n", (a.uuid,)) == [
        (a.uuid, n % 4, n) for n in range(9, 13)
    ]
    assert rows(db, "SELECT n FROM pings WHERE check_id = ? ORDER BY n", (b.uuid,)) == [(1,), (2,), (3,)]
    assert rows(db, "SELECT value FROM meta WHERE key = 'ping_slots'") == [(4,)]

    store = await Store.open(db, ping_log_limit=50)  # growing keeps them all, in their new slots
    await store.close()
    assert rows(db, "SELECT slot, n FROM pings WHERE check_id = ? ORDER BY n", (a.uuid,)) == [
        (n % 50, n) for n in range(9, 13)
    ]


@async_test
async def test_a_write_behind_with_a_limit_other_than_its_stores_is_refused(tmp_path):
    store = await Store.open(tmp_path / "data.db", ping_log_limit=20)
    with pytest.raises(ValueError, match="keeps 20 pings per check"):
        WriteBehind(store, ping_log_limit=100)
    assert WriteBehind(store).ping_log_limit == 20
    await store.close()
