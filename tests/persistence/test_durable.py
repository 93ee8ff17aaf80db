"""Durable mode and backpressure: when the awaitable a change returns completes."""

from __future__ import annotations

import asyncio
import logging

from tests.persistence.helpers import T0, async_test, check, count, open_writer, ping, project


@async_test
async def test_durable_answers_only_after_commit(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, durable=True, flush_interval_ms=60_000)
    assert await wb._store.pragma("synchronous") == 2  # FULL
    wb.start()
    assert wb.project_changed(project()) is not None
    c = check()
    waiter = wb.ping_recorded(c, *ping(c, T0, body=b"payload"))
    assert waiter is not None
    assert count(db, "pings") == 0  # not on disk yet: the answer must wait
    await waiter
    # Another connection (another process, after a crash) sees the row as soon as the answer is due.
    assert count(db, "pings") == 1
    assert count(db, "checks") == 1
    await wb.close()


@async_test
async def test_durable_group_commit_keeps_throughput(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, durable=True)
    wb.start()
    await wb.project_changed(project())
    checks = [check() for _ in range(20)]

    async def client(c):
        for i in range(25):
            await wb.ping_recorded(c, *ping(c, T0 + i))

    await asyncio.gather(*(client(c) for c in checks))
    assert count(db, "pings") == 500
    # Each flush carried the pings that gathered while the previous one committed.
    assert wb.status()["flushes"] < 250
    await wb.close()


@async_test
async def test_write_behind_mode_answers_at_once(tmp_path):
    wb = await open_writer(tmp_path / "data.db")
    assert await wb._store.pragma("synchronous") == 1  # NORMAL: survives a crash of the process
    c = check()
    assert wb.ping_recorded(c, *ping(c, T0)) is None
    await wb.close()


@async_test
async def test_backpressure_delays_answers_until_a_flush_makes_room(tmp_path, caplog):
    db = tmp_path / "data.db"
    wb = await open_writer(db, max_pending=5, flush_interval_ms=60_000)
    wb.project_changed(project())
    c = check()
    answers = [wb.ping_recorded(c, *ping(c, T0 + i)) for i in range(3)]
    assert answers == [None] * 3  # 4 changes pending, under the limit
    with caplog.at_level(logging.WARNING, logger="persistence.writebehind"):
        delayed = [wb.ping_recorded(c, *ping(c, T0 + i)) for i in range(3, 6)]
    assert all(d is not None for d in delayed)
    assert sum("max_pending" in r.getMessage() for r in caplog.records) == 1  # warned once
    waiting = [asyncio.ensure_future(d) for d in delayed]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiting)  # delayed, not dropped, not failed
    assert wb.status()["pending"] == 7

    assert await wb.flush_once()
    await asyncio.wait_for(asyncio.gather(*waiting), 2)
    assert count(db, "pings") == 6
    assert wb.ping_recorded(c, *ping(c, T0 + 7)) is None  # room again
    await wb.close()


@async_test
async def test_one_cancelled_waiter_does_not_cancel_the_others(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, durable=True, flush_interval_ms=60_000)
    c = check()
    wb.project_changed(project())
    first = asyncio.ensure_future(wb.ping_recorded(c, *ping(c, T0)))
    second = asyncio.ensure_future(wb.ping_recorded(c, *ping(c, T0 + 1)))
    await asyncio.sleep(0)
    first.cancel()
    await wb.flush_once()
    await asyncio.wait_for(second, 2)
    assert first.cancelled() and second.done() and count(db, "pings") == 2
    await wb.close()
