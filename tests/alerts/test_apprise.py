from __future__ import annotations

import json
import sys

import pytest

from hcserver.alerts.channels import Channel
from hcserver.alerts.results import DeliveryResult
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.transports import deliver
from tests.alerts.helpers import Receiver, make_ctx, run


def apprise_channel(url: str) -> Channel:
    return Channel.create("p", {"kind": "apprise", "url": url}, now=0.0)


def test_missing_apprise_is_a_permanent_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import apprise` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "apprise", None)
    result = run(deliver(apprise_channel("json://example.org/"), make_ctx(), AlertSettings()))
    assert result == DeliveryResult(ok=False, permanent=True, error="apprise is not installed")


def test_json_notification_reaches_the_receiver() -> None:
    pytest.importorskip("apprise")

    async def scenario() -> None:
        async with Receiver() as rx:
            ch = apprise_channel(f"json://127.0.0.1:{rx.port}/status/200")
            result = await deliver(ch, make_ctx(), AlertSettings(allow_private=True, timeout=3.0))
            assert result == DeliveryResult(ok=True)
            (req,) = rx.requests
            payload = json.loads(req.body)
            assert payload["title"] == "DOWN | Nightly backup"
            assert 'The check "Nightly backup" is DOWN.' in payload["message"]
            assert payload["type"] == "failure"

    run(scenario())


def test_failed_notification() -> None:
    pytest.importorskip("apprise")

    async def scenario() -> None:
        async with Receiver() as rx:
            ch = apprise_channel(f"json://127.0.0.1:{rx.port}/status/500")
            result = await deliver(ch, make_ctx(status="up"), AlertSettings(allow_private=True, timeout=3.0))
            assert result == DeliveryResult(ok=False, error="Apprise could not deliver the notification")

    run(scenario())


def test_private_json_target_refused() -> None:
    pytest.importorskip("apprise")

    async def scenario() -> None:
        async with Receiver() as rx:
            ch = apprise_channel(f"json://127.0.0.1:{rx.port}/status/200")
            result = await deliver(ch, make_ctx(), AlertSettings(timeout=1.0))
            assert result == DeliveryResult(
                ok=False, permanent=True, error="Refusing to connect to a private address 127.0.0.1"
            )
            assert rx.requests == []

    run(scenario())


def test_url_apprise_does_not_know() -> None:
    pytest.importorskip("apprise")
    result = run(deliver(apprise_channel("nosuchservice://x/y"), make_ctx(), AlertSettings()))
    assert result == DeliveryResult(ok=False, permanent=True, error="Invalid Apprise URL")
