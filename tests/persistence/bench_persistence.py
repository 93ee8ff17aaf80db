"""Measure the write-behind's flush throughput and the startup recovery time (not a test).

    .venv/bin/python -m tests.persistence.bench_persistence [--checks 100000] [--pings 1000000] [--db PATH]

Builds a database through `WriteBehind` (the flush numbers), closes it, drops nothing from the OS
cache, then times `recover()` into a fresh `Index` as the server does at startup.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid

from hcserver.domain.checks import Check
from hcserver.domain.index import Index
from hcserver.domain.pings import PingRequest
from hcserver.domain.projects import KeyHasher, Project
from persistence.recovery import recover
from persistence.store import Store
from persistence.writebehind import WriteBehind


async def build(path: str, n_checks: int, n_pings: int, batch: int) -> None:
    store = await Store.open(path)
    wb = WriteBehind(store, flush_batch=batch, max_pending=10**9)
    projects = [Project(f"p{i}", f"Project {i}", 0.0, os.urandom(32), os.urandom(32)) for i in range(10)]
    for p in projects:
        wb.project_changed(p)
    checks = []
    for i in range(n_checks):
        c = Check(
            uuid=str(uuid.uuid4()),
            project_id=projects[i % 10].id,
            created=1.7e9,
            name=f"check {i}",
            slug=f"check-{i}",
            tags="prod db",
            timeout=3600,
            grace=600,
        )
        checks.append(c)
        wb.check_changed(c)
    t = time.perf_counter()
    await wb.flush_once()
    print(f"wrote {n_checks} checks in {time.perf_counter() - t:.2f} s")

    req = PingRequest(action="success", method="GET", remote_addr="10.0.0.1", ua="curl/8.5.0", body=b"ok")
    per_check = max(1, n_pings // n_checks)
    written = 0
    flush_s = 0.0
    now = 1.7e9
    t_all = time.perf_counter()
    for _round in range(per_check):
        for c in checks:
            now += 0.001
            ping, flip = c.ping(req, now)
            wb.ping_recorded(c, ping, flip)
            written += 1
            if written % batch == 0:
                t = time.perf_counter()
                await wb.flush_once()
                flush_s += time.perf_counter() - t
    t = time.perf_counter()
    await wb.flush_once()
    flush_s += time.perf_counter() - t
    total = time.perf_counter() - t_all
    print(
        f"{written} pings in batches of {batch}: flush time {flush_s:.2f} s = {written / flush_s:,.0f} pings/s "
        f"(each flush also rewrites the snapshot of every check it touched); "
        f"with recording {written / total:,.0f} pings/s; status {wb.status()}"
    )
    await wb.close()


async def measure_recovery(path: str) -> None:
    for _ in range(2):
        store = await Store.open(path)
        index = Index(KeyHasher(await store.secret()))
        t = time.perf_counter()
        report = await recover(store, index)
        elapsed = time.perf_counter() - t
        await store.close()
        print(f"recovery: {report} (measured {elapsed:.3f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--pings", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or os.path.join(tmp, "bench.db")
        if not os.path.exists(path):
            asyncio.run(build(path, args.checks, args.pings, args.batch))
        print(f"database size {os.path.getsize(path) / 1e6:.0f} MB")
        asyncio.run(measure_recovery(path))


if __name__ == "__main__":
    main()
