"""The writer process: its wire protocol, and what happens when it dies under the server."""

from __future__ import annotations

import asyncio
import io
import os
import signal

import msgpack

from persistence.writer import FRAME_HEADER, serve
from tests.persistence.helpers import T0, async_test, check, count, open_writer, ping, project


def frame(value: object) -> bytes:
    body = msgpack.packb(value)
    return FRAME_HEADER.pack(len(body)) + body


def replies(data: bytes) -> list[object]:
    out, stream = [], io.BytesIO(data)
    while head := stream.read(FRAME_HEADER.size):
        out.append(msgpack.unpackb(stream.read(FRAME_HEADER.unpack(head)[0])))
    return out


def test_the_protocol_answers_every_request_and_reports_errors_without_dying(tmp_path):
    db = str(tmp_path / "data.db")
    requests = b"".join(
        [
            frame(["one", "SELECT 1"]),  # before open
            frame(["open", db, False, 2000]),
            frame(["one", "PRAGMA journal_mode"]),
            frame(["all", "SELECT key FROM meta ORDER BY key", []]),
            frame(["explode"]),
            frame(["one", "SELECT * FROM no_such_table"]),
            FRAME_HEADER.pack(3) + b"\xc1\xc1\xc1",  # not msgpack
            frame(["write", [[]] * 3]),  # the wrong number of row lists
            frame(["one", "SELECT 2"]),
            FRAME_HEADER.pack(100) + b"cut short",  # the stream ends inside a frame
        ]
    )
    out = io.BytesIO()
    serve(io.BytesIO(requests), out)
    answers = replies(out.getvalue())
    assert answers[0][:2] == [False, "RuntimeError"]
    assert answers[1][0] is True and len(answers[1][1][0]) == 32 and answers[1][1][2] == [1]
    assert answers[2] == [True, "wal"]
    assert answers[3] == [True, [["schema_version"], ["secret"]]]
    assert answers[4] == [False, "ValueError", "unknown writer op 'explode'"]
    assert answers[5][:2] == [False, "OperationalError"] and "no_such_table" in answers[5][2]
    assert answers[6][0] is False
    assert answers[7][0] is False and "row lists" in answers[7][2]
    assert answers[8] == [True, 2]
    assert len(answers) == 9


@async_test
async def test_a_killed_writer_process_is_replaced_and_nothing_is_lost(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db)
    wb.project_changed(project())
    c = check()
    wb.ping_recorded(c, *ping(c, T0))
    assert await wb.flush_once()

    first = wb._store.writer_pid
    os.kill(first, signal.SIGKILL)
    for i in range(1, 4):
        wb.ping_recorded(c, *ping(c, T0 + i))
    assert await wb.flush_once() is False
    status = wb.status()
    assert status["ok"] is False and "WriterLost" in status["error"] and status["pending"] == 3
    assert [p.n for p in await wb.recent_pings(c, 10)] == [4, 3, 2, 1]

    assert await wb.flush_once()  # a new process, the same file
    assert wb._store.writer_pid not in (None, first)
    assert wb.status()["ok"] is True and count(db, "pings") == 4
    await wb.close()


@async_test
async def test_a_writer_killed_in_the_middle_of_a_flush_loses_nothing(tmp_path):
    db = tmp_path / "data.db"
    wb = await open_writer(db)
    wb.project_changed(project())
    checks = [check() for _ in range(200)]
    for k in range(100):
        for c in checks:
            wb.ping_recorded(c, *ping(c, T0 + k, body=b"x" * 200))
    flush = asyncio.ensure_future(wb.flush_once())
    while wb._inflight is None:
        await asyncio.sleep(0)
    await asyncio.sleep(0.005)  # encoding or sending: either way before the commit
    os.kill(wb._store.writer_pid, signal.SIGKILL)
    assert await flush is False
    assert await wb.flush_once()
    assert count(db, "pings") == 20_000 and wb.status()["pending"] == 0
    await wb.close()
