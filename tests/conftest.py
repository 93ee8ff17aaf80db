"""Shared fixtures: a real hcserver on an unused loopback port, driven over HTTP.

The server runs in a background thread with its own event loop, so tests stay plain synchronous
functions that talk HTTP (httpx). Its clock is a `FakeClock` the test moves by hand. `start_server`
serves either the HTTP front end over a `MemoryRecorder` (the `live` fixture) or, given alert
settings, the whole `Runtime` with its store, scheduler and notifier (the integration tests).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hcserver.alerts.settings import AlertSettings
from hcserver.app import HcServer, ensure_project
from hcserver.config import Settings
from hcserver.context import Context
from hcserver.domain.index import Index
from hcserver.domain.projects import KeyHasher
from hcserver.runtime import Runtime
from tests.fakes import FakeClock, MemoryRecorder

API_KEY = "hcw_" + "a" * 28
READONLY_KEY = "hcr_" + "b" * 28
PING_KEY = "pingkey000000000000000"
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@dataclass
class LiveServer:
    ctx: Context
    server: HcServer
    loop: asyncio.AbstractEventLoop
    clock: FakeClock
    host: str = "127.0.0.1"
    runtime: Runtime | None = None  # the whole server, when started with alert settings
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=10)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server.port}"

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop (to touch server state safely) and return its result."""
        done = threading.Event()
        box: list[Any] = []

        def run() -> None:
            box.append(fn())
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(5)
        return box[0]

    def advance(self, seconds: float) -> None:
        """Move the clock and, in a whole server, let the scheduler look at it."""
        self.clock.advance(seconds)
        if self.runtime is not None:
            self.call(self.runtime.scheduler.poke)

    # -- API helpers ------------------------------------------------------------------------------

    def api(self, method: str, path: str, key: str = API_KEY, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if key:
            headers.setdefault("X-Api-Key", key)
        return self.client.request(method, "/api/v3/" + path.lstrip("/"), headers=headers, **kwargs)

    def create(self, **fields: Any) -> dict[str, Any]:
        r = self.api("POST", "checks/", json=fields)
        assert r.status_code == 201, r.text
        return r.json()

    def get_check(self, uuid: str) -> dict[str, Any]:
        r = self.api("GET", f"checks/{uuid}")
        assert r.status_code == 200, r.text
        return r.json()

    def ping(self, path: str, method: str = "GET", **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)


def start_server(
    settings: Settings, clock: FakeClock, alerts: dict[str, str] | None = None
) -> tuple[LiveServer, Callable[[], None]]:
    """Serve in a thread with its own event loop; the second value stops it.

    Without `alerts`, the HTTP front end over a `MemoryRecorder`: no store, no scheduler. With
    `alerts` (environment variables for `AlertSettings`), the whole `Runtime` as `hcserver serve`
    runs it: the store at `settings.db`, write-behind, deadline scheduler and notifier.
    """
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def open_front_end() -> tuple[Context, HcServer, Callable[[], Awaitable[None]]]:
        ctx = Context(
            settings=settings,
            index=Index(KeyHasher(b"test-secret")),
            recorder=MemoryRecorder(settings.ping_log_limit),
            clock=clock,
        )
        ensure_project(ctx)
        server = HcServer(ctx)
        await server.listen()
        return ctx, server, lambda: server.stop(timeout=1)

    async def open_runtime(environ: dict[str, str]) -> tuple[Context, HcServer, Callable[[], Awaitable[None]]]:
        runtime = await Runtime.start(
            settings, alerts=AlertSettings.from_env(environ), clock=clock, alert_backoff=(0.05, 0.05)
        )
        holder["runtime"] = runtime
        return runtime.ctx, runtime.server, runtime.stop

    def main() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        opening = open_front_end() if alerts is None else open_runtime(alerts)
        ctx, server, close = loop.run_until_complete(opening)
        holder.update(ctx=ctx, server=server, loop=loop)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(close())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10), "server did not start"
    live = LiveServer(
        holder["ctx"], holder["server"], holder["loop"], clock, host=settings.host, runtime=holder.get("runtime")
    )

    def stop() -> None:
        live.client.close()
        live.loop.call_soon_threadsafe(live.loop.stop)
        thread.join(10)

    return live, stop


def make_settings(**overrides: Any) -> Settings:
    base = Settings(
        host="127.0.0.1",
        port=0,
        api_key=API_KEY,
        api_key_readonly=READONLY_KEY,
        ping_key=PING_KEY,
        site_root="http://hc.test",
    )
    return base.replace(**overrides)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def live(settings: Settings, clock: FakeClock) -> Iterator[LiveServer]:
    server, stop = start_server(settings, clock)
    try:
        yield server
    finally:
        stop()
