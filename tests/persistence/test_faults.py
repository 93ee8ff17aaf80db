"""Disk faults: the batch is kept, status says why, and nothing acknowledged is lost afterwards.

Faults are injected at the SQLite layer from outside the server, as an operator or a broken disk
would: a trigger that aborts every insert, or another connection holding the write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3

import pytest

from persistence.writebehind import NotPersisted
from tests.persistence.helpers import T0, async_test, check, count, open_writer, ping, project, writer_with_one_ping

FAULT = "CREATE TRIGGER fault BEFORE INSERT ON pings BEGIN SELECT RAISE(ABORT, 'injected disk fault'); END"


def inject(db, sql: str = FAULT) -> None:
    conn = sqlite3.connect(db)
    conn.execute(sql)
    conn.commit()
    conn.close()


def heal(db) -> None:
    inject(db, "DROP TRIGGER fault")


async def wait_for(predicate, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@async_test
async def test_a_failing_flush_keeps_its_batch_and_lands_when_the_fault_goes(tmp_path):
    db = tmp_path / "data.db"
    wb, c = await writer_with_one_ping(db)

    inject(db)
    for i in range(1, 6):
        wb.ping_recorded(c, *ping(c, T0 + i, body=b"during the fault %d" % i))
    assert await wb.flush_once() is False
    status = wb.status()
    assert status["ok"] is False and "injected disk fault" in status["error"]
    assert status["pending"] == 5 and status["flush_errors"] == 1
    # Still answering from memory, bodies included.
    assert [p.n for p in await wb.recent_pings(c, 10)] == [6, 5, 4, 3, 2, 1]
    assert (await wb.get_ping(c, 6)).body == b"during the fault 5"

    wb.ping_recorded(c, *ping(c, T0 + 6, action="fail"))  # arrives while the batch waits for its retry
    assert await wb.flush_once() is False
    assert wb.status()["pending"] == 6

    heal(db)
    assert await wb.flush_once()
    status = wb.status()
    assert status["ok"] is True and status["error"] is None and status["pending"] == 0
    assert count(db, "pings") == 7 and count(db, "flips") == 2
    assert [p.n for p in await wb.recent_pings(c, 10)] == [7, 6, 5, 4, 3, 2, 1]
    await wb.close()


@async_test
async def test_the_writer_retries_with_backoff_on_a_locked_database(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, flush_interval_ms=20, busy_timeout_ms=20, retry_cap_s=0.2)
    wb.start()
    wb.project_changed(project())
    c = check()
    await wait_for(lambda: wb.status()["flushes"] == 1)

    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    for i in range(50):
        wb.ping_recorded(c, *ping(c, T0 + i))
    await wait_for(lambda: not wb.status()["ok"])
    assert "locked" in wb.status()["error"]
    await asyncio.sleep(0.3)
    errors = wb.status()["flush_errors"]
    assert 1 <= errors <= 12  # backing off, not spinning
    assert wb.status()["pending"] == 50

    locker.execute("ROLLBACK")
    locker.close()
    await wait_for(lambda: wb.status()["ok"] and wb.status()["pending"] == 0)
    assert count(db, "pings") == 50
    await wb.close()


@async_test
async def test_durable_waiters_wait_through_a_fault(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, durable=True, retry_cap_s=0.05)
    wb.start()
    await wb.project_changed(project())
    c = check()
    inject(db)
    waiter = asyncio.ensure_future(wb.ping_recorded(c, *ping(c, T0)))
    await wait_for(lambda: not wb.status()["ok"])
    await asyncio.sleep(0.1)
    assert not waiter.done()  # not committed, so not answered
    heal(db)
    await asyncio.wait_for(waiter, 3)
    assert count(db, "pings") == 1
    await wb.close()


@async_test
async def test_close_gives_up_after_its_drain_timeout_when_the_disk_stays_broken(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, durable=True, drain_timeout_s=0.3, retry_cap_s=0.05)
    wb.project_changed(project())
    await wb.flush_once()
    inject(db)
    c = check()
    waiter = asyncio.ensure_future(wb.ping_recorded(c, *ping(c, T0)))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await wb.close()
    assert loop.time() - started < 2
    with pytest.raises(NotPersisted):
        await waiter


@pytest.mark.parametrize("running", [False, True], ids=["hang in the drain", "hang in a flush of the loop"])
@async_test
async def test_close_gives_up_on_a_writer_that_stops_answering_and_leaves_no_process(tmp_path, caplog, running):
    db = tmp_path / "data.db"
    wb = await open_writer(db, durable=True, drain_timeout_s=0.5, flush_interval_ms=20)
    wb.project_changed(project())
    assert await wb.flush_once()
    pid = wb._store.writer_pid
    os.kill(pid, signal.SIGSTOP)  # a disk that hangs: the writer takes the flush and never answers
    try:
        c = check()
        waiter = asyncio.ensure_future(wb.ping_recorded(c, *ping(c, T0)))
        if running:
            wb.start()
            await wait_for(lambda: wb._writing is not None)  # the loop's flush waits for the answer
        loop = asyncio.get_running_loop()
        started = loop.time()
        await wb.close()
        took = loop.time() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert took < 0.5 + 1.0
    assert not os.path.exists(f"/proc/{pid}")  # ended and reaped, not left stopped
    with pytest.raises(NotPersisted):
        await waiter
    [given_up] = [r.getMessage() for r in caplog.records if "not written" in r.getMessage()]
    assert "1 changes not written" in given_up and "did not answer within the drain timeout" in given_up
    assert count(db, "pings") == 0
