"""The composition root: open the store, recover, start the background tasks, serve; and stop.

    runtime = await Runtime.start(settings)
    ...
    await runtime.stop()     # stop accepting, answer what is in flight, flush, close

Startup loads everything into the index before the server listens, so the first request already
sees every check. A start that fails stops what it had started (the writer process, the store's
reader thread, alert deliveries, the listening sockets) before the error goes up, so the process can
exit at once; an error the operator can fix comes as one of `STARTUP_ERRORS`, whose message says
what is wrong and what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import socket
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
from hcserver.metrics import MeteredFlushStats, ServerMetrics
from hcserver.notify import PENDING, Notifier
from hcserver.scheduler import DeadlineScheduler
from persistence.recovery import load_notifications, recover
from persistence.store import SchemaTooNew, Store, StoreInUse, StoreUnusable
from persistence.writebehind import WriteBehind

log = logging.getLogger("hcserver")


class StartupError(RuntimeError):
    """The server cannot start for a reason outside the store (the port, the --db directory, the TLS
    files); the message says what is wrong and what to do."""


# Errors that stop a start for a reason the operator can fix: `hcserver serve` prints their message
# as one line and exits with status 2.
STARTUP_ERRORS = (StartupError, StoreInUse, StoreUnusable, SchemaTooNew)


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
    metrics: ServerMetrics | None = None
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
        """Open the store, recover, listen, start the background tasks. If a step fails, what the
        steps before it started is stopped again, in reverse order, before the error is raised."""
        async with contextlib.AsyncExitStack() as undo:
            runtime = await cls._start(settings, undo, alerts=alerts, clock=clock, alert_backoff=alert_backoff)
            undo.pop_all()  # started: from now on `stop` ends it all
        return runtime

    @classmethod
    async def _start(
        cls,
        settings: Settings,
        undo: contextlib.AsyncExitStack,
        *,
        alerts: AlertSettings | None,
        clock: Callable[[], float],
        alert_backoff: tuple[float, ...],
    ) -> Runtime:
        if settings.db != ":memory:":
            directory = os.path.dirname(os.path.abspath(settings.db))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                # makedirs says "File exists" when the directory's name is taken by a file.
                why = "a file has that name" if isinstance(exc, FileExistsError) else exc.strerror
                raise StartupError(
                    f"cannot make the directory {directory} for --db {settings.db} ({why}): point --db (HC_DB) "
                    "at a file in a directory this user can write to"
                ) from None
        idle_writer = settings.idle_writer and not settings.durable
        store = await Store.open(
            settings.db, durable=settings.durable, idle_writer=idle_writer, ping_log_limit=settings.ping_log_limit
        )
        undo.push_async_callback(store.close)
        if idle_writer and not store.idle_writer:
            log.warning("HC_IDLE_WRITER: this system refused idle CPU priority; the writer flushes at normal priority")
        loading = time.perf_counter()
        index = Index(KeyHasher(await store.secret()))
        report = await recover(store, index, ping_log_limit=settings.ping_log_limit)
        for record in report.channels:
            channel = Channel.from_record(record)
            index.channels[channel.id] = channel
        notifications = await load_notifications(store, PENDING)
        recovery_s = time.perf_counter() - loading
        recorder = WriteBehind(
            store,
            flush_interval_ms=settings.flush_interval_ms,
            flush_batch=settings.flush_batch,
            max_pending=settings.max_pending,
            max_pending_bytes=settings.max_pending_bytes,
            max_pending_age_ms=settings.max_pending_age_ms,
            ping_log_limit=settings.ping_log_limit,
            durable=settings.durable,
            # With the HTTP server's 3 s to finish in-flight requests, a stop stays under 10 s
            # even when the disk is failing or hanging and the last flush cannot land.
            drain_timeout_s=4.0,
            # The flush statistics, with the histograms /metrics shows.
            stats=MeteredFlushStats(),
        )
        ctx = Context(settings=settings, index=index, recorder=recorder, clock=clock)
        keys = ensure_project(ctx)

        scheduler = DeadlineScheduler(ctx)
        notifier = Notifier(ctx, alerts or AlertSettings.from_env(os.environ), backoff=alert_backoff)
        undo.push_async_callback(notifier.close)  # deliveries queued below have not run yet
        ctx.observers.extend([scheduler, notifier])
        scheduler.load(clock(), settings.restart_grace)
        notifier.resume(notifications)

        # Everything recovered lives as long as the process: keep the collector from rescanning it.
        gc.collect()
        gc.freeze()
        try:
            server = HcServer(ctx)
        except OSError as exc:  # ssl.SSLError is one
            raise StartupError(
                f"cannot load the TLS certificate --certfile {settings.certfile} (--keyfile "
                f"{settings.keyfile or 'in the same file'}): {exc}"
            ) from None
        await _listen(server)
        if settings.port == 0:
            # URLs the API prints (ping_url, badges) name the port the system chose.
            ctx.settings = settings.with_bound_port(server.port)
        undo.push_async_callback(server.stop, 1.0)
        # The recorder starts flushing only now that the server listens: a start that failed has
        # written nothing, such as a project made for it whose keys were never shown. Nothing below
        # awaits, so no request is answered before the tasks run.
        recorder.start()
        scheduler_task = asyncio.ensure_future(scheduler.run())
        runtime = cls(ctx, server, store, recorder, scheduler, notifier, keys, scheduler_task)
        runtime._housekeeping_task = asyncio.ensure_future(_keep_gc_off_the_checks(index))
        runtime.metrics = metrics = ServerMetrics(
            ctx,
            server=server,
            notifier=notifier,
            recorder=recorder,
            recovery_s=recovery_s,
            store=store,
        )
        server.app.settings["metrics"] = metrics
        metrics.start()
        return runtime

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, flush every change, close the store."""
        started = time.perf_counter()
        await self.server.stop(timeout=3.0)
        if self._housekeeping_task is not None:
            self._housekeeping_task.cancel()
        if self.metrics is not None:
            await self.metrics.stop()
        self.scheduler.stop()
        await self._scheduler_task
        await self.notifier.close()
        await self.recorder.close()
        await self.store.close()
        log.info("stopped in %.2f s", time.perf_counter() - started)


async def _listen(server: HcServer) -> None:
    """`server.listen()`; when the system refuses, a StartupError says why and what to do."""
    host, port = server.ctx.settings.host, server.ctx.settings.port
    try:
        await server.listen()
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {host!r}: {exc.strerror}; check --host (HC_HOST)") from None
    except OSError as exc:
        advice = {
            errno.EADDRINUSE: "another program (another hcserver?) is using it: stop that program, or choose "
            "another --port (HC_PORT)",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this machine: choose another --host (HC_HOST)",
            errno.EACCES: "ports below 1024 need privileges: choose another --port (HC_PORT), or put a reverse "
            "proxy in front",
        }.get(exc.errno or 0, "check --host and --port (HC_HOST, HC_PORT)")
        raise StartupError(f"cannot listen on {host} port {port} ({exc.strerror}): {advice}") from None


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
