"""The SQLite file: schema, pragmas, and batch writes in one transaction.

The store deals in encoded rows only (ids, numbers and msgpack bytes); `writebehind` and `recovery`
turn domain objects into rows and back through `codec`. One connection writes, on a thread of its
own (a flush is one call into it); a second, read-only connection serves history reads, so a read
never waits for a flush (WAL lets readers see the last commit while a writer works).

    >>> store = await Store.open("data.db")
    >>> secret = await store.secret()
    >>> await store.write(WriteSet(pings=[(uuid, 1, data)]))
    >>> await store.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 1
SECRET_BYTES = 32

# Each step takes the file from version (key - 1) to version key; applied in order, in one transaction.
_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE projects (id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE checks (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE channels (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE pings (id INTEGER PRIMARY KEY, check_id TEXT NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);
    CREATE UNIQUE INDEX pings_by_check ON pings (check_id, n);
    CREATE TABLE flips (
        seq INTEGER PRIMARY KEY, check_id TEXT NOT NULL, created REAL NOT NULL, data BLOB NOT NULL
    );
    CREATE INDEX flips_by_check ON flips (check_id, seq);
    CREATE TABLE notifications (
        check_id TEXT NOT NULL, flip_created REAL NOT NULL, channel_id TEXT NOT NULL,
        status TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (check_id, flip_created, channel_id)
    ) WITHOUT ROWID;
    """,
}

# Key of a notification: (check uuid, the flip's created time, channel id).
NotificationKey = tuple[str, float, str]


class SchemaTooNew(RuntimeError):
    """The file was written by a newer hcserver; refusing to touch it protects that data."""


@dataclass(slots=True)
class WriteSet:
    """Everything one flush writes, as SQL parameter rows. Deletes run before upserts."""

    project_deletes: list[tuple[str]] = field(default_factory=list)
    check_deletes: list[tuple[str]] = field(default_factory=list)
    channel_deletes: list[tuple[str]] = field(default_factory=list)
    projects: list[tuple[str, bytes]] = field(default_factory=list)
    # (id, project id, data)
    checks: list[tuple[str, str, bytes]] = field(default_factory=list)
    channels: list[tuple[str, str, bytes]] = field(default_factory=list)
    # (check id, flip created, channel id, status, data)
    notifications: list[tuple[str, float, str, str, bytes]] = field(default_factory=list)
    # (check id, n, data)
    pings: list[tuple[str, int, bytes]] = field(default_factory=list)
    # (check id, highest n to delete): one range delete per check touched
    ping_prunes: list[tuple[str, int]] = field(default_factory=list)
    # (seq, check id, created, data)
    flips: list[tuple[int, str, float, bytes]] = field(default_factory=list)
    # (check id, flips to keep): also forgets notifications of the flips pruned
    flip_prunes: list[tuple[str, int]] = field(default_factory=list)

    def rows(self) -> int:
        return (
            len(self.project_deletes) + len(self.check_deletes) + len(self.channel_deletes)
            + len(self.projects) + len(self.checks) + len(self.channels)
            + len(self.notifications) + len(self.pings) + len(self.flips)
        )  # fmt: skip


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


_PROJECT_ROWS = _upsert_rows("projects", ("id",), ("data",))
_CHECK_ROWS = _upsert_rows("checks", ("id",), ("project_id", "data"))
_CHANNEL_ROWS = _upsert_rows("channels", ("id",), ("project_id", "data"))
_NOTIFICATION_ROWS = _upsert_rows("notifications", ("check_id", "flip_created", "channel_id"), ("status", "data"))
_PING_ROWS = _upsert_rows("pings", ("check_id", "n"), ("data",))
_FLIP_ROWS = _Rows("INSERT OR REPLACE INTO flips (seq, check_id, created, data) VALUES", 4)
# (check id, highest n to delete) rows: one range delete per check, through the (check_id, n) index.
_PRUNE_ROWS = _Rows(
    "DELETE FROM pings WHERE id IN (SELECT p.id FROM (VALUES",
    2,
    ") AS v JOIN pings AS p ON p.check_id = v.column1 AND p.n <= v.column2)",
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


class _WriterThread:
    """The writing connection, on one thread of its own.

    A flush is a single call into this thread (BEGIN ... COMMIT inside it), not one round trip per
    statement: each round trip has to win the GIL back from the event loop, and while pings keep
    the loop busy that wait made a flush of a few hundred rows take hundreds of milliseconds.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hcserver-sqlite-writer")
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "the writer is not connected"
        return self._conn

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def connect(self, path: str, timeout: float) -> None:
        # isolation_level=None: no implicit transactions; every flush says BEGIN and COMMIT itself.
        # check_same_thread=False only lets the connection be made here: it is used on one thread.
        self._conn = await self.call(
            partial(sqlite3.connect, path, isolation_level=None, timeout=timeout, check_same_thread=False)
        )

    def dispose(self, garbage: list[Any]) -> None:
        """Let this thread drop the last references to `garbage` (see Store.dispose)."""
        self._pool.submit(_free_in_pieces, garbage)

    async def close(self) -> None:
        if self._conn is not None:
            await self.call(self._conn.close)
            self._conn = None
        self._pool.shutdown(wait=False)


class Store:
    """One SQLite file in WAL mode. Open with `await Store.open(path)`; close with `await close()`."""

    def __init__(
        self,
        path: str,
        writer: _WriterThread,
        reader: aiosqlite.Connection | None,
        secret: bytes,
        flip_seq: int,
        durable: bool = False,
    ) -> None:
        self.path = path
        self.durable = durable
        self._writer = writer
        # None for ":memory:", where a second connection would see another, empty database:
        # reads then go through the writer's thread.
        self._reader = reader
        self._secret = secret
        # Highest flip sequence number stored: the writer numbers new flips after it.
        self.flip_seq = flip_seq

    @classmethod
    async def open(cls, path: str | Path, *, durable: bool = False, busy_timeout_ms: int = 2000) -> Store:
        """Open (creating or migrating) the file. `durable` makes every commit reach the disk
        (synchronous=FULL); otherwise a commit survives a crash of the process but may be lost with
        the machine's power (synchronous=NORMAL, the usual WAL choice)."""
        path = str(path)
        writer = _WriterThread()
        reader: aiosqlite.Connection | None = None
        try:
            await writer.connect(path, busy_timeout_ms / 1000)
            secret, flip_seq = await writer.call(_prepare, writer.conn, path, durable, busy_timeout_ms)
            if path != ":memory:":
                reader = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
                async with reader.execute("PRAGMA query_only = 1"):
                    pass
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, reader, secret, flip_seq, durable)

    async def secret(self) -> bytes:
        """The server's 32 random bytes, made when the file was created (API keys are hashed with it)."""
        return self._secret

    async def pragma(self, name: str) -> Any:
        """The writer connection's value of a PRAGMA (journal_mode, synchronous, ...), for diagnostics."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        return await self._writer.call(_one, self._writer.conn, f"PRAGMA {name}")

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await self._writer.close()

    # -- writing (the writer task only) -----------------------------------------------------------

    async def write(self, ws: WriteSet) -> None:
        """Apply one flush in one transaction; on any error roll back and raise (the caller retries)."""
        await self._writer.call(_write, self._writer.conn, ws)
        if ws.flips:
            self.flip_seq = max(self.flip_seq, max(row[0] for row in ws.flips))

    def dispose(self, garbage: list[Any]) -> None:
        """Free what a flush leaves behind on the writer's thread, not on the event loop.

        Freeing a flush of 50,000 pings (their objects, rows and bytes) takes ~15 ms: on the event
        loop that is one stall every ping waits behind, on the writer's thread the loop runs in
        between. The caller must keep no other reference to what it passes.
        """
        self._writer.dispose(garbage)

    # -- reading ----------------------------------------------------------------------------------

    async def recent_pings(self, check_id: str, above: int, below: int | None, limit: int) -> list[bytes]:
        """Ping rows of a check with above < n < below, newest first."""
        if below is None:
            sql = "SELECT data FROM pings WHERE check_id = ? AND n > ? ORDER BY n DESC LIMIT ?"
            params: tuple[Any, ...] = (check_id, above, limit)
        else:
            sql = "SELECT data FROM pings WHERE check_id = ? AND n > ? AND n < ? ORDER BY n DESC LIMIT ?"
            params = (check_id, above, below, limit)
        return [row[0] for row in await self._fetch(sql, params)]

    async def get_ping(self, check_id: str, n: int) -> bytes | None:
        rows = await self._fetch("SELECT data FROM pings WHERE check_id = ? AND n = ?", (check_id, n))
        return rows[0][0] if rows else None

    async def flips(self, check_id: str, up_to_seq: int, limit: int) -> list[bytes]:
        """The newest `limit` flip rows with seq <= up_to_seq, oldest first."""
        rows = await self._fetch(
            "SELECT data FROM flips WHERE check_id = ? AND seq <= ? ORDER BY seq DESC LIMIT ?",
            (check_id, up_to_seq, limit),
        )
        return [row[0] for row in reversed(rows)]

    async def load_projects(self) -> list[bytes]:
        return await self._column("SELECT data FROM projects")

    async def load_checks(self) -> list[bytes]:
        return await self._column("SELECT data FROM checks")

    async def load_channels(self) -> list[bytes]:
        return await self._column("SELECT data FROM channels")

    async def load_notifications(self, status: str | None = None) -> list[tuple[str, float, str, bytes]]:
        """(check id, flip created, channel id, data) of every notification, or of one status."""
        sql = "SELECT check_id, flip_created, channel_id, data FROM notifications"
        params: tuple[str, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        rows = await self._fetch(sql, params)
        return [(str(r[0]), float(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    async def count_pings(self) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM pings")
        return int(rows[0][0])

    async def _column(self, sql: str, params: Sequence[Any] = ()) -> list[bytes]:
        return [row[0] for row in await self._fetch(sql, params)]

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._reader is None:
            return await self._writer.call(_all, self._writer.conn, sql, params)
        return list(await self._reader.execute_fetchall(sql, params))


def _free_in_pieces(garbage: list[Any]) -> None:
    # One list.clear() frees everything inside a single C call, holding the GIL throughout; the
    # interpreter hands the GIL over only between bytecodes, so free a little at a time.
    while garbage:
        item = garbage.pop()
        if isinstance(item, dict):
            while item:
                item.popitem()
        elif isinstance(item, list):
            while item:
                del item[-256:]


def _exec(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> None:
    # Closing the cursor at once finalizes its statement: one left open could pin a read snapshot.
    conn.execute(sql, params).close()


def _one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _all(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return conn.execute(sql, params).fetchall()


# Rows per multi-row statement: one sqlite3_step each, where executemany makes one per row (and
# Python's sqlite3 releases and retakes the GIL around every step). 500 x 5 columns is far below
# SQLite's variable limit.
ROWS_PER_STATEMENT = 500


def _rows(conn: sqlite3.Connection, shape: _Rows, rows: Sequence[Sequence[Any]]) -> None:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        _exec(conn, shape.sql(len(chunk)), [value for row in chunk for value in row])


def _write(conn: sqlite3.Connection, ws: WriteSet) -> None:
    """One flush, in one transaction, on the writer's thread."""
    # Rare changes, one statement per row.
    singles: list[tuple[str, Sequence[Any]]] = [
        ("DELETE FROM projects WHERE id = ?", ws.project_deletes),
        *((sql, ws.check_deletes) for sql in _CHECK_DELETES),
        ("DELETE FROM channels WHERE id = ?", ws.channel_deletes),
    ]
    # The bulk of a flush, many rows per statement.
    bulk: list[tuple[_Rows, Sequence[Sequence[Any]]]] = [
        (_PROJECT_ROWS, ws.projects),
        (_CHECK_ROWS, ws.checks),
        (_CHANNEL_ROWS, ws.channels),
        (_NOTIFICATION_ROWS, ws.notifications),
        (_PING_ROWS, ws.pings),
        (_PRUNE_ROWS, ws.ping_prunes),
        (_FLIP_ROWS, ws.flips),
    ]
    _exec(conn, "BEGIN IMMEDIATE")
    try:
        for sql, params in singles:
            if params:
                conn.executemany(sql, params).close()
        for shape, rows in bulk:
            if rows:
                _rows(conn, shape, rows)
        if ws.flip_prunes:
            for sql in _FLIP_PRUNES:
                conn.executemany(sql, ws.flip_prunes).close()
        _exec(conn, "COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back on its own (it does after some I/O errors).
    with contextlib.suppress(sqlite3.Error):
        _exec(conn, "ROLLBACK")


def _prepare(conn: sqlite3.Connection, path: str, durable: bool, busy_timeout_ms: int) -> tuple[bytes, int]:
    """Pragmas, schema, secret: everything `open` does on the writer's thread. Returns (secret, flip seq)."""
    _exec(conn, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if path != ":memory:":
        _exec(conn, "PRAGMA journal_mode = WAL")
    _exec(conn, f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    # Flushes touch pages all over the checks table and the pings index: a page cache keeps them
    # hot (pages beyond it come from the OS cache), and rarer checkpoints write a page rewritten by
    # several flushes once. 8 MB: at 32 MB the cache alone was ~0.3 KiB of RSS per check at 100k.
    _exec(conn, "PRAGMA cache_size = -8000")
    _exec(conn, "PRAGMA wal_autocheckpoint = 10000")
    _exec(conn, "PRAGMA journal_size_limit = 67108864")
    secret = _migrate(conn, path)
    return secret, int(_one(conn, "SELECT COALESCE(MAX(seq), 0) FROM flips"))


def _migrate(conn: sqlite3.Connection, path: str) -> bytes:
    """Bring the file to SCHEMA_VERSION and return the server secret, made here on first open."""
    _exec(conn, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
    _exec(conn, "BEGIN IMMEDIATE")
    try:
        version = int(_one(conn, "SELECT value FROM meta WHERE key = 'schema_version'") or 0)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{path} has schema version {version}, but this hcserver only knows versions up to "
                f"{SCHEMA_VERSION}: it was written by a newer hcserver. Upgrade hcserver, or point --db "
                "at another file; the file was left untouched."
            )
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step].split(";"):
                if statement.strip():
                    _exec(conn, statement)
            log.info("database %s migrated to schema version %d", path, step)
        if version < SCHEMA_VERSION:
            _exec(conn, "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        secret = _one(conn, "SELECT value FROM meta WHERE key = 'secret'")
        if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
            if secret is not None:
                raise RuntimeError(f"{path}: the stored server secret is damaged; refusing to replace it")
            secret = secrets.token_bytes(SECRET_BYTES)
            _exec(conn, "INSERT INTO meta (key, value) VALUES ('secret', ?)", (secret,))
        _exec(conn, "COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return secret
