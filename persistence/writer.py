"""The SQLite writer process: the one connection that writes, in a process of its own.

`persistence.store.Store` starts it as `python -m persistence.writer` and talks to it over its
stdin and stdout, in the frames and requests `persistence.protocol` describes. A flush is one
request and one reply; when its stdin ends (the server closed it, or died), the process closes the
file and exits. The reason for a separate process is the GIL. A writer thread in the server process
competes with the event loop for it: every time the loop gave it up for a socket call, the writer
could keep it for up to the 5 ms switch interval, and that wait showed up in the ping latency while
a big flush ran.

`open` takes the file's locks (`persistence.lock`: one writer per file, whatever its name), then
connects and brings the schema up to date (`persistence.schema`). `write` runs a flush's sections in
one transaction, deletes first.

With `idle_for_s` > 0 a flush's statements run on a thread of Linux's SCHED_IDLE policy: it gets
only CPU time that nothing else wants, so a flush does not take a core from the server's event loop
(or from anything else). Statements still to run `idle_for_s` after the flush started run on the
main thread instead, at normal priority, so a machine kept busy by other work delays a flush by
about that long (plus one statement), not for ever. A write may ask for less (its `idle_s`, down to
0: all at normal priority), never for more. Reading, decoding and
answering requests stay on the main thread: an unprivileged thread cannot leave SCHED_IDLE again.
`idle` in the answer to `open` says whether the system granted the policy.

Only the standard library and msgpack are imported here, so the process starts in about 40 ms.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgpack  # type: ignore[import-untyped]  # no stubs or py.typed upstream

from persistence.lock import lock
from persistence.protocol import (
    FRAME_HEADER,
    PING_COLUMNS,
    ROWS_PER_STATEMENT,
    ProtocolError,
    check_version,
    read_frame,
)
from persistence.schema import PING_SLOTS, execute, execute_many, fetch_all, one, prepare, rollback, unusable


@dataclass(frozen=True, slots=True)
class _Rows:
    """A statement taking many rows at once: `head` + "(?, ?), (?, ?), ..." + `tail`."""

    head: str
    width: int
    tail: str = ""

    def sql(self, count: int) -> str:
        group = "(" + ", ".join("?" * self.width) + ")"
        return f"{self.head} {', '.join([group] * count)} {self.tail}"


def _upsert_rows(table: str, key: tuple[str, ...], values: tuple[str, ...]) -> _Rows:
    # An upsert updates the row in place; INSERT OR REPLACE deletes and re-inserts it, which made
    # flushes of many check snapshots about half as fast.
    updates = ", ".join(f"{name} = excluded.{name}" for name in values)
    return _Rows(
        f"INSERT INTO {table} ({', '.join(key + values)}) VALUES",
        len(key + values),
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
    )


_CHECK_DELETES = (
    "DELETE FROM checks WHERE id = ?",
    "DELETE FROM pings WHERE check_id = ?",
    "DELETE FROM flips WHERE check_id = ?",
    "DELETE FROM notifications WHERE check_id = ?",
)
_FLIP_PRUNES = (
    """DELETE FROM flips WHERE check_id = ?1 AND seq <= (
        SELECT seq FROM flips WHERE check_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2
    )""",
    # Notifications of flips no longer kept. (?2 is unused: executemany gives both statements one row.)
    """DELETE FROM notifications WHERE check_id = ?1 AND ?2 IS NOT NULL AND flip_created < (
        SELECT created FROM flips WHERE check_id = ?1 ORDER BY seq LIMIT 1
    )""",
)

# What to do with each section of a write (a field of WriteSet, by name), in the order they run:
# statements run one row at a time (rare changes), or one multi-row statement per chunk (the bulk
# of a flush). Deletes come first.
_SECTIONS: dict[str, tuple[str, ...] | _Rows] = {
    "project_deletes": ("DELETE FROM projects WHERE id = ?",),
    "check_deletes": _CHECK_DELETES,
    "channel_deletes": ("DELETE FROM channels WHERE id = ?",),
    "projects": _upsert_rows("projects", ("id",), ("data",)),
    "checks": _upsert_rows("checks", ("id",), ("project_id", "data")),
    "channels": _upsert_rows("channels", ("id",), ("project_id", "data")),
    "notifications": _upsert_rows("notifications", ("check_id", "flip_created", "channel_id"), ("status", "data")),
    # (check id, n, data): each into its check's ring, slot n % the ring's size (see `with_slots`).
    "ping_logs": _Rows(
        "INSERT INTO pings (check_id, slot, n, data) SELECT column1, column2 % {slots}, column2, column3 FROM (VALUES",
        len(PING_COLUMNS),
        ") WHERE true ON CONFLICT (check_id, slot) DO UPDATE SET n = excluded.n, data = excluded.data",
    ),
    "flips": _Rows("INSERT OR REPLACE INTO flips (seq, check_id, created, data) VALUES", 4),
    "flip_prunes": _FLIP_PRUNES,  # (check id, flips to keep)
}


def with_slots(ping_slots: int) -> dict[str, tuple[str, ...] | _Rows]:
    """The sections, with the pings upsert made for a ring of `ping_slots` per check."""
    pings = _SECTIONS["ping_logs"]
    assert isinstance(pings, _Rows)
    ring = _Rows(pings.head.format(slots=int(ping_slots)), pings.width, pings.tail)
    return {**_SECTIONS, "ping_logs": ring}


# Runs one statement: `run(fn, *args)` calls `fn(*args)`, on whichever thread it chooses.
Run = Callable[..., Any]


def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def write(
    conn: sqlite3.Connection,
    request: Any,
    run: Run = _inline,
    statements: dict[str, tuple[str, ...] | _Rows] | None = None,
) -> None:
    """One flush (a `write` request's map, see persistence.protocol), in one transaction; on any
    error roll back and raise. A request of another version, or with a section this writer does
    not know, is refused before anything runs. `statements`: `with_slots` for the file's ring."""
    how_to = statements if statements is not None else with_slots(PING_SLOTS)
    check_version(request)
    sections = request.get("sections")
    if not isinstance(sections, dict):
        raise ProtocolError("a write needs a map of sections")
    unknown = sorted(map(str, set(sections) - set(how_to)))
    if unknown:
        raise ProtocolError(f"unknown write sections: {', '.join(unknown)}")
    run(execute, conn, "BEGIN IMMEDIATE")
    try:
        for name, how in how_to.items():
            chunks = sections.get(name)
            if not chunks:
                continue
            rows = chunks[0] if len(chunks) == 1 else [row for chunk in chunks for row in chunk]
            if isinstance(how, _Rows):
                for start in range(0, len(rows), ROWS_PER_STATEMENT):
                    group = rows[start : start + ROWS_PER_STATEMENT]
                    run(execute, conn, how.sql(len(group)), [value for row in group for value in row])
            elif rows:
                for sql in how:
                    run(execute_many, conn, sql, rows)
        run(execute, conn, "COMMIT")
    except BaseException:
        rollback(conn)
        raise


class _IdleThread:
    """A thread of SCHED_IDLE policy that runs one call at a time for the main thread."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        self._done = threading.Event()
        self._outcome: tuple[bool, Any] = (True, None)
        self.idle = False
        threading.Thread(target=self._work, name="idle-writer", daemon=True).start()
        self._done.wait()

    def _work(self) -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread
            self.idle = True
        except (AttributeError, OSError):
            pass  # not Linux, or refused: the main thread runs everything
        self._done.set()
        while True:
            fn, args = self._calls.get()
            try:
                self._outcome = (True, fn(*args))
            except BaseException as exc:
                self._outcome = (False, exc)
            self._done.set()

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._done.clear()
        self._calls.put((fn, args))
        self._done.wait()
        ok, value = self._outcome
        if not ok:
            raise value
        return value


class _Session:
    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.idle_for_s = 0.0
        self.idle: _IdleThread | None = None
        self.sections = with_slots(PING_SLOTS)
        # The lock descriptors (see `lock`): never closed before the process ends.
        self.locks: list[int] = []

    def handle(self, request: list[Any]) -> Any:
        op, args = request[0], request[1:]
        if op == "open":
            if self.conn is not None:
                raise RuntimeError("the writer is already open")
            (options,) = args
            check_version(options)
            path, durable = options["path"], options["durable"]
            busy_timeout_ms, idle_for_s = options["busy_timeout_ms"], options["idle_for_s"]
            if path != ":memory:" and not self.locks:
                self.locks = lock(path)
            try:
                # isolation_level=None: no implicit transactions; every flush says BEGIN and COMMIT itself.
                # check_same_thread=False: the idle thread runs statements too, never at the same time.
                self.conn = sqlite3.connect(
                    path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False
                )
                ping_slots = int(options.get("ping_slots", PING_SLOTS))
                opened = prepare(self.conn, path, durable, busy_timeout_ms, ping_slots)
                self.sections = with_slots(ping_slots)
            except sqlite3.Error as exc:
                self.close()
                raise unusable(path, exc) from exc
            if idle_for_s > 0:
                thread = _IdleThread()
                if thread.idle:
                    self.idle, self.idle_for_s = thread, float(idle_for_s)
            return {**opened, "idle": self.idle is not None}
        if self.conn is None:
            raise RuntimeError(f"{op!r} before 'open'")
        if op == "write":
            (message,) = args
            idle_s = message.get("idle_s") if isinstance(message, dict) else None
            return write(self.conn, message, self._runner(idle_s), self.sections)
        ops: dict[str, Callable[..., Any]] = {"one": one, "all": fetch_all}
        if op not in ops:
            raise ValueError(f"unknown writer op {op!r}")
        return ops[op](self.conn, *args)

    def _runner(self, idle_s: Any = None) -> Run:
        """How one flush runs its statements: on the idle thread until `idle_s` (at most idle_for_s,
        which is also the default) has passed, then here."""
        idle = self.idle
        budget = self.idle_for_s if not isinstance(idle_s, int | float) else min(float(idle_s), self.idle_for_s)
        if idle is None or budget <= 0:
            return _inline
        until = time.monotonic() + budget

        def run(fn: Callable[..., Any], *args: Any) -> Any:
            return idle.run(fn, *args) if time.monotonic() < until else fn(*args)

        return run

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests one at a time until `requests` ends."""
    session = _Session()
    try:
        while (body := read_frame(requests)) is not None:
            try:
                reply = [True, session.handle(msgpack.unpackb(body))]
            except Exception as exc:
                reply = [False, type(exc).__name__, str(exc)]
            payload = msgpack.packb(reply)
            replies.write(FRAME_HEADER.pack(len(payload)) + payload)
            replies.flush()
    except BrokenPipeError:
        pass  # the server is gone; nobody is left to answer
    finally:
        session.close()


def main() -> None:
    # The server decides when this process ends (by closing its stdin, after its last flush), so
    # Ctrl-C or a SIGTERM sent to the whole process group must not cut a flush short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Replies get stdout to themselves; anything printed by accident goes to stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
