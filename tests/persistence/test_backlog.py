"""A backlog of pending changes: trimmed to the ping log limit before it is written, bounded in bytes
and in age as well as in count, and written in pieces after a failure, so what fits on a full disk
lands."""

from __future__ import annotations

import logging
from pathlib import Path

from tests.fakes import FakeClock
from tests.persistence.helpers import T0, async_test, check, count, fill, open_writer, ping, project, rows


@async_test
async def test_pings_beyond_the_log_limit_are_dropped_before_they_are_written(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db, ping_log_limit=10, flush_interval_ms=60_000)
    wb.project_changed(project())
    c = check()
    for i in range(19):
        wb.ping_recorded(c, *ping(c, T0 + i, body=b"%d" % i))
    nineteen = wb.status()["pending_bytes"]
    for i in range(19, 25):
        wb.ping_recorded(c, *ping(c, T0 + i, body=b"%d" % i))
    # Trimmed to the limit once twice the limit wait: 15 pings held now, fewer bytes than 19 took.
    assert wb.status()["pending_bytes"] < nineteen
    assert await wb.flush_once()
    # The project, the check's snapshot, its flip to up and its newest 10 pings: nothing written
    # only to be pruned.
    assert wb.status()["last_flush_size"] == 13
    assert c.n_pings == 25
    assert [n for (n,) in rows(db, "SELECT n FROM pings ORDER BY n")] == list(range(16, 26))
    assert [p.n for p in await wb.recent_pings(c, 100)] == list(range(25, 15, -1))
    assert (await wb.get_ping(c, 16)).body == b"15"
    await wb.close()


@async_test
async def test_pending_bytes_bound_the_backlog_as_well_as_its_count(tmp_path, caplog):
    db = tmp_path / "data.db"
    wb = await open_writer(db, max_pending_bytes=20_000, flush_interval_ms=60_000)
    wb.project_changed(project())
    c = check()
    with caplog.at_level(logging.WARNING, logger="persistence.writebehind"):
        answers = [wb.ping_recorded(c, *ping(c, T0 + i, body=b"x" * 1000)) for i in range(30)]
    # Room for about 20 pings of 1 KB: the rest wait, and the log says so once.
    assert answers[:15] == [None] * 15 and all(a is not None for a in answers[25:])
    assert sum("max_pending_bytes" in r.getMessage() for r in caplog.records) == 1
    status = wb.status()
    assert status["pending_bytes"] >= 20_000 and status["max_pending_bytes"] == 20_000
    assert not any(a.done() for a in answers[25:])
    assert await wb.flush_once()
    for a in answers[25:]:
        await a
    assert wb.status()["pending_bytes"] == 0
    await wb.close()


@async_test
async def test_on_a_full_disk_a_piece_that_cannot_fit_does_not_hold_back_the_others(small_fs: Path):
    db = small_fs / "data.db"
    wb = await open_writer(db, ping_log_limit=1000, retry_cap_s=0.05)
    wb.project_changed(project())
    big, *small = [check() for _ in range(6)]
    for c in (big, *small):
        wb.ping_recorded(c, *ping(c, T0))
    assert await wb.flush_once()

    filler = fill(small_fs, leave_bytes=1 << 20)
    for i in range(400):  # 4 MB for one check: more than the disk has room for
        wb.ping_recorded(big, *ping(big, T0 + i, body=b"b" * 10_000))
    for c in small:
        for i in range(5):
            wb.ping_recorded(c, *ping(c, T0 + i, body=b"s" * 1000))
    assert await wb.flush_once() is False  # all of it in one transaction: too big
    assert "full" in wb.status()["error"]

    assert await wb.flush_once() is False  # in pieces: the small checks fit, the big one does not
    assert count(db, "pings", "WHERE check_id = ?", (big.uuid,)) == 1
    for c in small:
        assert count(db, "pings", "WHERE check_id = ?", (c.uuid,)) == 6
    status = wb.status()
    assert status["ok"] is False and status["pending_bytes"] > 4_000_000

    filler.unlink()
    assert await wb.flush_once()
    assert count(db, "pings", "WHERE check_id = ?", (big.uuid,)) == 401
    assert wb.status()["pending"] == 0 and wb.status()["ok"]
    await wb.close()


@async_test
async def test_answers_wait_while_the_oldest_unwritten_change_is_past_its_age_limit(tmp_path):
    clock = FakeClock(T0)
    wb = await open_writer(tmp_path / "data.db", max_pending_age_ms=500, flush_interval_ms=1000, clock=clock)
    wb.project_changed(project())
    c = check()
    assert wb.ping_recorded(c, *ping(c, T0)) is None
    clock.advance(1.4)
    assert wb.ping_recorded(c, *ping(c, T0 + 1.4)) is None
    clock.advance(0.2)  # the project, 1.6 s old and not written: the writer is 0.6 s late
    waiting = wb.ping_recorded(c, *ping(c, T0 + 1.6))
    assert waiting is not None and wb.ping_recorded(c, *ping(c, T0 + 1.6)) is not None
    assert wb.status()["slowed_for_the_writer"] == 1
    assert await wb.flush_once()
    await waiting  # written, so the oldest change left is new: room again
    assert wb.ping_recorded(c, *ping(c, T0 + 1.6)) is None
    await wb.close()


@async_test
async def test_while_flushes_fail_age_holds_no_answer_back(small_fs: Path):
    clock = FakeClock(T0)
    db = small_fs / "data.db"
    wb = await open_writer(db, max_pending_age_ms=500, flush_interval_ms=60_000, retry_cap_s=0.05, clock=clock)
    wb.project_changed(project())
    c = check()
    wb.ping_recorded(c, *ping(c, T0))
    assert await wb.flush_once()
    filler = fill(small_fs, leave_bytes=0)
    wb.ping_recorded(c, *ping(c, T0, body=b"x" * 200_000))
    assert await wb.flush_once() is False
    clock.advance(5)
    # Older than the limit, but the disk is failing: the count and byte bounds decide.
    assert wb.ping_recorded(c, *ping(c, T0 + 5)) is None
    filler.unlink()
    assert await wb.flush_once()
    await wb.close()
