"""Versioned msgpack snapshots of the domain types: the only module of `persistence` that imports them.

The rest of `persistence` turns domain objects into rows and back through a `Codec`, and names the
types (in annotations) as this module exports them, so the seam between the two is here alone.

Every record is a msgpack array whose first item is its format version, then the entity's fields in
the order that version's layout names them:

>>> codec = Codec()
>>> data = codec.encode_ping(Ping(1, 1700000000.0, "success", body=b"\\xff"))
>>> codec.unpack(data)[:4]
[1, 1, 1700000000.0, 'success']
>>> codec.decode_ping(data).body
b'\\xff'

How the format evolves: adding a field appends it to the current layout without a new version, and
a shorter record (written before the field existed) decodes with the field's default. Removing or
reinterpreting a field needs a new version with its own layout; old layouts stay here so old rows
stay readable. A row that cannot be decoded raises `DecodeError`, which readers count and skip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, Generic, TypeVar

import msgpack  # type: ignore[import-untyped]  # no stubs or py.typed upstream

from hcserver.domain.checks import Check
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.projects import Project

__all__ = [
    "CHECK_LAYOUTS",
    "FLIP_LAYOUTS",
    "PING_LAYOUTS",
    "PROJECT_LAYOUTS",
    "RECORD_VERSION",
    "Check",
    "Codec",
    "DecodeError",
    "Flip",
    "Ping",
    "Project",
]

T = TypeVar("T")

# Format versions written today, and every layout ever written (version -> field order).
PROJECT_LAYOUTS: dict[int, tuple[str, ...]] = {
    1: ("id", "name", "created", "api_key_hash", "ping_key_hash", "api_key_readonly_hash"),
}
CHECK_LAYOUTS: dict[int, tuple[str, ...]] = {
    1: (
        "uuid", "project_id", "created", "name", "slug", "slug_explicit", "tags", "desc", "kind",
        "timeout", "grace", "schedule", "tz", "manual_resume", "methods", "start_kw", "success_kw",
        "failure_kw", "filter_subject", "filter_body", "filter_http_body", "filter_default_fail",
        "channels", "status", "n_pings", "last_ping", "last_duration", "last_exitstatus", "runs",
        "held_until",
    ),
}  # fmt: skip
PING_LAYOUTS: dict[int, tuple[str, ...]] = {
    1: ("n", "created", "kind", "scheme", "remote_addr", "method", "ua", "body", "rid", "exitstatus",
        "duration"),
}  # fmt: skip
FLIP_LAYOUTS: dict[int, tuple[str, ...]] = {
    1: ("check", "created", "old_status", "new_status", "reason"),
}
# Channels and notifications belong to the alerts code: stored as the plain dicts it hands over,
# behind this format version (the one version such a record carries; the dicts themselves have none).
RECORD_VERSION = 1


class DecodeError(ValueError):
    """A stored row that is not a record this version of hcserver can read."""


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise DecodeError(f"expected a list, got {type(value).__name__}")
    return tuple(value)


def _as_runs(value: Any) -> dict[str | None, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DecodeError(f"expected a map of runs, got {type(value).__name__}")
    return value


class _Layouts(Generic[T]):
    """Turns the arrays of every known version of one type back into objects."""

    def __init__(
        self,
        cls: Callable[..., T],
        layouts: dict[int, tuple[str, ...]],
        converters: Mapping[str, Callable[[Any], Any]],
        key_types: Mapping[int, type | tuple[type, ...]],
    ) -> None:
        self.cls = cls
        self.layouts = layouts
        self.version = max(layouts)
        self.current = layouts[self.version]
        self.converters = dict(converters)
        # Cheap sanity checks (position -> type) that catch bytes which happen to unpack as an array.
        self.key_types = dict(key_types)
        assert dataclasses.is_dataclass(cls)
        names = tuple(f.name for f in dataclasses.fields(cls))
        # Positional construction skips a dict per row; it is only right when the orders agree.
        self.positional = names[: len(self.current)] == self.current
        self.get = attrgetter(*self.current)

    def values(self, obj: T) -> list[Any]:
        out: list[Any] = [self.version]
        out.extend(self.get(obj))
        return out

    def build(self, record: Any) -> T:
        if not isinstance(record, list) or not record:
            raise DecodeError("not a versioned record")
        version = record[0]
        names = self.layouts.get(version) if type(version) is int else None
        if names is None:
            raise DecodeError(f"unknown format version {version!r}")
        for pos, kind in self.key_types.items():
            if pos >= len(record) or not isinstance(record[pos], kind) or isinstance(record[pos], bool):
                raise DecodeError(f"field {pos} has the wrong type")
        try:
            if version == self.version and self.positional and len(record) - 1 <= len(names):
                obj = self.cls(*record[1:])
                for name, convert in self.converters.items():
                    object.__setattr__(obj, name, convert(getattr(obj, name)))
                return obj
            # Older layouts, or a dataclass whose field order moved: go by name. Values beyond the
            # layout come from a newer writer of the same version and are dropped.
            kwargs = dict(zip(names, record[1:], strict=False))
            for name, convert in self.converters.items():
                if name in kwargs:
                    kwargs[name] = convert(kwargs[name])
            return self.cls(**kwargs)
        except DecodeError:
            raise
        except (TypeError, ValueError) as exc:
            raise DecodeError(str(exc)) from exc


class Codec:
    """Encode and decode the stored records. One per writer: it reuses one `msgpack.Packer`.

    >>> codec = Codec()
    >>> check = Check(uuid="5bf66975", project_id="p1", created=1700000000.0, name="Backup", n_pings=3)
    >>> back = codec.decode_check(codec.encode_check(check))
    >>> back.uuid, back.name, back.n_pings
    ('5bf66975', 'Backup', 3)
    >>> codec.decode_record(codec.encode_record({"id": "ch1", "kind": "email"}))
    {'id': 'ch1', 'kind': 'email'}
    """

    def __init__(self) -> None:
        self._packer = msgpack.Packer(use_bin_type=True)
        # Only for strings holding lone surrogates (JSON allows "\\ud800"): they must round-trip too.
        self._lenient = msgpack.Packer(use_bin_type=True, unicode_errors="surrogatepass")
        self.projects = _Layouts(Project, PROJECT_LAYOUTS, {}, {1: str, 2: str})
        self.checks = _Layouts(
            Check, CHECK_LAYOUTS, {"channels": _as_tuple, "runs": _as_runs}, {1: str, 2: str, 3: (int, float)}
        )
        self.pings = _Layouts(Ping, PING_LAYOUTS, {}, {1: int, 2: (int, float), 3: str})
        self.flips = _Layouts(Flip, FLIP_LAYOUTS, {}, {1: str, 2: (int, float), 3: str, 4: str})

    def pack(self, obj: Any) -> bytes:
        try:
            data: bytes = self._packer.pack(obj)
        except UnicodeEncodeError:
            self._packer.reset()
            data = self._lenient.pack(obj)
        return data

    @staticmethod
    def unpack(data: bytes) -> Any:
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, unicode_errors="surrogatepass")
        except Exception as exc:  # msgpack raises several unrelated types for damaged input
            raise DecodeError(f"not msgpack: {exc}") from exc

    # -- domain types -----------------------------------------------------------------------------

    def encode_project(self, project: Project) -> bytes:
        return self.pack(self.projects.values(project))

    def decode_project(self, data: bytes) -> Project:
        return self.projects.build(self.unpack(data))

    def encode_check(self, check: Check) -> bytes:
        return self.pack(self.checks.values(check))

    def decode_check(self, data: bytes) -> Check:
        return self.checks.build(self.unpack(data))

    def encode_ping(self, ping: Ping) -> bytes:
        return self.pack(self.pings.values(ping))

    def decode_ping(self, data: bytes) -> Ping:
        return self.pings.build(self.unpack(data))

    def encode_flip(self, flip: Flip) -> bytes:
        return self.pack(self.flips.values(flip))

    def decode_flip(self, data: bytes) -> Flip:
        return self.flips.build(self.unpack(data))

    # -- plain records (channels, notifications) --------------------------------------------------

    def encode_record(self, record: Mapping[str, Any]) -> bytes:
        return self.pack([RECORD_VERSION, dict(record)])

    def decode_record(self, data: bytes) -> dict[str, Any]:
        value = self.unpack(data)
        if not (isinstance(value, list) and len(value) >= 2 and value[0] == RECORD_VERSION):
            raise DecodeError("not a versioned record")
        record = value[1]
        if not isinstance(record, dict):
            raise DecodeError("record is not a map")
        return record
