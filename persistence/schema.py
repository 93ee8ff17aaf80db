"""The store file's schema: its tables, the migrations that bring a file up to date, and how the
writer's connection is set up (pragmas, the server secret).

The file records its schema version in `meta`; opening runs every migration step above it, in one
transaction. A file of a newer version is refused with SchemaTooNew and left untouched. A file that
cannot serve as a store (not SQLite, damaged, a directory, not writable) is refused with
StoreUnusable, whose message says what to do.

Only the standard library is imported here: the writer process loads this module.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Sequence
from typing import Any

SCHEMA_VERSION = 2
SECRET_BYTES = 32
# Slots of a check's ping log when the server does not say (its PING_LOG_LIMIT default).
PING_SLOTS = 100


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
    # Step 2 rebuilds the pings table as each check's ring of slots: see `_ring_pings`.
    2: "",
}


def _ring_pings(conn: sqlite3.Connection, slots: int) -> None:
    """Make `pings` a ring of `slots` rows per check, keyed (check_id, slot) with slot = n % slots,
    keeping each check's newest `slots` pings; from the version-1 table or from a ring of another size.

    Why a ring: a new ping overwrites its check's oldest row in place, on the few pages that hold
    that check's log. The version-1 table (rows in arrival order, an index by check and n, and a
    range delete per check to prune) dirtied about three pages scattered over the file per ping,
    which at 100,000 checks with full logs made a flush 2.4 times as costly (46 against 19 us of
    the writer's CPU per ping, measured on this design's test machine).
    """
    slots = int(slots)
    for statement in (
        """CREATE TABLE pings_ring (
            check_id TEXT NOT NULL, slot INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY (check_id, slot)
        ) WITHOUT ROWID""",
        f"""INSERT INTO pings_ring (check_id, slot, n, data)
            SELECT p.check_id, p.n % {slots}, p.n, p.data FROM pings AS p
            JOIN (SELECT check_id, MAX(n) AS top FROM pings GROUP BY check_id) AS t USING (check_id)
            WHERE p.n > t.top - {slots}""",
        "DROP TABLE pings",
        "ALTER TABLE pings_ring RENAME TO pings",
    ):
        execute(conn, statement)
    execute(conn, "INSERT OR REPLACE INTO meta (key, value) VALUES ('ping_slots', ?)", (slots,))


class SchemaTooNew(RuntimeError):
    """The file was written by a newer hcserver; refusing to touch it protects that data."""


class StoreUnusable(RuntimeError):
    """The file cannot serve as a store: not SQLite, damaged, a directory, or not writable. The
    message says which, and what to do about it."""


def unusable(path: str, exc: sqlite3.Error) -> StoreUnusable:
    """What SQLite's error `exc` on `path` means for the operator, as a StoreUnusable."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return StoreUnusable(
            f"{path} is not an SQLite file ({exc}): point --db (HC_DB) at the store, or at a new file to start "
            "an empty one"
        )
    if name.startswith("SQLITE_CORRUPT"):
        return StoreUnusable(
            f"{path} is damaged ({exc}): restore it from a backup, or move it aside to start an empty store "
            f"(sqlite3 {path} 'PRAGMA integrity_check' lists the damage)"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreUnusable(f"{path} is locked by another program ({exc}): end that program, then start again")
    return StoreUnusable(
        f"cannot use {path} ({exc}): the file and its directory must be writable by this user (SQLite "
        "makes its -wal and -shm files beside it)"
    )


def prepare(
    conn: sqlite3.Connection, path: str, durable: bool, busy_timeout_ms: int, ping_slots: int = PING_SLOTS
) -> dict[str, Any]:
    """Pragmas, schema, secret, and a ping ring of `ping_slots` per check (rebuilt when the file's
    differs: PING_LOG_LIMIT changed). Returns the secret, the highest flip seq (`flip_seq`) and
    the schema versions migrated to (`migrated`)."""
    execute(conn, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if path != ":memory:":
        execute(conn, "PRAGMA journal_mode = WAL")
    execute(conn, f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    # Flushes touch pages all over the checks table and the pings index: a page cache keeps them
    # hot (pages beyond it come from the OS cache), and rarer checkpoints write a page rewritten by
    # several flushes once. 8 MB: at 32 MB the cache alone was ~0.3 KiB of RSS per check at 100k.
    execute(conn, "PRAGMA cache_size = -8000")
    execute(conn, "PRAGMA wal_autocheckpoint = 10000")
    execute(conn, "PRAGMA journal_size_limit = 67108864")
    secret, migrated = _migrate(conn, path, ping_slots)
    flip_seq = int(one(conn, "SELECT COALESCE(MAX(seq), 0) FROM flips"))
    return {"secret": secret, "flip_seq": flip_seq, "migrated": migrated}


def _migrate(conn: sqlite3.Connection, path: str, ping_slots: int) -> tuple[bytes, list[int]]:
    """Bring the file to SCHEMA_VERSION and its ping ring to `ping_slots`; return the server secret
    (made here on first open) and the versions migrated to."""
    execute(conn, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
    execute(conn, "BEGIN IMMEDIATE")
    try:
        version = int(one(conn, "SELECT value FROM meta WHERE key = 'schema_version'") or 0)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{path} has schema version {version}, but this hcserver only knows versions up to "
                f"{SCHEMA_VERSION}: it was written by a newer hcserver. Upgrade hcserver, or point --db "
                "at another file; the file was left untouched."
            )
        migrated = list(range(version + 1, SCHEMA_VERSION + 1))
        for step in migrated:
            for statement in _MIGRATIONS[step].split(";"):
                if statement.strip():
                    execute(conn, statement)
            if step == 2:
                _ring_pings(conn, ping_slots)
        if one(conn, "SELECT value FROM meta WHERE key = 'ping_slots'") != ping_slots:
            _ring_pings(conn, ping_slots)
        if migrated:
            execute(conn, "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        secret = one(conn, "SELECT value FROM meta WHERE key = 'secret'")
        if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
            if secret is not None:
                raise StoreUnusable(
                    f"{path}: the stored server secret is damaged; refusing to replace it, as every stored key "
                    "would stop working: restore the file from a backup"
                )
            secret = secrets.token_bytes(SECRET_BYTES)
            execute(conn, "INSERT INTO meta (key, value) VALUES ('secret', ?)", (secret,))
        execute(conn, "COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return secret, migrated


def one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def fetch_all(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> None:
    # Closing the cursor at once finalizes its statement: one left open could pin a read snapshot.
    conn.execute(sql, params).close()


def execute_many(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    conn.executemany(sql, rows).close()


def rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back on its own (it does after some I/O errors).
    with contextlib.suppress(sqlite3.Error):
        execute(conn, "ROLLBACK")
