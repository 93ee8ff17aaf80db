"""Drive the write-behind at a fixed ping rate, without HTTP, and measure what it costs (not a test).

    .venv/bin/python -m tests.persistence.drive_writebehind [--checks 100000] [--rate 40000] [--seconds 10]

A real Store (writer process, SQLite file in a temp dir) and a `WriteBehind` as the server makes
them; pings go through `Check.ping` and `WriteBehind.ping_recorded`, as `services.record_ping` does,
spread round-robin over the checks, in chunks of one millisecond's worth between turns of the loop.
Every loop and the final close are bounded in time.

Prints one JSON line: pings sent and rate reached; the writer process's CPU (utime + stime) per
1,000 pings and as a share of one core; the event loop's time in the write-behind task (every step
of it timed: per change, and the longest steps, i.e. the slices a request could wait behind);
commit lag p50/p99/max over every change; the oldest pending change's age, sampled every 50 ms
(p50/p99/max); and the time `close()` takes (the drain a SIGTERM runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Coroutine, Generator
from typing import Any

from hcserver.domain.checks import Check
from hcserver.domain.pings import PingRequest
from hcserver.domain.projects import Project
from persistence.stats import FlushStats
from persistence.store import Store
from persistence.writebehind import WriteBehind

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Timed:
    """Awaits a coroutine, timing each step it runs on the loop (from a resume to its next suspension)."""

    def __init__(self, coro: Coroutine[Any, Any, None]) -> None:
        self.coro = coro
        self.steps: list[float] = []

    def __await__(self) -> Generator[Any, Any, None]:
        value: Any = None
        error: BaseException | None = None
        while True:
            t = time.perf_counter()
            try:
                sent = self.coro.throw(error) if error is not None else self.coro.send(value)
            except StopIteration:
                self.steps.append(time.perf_counter() - t)
                return
            self.steps.append(time.perf_counter() - t)
            try:
                value, error = (yield sent), None
            except BaseException as exc:
                value, error = None, exc


class AllLags(FlushStats):
    """FlushStats that also keeps every change's commit lag."""

    __slots__ = ("every", "flush_ms")

    def __init__(self) -> None:
        super().__init__()
        self.every: list[float] = []
        self.flush_ms: list[float] = []

    def committed(self, rows: int, accepted: list[float], started: float, committed: float) -> None:
        super().committed(rows, accepted, started, committed)
        self.every.extend(committed - t for t in accepted)
        self.flush_ms.append((committed - started) * 1000)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(args: argparse.Namespace, path: str) -> dict[str, Any]:
    store = await Store.open(path, idle_writer=args.idle_writer)
    wb = WriteBehind(store, flush_interval_ms=args.interval_ms, drain_timeout_s=30.0)
    wb.stats = stats = AllLags()
    project = Project("p1", "Project", 0.0, os.urandom(32), os.urandom(32))
    wb.project_changed(project)
    checks = [
        Check(uuid=str(uuid.uuid4()), project_id="p1", created=1.7e9, name=f"check {i}", slug=f"check-{i}",
              tags="prod db", timeout=3600, grace=600)
        for i in range(args.checks)
    ]  # fmt: skip
    for c in checks:
        wb.check_changed(c)
    await wb.flush_once()
    pid = store.writer_pid
    assert pid is not None
    req = PingRequest(action="success", method="GET", remote_addr="127.0.0.1", ua="wrk")

    timed = Timed(wb.run())

    async def run_timed() -> None:
        await timed

    wb._task = asyncio.get_running_loop().create_task(run_timed())
    ages: list[float] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            ages.append(wb.status()["oldest_pending_age_ms"])
            await asyncio.sleep(0.05)

    sampler = asyncio.get_running_loop().create_task(sample())
    cpu0, steps0 = cpu_s(pid), len(timed.steps)
    t0 = time.perf_counter()
    sent = 0
    chunk = max(1, args.rate // 1000)
    n = len(checks)
    while (elapsed := time.perf_counter() - t0) < args.seconds:
        due = int(elapsed * args.rate) - sent
        if due <= 0:
            await asyncio.sleep(0.0005)
            continue
        now = time.time()
        for _ in range(min(due, chunk)):
            c = checks[sent % n]
            ping, flip = c.ping(req, now)
            wb.ping_recorded(c, ping, flip)
            sent += 1
        await asyncio.sleep(0)
    wall = time.perf_counter() - t0
    stop.set()
    await sampler
    flush_steps = timed.steps[steps0:]
    cpu1 = cpu_s(pid)
    t = time.perf_counter()
    await asyncio.wait_for(wb.close(), 30)
    close_s = time.perf_counter() - t
    writer_cpu = cpu1 - cpu0
    lags = stats.every
    return {
        "checks": args.checks,
        "rate": args.rate,
        "sent": sent,
        "reached_per_s": round(sent / wall),
        "writer_cpu_ms_per_1k": round(writer_cpu / sent * 1e6, 2),
        "writer_core_share": round(writer_cpu / wall, 3),
        "loop_flush_us_per_change": round(sum(flush_steps) / sent * 1e6, 2),
        "loop_flush_share": round(sum(flush_steps) / wall, 3),
        "flush_step_ms_p99_max": [round(pct(flush_steps, 0.99) * 1e3, 3), round(max(flush_steps) * 1e3, 3)],
        "commit_lag_ms_p50_p99_max": [round(pct(lags, q) * 1e3) for q in (0.5, 0.99, 1.0)],
        "oldest_pending_ms_p50_p99_max": [round(pct(ages, q)) for q in (0.5, 0.99, 1.0)],
        "flushes": stats.flushes,
        "flush_ms_p50_max": [round(pct(stats.flush_ms, q)) for q in (0.5, 1.0)],
        "close_s": round(close_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=40_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval-ms", type=int, default=100)
    parser.add_argument("--idle-writer", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(drive(args, os.path.join(tmp, "drive.db")))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
