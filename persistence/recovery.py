"""Startup: load every stored project and check into the in-memory index before the server listens.

    store = await Store.open(settings.db)
    index = Index(KeyHasher(await store.secret()))
    report = await recover(store, index, ping_log_limit=settings.ping_log_limit)
    channels = [Channel.from_record(record) for record in report.channels]
    pending = await load_notifications(store, "pending")

Pings and flips stay on disk (they are read on demand, and never counted or scanned here), so
startup time grows with the number of checks only. A row that cannot be decoded, or a check whose
project is gone, is skipped, counted and logged; it never stops the server from starting. Damage
SQLite itself reports ("database disk image is malformed") does: `recover` raises StoreUnusable,
whose message says what to do.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from persistence.codec import Check, Codec, DecodeError, Project
from persistence.schema import unusable
from persistence.store import Store

if TYPE_CHECKING:
    # For annotations only (see persistence.writebehind).
    from hcserver.ports import NotificationKey

log = logging.getLogger(__name__)

# Skipped rows logged one by one before the rest are only counted (a damaged file could have many).
_LOGGED_SKIPS = 10


class Catalog(Protocol):
    """What recovery fills: `hcserver.domain.index.Index` is one."""

    @property
    def projects(self) -> Mapping[str, Project]: ...

    def add_project(self, project: Project) -> None: ...

    def add_check(self, check: Check) -> None: ...


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    projects: int
    checks: int
    # The alerts code's channel records, as given to `WriteBehind.channel_changed`.
    channels: list[dict[str, Any]] = field(repr=False)
    # Stored pings, worked out from the checks (each keeps its n_pings, up to the ping log limit):
    # the count of the pings table whenever the limit was the same when they were written.
    pings: int
    skipped: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"recovered {self.projects} projects, {self.checks} checks, {len(self.channels)} channels "
            f"and {self.pings} stored pings in {self.seconds:.3f} s; skipped {self.skipped} damaged rows"
        )


class _Skips:
    def __init__(self) -> None:
        self.count = 0

    def skip(self, what: str, reason: object) -> None:
        self.count += 1
        if self.count <= _LOGGED_SKIPS:
            log.warning("skipped a stored %s: %s", what, reason)


async def recover(store: Store, index: Catalog, *, ping_log_limit: int = 100) -> RecoveryReport:
    """Fill `index` from `store` and say what was found (also logged). `ping_log_limit` is the
    write-behind's, for the count of stored pings in the report."""
    # Loading 100k checks makes the collector run full passes that free nothing; it alone took
    # a third of the startup time. The objects made here live as long as the server anyway.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await _recover(store, index, ping_log_limit)
    except sqlite3.Error as exc:
        raise unusable(store.path, exc) from exc
    finally:
        if collecting:
            gc.enable()


async def _recover(store: Store, index: Catalog, ping_log_limit: int) -> RecoveryReport:
    started = time.perf_counter()
    codec = Codec()
    skips = _Skips()

    projects = 0
    for data in await store.load_projects():
        try:
            index.add_project(codec.decode_project(data))
        except DecodeError as exc:
            skips.skip("project", exc)
            continue
        projects += 1

    checks = pings = 0
    decode_check = codec.decode_check
    add_check = index.add_check
    known = index.projects
    for data in await store.load_checks():
        try:
            check = decode_check(data)
        except DecodeError as exc:
            skips.skip("check", exc)
            continue
        if check.project_id not in known:
            skips.skip("check", f"{check.uuid} belongs to a project that is not stored")
            continue
        add_check(check)
        checks += 1
        pings += min(check.n_pings, ping_log_limit)

    channels: list[dict[str, Any]] = []
    for data in await store.load_channels():
        try:
            channels.append(codec.decode_record(data))
        except DecodeError as exc:
            skips.skip("channel", exc)

    if skips.count > _LOGGED_SKIPS:
        log.warning("... and %d more damaged rows skipped", skips.count - _LOGGED_SKIPS)
    report = RecoveryReport(projects, checks, channels, pings, skips.count, time.perf_counter() - started)
    log.info("%s", report)
    return report


async def load_notifications(store: Store, status: str | None = None) -> list[tuple[NotificationKey, dict[str, Any]]]:
    """Stored notification records (only those whose `status` matches, if given), for the alerts
    code at startup. Damaged rows are skipped and logged."""
    codec = Codec()
    out: list[tuple[NotificationKey, dict[str, Any]]] = []
    try:
        rows = await store.load_notifications(status)
    except sqlite3.Error as exc:
        raise unusable(store.path, exc) from exc
    for check_id, flip_created, channel_id, data in rows:
        try:
            out.append(((check_id, flip_created, channel_id), codec.decode_record(data)))
        except DecodeError as exc:
            log.warning("skipped a stored notification: %s", exc)
    return out
