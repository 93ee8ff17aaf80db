"""The live-update hub on its own: observer only while pages are open, changes coalesced per pass."""

from __future__ import annotations

import asyncio
import json

from hcserver.config import Settings
from hcserver.context import Context
from hcserver.domain.index import Index
from hcserver.domain.pings import PingRequest
from hcserver.domain.projects import KeyHasher
from hcserver.services import new_check
from hcserver.web import dashboard_live
from hcserver.web.dashboard import render_row
from hcserver.web.dashboard_live import Hub
from tests.fakes import FakeClock, MemoryRecorder


class FakeStream:
    def __init__(self):
        self.messages = []

    def send(self, data, done):
        self.messages.append(json.loads(data))
        done(True)


def make_hub(n_checks):
    clock = FakeClock(1_700_000_000.0)
    ctx = Context(settings=Settings(), index=Index(KeyHasher(b"s")), recorder=MemoryRecorder(), clock=clock)
    checks = [new_check("p", clock(), name=f"check {i}") for i in range(n_checks)]
    for check in checks:
        ctx.index.checks[check.uuid] = check
    return ctx, Hub(ctx, render_row), checks


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 10))


def test_no_page_no_observer():
    async def main():
        ctx, hub, checks = make_hub(3)
        assert hub not in ctx.observers
        sub = hub.subscribe("p", False, checks, ctx.clock())
        assert ctx.observers == [hub]
        sub.detached_at -= dashboard_live.KEEP_S + 1
        hub._sweep()
        assert ctx.observers == []

    run(main())


def test_changes_are_coalesced_into_one_message_per_pass():
    async def main():
        ctx, hub, checks = make_hub(10)
        sub = hub.subscribe("p", False, checks, ctx.clock())
        stream = FakeStream()
        assert hub.attach(sub.token, "p", False, stream) is sub
        for _ in range(100):
            for check in checks:
                check.ping(PingRequest(action="success", method="GET"), ctx.clock())
                ctx.check_changed(check)
        await asyncio.sleep(dashboard_live.INTERVAL_S * 2)
        assert len(stream.messages) == 1
        message = stream.messages[0]
        assert sorted(message["rows"]) == sorted(c.uuid for c in checks)
        assert all(state[0] == "up" for state in message["rows"].values())
        assert message["html"] == {} and message["gone"] == []

    run(main())


def test_a_change_is_noted_once_however_many_pages_show_it_and_each_page_gets_it():
    async def main():
        ctx, hub, checks = make_hub(3)
        streams = []
        for _ in range(20):
            sub = hub.subscribe("p", False, checks, ctx.clock())
            streams.append(FakeStream())
            hub.attach(sub.token, "p", False, streams[-1])
        checks[1].ping(PingRequest(action="success", method="GET"), ctx.clock())
        ctx.check_changed(checks[1])
        # One set for the project, none per page, until the pass hands it out.
        assert hub.changed == {"p": {checks[1].uuid}}
        assert all(not s.pending for s in hub.subscriptions.values())
        await asyncio.sleep(dashboard_live.INTERVAL_S * 2)
        assert all([list(m["rows"]) for m in stream.messages] == [[checks[1].uuid]] for stream in streams)

    run(main())


def test_a_renamed_check_is_sent_as_a_whole_row_and_a_deleted_one_as_gone():
    async def main():
        ctx, hub, checks = make_hub(2)
        sub = hub.subscribe("p", True, checks, ctx.clock())
        stream = FakeStream()
        hub.attach(sub.token, "p", True, stream)
        checks[0].name = "<b>renamed</b>"
        ctx.check_changed(checks[0])
        del ctx.index.checks[checks[1].uuid]
        hub.check_deleted(checks[1])
        await asyncio.sleep(dashboard_live.INTERVAL_S * 2)
        (message,) = stream.messages
        key = checks[0].unique_key  # a read-only page never sees a uuid
        assert list(message["html"]) == [key]
        assert "&lt;b&gt;renamed&lt;/b&gt;" in message["html"][key]
        assert checks[0].uuid not in message["html"][key]
        assert message["gone"] == [checks[1].unique_key]

    run(main())


def test_other_projects_changes_are_not_sent():
    async def main():
        ctx, hub, checks = make_hub(1)
        sub = hub.subscribe("other", False, [], ctx.clock())
        stream = FakeStream()
        hub.attach(sub.token, "other", False, stream)
        ctx.check_changed(checks[0])
        await asyncio.sleep(dashboard_live.INTERVAL_S * 2)
        assert stream.messages == []
        assert hub.attach(sub.token, "p", False, FakeStream()) is None  # a token is bound to its project

    run(main())


def test_pages_that_never_connect_are_not_kept_without_bound():
    async def main():
        ctx, hub, checks = make_hub(1)
        first = hub.subscribe("p", False, checks, ctx.clock())
        for _ in range(dashboard_live.MAX_WAITING):
            hub.subscribe("p", False, checks, ctx.clock())
        assert len(hub.subscriptions) == dashboard_live.MAX_WAITING
        assert first.token not in hub.subscriptions

    run(main())
