"""Write-behind on a real SQLite file: batching, coalescing, pruning, read-your-writes, the loop."""

from __future__ import annotations

import asyncio
import sqlite3

from persistence.codec import Codec
from tests.persistence.helpers import T0, async_test, check, count, open_writer, ping, project, rows


@async_test
async def test_a_flush_writes_mixed_changes_in_one_go(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db)
    p = project("p1")
    gone = project("p2")
    c, other = check(name="backup"), check(name="doomed")
    wb.project_changed(p)
    wb.project_changed(gone)
    wb.check_changed(c)
    wb.check_changed(other)
    first, flip = ping(c, T0 + 1, body=b"hello")
    wb.ping_recorded(c, first, flip)
    wb.channel_changed({"id": "ch1", "project_id": "p1", "kind": "webhook", "url": "http://x"})
    wb.notification_changed((c.uuid, flip.created, "ch1"), {"status": "pending", "tries": 0})
    wb.project_deleted(gone)
    wb.check_deleted(other)
    assert count(db, "checks") == 0  # nothing written before the flush

    assert await wb.flush_once() is True
    assert await wb.flush_once() is False  # nothing left
    assert rows(db, "SELECT id FROM projects") == [("p1",)]
    assert rows(db, "SELECT id, project_id FROM checks") == [(c.uuid, "p1")]
    assert rows(db, "SELECT check_id, n FROM pings") == [(c.uuid, 1)]
    assert count(db, "flips") == 1
    assert rows(db, "SELECT id, project_id FROM channels") == [("ch1", "p1")]
    assert rows(db, "SELECT channel_id, status FROM notifications") == [("ch1", "pending")]
    status = wb.status()
    assert status["ok"] and status["flushes"] == 1 and status["pending"] == 0
    assert status["last_flush_changes"] == 9
    await wb.close()


@async_test
async def test_a_check_pinged_many_times_between_flushes_is_written_once(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=100)
    wb.project_changed(project())
    c = check()
    for i in range(80):
        wb.ping_recorded(c, *ping(c, T0 + i, body=b"run %d" % i))
    assert await wb.flush_once()
    # 1 project + 1 check snapshot + 80 pings + 1 flip (new -> up): the check is not written 80 times.
    assert wb.status()["last_flush_size"] == 1 + 1 + 80 + 1
    assert count(db, "pings", "WHERE check_id = ?", (c.uuid,)) == 80
    assert rows(db, "SELECT n FROM pings ORDER BY n") == [(n,) for n in range(1, 81)]
    (data,) = rows(db, "SELECT data FROM checks WHERE id = ?", (c.uuid,))[0]
    assert Codec().decode_check(data).n_pings == 80  # the snapshot taken at flush time, the latest
    await wb.close()


@async_test
async def test_pings_beyond_the_log_limit_are_pruned(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=10)
    wb.project_changed(project())
    c, quiet = check(), check()
    for i in range(7):
        wb.ping_recorded(c, *ping(c, T0 + i))
    wb.ping_recorded(quiet, *ping(quiet, T0))
    await wb.flush_once()
    for i in range(7, 25):
        wb.ping_recorded(c, *ping(c, T0 + i))
    await wb.flush_once()
    assert rows(db, "SELECT n FROM pings WHERE check_id = ? ORDER BY n", (c.uuid,)) == [(n,) for n in range(16, 26)]
    assert count(db, "pings", "WHERE check_id = ?", (quiet.uuid,)) == 1
    assert [p.n for p in await wb.recent_pings(c, 100)] == list(range(25, 15, -1))
    assert await wb.get_ping(c, 15) is None and (await wb.get_ping(c, 16)).n == 16
    await wb.close()


@async_test
async def test_reads_see_pings_and_flips_before_any_flush(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=5)
    wb.project_changed(project())
    c = check()
    body = b"\xff\xfe not utf-8 \x00"
    wb.ping_recorded(c, *ping(c, T0, body=body))
    wb.ping_recorded(c, *ping(c, T0 + 1, action="fail"))
    assert count(db, "pings") == 0
    assert [p.n for p in await wb.recent_pings(c, 10)] == [2, 1]
    assert (await wb.get_ping(c, 1)).body == body
    assert [f.new_status for f in await wb.flips(c)] == ["up", "down"]

    await wb.flush_once()
    for i in range(2, 8):  # mix flushed and pending pings, some of the flushed ones now past the limit
        wb.ping_recorded(c, *ping(c, T0 + i))
    assert [p.n for p in await wb.recent_pings(c, 10)] == [8, 7, 6, 5, 4]
    assert [p.n for p in await wb.recent_pings(c, 2)] == [8, 7]
    assert await wb.get_ping(c, 2) is None  # beyond the limit even though still on disk
    assert [f.new_status for f in await wb.flips(c)] == ["up", "down", "up"]
    await wb.flush_once()
    assert [p.n for p in await wb.recent_pings(c, 10)] == [8, 7, 6, 5, 4]
    assert [f.new_status for f in await wb.flips(c)] == ["up", "down", "up"]
    assert (await wb.get_ping(c, 8)).created == T0 + 7
    await wb.close()


@async_test
async def test_reads_while_a_flush_is_in_flight_see_everything_once(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db)
    wb.project_changed(project())
    c = check()
    for i in range(50):
        wb.ping_recorded(c, *ping(c, T0 + i, action="fail" if i % 2 else "success"))
    flushing = asyncio.ensure_future(wb.flush_once())
    seen = []
    while not flushing.done():
        seen.append(([p.n for p in await wb.recent_pings(c, 100)], len(await wb.flips(c))))
        await asyncio.sleep(0)
    seen.append(([p.n for p in await wb.recent_pings(c, 100)], len(await wb.flips(c))))
    assert all(s == (list(range(50, 0, -1)), 50) for s in seen)
    await wb.close()


@async_test
async def test_deleting_a_check_removes_its_history(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db)
    wb.project_changed(project())
    c, keep = check(), check()
    wb.ping_recorded(c, *ping(c, T0))
    wb.ping_recorded(keep, *ping(keep, T0))
    wb.notification_changed((c.uuid, T0, "ch"), {"status": "sent"})
    await wb.flush_once()
    wb.ping_recorded(c, *ping(c, T0 + 1, action="fail"))  # pending when the delete comes
    wb.check_deleted(c)
    await wb.flush_once()
    for table, column in [
        ("checks", "id"),
        ("pings", "check_id"),
        ("flips", "check_id"),
        ("notifications", "check_id"),
    ]:
        assert count(db, table, f"WHERE {column} = ?", (c.uuid,)) == 0, table
    assert count(db, "pings", "WHERE check_id = ?", (keep.uuid,)) == 1
    await wb.close()


@async_test
async def test_flips_are_pruned_to_the_limit_with_their_notifications(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, flip_limit=3)
    wb.project_changed(project())
    c = check()
    for i in range(8):
        p, flip = ping(c, T0 + i, action="fail" if i % 2 else "success")
        wb.ping_recorded(c, p, flip)
        wb.notification_changed((c.uuid, flip.created, "ch"), {"status": "sent"})
        if i % 3 == 0:
            await wb.flush_once()
    await wb.flush_once()
    assert [f.created for f in await wb.flips(c)] == [T0 + 5, T0 + 6, T0 + 7]
    assert count(db, "flips") == 3
    assert rows(db, "SELECT flip_created FROM notifications ORDER BY 1") == [(T0 + 5,), (T0 + 6,), (T0 + 7,)]
    await wb.close()


@async_test
async def test_run_flushes_on_the_interval_and_close_drains(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, flush_interval_ms=30)
    wb.start()
    wb.project_changed(project())
    c = check()
    wb.ping_recorded(c, *ping(c, T0))
    for _ in range(100):
        if count(db, "pings"):
            break
        await asyncio.sleep(0.01)
    assert count(db, "pings") == 1
    wb.ping_recorded(c, *ping(c, T0 + 1))
    await wb.close()  # drains the pending ping
    assert count(db, "pings") == 2


@async_test
async def test_a_full_batch_is_flushed_before_the_interval(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, flush_interval_ms=60_000, flush_batch=20)
    wb.start()
    wb.project_changed(project())
    c = check()
    for i in range(25):
        wb.ping_recorded(c, *ping(c, T0 + i))
    for _ in range(200):
        if count(db, "pings") >= 19:
            break
        await asyncio.sleep(0.01)
    assert count(db, "pings") >= 19
    assert wb.status()["flushes"] >= 1
    await wb.close()
    assert count(db, "pings") == 25


@async_test
async def test_status_reports_ages_and_commit_lag_from_the_injected_clock(tmp_path):
    now = [100.0]
    wb = await open_writer(tmp_path / "data.db", clock=lambda: now[0])
    wb.project_changed(project())
    now[0] = 100.25
    wb.check_changed(check())
    now[0] = 100.5
    status = wb.status()
    assert status["pending"] == 2 and status["oldest_pending_age_ms"] == 500.0
    now[0] = 101.0
    await wb.flush_once()
    status = wb.status()
    assert status["pending"] == 0 and status["oldest_pending_age_ms"] == 0.0
    assert status["commit_lag_ms_p50"] in (750.0, 1000.0) and status["commit_lag_ms_p99"] == 1000.0
    assert set(status) >= {"ok", "error", "pending", "oldest_pending_age_ms", "last_flush_size", "last_flush_ms",
                           "flush_errors", "flushes", "commit_lag_ms_p50", "commit_lag_ms_p99"}  # fmt: skip
    await wb.close()


@async_test
async def test_a_damaged_ping_row_is_skipped_and_counted_on_read(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db)
    wb.project_changed(project())
    c = check()
    for i in range(3):
        wb.ping_recorded(c, *ping(c, T0 + i))
    await wb.flush_once()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE pings SET data = x'c1c1c1' WHERE check_id = ? AND n = 2", (c.uuid,))
    conn.commit()
    conn.close()
    assert [p.n for p in await wb.recent_pings(c, 10)] == [3, 1]
    assert await wb.get_ping(c, 2) is None
    assert wb.status()["skipped_records"] == 2
    await wb.close()


@async_test
async def test_a_flush_bigger_than_a_pipe_write_arrives_whole(tmp_path):
    # The flush goes to the writer process in blocks of 64 KiB: pieces that straddle a block, and a
    # check whose pings alone outweigh several blocks, must all land intact and in order.
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=100)
    wb.project_changed(project())
    bodies: dict[str, list[bytes]] = {}
    for size in (700, 4_000, 10_000):
        c = check()
        bodies[c.uuid] = [bytes([i]) * size for i in range(1, 61)]
        for i, body in enumerate(bodies[c.uuid]):
            wb.ping_recorded(c, *ping(c, T0 + i, body=body))
    assert await wb.flush_once()
    codec = Codec()
    for uuid, sent in bodies.items():
        stored = rows(db, "SELECT data FROM pings WHERE check_id = ? ORDER BY n", (uuid,))
        assert [codec.decode_ping(data).body for (data,) in stored] == sent
    await wb.close()
