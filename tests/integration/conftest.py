"""The whole server (real SQLite store, scheduler, notifier) in a thread, with a fake clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hcserver.alerts.settings import AlertSettings
from hcserver.runtime import Runtime
from tests.alerts.helpers import smtp_server
from tests.conftest import FakeClock, LiveServer, make_settings
from tests.integration.receiver import Receiver

__all__ = ["smtp_server"]


class LiveRuntime(LiveServer):
    runtime: Runtime

    def advance(self, seconds: float) -> None:
        """Move the clock and let the scheduler look at it."""
        self.clock.advance(seconds)
        self.call(self.runtime.scheduler.poke)


def start_runtime(settings: Any, clock: FakeClock, environ: dict[str, str]) -> tuple[LiveRuntime, Any]:
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def main() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        runtime = loop.run_until_complete(
            Runtime.start(settings, alerts=AlertSettings.from_env(environ), clock=clock, alert_backoff=(0.05, 0.05))
        )
        holder.update(runtime=runtime, loop=loop)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runtime.stop())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10), "server did not start"
    runtime = holder["runtime"]
    live = LiveRuntime(runtime.ctx, runtime.server, holder["loop"], clock)
    live.runtime = runtime

    def stop() -> None:
        live.client.close()
        live.loop.call_soon_threadsafe(live.loop.stop)
        thread.join(10)

    return live, stop


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    try:
        yield rx
    finally:
        rx.close()


@pytest.fixture
def alert_env() -> dict[str, str]:
    return {"INTEGRATIONS_ALLOW_PRIVATE_IPS": "1", "INTEGRATIONS_TIMEOUT": "3"}


@pytest.fixture
def full(tmp_path, clock, alert_env) -> Iterator[LiveRuntime]:
    live, stop = start_runtime(make_settings(db=str(tmp_path / "hc.sqlite3"), flush_interval_ms=20), clock, alert_env)
    try:
        yield live
    finally:
        stop()
