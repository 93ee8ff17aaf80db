"""The SQLite file: a writer process for flushes, and a read connection for history.

The store deals in encoded rows only (ids, numbers and msgpack bytes); `writebehind` and `recovery`
turn domain objects into rows and back through `codec`. One connection writes, in a process of its
own (`persistence.writer`; a flush is one request to it, see `persistence.protocol`), so SQLite's
work never holds this process's GIL against the event loop. A second, read-only connection serves
history reads through aiosqlite, so a read never waits for a flush (WAL lets readers see the last
commit while a writer works).

    store = await Store.open("data.db")
    secret = await store.secret()
    await store.write(WriteSet(checks=[(uuid, project_id, data)]))
    await store.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import msgpack  # type: ignore[import-untyped]  # no stubs or py.typed upstream

from persistence.lock import StoreInUse
from persistence.pacing import Pacer
from persistence.protocol import FRAME_HEADER, PROTOCOL_VERSION, ROWS_PER_STATEMENT, SECTIONS, ProtocolError, WriteSet
from persistence.schema import PING_SLOTS, SCHEMA_VERSION, SchemaTooNew, StoreUnusable

__all__ = [
    "SCHEMA_VERSION",
    "SchemaTooNew",
    "Store",
    "StoreInUse",
    "StoreUnusable",
    "WriteSet",
    "WriterLost",
]

log = logging.getLogger(__name__)


class WriterLost(RuntimeError):
    """The writer process ended (or was ended) before it answered; the next call starts a new one."""


# Bytes of a request buffered ahead of the writer's pipe before sending waits for room in it.
_SEND_AHEAD = 1 << 18
# Bytes of a request handed to the pipe in one write.
_BLOCK = 1 << 16
# With an idle writer, how long a flush runs at idle CPU priority before it finishes at normal
# priority (see persistence.writer). A 50k-ping flush takes about 0.2-0.5 s of CPU on 2 cores.
IDLE_WRITER_FOR_S = 1.0
# Without one, the longest a light flush (see `Store.write`) may run at idle CPU priority.
LIGHT_IDLE_S = 1.0
# Where `python -m persistence.writer` finds this package, installed or not.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
# Errors the writer reports (by name) that are raised here as the same type; any other is raised
# as a RuntimeError whose message starts with the name.
_KNOWN_ERRORS: dict[str, type[Exception]] = {
    "SchemaTooNew": SchemaTooNew,
    "StoreInUse": StoreInUse,
    "StoreUnusable": StoreUnusable,
    "ProtocolError": ProtocolError,
    "RuntimeError": RuntimeError,
    "ValueError": ValueError,
    **{name: getattr(sqlite3, name) for name in dir(sqlite3) if name.endswith("Error") or name == "Warning"},
}


class _WriterProcess:
    """The client side of `persistence.writer`: one request at a time, over the child's pipes.

    If the process dies (or a call is cancelled halfway through a frame), the call raises
    WriterLost and the next call starts a fresh process and opens the file again.
    """

    def __init__(self, path: str, durable: bool, busy_timeout_ms: int, idle_for_s: float, ping_slots: int) -> None:
        self.path = path
        self._options = {
            "version": PROTOCOL_VERSION,
            "path": path,
            "durable": durable,
            "busy_timeout_ms": busy_timeout_ms,
            "idle_for_s": idle_for_s,
            "ping_slots": ping_slots,
        }
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.opened: dict[str, Any] | None = None
        self.restarts = 0  # processes started again after one was lost

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def open(self) -> dict[str, Any]:
        """Start the process and open the file: the answer to `open` (see persistence.protocol)."""
        async with self._lock:
            if self._proc is None:
                await self._start()
            assert self.opened is not None
            return self.opened

    async def call(self, *request: Any) -> Any:
        return await self.send([msgpack.packb(list(request))])

    async def send(self, body: list[bytes]) -> Any:
        """Send one request (a msgpack value in pieces) and return the result of its reply."""
        async with self._lock:
            if self._proc is None:
                log.warning("starting a new SQLite writer process for %s", self.path)
                self.restarts += 1
                await self._start()
            return await self._exchange(body)

    async def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "persistence.writer",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert self._proc.stdin is not None
        pipe = self._proc.stdin.transport.get_extra_info("pipe")
        # A bigger pipe (Linux: up to 1 MiB unprivileged) takes a flush in fewer, larger writes.
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        self._proc.stdin.transport.set_write_buffer_limits(high=_SEND_AHEAD)
        try:
            self.opened = await self._exchange([msgpack.packb(["open", self._options])])
        except BaseException:
            if self._proc is not None:
                await asyncio.shield(self._end(self._proc))
            raise

    async def _exchange(self, body: list[bytes]) -> Any:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(FRAME_HEADER.pack(sum(map(len, body))))
            pacer = Pacer()
            block: list[bytes] = []
            size = 0
            for i, piece in enumerate(body, 1):
                # In blocks of about _BLOCK bytes, waiting for room in the pipe: handing the transport
                # a whole flush at once (4 MB for 50,000 pings) stalled the loop for ~4 ms copying it,
                # and a write per piece (two per check) cost a system call each.
                block.append(piece)
                size += len(piece)
                if size < _BLOCK and i < len(body):
                    continue
                proc.stdin.write(b"".join(block))
                block, size = [], 0
                await proc.stdin.drain()
                if pacer.due():
                    await pacer.rest()
            head = await proc.stdout.readexactly(FRAME_HEADER.size)
            reply = msgpack.unpackb(await proc.stdout.readexactly(FRAME_HEADER.unpack(head)[0]))
        except (OSError, asyncio.IncompleteReadError) as exc:
            code = await self._end(proc, grace_s=1.0)
            raise WriterLost(f"the SQLite writer process exited (code {code}) before answering") from exc
        except BaseException:
            # Cancelled halfway through a frame: the conversation cannot be resumed.
            await asyncio.shield(self._end(proc))
            raise
        if reply[0]:
            return reply[1]
        name, message = reply[1], reply[2]
        error = _KNOWN_ERRORS.get(name)
        raise error(message) if error is not None else RuntimeError(f"{name}: {message}")

    async def _end(self, proc: asyncio.subprocess.Process, grace_s: float = 0.0) -> int | None:
        """Forget `proc`, kill it unless it exits within `grace_s`, and return its exit code."""
        if self._proc is proc:
            self._proc = None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(proc.wait(), grace_s)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        return await proc.wait()

    async def close(self) -> None:
        """Let the writer finish and exit (it closes the file when its stdin ends)."""
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            assert proc.stdin is not None
            proc.stdin.close()
            # Everything is committed by now; what is left is closing the file (a WAL checkpoint).
            # If that hangs on a failing disk, killing the process loses nothing.
            code = await self._end(proc, grace_s=2.0)
            if code:
                log.error("the SQLite writer process exited with code %s", code)


class Store:
    """One SQLite file in WAL mode. Open with `await Store.open(path)`; close with `await close()`."""

    def __init__(
        self,
        path: str,
        writer: _WriterProcess,
        reader: aiosqlite.Connection | None,
        secret: bytes,
        flip_seq: int,
        durable: bool = False,
        idle_writer: bool = False,
        light_idle_s: float = 0.0,
    ) -> None:
        self.path = path
        self.durable = durable
        # True when the writer runs flushes at idle CPU priority (see persistence.writer).
        self.idle_writer = idle_writer
        # Otherwise, the longest a flush may run at idle priority when asked to (0: not at all).
        self.light_idle_s = light_idle_s
        self._writer = writer
        # None for ":memory:", where a second connection would see another, empty database:
        # reads then go to the writer.
        self._reader = reader
        self._secret = secret
        # Highest flip sequence number stored: the writer numbers new flips after it.
        self.flip_seq = flip_seq
        # The rows of each check's ping ring (see persistence.schema): the most pings kept per check.
        self.ping_log_limit = PING_SLOTS

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        durable: bool = False,
        busy_timeout_ms: int = 2000,
        idle_writer: bool = False,
        light_idle_s: float = LIGHT_IDLE_S,
        ping_log_limit: int = PING_SLOTS,
    ) -> Store:
        """Open (creating or migrating) the file. `durable` makes every commit reach the disk
        (synchronous=FULL); otherwise a commit survives a crash of the process but may be lost with
        the machine's power (synchronous=NORMAL, the usual WAL choice). `idle_writer` asks for flushes
        at idle CPU priority, for their first IDLE_WRITER_FOR_S; `idle_writer` on the result says
        whether the system granted it. Without it, a write may ask for up to `light_idle_s` at idle
        priority (not in durable mode, where pings wait for every commit; 0: never). Each check's
        pings are stored in a ring of `ping_log_limit` rows (the file's ring is resized to it,
        keeping each check's newest pings, when it was made for another limit). A file that
        cannot serve as a store raises StoreUnusable; one another hcserver is using, StoreInUse;
        either way no process or thread is left running."""
        path = str(path)
        try:
            empty = path != ":memory:" and os.stat(path).st_size == 0
        except OSError:
            empty = False  # not there yet (the writer makes it), or the writer will say what is wrong
        idle_for_s = IDLE_WRITER_FOR_S if idle_writer else 0.0 if durable else light_idle_s
        writer = _WriterProcess(path, durable, busy_timeout_ms, idle_for_s, ping_log_limit)
        reader: aiosqlite.Connection | None = None
        opened = await writer.open()
        migrated = opened["migrated"]
        if empty and migrated:
            # SQLite takes an empty file for an empty database; it may be a copy or a restore that went wrong.
            log.warning("%s was an empty file (0 bytes): it starts as a new, empty store", path)
        for version in migrated:
            log.info("database %s migrated to schema version %d", path, version)
        try:
            if path != ":memory:":
                reader = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
                async with reader.execute("PRAGMA query_only = 1"):
                    pass
        except BaseException:
            # The reader's thread would keep the process from exiting.
            if reader is not None:
                await reader.close()
            await writer.close()
            raise
        granted = bool(opened["idle"])
        store = cls(
            path, writer, reader, opened["secret"], opened["flip_seq"], durable,
            idle_writer=granted and idle_writer, light_idle_s=idle_for_s if granted and not idle_writer else 0.0,
        )  # fmt: skip
        store.ping_log_limit = ping_log_limit
        return store

    async def secret(self) -> bytes:
        """The server's 32 random bytes, made when the file was created (API keys are hashed with it)."""
        return self._secret

    async def pragma(self, name: str) -> Any:
        """The writer connection's value of a PRAGMA (journal_mode, synchronous, ...), for diagnostics."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        return await self._writer.call("one", f"PRAGMA {name}")

    @property
    def writer_restarts(self) -> int:
        """Writer processes started again after one was lost (a crash, a kill)."""
        return self._writer.restarts

    @property
    def writer_pid(self) -> int | None:
        """The writer process's pid (None between a crash of it and the next write)."""
        return self._writer.pid

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await self._writer.close()

    # -- writing (the writer task only) -----------------------------------------------------------

    async def write(self, ws: WriteSet, *, idle_s: float = 0.0) -> None:
        """Apply one flush in one transaction; on any error the writer rolls back and this raises
        (the caller retries). Rows are packed a few hundred at a time, letting pings through.

        `idle_s`: how long the flush's statements may run at idle CPU priority, so that they take
        only a core nothing else wants (up to `light_idle_s`; the rest at normal priority). A flush
        at normal priority takes turns with the event loop on a shared core, and the pings waiting
        for those turns added ~2 ms to the p99.9 at c=1. With `idle_writer` every flush gets
        IDLE_WRITER_FOR_S, whatever it asks."""
        packer = msgpack.Packer()
        pacer = Pacer()
        sections = [(name, getattr(ws, name)) for name in SECTIONS]
        sections = [(name, rows) for name, rows in sections if rows]
        idle_s = IDLE_WRITER_FOR_S if self.idle_writer else max(0.0, min(idle_s, self.light_idle_s))
        body = [
            packer.pack_array_header(2),
            packer.pack("write"),
            packer.pack_map_header(3),
            packer.pack("version"),
            packer.pack(PROTOCOL_VERSION),
            packer.pack("idle_s"),
            packer.pack(idle_s),
            packer.pack("sections"),
            packer.pack_map_header(len(sections)),
        ]
        for name, rows in sections:
            body.append(packer.pack(name))
            if rows is ws.ping_logs:
                # Already packed when recorded: each check's rows go as one chunk, bytes as they are.
                body.append(packer.pack_array_header(len(rows)))
                for log in ws.ping_logs:
                    body += [packer.pack_array_header(log.count), log.data]
                continue
            body.append(packer.pack_array_header(-(-len(rows) // ROWS_PER_STATEMENT)))
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                body.append(packer.pack(rows[start : start + ROWS_PER_STATEMENT]))
                if pacer.due():
                    await pacer.rest()
        await self._writer.send(body)
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
        """Every stored ping, counted by a scan of the table: for tests and diagnostics, never startup."""
        rows = await self._fetch("SELECT COUNT(*) FROM pings")
        return int(rows[0][0])

    async def _column(self, sql: str, params: Sequence[Any] = ()) -> list[bytes]:
        return [row[0] for row in await self._fetch(sql, params)]

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._reader is None:
            return list(await self._writer.call("all", sql, list(params)))
        return list(await self._reader.execute_fetchall(sql, params))
