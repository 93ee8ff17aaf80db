"""Startup recovery: snapshots back into an Index, damaged rows skipped and counted, history continues."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from hcserver.domain.index import Index
from hcserver.domain.pings import PingRequest
from hcserver.domain.projects import KeyHasher
from persistence.recovery import load_notifications, recover
from persistence.store import Store
from persistence.writebehind import WriteBehind
from tests.persistence.helpers import T0, async_test, check, open_writer, ping, project


def fields_of(obj):
    return dataclasses.asdict(obj)


async def fresh_index(store: Store) -> Index:
    return Index(KeyHasher(await store.secret()))


@async_test
async def test_everything_comes_back_and_history_continues(tmp_path):
    db = tmp_path / "data.db"
    store = await Store.open(db)
    wb = WriteBehind(store)
    p1, p2 = project("p1"), project("p2")
    wb.project_changed(p1)
    wb.project_changed(p2)
    c1 = check("p1", name="Backup", slug="backup", tags="prod db", channels=("ch1",))
    c2 = check("p2", kind="cron", schedule="0 3 * * *", tz="Europe/Riga")
    wb.ping_recorded(c1, *ping(c1, T0, action="start"))
    # A second open run, with a run id: the runs dict keeps a None key and a string key.
    wb.ping_recorded(c1, *c1.ping(PingRequest(action="start", method="GET", rid="5b2a6a8e-0001"), T0 + 1))
    for i in range(3):
        wb.ping_recorded(c2, *ping(c2, T0 + i, action="fail" if i == 1 else "success"))
    wb.channel_changed({"id": "ch1", "project_id": "p1", "kind": "email", "value": "ops@example.org"})
    wb.notification_changed((c2.uuid, T0 + 1, "ch1"), {"status": "pending", "error": ""})
    wb.notification_changed((c2.uuid, T0 + 2, "ch1"), {"status": "sent", "error": ""})
    await wb.close()

    store = await Store.open(db)
    index = await fresh_index(store)
    report = await recover(store, index)
    assert (report.projects, report.checks, len(report.channels), report.pings, report.skipped) == (2, 2, 1, 5, 0)
    assert report.channels == [{"id": "ch1", "project_id": "p1", "kind": "email", "value": "ops@example.org"}]
    assert report.seconds < 1 and "2 checks" in str(report)
    assert fields_of(index.checks[c1.uuid]) == fields_of(c1)
    assert fields_of(index.checks[c2.uuid]) == fields_of(c2)
    assert index.checks[c1.uuid].runs == c1.runs and len(c1.runs) == 2
    assert index.by_slug("p1", "backup") == [index.checks[c1.uuid]]
    assert index.projects["p2"].api_key_hash == p2.api_key_hash

    pending = await load_notifications(store, "pending")
    assert pending == [((c2.uuid, T0 + 1, "ch1"), {"status": "pending", "error": ""})]
    assert len(await load_notifications(store)) == 2

    # A new writer on the recovered state: numbering and history carry on.
    wb = WriteBehind(store)
    again = index.checks[c2.uuid]
    wb.ping_recorded(again, *ping(again, T0 + 10, action="fail"))
    assert [p.n for p in await wb.recent_pings(again, 10)] == [4, 3, 2, 1]
    await wb.flush_once()
    assert [f.new_status for f in await wb.flips(again)] == ["up", "down", "up", "down"]
    await wb.close()


@async_test
async def test_damaged_rows_are_skipped_and_counted(tmp_path, caplog):
    db = tmp_path / "data.db"
    store = await Store.open(db)
    wb = WriteBehind(store)
    wb.project_changed(project("p1"))
    good = [check("p1") for _ in range(3)]
    for c in good:
        wb.check_changed(c)
    orphan = check("no-such-project")
    wb.check_changed(orphan)
    await wb.close()

    conn = sqlite3.connect(db)
    conn.execute("UPDATE checks SET data = x'deadbeef00ff' WHERE id = ?", (good[0].uuid,))
    conn.execute("INSERT INTO projects (id, data) VALUES ('broken', x'93')")
    conn.execute("INSERT INTO channels (id, project_id, data) VALUES ('bad', 'p1', x'c1')")
    conn.commit()
    conn.close()

    store = await Store.open(db)
    index = await fresh_index(store)
    report = await recover(store, index)
    await store.close()
    assert (report.projects, report.checks, report.skipped) == (1, 2, 4)
    assert set(index.checks) == {good[1].uuid, good[2].uuid}
    assert any("skipped a stored check" in r.getMessage() for r in caplog.records)


@async_test
async def test_recovering_an_empty_file(tmp_path):
    store = await Store.open(tmp_path / "new.db")
    report = await recover(store, await fresh_index(store))
    await store.close()
    assert (report.projects, report.checks, report.channels, report.pings, report.skipped) == (0, 0, [], 0, 0)


def spoil_pages_of(db, *names: str) -> None:
    """Overwrite the root page of each named table or index with bytes no b-tree page has: any
    statement that reads it (a count, a scan, a lookup) fails with "database disk image is malformed"."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    roots = [conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (n,)).fetchone()[0] for n in names]
    conn.close()
    with open(db, "r+b") as f:
        for root in roots:
            f.seek((root - 1) * page_size)
            f.write(b"\xff" * page_size)


@async_test
async def test_startup_never_reads_the_pings(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=100)
    wb.project_changed(project("p1"))
    checks = [check("p1") for _ in range(40)]
    for i in range(30):
        for c in checks:
            wb.ping_recorded(c, *ping(c, T0 + i, body=b"x" * 300))
        await wb.flush_once()
    await wb.close()
    spoil_pages_of(db, "pings")
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        conn = sqlite3.connect(db)
        try:
            conn.execute("SELECT COUNT(*) FROM pings").fetchone()
        finally:
            conn.close()

    # Opening the store and recovering every check touches no page of the pings: both succeed.
    store = await Store.open(db)
    index = await fresh_index(store)
    report = await recover(store, index)
    assert (report.checks, report.pings, report.skipped) == (40, 40 * 30, 0)
    assert report.pings == sum(c.n_pings for c in index.checks.values())
    with pytest.raises(sqlite3.DatabaseError):
        await store.recent_pings(checks[0].uuid, 0, None, 10)  # the pings really are unreadable
    await store.close()


@async_test
async def test_the_stored_pings_reported_are_each_checks_pings_up_to_the_log_limit(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=5)
    wb.project_changed(project("p1"))
    busy, quiet = check("p1"), check("p1")
    for i in range(8):
        wb.ping_recorded(busy, *ping(busy, T0 + i))
    wb.ping_recorded(quiet, *ping(quiet, T0))
    await wb.close()

    store = await Store.open(db)
    report = await recover(store, await fresh_index(store), ping_log_limit=5)
    stored = await store.count_pings()
    await store.close()
    assert report.pings == stored == 5 + 1
