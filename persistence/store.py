"""The SQLite file: schema, pragmas, and batch writes in one transaction.

The store deals in encoded rows only (ids, numbers and msgpack bytes); `writebehind` and `recovery`
turn domain objects into rows and back through `codec`. One connection writes, owned by the single
writer task; a second, read-only connection serves history reads, so a read never waits for a
flush (WAL lets readers see the last commit while a writer works).

    >>> store = await Store.open("data.db")
    >>> secret = await store.secret()
    >>> await store.write(WriteSet(pings=[(uuid, 1, data)]))
    >>> await store.close()
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

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
    notification_deletes: list[NotificationKey] = field(default_factory=list)
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
            + len(self.notification_deletes) + len(self.projects) + len(self.checks) + len(self.channels)
            + len(self.notifications) + len(self.pings) + len(self.flips)
        )  # fmt: skip


def _upsert(table: str, key: tuple[str, ...], values: tuple[str, ...]) -> str:
    # An upsert updates the row in place; INSERT OR REPLACE deletes and re-inserts it, which made
    # flushes of many check snapshots about half as fast.
    columns = ", ".join(key + values)
    marks = ", ".join("?" * len(key + values))
    updates = ", ".join(f"{name} = excluded.{name}" for name in values)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"


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


class Store:
    """One SQLite file in WAL mode. Open with `await Store.open(path)`; close with `await close()`."""

    def __init__(
        self,
        path: str,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        secret: bytes,
        flip_seq: int,
        durable: bool = False,
    ) -> None:
        self.path = path
        self.durable = durable
        self._writer = writer
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
        # isolation_level=None: no implicit transactions; every flush says BEGIN and COMMIT itself.
        writer = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
        try:
            await _run(writer, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if path != ":memory:":
                await _run(writer, "PRAGMA journal_mode = WAL")
            await _run(writer, f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            # Flushes touch pages all over the checks table and the pings index: a bigger page cache
            # keeps them hot, and rarer checkpoints write a page rewritten by several flushes once.
            await _run(writer, "PRAGMA cache_size = -32000")
            await _run(writer, "PRAGMA wal_autocheckpoint = 10000")
            await _run(writer, "PRAGMA journal_size_limit = 67108864")
            secret = await _migrate(writer, path)
            flip_seq = await _scalar(writer, "SELECT COALESCE(MAX(seq), 0) FROM flips")
            if path == ":memory:":
                reader = writer  # a second connection would see another, empty database
            else:
                reader = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
                await _run(reader, "PRAGMA query_only = 1")
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, reader, secret, int(flip_seq), durable)

    async def secret(self) -> bytes:
        """The server's 32 random bytes, made when the file was created (API keys are hashed with it)."""
        return self._secret

    async def pragma(self, name: str) -> Any:
        """The writer connection's value of a PRAGMA (journal_mode, synchronous, ...), for diagnostics."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        return await _scalar(self._writer, f"PRAGMA {name}")

    async def close(self) -> None:
        if self._reader is not self._writer:
            await self._reader.close()
        await self._writer.close()

    # -- writing (the writer task only) -----------------------------------------------------------

    async def write(self, ws: WriteSet) -> None:
        """Apply one flush in one transaction; on any error roll back and raise (the caller retries)."""
        db = self._writer
        steps: list[tuple[str, Sequence[Any]]] = [
            ("DELETE FROM projects WHERE id = ?", ws.project_deletes),
            *((sql, ws.check_deletes) for sql in _CHECK_DELETES),
            ("DELETE FROM channels WHERE id = ?", ws.channel_deletes),
            ("DELETE FROM notifications WHERE check_id = ? AND flip_created = ? AND channel_id = ?",
             ws.notification_deletes),
            (_upsert("projects", ("id",), ("data",)), ws.projects),
            (_upsert("checks", ("id",), ("project_id", "data")), ws.checks),
            (_upsert("channels", ("id",), ("project_id", "data")), ws.channels),
            (_upsert("notifications", ("check_id", "flip_created", "channel_id"), ("status", "data")),
             ws.notifications),
            (_upsert("pings", ("check_id", "n"), ("data",)), ws.pings),
            ("DELETE FROM pings WHERE check_id = ? AND n <= ?", ws.ping_prunes),
            ("INSERT OR REPLACE INTO flips (seq, check_id, created, data) VALUES (?, ?, ?, ?)", ws.flips),
            *((sql, ws.flip_prunes) for sql in _FLIP_PRUNES),
        ]  # fmt: skip
        await _run(db, "BEGIN IMMEDIATE")
        try:
            for sql, params in steps:
                if params:
                    await _run_many(db, sql, params)
            await _run(db, "COMMIT")
        except BaseException:
            await _rollback(db)
            raise
        if ws.flips:
            self.flip_seq = max(self.flip_seq, max(row[0] for row in ws.flips))

    # -- reading ----------------------------------------------------------------------------------

    async def recent_pings(self, check_id: str, above: int, below: int | None, limit: int) -> list[bytes]:
        """Ping rows of a check with above < n < below, newest first."""
        if below is None:
            sql = "SELECT data FROM pings WHERE check_id = ? AND n > ? ORDER BY n DESC LIMIT ?"
            params: tuple[Any, ...] = (check_id, above, limit)
        else:
            sql = "SELECT data FROM pings WHERE check_id = ? AND n > ? AND n < ? ORDER BY n DESC LIMIT ?"
            params = (check_id, above, below, limit)
        return [row[0] for row in await self._reader.execute_fetchall(sql, params)]

    async def get_ping(self, check_id: str, n: int) -> bytes | None:
        rows = list(await self._reader.execute_fetchall(
            "SELECT data FROM pings WHERE check_id = ? AND n = ?", (check_id, n)
        ))  # fmt: skip
        return rows[0][0] if rows else None

    async def flips(self, check_id: str, up_to_seq: int, limit: int) -> list[bytes]:
        """The newest `limit` flip rows with seq <= up_to_seq, oldest first."""
        rows = await self._reader.execute_fetchall(
            "SELECT data FROM flips WHERE check_id = ? AND seq <= ? ORDER BY seq DESC LIMIT ?",
            (check_id, up_to_seq, limit),
        )
        return [row[0] for row in reversed(list(rows))]

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
        rows = await self._reader.execute_fetchall(sql, params)
        return [(str(r[0]), float(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    async def count_pings(self) -> int:
        return int(await _scalar(self._reader, "SELECT COUNT(*) FROM pings"))

    async def _column(self, sql: str, params: Iterable[Any] = ()) -> list[bytes]:
        return [row[0] for row in await self._reader.execute_fetchall(sql, params)]


async def _run(db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> None:
    # Closing the cursor at once finalizes its statement: one left open could pin a read snapshot.
    async with db.execute(sql, params):
        pass


async def _run_many(db: aiosqlite.Connection, sql: str, params: Iterable[Iterable[Any]]) -> None:
    async with db.executemany(sql, params):
        pass


async def _scalar(db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> Any:
    rows = list(await db.execute_fetchall(sql, params))
    return rows[0][0] if rows else None


async def _rollback(db: aiosqlite.Connection) -> None:
    # SQLite may already have rolled back on its own (it does after some I/O errors).
    with contextlib.suppress(sqlite3.Error):
        await _run(db, "ROLLBACK")


async def _migrate(db: aiosqlite.Connection, path: str) -> bytes:
    """Bring the file to SCHEMA_VERSION and return the server secret, made here on first open."""
    await _run(db, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
    await _run(db, "BEGIN IMMEDIATE")
    try:
        version = int(await _scalar(db, "SELECT value FROM meta WHERE key = 'schema_version'") or 0)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{path} has schema version {version}, but this hcserver only knows versions up to "
                f"{SCHEMA_VERSION}: it was written by a newer hcserver. Upgrade hcserver, or point --db "
                "at another file; the file was left untouched."
            )
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step].split(";"):
                if statement.strip():
                    await _run(db, statement)
            log.info("database %s migrated to schema version %d", path, step)
        if version < SCHEMA_VERSION:
            await _run(db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        secret = await _scalar(db, "SELECT value FROM meta WHERE key = 'secret'")
        if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
            if secret is not None:
                raise RuntimeError(f"{path}: the stored server secret is damaged; refusing to replace it")
            secret = secrets.token_bytes(SECRET_BYTES)
            await _run(db, "INSERT INTO meta (key, value) VALUES ('secret', ?)", (secret,))
        await _run(db, "COMMIT")
    except BaseException:
        await _rollback(db)
        raise
    return secret
