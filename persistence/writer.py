"""The SQLite writer process: the one connection that writes, in a process of its own.

`persistence.store.Store` starts it as `python -m persistence.writer` and talks to it over its
stdin and stdout. A flush is one request and one reply. The reason for a separate process is the
GIL. A writer thread in the server process competes with the event loop for it: every time the
loop gave it up for a socket call, the writer could keep it for up to the 5 ms switch interval,
and that wait showed up in the ping latency while a big flush ran.

The wire format is frames of an 8-byte big-endian length followed by one msgpack value.
- A request is `[op, *args]`.
- A reply is `[true, result]`, or `[false, error type name, message]`.
- When its stdin ends (the server closed it, or died), the process closes the file and exits.

Ops:
- `open(path, durable, busy_timeout_ms, idle_for_s)`: connect, set the pragmas and bring the
  schema up to date. Answers `[secret, highest flip seq, [schema versions migrated to], idle]`.
- `write(fields)`: one flush in one transaction. `fields` are `persistence.store.WriteSet`'s row
  lists in field order, each sent as a list of chunks of rows (of any size: rows are regrouped
  into statements of ROWS_PER_STATEMENT here).
- `one(sql, params)` and `all(sql, params)`: a query's first value, or all its rows.

With `idle_for_s` > 0 a flush's statements run on a thread of Linux's SCHED_IDLE policy: it gets
only CPU time that nothing else wants, so a big flush on a busy machine does not take a core from
the server's event loop (or from anything else). Statements still to run `idle_for_s` after the
flush started run on the main thread instead, at normal priority, so a machine kept busy by other
work delays a flush by about that long (plus one statement), not for ever. Reading, decoding and
answering requests stay on the main thread: an unprivileged thread cannot leave SCHED_IDLE again.
`idle` in the answer says whether the system granted the policy.

One writer per file, whatever name it is reached by. `open` takes two exclusive locks (flock) and
holds them for the life of the process: one on `<real path>.lock` (symlinks, `..` and relative
paths resolved), where it also writes the server's pid, and one on the store file itself, which no
other name of the file (a hard link) gets around. A second hcserver on the same file is refused
with StoreInUse, naming the server that has it. A server started after one that was killed first
waits for that server's writer to exit: the writer finishes the flush it was handed even when its
server dies, and a server that loaded the file before that flush committed would never know what
it wrote. A file that cannot serve as a store (not SQLite, damaged, a directory, not writable) is
refused with StoreUnusable, whose message says what to do.

Only the standard library and msgpack are imported here, so the process starts in about 40 ms.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import secrets
import signal
import sqlite3
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgpack  # type: ignore[import-untyped]  # no stubs or py.typed upstream

SCHEMA_VERSION = 1
SECRET_BYTES = 32
FRAME_HEADER = struct.Struct(">Q")

# Rows per multi-row statement (and per chunk, as the server packs them). A multi-row statement is one
# sqlite3_step; executemany would take one step per row. 500 rows of 5 columns is far below
# SQLite's variable limit.
ROWS_PER_STATEMENT = 500

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


class SchemaTooNew(RuntimeError):
    """The file was written by a newer hcserver; refusing to touch it protects that data."""


class StoreInUse(RuntimeError):
    """Another hcserver's writer holds the file's lock."""


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


# How long `open` waits for the writer of a server that is gone (it may be finishing a big flush
# on a busy machine), and for one whose server is still running (a restart in progress, or a
# server pid reused by another process).
ORPHAN_WAIT_S = 60.0
LIVE_WAIT_S = 2.0


def lock(path: str, orphan_wait_s: float = ORPHAN_WAIT_S, live_wait_s: float = LIVE_WAIT_S) -> list[int]:
    """Open the store file (creating it if missing) and take both of the writer's locks on it: the
    lock file beside its real path (`lock_store`), then the file itself (`lock_file_itself`).
    Returns the descriptors to keep open until this process ends.

    Why two locks. A path names a file only up to hard links: two names of one file have two real
    paths, so two lock files. A flock on the store file belongs to the file itself, whatever its
    name. It is a flock and not a POSIX (fcntl) lock because SQLite takes fcntl locks on the same
    file, and those belong to the process, so the close of any descriptor of the file here would
    drop SQLite's; flocks belong to the open file description and, on Linux, are apart from fcntl
    locks. (On NFS, Linux makes flocks fcntl locks; SQLite's WAL mode does not work there anyway.)
    The descriptor stays open until the process exits, after SQLite has closed the file. The lock
    file is kept for what it carries: the server's pid, read back when a second server is refused.
    A lock file named by device and inode in a shared directory (/run/lock) would need every server
    to see the same directory, which containers and systemd's PrivateTmp do not give.
    """
    with contextlib.ExitStack() as undo:
        try:
            store = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except IsADirectoryError:
            raise StoreUnusable(
                f"{path} is a directory: --db (HC_DB) names the store file itself, such as "
                f"{os.path.join(path, 'hcserver.sqlite3')}"
            ) from None
        except OSError as exc:
            raise StoreUnusable(
                f"cannot open {path} for writing ({exc.strerror}): point --db (HC_DB) at a file in a directory "
                "this user can write to"
            ) from None
        undo.callback(os.close, store)
        fds = [store]
        named = lock_store(path, orphan_wait_s, live_wait_s)
        if named is not None:
            undo.callback(os.close, named)
            fds.append(named)
        lock_file_itself(path, store, orphan_wait_s, live_wait_s)
        undo.pop_all()
    return fds


def lock_store(path: str, orphan_wait_s: float = ORPHAN_WAIT_S, live_wait_s: float = LIVE_WAIT_S) -> int | None:
    """Take the writer's lock beside `path`'s real file, `<real path>.lock`, and write the server's pid
    (this process's parent) in it. Every name that leads to the same place (a symlink, a relative
    path, one with `..`) resolves to the same lock file. Returns the lock file's descriptor, held
    until this process ends; None when the lock file cannot be opened at all (a read-only directory:
    the lock on the store file itself still stands)."""
    lock_path = os.path.realpath(path) + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        print(f"hcserver writer: cannot open {lock_path} ({exc}); running without the lock", file=sys.stderr)
        return None
    try:
        _wait_for_lock(fd, lambda: _holder(fd), path, f"holds {lock_path}", orphan_wait_s, live_wait_s)
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getppid()}\n".encode(), 0)
    return fd


def lock_file_itself(
    path: str, fd: int, orphan_wait_s: float = ORPHAN_WAIT_S, live_wait_s: float = LIVE_WAIT_S
) -> None:
    """Take an exclusive flock on the store file open as `fd`, held as long as `fd` is open (see `lock`)."""
    st = os.fstat(fd)
    _wait_for_lock(
        fd,
        lambda: _inode_holder(st.st_dev, st.st_ino),
        path,
        "holds a lock on the file itself, reached through another name (a hard link)",
        orphan_wait_s,
        live_wait_s,
    )


def _wait_for_lock(
    fd: int, holder_of: Callable[[], int | None], path: str, held: str, orphan_wait_s: float, live_wait_s: float
) -> None:
    """flock `fd`, waiting while its holder (the server pid `holder_of` finds) is gone but its writer
    may still be finishing a flush; raise StoreInUse when the wait is over."""
    started = time.monotonic()
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = holder_of()
        alive = holder is not None and _running(holder)
        if time.monotonic() - started >= (live_wait_s if alive else orphan_wait_s):
            who = f"another hcserver (pid {holder})" if alive else "the writer process of an earlier hcserver"
            raise StoreInUse(
                f"{path} is in use by {who}: its writer {held}. Stop that server first, or point --db at another file."
            )
        if holder is not None and not alive and not told:
            told = True
            print(
                f"hcserver writer: waiting for the writer process of hcserver pid {holder} (no longer running) "
                f"to finish its last flush to {path}",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(0.05)


def _holder(fd: int) -> int | None:
    """The server pid written in the lock file by its holder."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def _inode_holder(dev: int, ino: int) -> int | None:
    """The server pid of the writer process that holds the flock on file (dev, ino), or None if it
    cannot be told. A flock does not say who holds it: /proc/locks does (Linux), by inode number;
    the pid found there is taken only if that process has the file open (its device may be printed
    differently there), and the server pid is read from that writer's own lock file."""
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; a waiter's line has "->" after the number.
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK" or not parts[4].isdigit() or parts[5].rsplit(":", 1)[-1] != str(ino):
            continue
        pid = parts[4]
        if pid == str(os.getpid()):
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        has_file, lock_file = False, None
        for n in fds:
            link = f"/proc/{pid}/fd/{n}"
            with contextlib.suppress(OSError):
                st = os.stat(link)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    has_file = True
                elif os.readlink(link).endswith(".lock"):
                    lock_file = link
        if has_file and lock_file is not None:
            with contextlib.suppress(OSError, ValueError), open(lock_file, "rb") as f:
                return int(f.read(32).decode().strip())
    return None


def _running(pid: int) -> bool:
    """True if `pid` is a process that has not ended (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) state ...": comm may hold spaces and parentheses; the state follows the last ")".
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        return True  # cannot tell: take it as running, which the message then names
    return state != b"Z"


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

# What to do with each of WriteSet's fields, in field order: statements run one row at a time
# (rare changes), or one multi-row statement per chunk (the bulk of a flush). Deletes come first.
_FIELDS: tuple[tuple[str, ...] | _Rows, ...] = (
    ("DELETE FROM projects WHERE id = ?",),  # project_deletes
    _CHECK_DELETES,  # check_deletes
    ("DELETE FROM channels WHERE id = ?",),  # channel_deletes
    _upsert_rows("projects", ("id",), ("data",)),
    _upsert_rows("checks", ("id",), ("project_id", "data")),
    _upsert_rows("channels", ("id",), ("project_id", "data")),
    _upsert_rows("notifications", ("check_id", "flip_created", "channel_id"), ("status", "data")),
    _upsert_rows("pings", ("check_id", "n"), ("data",)),
    # ping_prunes, (check id, highest n to delete): one range delete per check, through the index.
    _Rows(
        "DELETE FROM pings WHERE id IN (SELECT p.id FROM (VALUES",
        2,
        ") AS v JOIN pings AS p ON p.check_id = v.column1 AND p.n <= v.column2)",
    ),
    _Rows("INSERT OR REPLACE INTO flips (seq, check_id, created, data) VALUES", 4),
    _FLIP_PRUNES,  # flip_prunes, (check id, flips to keep)
)


# Runs one statement: `run(fn, *args)` calls `fn(*args)`, on whichever thread it chooses.
Run = Callable[..., Any]


def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def write(conn: sqlite3.Connection, fields: Sequence[Sequence[Sequence[Sequence[Any]]]], run: Run = _inline) -> None:
    """One flush, in one transaction; on any error roll back and raise."""
    if len(fields) != len(_FIELDS):
        raise ValueError(f"a write needs {len(_FIELDS)} row lists, got {len(fields)}")
    run(_exec, conn, "BEGIN IMMEDIATE")
    try:
        for how, chunks in zip(_FIELDS, fields, strict=True):
            rows = chunks[0] if len(chunks) == 1 else [row for chunk in chunks for row in chunk]
            if isinstance(how, _Rows):
                for start in range(0, len(rows), ROWS_PER_STATEMENT):
                    group = rows[start : start + ROWS_PER_STATEMENT]
                    run(_exec, conn, how.sql(len(group)), [value for row in group for value in row])
            elif rows:
                for sql in how:
                    run(_exec_many, conn, sql, rows)
        run(_exec, conn, "COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def prepare(conn: sqlite3.Connection, path: str, durable: bool, busy_timeout_ms: int) -> list[Any]:
    """Pragmas, schema, secret. Returns [secret, highest flip seq, schema versions migrated to]."""
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
    secret, migrated = _migrate(conn, path)
    return [secret, int(one(conn, "SELECT COALESCE(MAX(seq), 0) FROM flips")), migrated]


def _migrate(conn: sqlite3.Connection, path: str) -> tuple[bytes, list[int]]:
    """Bring the file to SCHEMA_VERSION; return the server secret (made here on first open) and
    the versions migrated to."""
    _exec(conn, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
    _exec(conn, "BEGIN IMMEDIATE")
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
                    _exec(conn, statement)
        if migrated:
            _exec(conn, "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        secret = one(conn, "SELECT value FROM meta WHERE key = 'secret'")
        if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
            if secret is not None:
                raise StoreUnusable(
                    f"{path}: the stored server secret is damaged; refusing to replace it, as every stored key "
                    "would stop working: restore the file from a backup"
                )
            secret = secrets.token_bytes(SECRET_BYTES)
            _exec(conn, "INSERT INTO meta (key, value) VALUES ('secret', ?)", (secret,))
        _exec(conn, "COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return secret, migrated


def one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _all(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def _exec(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> None:
    # Closing the cursor at once finalizes its statement: one left open could pin a read snapshot.
    conn.execute(sql, params).close()


def _exec_many(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    conn.executemany(sql, rows).close()


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


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back on its own (it does after some I/O errors).
    with contextlib.suppress(sqlite3.Error):
        _exec(conn, "ROLLBACK")


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame's body, or None at the end of the stream."""
    head = stream.read(FRAME_HEADER.size)
    if len(head) < FRAME_HEADER.size:
        return None
    (size,) = FRAME_HEADER.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


class _Session:
    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.idle_for_s = 0.0
        self.idle: _IdleThread | None = None
        # The lock descriptors (see `lock`): never closed before the process ends.
        self.locks: list[int] = []

    def handle(self, request: list[Any]) -> Any:
        op, args = request[0], request[1:]
        if op == "open":
            if self.conn is not None:
                raise RuntimeError("the writer is already open")
            path, durable, busy_timeout_ms, idle_for_s = args
            if path != ":memory:" and not self.locks:
                self.locks = lock(path)
            try:
                # isolation_level=None: no implicit transactions; every flush says BEGIN and COMMIT itself.
                # check_same_thread=False: the idle thread runs statements too, never at the same time.
                self.conn = sqlite3.connect(
                    path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False
                )
                opened = prepare(self.conn, path, durable, busy_timeout_ms)
            except sqlite3.Error as exc:
                self.close()
                raise unusable(path, exc) from exc
            if idle_for_s > 0:
                thread = _IdleThread()
                if thread.idle:
                    self.idle, self.idle_for_s = thread, float(idle_for_s)
            return [*opened, self.idle is not None]
        if self.conn is None:
            raise RuntimeError(f"{op!r} before 'open'")
        if op == "write":
            (fields,) = args
            return write(self.conn, fields, self._runner())
        ops: dict[str, Callable[..., Any]] = {"one": one, "all": _all}
        if op not in ops:
            raise ValueError(f"unknown writer op {op!r}")
        return ops[op](self.conn, *args)

    def _runner(self) -> Run:
        """How one flush runs its statements: on the idle thread until idle_for_s has passed, then here."""
        idle = self.idle
        if idle is None:
            return _inline
        until = time.monotonic() + self.idle_for_s

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
