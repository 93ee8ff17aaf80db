"""The server's own metrics, in the Prometheus text format, for `GET /metrics`.

What is counted where requests pass is counted with plain integers (a dict entry or an attribute
incremented by the code that sees the event: the HTTP layer, the Pinger, the notifier); nothing is
formatted, locked or allocated there. `ServerMetrics.render()` reads those numbers, the
write-behind's `status()` and a few gauges when a scraper asks, and writes the text.

    metrics = ServerMetrics(ctx, server=server, notifier=notifier, recorder=recorder)
    metrics.start()             # the event-loop lag sampler
    text = metrics.render()     # "# HELP hcserver_pings_total ..."
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from hcserver.domain.checks import DOWN, GRACE, NEW, PAUSED, STARTED, UP
from persistence.stats import FlushStats

if TYPE_CHECKING:
    from hcserver.app import HcServer
    from hcserver.context import Context
    from hcserver.notify import Notifier
    from persistence.store import Store

# Seconds; the upper bounds of the histograms' buckets (+Inf is added).
FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# How often the event-loop lag is sampled: a timer that fires late by the time the loop was busy.
LOOP_LAG_EVERY_S = 0.5
_STATUSES = (NEW, UP, GRACE, DOWN, PAUSED, STARTED)


def version() -> str:
    try:
        return metadata.version("hcserver")
    except metadata.PackageNotFoundError:
        return "unknown"


class Histogram:
    """Cumulative bucket counts, their sum and count, as Prometheus histograms expose them.

    >>> h = Histogram((0.1, 1.0))
    >>> h.observe(0.05); h.observe(0.5); h.observe(7.0)
    >>> h.counts, h.count, h.total
    ([1, 1, 1], 3, 7.55)
    """

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, not yet cumulative; the last is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += times
        self.count += times
        self.total += value * times

    def observe_ages(self, times: list[float], now: float) -> None:
        """Observe `now - t` for every t of `times`, which are in ascending order (oldest first): a
        bisection per bucket instead of a step per value."""
        n = len(times)
        if not n:
            return
        below = 0
        for i, bound in enumerate(self.bounds):
            within = n - bisect_left(times, now - bound)  # ages <= bound
            self.counts[i] += within - below
            below = within
        self.counts[-1] += n - below
        self.count += n
        self.total += now * n - sum(times)

    def lines(self, name: str) -> Iterable[str]:
        cumulative = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            yield f'{name}_bucket{{le="{_number(bound)}"}} {cumulative}'
        yield f"{name}_sum {_number(self.total)}"
        yield f"{name}_count {self.count}"


class MeteredFlushStats(FlushStats):
    """The write-behind's flush statistics, plus histograms of flush durations and commit lags."""

    __slots__ = ("commit_lag", "flush_duration")

    def __init__(self) -> None:
        super().__init__()
        self.flush_duration = Histogram(FLUSH_BUCKETS)
        self.commit_lag = Histogram(LAG_BUCKETS)

    def committed(self, rows: int, accepted: list[float], started: float, committed: float) -> None:
        super().committed(rows, accepted, started, committed)
        self.flush_duration.observe(max(0.0, committed - started))
        self.commit_lag.observe_ages(accepted, committed)


class LoopLag:
    """Samples how late a timer fires on the event loop: the time the loop was busy with other work."""

    def __init__(self, every: float = LOOP_LAG_EVERY_S) -> None:
        self.every = every
        self.histogram = Histogram(LOOP_LAG_BUCKETS)
        self.last = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            before = clock()
            await asyncio.sleep(self.every)
            self.last = max(0.0, clock() - before - self.every)
            self.histogram.observe(self.last)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def resident_bytes() -> int:
    """The process's resident set size (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class ServerMetrics:
    """Everything `GET /metrics` shows, read when it is asked for."""

    def __init__(
        self,
        ctx: Context,
        *,
        server: HcServer,
        notifier: Notifier | None = None,
        recorder: Any = None,
        recovery_s: float = 0.0,
        store: Store | None = None,
    ) -> None:
        self.ctx = ctx
        self.server = server
        self.notifier = notifier
        self.recorder = recorder
        self.recovery_s = recovery_s
        self.store = store
        self.loop_lag = LoopLag()
        self.version = version()

    def start(self) -> None:
        self.loop_lag.start()

    async def stop(self) -> None:
        await self.loop_lag.stop()

    def render(self) -> str:
        out = _Text()
        ctx, http = self.ctx, self.server.http
        out.gauge("hcserver_info", "The server's version.", [({"version": self.version}, 1)])
        pings = http.pinger.kinds
        out.counter(
            "hcserver_pings_total",
            "Pings recorded, by the kind their URL asks for (success, start, fail, log).",
            [({"kind": kind}, pings[kind]) for kind in sorted(pings)],
        )
        answered = http.answered
        out.counter(
            "hcserver_ping_answers_total",
            "Answers on the ping path (refusals of malformed or oversized requests included), by status code.",
            [({"code": str(code)}, answered[code]) for code in sorted(answered)],
        )
        now = ctx.clock()
        statuses = dict.fromkeys(_STATUSES, 0)
        for check in ctx.index.checks.values():
            status = check.status_at(now)
            statuses[status] += 1
            if check.runs and status != DOWN:
                statuses[STARTED] += 1
        out.gauge(
            "hcserver_checks",
            "Checks by status now (started counts checks with a run open, whatever their status).",
            [({"status": s}, n) for s, n in statuses.items()],
        )
        out.gauge("hcserver_projects", "Projects.", [({}, len(ctx.index.projects))])
        notifier = self.notifier
        if notifier is not None:
            flips = notifier.flips
            out.counter(
                "hcserver_flips_total",
                "Status changes since the server started, by the status changed to.",
                [({"status": s}, flips[s]) for s in sorted(flips)],
            )
            outcomes = [({"kind": k, "outcome": "sent"}, n) for k, n in sorted(notifier.sent.items())]
            outcomes += [({"kind": k, "outcome": "failed"}, n) for k, n in sorted(notifier.failed.items())]
            out.counter(
                "hcserver_notifications_total",
                "Alert notifications that ended delivered (sent) or undelivered (failed), by channel kind.",
                outcomes,
            )
            out.counter(
                "hcserver_notification_attempts_failed_total",
                "Delivery attempts that failed, retried ones included, by channel kind.",
                [({"kind": k}, n) for k, n in sorted(notifier.failed_attempts.items())],
            )
        if self.recorder is not None:
            self._writebehind(out)
        connections = self.server.connections
        out.gauge("hcserver_open_connections", "Client connections open now.", [({}, connections.open)])
        out.counter(
            "hcserver_refused_connections_total",
            "Connections closed at once, past HC_MAX_CONNECTIONS.",
            [({}, connections.refused)],
        )
        out.histogram(
            "hcserver_event_loop_lag_seconds",
            f"How late a timer set every {LOOP_LAG_EVERY_S:g} s fired: the time the event loop was busy.",
            self.loop_lag.histogram,
        )
        out.gauge("hcserver_recovery_seconds", "Time the last start took to load the store.", [({}, self.recovery_s)])
        out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [({}, resident_bytes())])
        return out.text()

    def _writebehind(self, out: _Text) -> None:
        status = self.recorder.status()
        out.gauge("hcserver_store_ok", "1 while flushes succeed, 0 while they fail.", [({}, int(status["ok"]))])
        out.gauge(
            "hcserver_writebehind_pending",
            "Changes answered but not yet written to the store.",
            [({}, status["pending"])],
        )
        out.gauge(
            "hcserver_writebehind_pending_bytes",
            "Bytes of pings (bodies included) not yet written.",
            [({}, status["pending_bytes"])],
        )
        out.gauge(
            "hcserver_writebehind_oldest_pending_seconds",
            "Age of the oldest change not yet written: what a crash now would lose.",
            [({}, status["oldest_pending_age_ms"] / 1000)],
        )
        out.counter("hcserver_flushes_total", "Flushes committed.", [({}, status["flushes"])])
        out.counter("hcserver_flush_errors_total", "Flushes that failed.", [({}, status["flush_errors"])])
        if self.store is not None:
            out.counter(
                "hcserver_writer_restarts_total",
                "SQLite writer processes started again after one was lost.",
                [({}, self.store.writer_restarts)],
            )
        stats = getattr(self.recorder, "stats", None)
        if isinstance(stats, MeteredFlushStats):
            out.histogram(
                "hcserver_flush_duration_seconds",
                "Time from handing a flush to the writer to its commit.",
                stats.flush_duration,
            )
            out.histogram(
                "hcserver_commit_lag_seconds",
                "Time from answering a change to its commit.",
                stats.commit_lag,
            )


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def _family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def _samples(self, name: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def gauge(self, name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self._family(name, "gauge", help_text)
        self._samples(name, samples)

    def counter(self, name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self._family(name, "counter", help_text)
        self._samples(name, samples)

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        self._family(name, "histogram", help_text)
        self.lines.extend(histogram.lines(name))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def escape_label(value: str) -> str:
    """A label value as the text format writes it.

    >>> print(escape_label('a "b"\\\\c\\nd'))
    a \\"b\\"\\\\c\\nd
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if isinstance(value, int) or value == int(value):
        return str(int(value))
    return repr(float(value))
