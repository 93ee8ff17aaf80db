"""The writer process: its wire protocol, and what happens when it dies under the server."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from persistence.protocol import FRAME_HEADER, PROTOCOL_VERSION, SECTIONS
from persistence.writer import serve
from tests.persistence.helpers import (
    ROOT,
    T0,
    async_test,
    check,
    count,
    needs_sched_idle,
    open_writer,
    ping,
    project,
    thread_policies,
    writer_with_one_ping,
)


def frame(value: object) -> bytes:
    body = msgpack.packb(value)
    return FRAME_HEADER.pack(len(body)) + body


def replies(data: bytes) -> list[object]:
    out, stream = [], io.BytesIO(data)
    while head := stream.read(FRAME_HEADER.size):
        out.append(msgpack.unpackb(stream.read(FRAME_HEADER.unpack(head)[0])))
    return out


def open_request(path: str, durable: bool = False, idle_for_s: float = 0, version: int = PROTOCOL_VERSION) -> list:
    options = {"path": path, "durable": durable, "busy_timeout_ms": 2000, "idle_for_s": idle_for_s}
    return ["open", {"version": version, **options}]


def write_request(sections: dict, version: int = PROTOCOL_VERSION) -> list:
    return ["write", {"version": version, "sections": sections}]


def test_the_protocol_answers_every_request_and_reports_errors_without_dying(tmp_path):
    db = str(tmp_path / "data.db")
    project_rows = [[["p1", b"x"]]]
    requests = b"".join(
        [
            frame(["one", "SELECT 1"]),  # before open
            frame(open_request(db, version=PROTOCOL_VERSION + 1)),
            frame(open_request(db)),
            frame(["one", "PRAGMA journal_mode"]),
            frame(["all", "SELECT key FROM meta ORDER BY key", []]),
            frame(["explode"]),
            frame(["one", "SELECT * FROM no_such_table"]),
            FRAME_HEADER.pack(3) + b"\xc1\xc1\xc1",  # not msgpack
            frame(write_request({"projects": project_rows, "no_such_section": [[["x"]]]})),
            frame(write_request({"projects": project_rows}, version=PROTOCOL_VERSION + 1)),
            frame(["write", [[]] * 11]),  # the positional form: refused, not guessed at
            frame(["one", "SELECT COUNT(*) FROM projects"]),
            frame(write_request({"projects": project_rows})),
            frame(["one", "SELECT 2"]),
            FRAME_HEADER.pack(100) + b"cut short",  # the stream ends inside a frame
        ]
    )
    out = io.BytesIO()
    serve(io.BytesIO(requests), out)
    answers = replies(out.getvalue())
    assert answers[0][:2] == [False, "RuntimeError"]
    assert answers[1][:2] == [False, "ProtocolError"] and "version" in answers[1][2]
    opened = answers[2][1]
    assert answers[2][0] is True and len(opened["secret"]) == 32 and opened["migrated"] == [1, 2]
    assert (opened["flip_seq"], opened["idle"]) == (0, False)
    assert answers[3] == [True, "wal"]
    assert answers[4] == [True, [["ping_slots"], ["schema_version"], ["secret"]]]
    assert answers[5] == [False, "ValueError", "unknown writer op 'explode'"]
    assert answers[6][:2] == [False, "OperationalError"] and "no_such_table" in answers[6][2]
    assert answers[7][0] is False
    assert answers[8][:2] == [False, "ProtocolError"] and "no_such_section" in answers[8][2]
    assert answers[9][:2] == [False, "ProtocolError"] and "version" in answers[9][2]
    assert answers[10][:2] == [False, "ProtocolError"]
    assert answers[11] == [True, 0]  # nothing of the refused writes was written
    assert answers[12] == [True, None]
    assert answers[13] == [True, 2]
    assert len(answers) == 14


def test_every_section_of_a_write_set_is_one_the_writer_runs():
    from persistence.writer import _SECTIONS

    assert set(SECTIONS) == set(_SECTIONS)


@async_test
async def test_a_killed_writer_process_is_replaced_and_nothing_is_lost(tmp_path):
    db = tmp_path / "data.db"
    wb, c = await writer_with_one_ping(db)

    first = wb._store.writer_pid
    os.kill(first, signal.SIGKILL)
    for i in range(1, 4):
        wb.ping_recorded(c, *ping(c, T0 + i))
    assert await wb.flush_once() is False
    status = wb.status()
    assert status["ok"] is False and "WriterLost" in status["error"] and status["pending"] == 3
    assert [p.n for p in await wb.recent_pings(c, 10)] == [4, 3, 2, 1]

    assert wb._store.writer_restarts == 0
    assert await wb.flush_once()  # a new process, the same file
    assert wb._store.writer_pid not in (None, first) and wb._store.writer_restarts == 1
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
    while not wb._inflight:
        await asyncio.sleep(0)
    await asyncio.sleep(0.005)  # encoding or sending: either way before the commit
    os.kill(wb._store.writer_pid, signal.SIGKILL)
    assert await flush is False
    assert await wb.flush_once()
    assert count(db, "pings") == 20_000 and wb.status()["pending"] == 0
    await wb.close()


class WriterChild:
    """`python -m persistence.writer` as the server runs it, spoken to frame by frame."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "persistence.writer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )

    def call(self, *request: object) -> object:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(frame(list(request)))
        self.proc.stdin.flush()
        (size,) = FRAME_HEADER.unpack(self.proc.stdout.read(FRAME_HEADER.size))
        ok, *result = msgpack.unpackb(self.proc.stdout.read(size))
        assert ok is True, result
        return result[0]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0


def cpu_ns(pid: int, tid: int) -> int:
    """Time the thread has spent on a CPU, from the scheduler's own accounting."""
    return int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])


def projects_write(count: int, **extra: object) -> dict:
    return write_request({"projects": [[[f"project-{i}", b"x" * 100] for i in range(count)]]})[1] | extra


def idle_thread(pid: int) -> int:
    threads = thread_policies(pid)
    assert threads.pop(pid) == os.SCHED_OTHER  # the main thread reads and answers
    [(idle, policy)] = threads.items()
    assert policy == os.SCHED_IDLE
    return idle


@needs_sched_idle
@pytest.mark.parametrize("idle_for_s", [60.0, 1e-9])
def test_an_idle_writer_flushes_at_idle_priority_and_finishes_a_long_flush_at_normal_priority(tmp_path, idle_for_s):
    writer = WriterChild()
    try:
        opened = writer.call(*open_request(str(tmp_path / "data.db"), idle_for_s=idle_for_s))
        assert opened["idle"] is True  # granted
        idle = idle_thread(writer.proc.pid)
        before = cpu_ns(writer.proc.pid, idle)
        writer.call("write", projects_write(20_000))
        idle_ms = (cpu_ns(writer.proc.pid, idle) - before) / 1e6
        assert writer.call("one", "SELECT COUNT(*) FROM projects") == 20_000
    finally:
        writer.close()
    if idle_for_s > 1:
        assert idle_ms > 5, "a flush well within idle_for_s did not run on the idle thread"
    else:
        assert idle_ms < 1, "statements after idle_for_s still ran on the idle thread"


@needs_sched_idle
def test_a_write_may_ask_for_less_idle_time_than_the_writer_was_opened_with_but_not_more(tmp_path):
    writer = WriterChild()
    try:
        writer.call(*open_request(str(tmp_path / "data.db"), idle_for_s=60.0))
        idle = idle_thread(writer.proc.pid)
        used = []
        for idle_s in (0, 60.0, 1e9):
            before = cpu_ns(writer.proc.pid, idle)
            writer.call("write", projects_write(20_000, idle_s=idle_s))
            used.append((cpu_ns(writer.proc.pid, idle) - before) / 1e6)
        assert writer.call("one", "SELECT COUNT(*) FROM projects") == 20_000
    finally:
        writer.close()
    assert used[0] < 1, "a write that asked for no idle time ran on the idle thread"
    assert used[1] > 5 and used[2] > 5, "a write within the writer's idle time did not run on the idle thread"


@needs_sched_idle
@pytest.mark.parametrize(
    ("flush_batch", "max_pending"),
    [(100_000, 200_000), (1000, 200_000), (100_000, 1000)],
    ids=["regular", "full-batch", "answers-waiting"],
)
@async_test
async def test_a_regular_flush_runs_at_idle_priority_and_a_full_batch_at_normal_priority(
    tmp_path, flush_batch, max_pending
):
    wb = await open_writer(
        tmp_path / "data.db", flush_interval_ms=5000, flush_batch=flush_batch, max_pending=max_pending
    )
    pid = wb._store.writer_pid
    assert pid is not None and wb._store.light_idle_s > 0
    idle = idle_thread(pid)
    wb.project_changed(project())
    checks = [check() for _ in range(100)]
    for i in range(5000):
        c = checks[i % len(checks)]
        wb.ping_recorded(c, *ping(c, T0 + i))
    before = cpu_ns(pid, idle)
    wb.start()  # flushes what is pending at once; the next flush is due 5 s later
    for _ in range(500):
        if wb.stats.flushes:
            break
        await asyncio.sleep(0.01)
    idle_ms = (cpu_ns(pid, idle) - before) / 1e6
    await wb.close()
    assert count(tmp_path / "data.db", "pings") == 5000
    if flush_batch > 5000 and max_pending > 5000:
        assert idle_ms > 5, "a regular flush did not run at idle priority"
    else:
        assert idle_ms < 1, "a flush of a full batch, or one that answers wait for, ran at idle priority"


@needs_sched_idle
@async_test
async def test_a_durable_store_never_flushes_at_idle_priority(tmp_path):
    wb = await open_writer(tmp_path / "data.db", durable=True)
    pid = wb._store.writer_pid
    assert pid is not None and wb._store.light_idle_s == 0
    assert list(thread_policies(pid).values()) == [os.SCHED_OTHER]
    await wb.close()


def test_a_writer_opened_without_idle_time_keeps_normal_priority_in_one_thread(tmp_path):
    writer = WriterChild()
    try:
        assert writer.call(*open_request(str(tmp_path / "data.db"), durable=True))["idle"] is False
        assert list(thread_policies(writer.proc.pid).values()) == [os.SCHED_OTHER]
    finally:
        writer.close()
