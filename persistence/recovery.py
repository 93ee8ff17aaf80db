"""Startup: load every stored project and check into the in-memory index before the server listens.

    >>> store = await Store.open(settings.db)
    >>> index = Index(KeyHasher(await store.secret()))
    >>> report = await recover(store, index)
    >>> alerts.load(report.channels)

Pings and flips stay on disk (they are read on demand), so startup time grows with the number of
checks only. A row that cannot be decoded, or a check whose project is gone, is skipped, counted
and logged; it never stops the server from starting. Damage SQLite itself reports ("database disk
image is malformed") does: `recover` raises StoreUnusable, whose message says what to do.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from hcserver.domain.index import Index
from hcserver.ports import NotificationKey
from persistence.codec import Codec, DecodeError
from persistence.schema import unusable
from persistence.store import Store

log = logging.getLogger(__name__)

# Skipped rows logged one by one before the rest are only counted (a damaged file could have many).
_LOGGED_SKIPS = 10


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    projects: int
    checks: int
    # The alerts code's channel records, as given to `WriteBehind.channel_changed`.
    channels: list[dict[str, Any]] = field(repr=False)
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


async def recover(store: Store, index: Index) -> RecoveryReport:
    """Fill `index` from `store` and say what was found (also logged)."""
    # Loading 100k checks makes the collector run full passes that free nothing; it alone took
    # a third of the startup time. The objects made here live as long as the server anyway.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await _recover(store, index)
    except sqlite3.Error as exc:
        raise unusable(store.path, exc) from exc
    finally:
        if collecting:
            gc.enable()


async def _recover(store: Store, index: Index) -> RecoveryReport:
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

    checks = 0
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

    channels: list[dict[str, Any]] = []
    for data in await store.load_channels():
        try:
            channels.append(codec.decode_record(data))
        except DecodeError as exc:
            skips.skip("channel", exc)

    pings = await store.count_pings()
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
