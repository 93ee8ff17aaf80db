"""What the server and its writer process (`persistence.writer`) say to each other.

Both sides import this module, so it holds only the standard library and msgpack (the writer
process starts in about 40 ms). Frames are an 8-byte big-endian length and one msgpack value.

- A request is `[op, *args]`; a reply is `[true, result]`, or `[false, error type name, message]`.
- `open` takes one map, `{"version", "path", "durable", "busy_timeout_ms", "idle_for_s"}`, and answers
  `{"secret", "flip_seq", "migrated", "idle"}`.
- `write` takes one map, `{"version": PROTOCOL_VERSION, "sections": {name: chunks}, "idle_s": seconds}`
  (`idle_s` optional: how long of this flush may run at idle priority, at most the `idle_for_s` of
  `open`, which is also what a write without it gets); each section is one of
  `WriteSet`'s fields, by name, as a list of chunks of rows (any size: the writer regroups them into
  statements of ROWS_PER_STATEMENT). A section left out is empty; a name the writer does not know,
  or another version, is refused and nothing is written.
- `one` and `all` take `sql, params` as `sqlite3` does, and answer a query's first value, or its rows.

A mismatch between the two sides (a request from another version) is an error reply that names it,
never rows written under the wrong statement.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any, BinaryIO

import msgpack  # type: ignore[import-untyped]  # no stubs or py.typed upstream

PROTOCOL_VERSION = 2
FRAME_HEADER = struct.Struct(">Q")

# Rows per multi-row statement (and per chunk, as the server packs them). A multi-row statement is one
# sqlite3_step; executemany would take one step per row. 500 rows of 5 columns is far below
# SQLite's variable limit.
ROWS_PER_STATEMENT = 500


class ProtocolError(ValueError):
    """A request the writer cannot take as it is: another protocol version, or unknown sections."""


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame's body, or None at the end of the stream."""
    head = stream.read(FRAME_HEADER.size)
    if len(head) < FRAME_HEADER.size:
        return None
    (size,) = FRAME_HEADER.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def check_version(args: object) -> None:
    version = args.get("version") if isinstance(args, dict) else None
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"writer protocol version {version!r}: this writer speaks version {PROTOCOL_VERSION}")


# The one packer of ping rows: used on the event loop only, between awaits.
_ROW_PACKER = msgpack.Packer()


class PingRows:
    """Ping rows (check uuid, n, data) of one check, msgpack arrays packed back to back, in order of n.

    This is the form the `ping_logs` section carries them in: the server packs a row when the ping
    is recorded and sends the bytes as they are, and the writer takes each row as the parameters of
    the pings upsert (columns PING_COLUMNS). Kept as bytes rather than objects because packing, then
    freeing, tens of thousands of Python rows at flush time held the event loop for ~20 ms, and
    50,000 pending Ping objects made the garbage collector's passes take up to 8 ms.

        rows = PingRows()
        rows.add(check.uuid, ping.n, codec.encode_ping(ping))
        for check_id, n, data in rows: ...
    """

    __slots__ = ("count", "data", "last_n")

    def __init__(self) -> None:
        self.data = bytearray()
        self.count = 0
        self.last_n = 0

    def add(self, check_id: str, n: int, data: bytes) -> int:
        """Append a row; return its size in bytes."""
        row: bytes = _ROW_PACKER.pack((check_id, n, data))
        self.data += row
        self.count += 1
        self.last_n = n
        return len(row)

    def extend(self, later: PingRows) -> None:
        self.data += later.data
        self.count += later.count
        self.last_n = later.last_n

    def __iter__(self) -> Iterator[tuple[str, int, bytes]]:
        return iter(self._unpacker())

    def trim(self, keep: int) -> int:
        """Drop all but the newest `keep` rows; return the bytes dropped."""
        drop = self.count - keep
        if drop <= 0:
            return 0
        unpacker = self._unpacker()
        for _ in range(drop):
            unpacker.skip()
        cut: int = unpacker.tell()
        del self.data[:cut]
        self.count = keep
        return cut

    def _unpacker(self) -> msgpack.Unpacker:
        unpacker = msgpack.Unpacker(use_list=False, max_buffer_size=max(len(self.data), 1 << 20))
        unpacker.feed(self.data)
        return unpacker


# The columns of a ping row, in the order PingRows packs them.
PING_COLUMNS = ("check_id", "n", "data")


@dataclass(slots=True)
class WriteSet:
    """Everything one flush writes, as SQL parameter rows, each field a section of the `write`
    request by its name. The writer runs deletes before upserts, whatever the order here."""

    project_deletes: list[tuple[str]] = field(default_factory=list)
    check_deletes: list[tuple[str]] = field(default_factory=list)
    channel_deletes: list[tuple[str]] = field(default_factory=list)
    projects: list[tuple[str, bytes]] = field(default_factory=list)
    # (id, project id, data)
    checks: list[tuple[str, str, bytes]] = field(default_factory=list)
    channels: list[tuple[str, str, bytes]] = field(default_factory=list)
    # (check id, flip created, channel id, status, data)
    notifications: list[tuple[str, float, str, str, bytes]] = field(default_factory=list)
    # One PingRows per check: its rows go as they were packed.
    ping_logs: list[PingRows] = field(default_factory=list)
    # (seq, check id, created, data)
    flips: list[tuple[int, str, float, bytes]] = field(default_factory=list)
    # (check id, flips to keep): also forgets notifications of the flips pruned
    flip_prunes: list[tuple[str, int]] = field(default_factory=list)

    def rows(self) -> int:
        return (
            len(self.project_deletes) + len(self.check_deletes) + len(self.channel_deletes)
            + len(self.projects) + len(self.checks) + len(self.channels)
            + len(self.notifications) + sum(log.count for log in self.ping_logs) + len(self.flips)
        )  # fmt: skip

    def detach_bulk(self) -> list[list[Any]]:
        """Take away the sections that hold most of a flush's objects, for the caller to free in
        slices (see `persistence.writebehind`); the rest is small enough to go with the WriteSet."""
        bulk: list[list[Any]] = [self.checks, self.ping_logs]
        self.checks, self.ping_logs = [], []
        return bulk


# The section names of a write, in WriteSet's field order.
SECTIONS = tuple(f.name for f in fields(WriteSet))
