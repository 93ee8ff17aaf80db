"""The composition root: open the store, recover, start the background tasks, serve; and stop.

    runtime = await Runtime.start(settings)
    ...
    await runtime.stop()     # stop accepting, answer what is in flight, flush, close

Startup loads everything into the index before the server listens, so the first request already
sees every check.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from hcserver.alerts.channels import Channel
from hcserver.alerts.settings import AlertSettings
from hcserver.app import HcServer, ensure_project
from hcserver.config import Settings
from hcserver.context import Context
from hcserver.domain.index import Index
from hcserver.domain.projects import IssuedKeys, KeyHasher
from hcserver.notify import PENDING, Notifier
from hcserver.scheduler import DeadlineScheduler
from persistence.recovery import load_notifications, recover
from persistence.store import Store
from persistence.writebehind import WriteBehind

log = logging.getLogger("hcserver")


@dataclass
class Runtime:
    ctx: Context
    server: HcServer
    store: Store
    recorder: WriteBehind
    scheduler: DeadlineScheduler
    notifier: Notifier
    issued_keys: IssuedKeys | None
    _scheduler_task: asyncio.Task[None]
    _housekeeping_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        alerts: AlertSettings | None = None,
        clock: Callable[[], float] = time.time,
        alert_backoff: tuple[float, ...] = (1.0, 5.0),
    ) -> Runtime:
        if settings.db != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(settings.db)), exist_ok=True)
        idle_writer = settings.idle_writer and not settings.durable
        store = await Store.open(settings.db, durable=settings.durable, idle_writer=idle_writer)
        if idle_writer and not store.idle_writer:
            log.warning("HC_IDLE_WRITER: this system refused idle CPU priority; the writer flushes at normal priority")
        index = Index(KeyHasher(await store.secret()))
        report = await recover(store, index)
        for record in report.channels:
            channel = Channel.from_record(record)
            index.channels[channel.id] = channel
        recorder = WriteBehind(
            store,
            flush_interval_ms=settings.flush_interval_ms,
            flush_batch=settings.flush_batch,
            max_pending=settings.max_pending,
            max_pending_bytes=settings.max_pending_bytes,
            ping_log_limit=settings.ping_log_limit,
            durable=settings.durable,
            # With the HTTP server's 3 s to finish in-flight requests, a stop stays under 10 s
            # even when the disk is failing and the last flush cannot land.
            drain_timeout_s=4.0,
        )
        ctx = Context(settings=settings, index=index, recorder=recorder, clock=clock)
        ctx.health = lambda: _health(recorder)
        keys = ensure_project(ctx)

        scheduler = DeadlineScheduler(ctx)
        notifier = Notifier(ctx, alerts or AlertSettings.from_env(os.environ), backoff=alert_backoff)
        ctx.observers.extend([scheduler, notifier])
        scheduler.load(clock(), settings.restart_grace)
        recorder.start()
        notifier.resume(await load_notifications(store, PENDING))
        scheduler_task = asyncio.ensure_future(scheduler.run())

        # Everything recovered lives as long as the process: keep the collector from rescanning it.
        gc.collect()
        gc.freeze()
        server = HcServer(ctx)
        await server.listen()
        runtime = cls(ctx, server, store, recorder, scheduler, notifier, keys, scheduler_task)
        runtime._housekeeping_task = asyncio.ensure_future(_keep_gc_off_the_checks(index))
        return runtime

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, flush every change, close the store."""
        started = time.perf_counter()
        await self.server.stop(timeout=3.0)
        if self._housekeeping_task is not None:
            self._housekeeping_task.cancel()
        self.scheduler.stop()
        await self._scheduler_task
        await self.notifier.close()
        await self.recorder.close()
        await self.store.close()
        log.info("stopped in %.2f s", time.perf_counter() - started)


async def _keep_gc_off_the_checks(index: Index, every: float = 5.0) -> None:
    """Freeze the heap again once the number of checks has grown by a quarter since the last time.

    A full collection walks every tracked object, checks included: at 100k checks that was a pause
    of up to ~200 ms in the middle of pings. Frozen objects are not walked. Freezing happens right
    after a full collection, and only as the fleet grows, so garbage cycles are not frozen in with
    the checks.
    """
    frozen_at = len(index.checks)
    while True:
        await asyncio.sleep(every)
        if len(index.checks) > frozen_at * 1.25 + 1000:
            gc.collect()
            gc.freeze()
            frozen_at = len(index.checks)
            log.info("gc: froze the heap at %d checks", frozen_at)


def _health(recorder: WriteBehind) -> str | None:
    status = recorder.status()
    if status.get("ok", True):
        return None
    return f"the store is failing: {status.get('error') or 'unknown error'}"
