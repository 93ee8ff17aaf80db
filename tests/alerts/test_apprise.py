from __future__ import annotations

import json
import sys

import pytest

from hcserver.alerts.channels import Channel
from hcserver.alerts.results import DeliveryResult
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.targets import apprise_hosts, load_apprise_plugin
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


# -- the private-address rule for every scheme that names a host ------------------------------------

REFUSED_AT_DELIVERY = [
    ("ntfy://10.0.0.5/backups", "10.0.0.5"),
    ("ntfys://ntfy.internal/backups", "10.0.0.5"),
    ("gotify://gotify.internal/AbCdEf123456", "10.0.0.5"),
    ("gotify://[fe80::1]/AbCdEf123456", "fe80::1"),
    ("mmost://169.254.169.254/3ccdd113474722377935511fc85d3dd4", "169.254.169.254"),
    ("mmosts://chat.internal:8065/3ccdd113474722377935511fc85d3dd4", "10.0.0.5"),
    ("json://hooks.internal/alert", "10.0.0.5"),
    ("xml://[::ffff:169.254.169.254]/alert", "::ffff:a9fe:a9fe"),
    ("mailto://ops:secret@example.org?smtp=10.0.0.25&to=oncall@example.org", "10.0.0.25"),
    ("zulip://alerts@chat.internal/" + "a" * 32, "10.0.0.5"),
]


@pytest.mark.parametrize(("url", "address"), REFUSED_AT_DELIVERY)
def test_private_hosts_refused_before_any_connection(url, address, fake_dns, outside_connections) -> None:
    pytest.importorskip("apprise")
    for name in ("ntfy.internal", "gotify.internal", "chat.internal", "hooks.internal", "chat.internal.zulipchat.com"):
        fake_dns.answers[name] = [["10.0.0.5"]]
    result = run(deliver(apprise_channel(url), make_ctx(), AlertSettings(timeout=3.0)))
    assert result == DeliveryResult(
        ok=False, permanent=True, error=f"Refusing to connect to a private address {address}"
    )
    assert outside_connections.attempts == []


def test_loopback_ntfy_refused_and_its_receiver_sees_nothing(outside_connections) -> None:
    pytest.importorskip("apprise")

    async def scenario() -> None:
        async with Receiver() as rx:
            result = await deliver(apprise_channel(f"ntfy://127.0.0.1:{rx.port}/backups"), make_ctx(), AlertSettings())
            assert result == DeliveryResult(
                ok=False, permanent=True, error="Refusing to connect to a private address 127.0.0.1"
            )
            assert rx.requests == []

    run(scenario())


def test_a_name_that_turns_private_after_the_check_is_refused_at_connect(fake_dns, outside_connections) -> None:
    pytest.importorskip("apprise")

    async def scenario() -> None:
        async with Receiver() as rx:
            # The check before sending sees a public address (never connected to); Apprise's own
            # lookup then gets loopback, where the receiver listens: the guard refuses that connection.
            fake_dns.answers["rebind.test"] = [["93.184.216.34"], ["127.0.0.1"]]
            ch = apprise_channel(f"json://rebind.test:{rx.port}/status/200")
            result = await deliver(ch, make_ctx(), AlertSettings(timeout=3.0))
            assert result == DeliveryResult(
                ok=False, permanent=True, error="Refusing to connect to a private address 127.0.0.1"
            )
            assert rx.requests == []
            assert fake_dns.lookups.count("rebind.test") >= 2

    run(scenario())


def test_hosted_services_name_no_host_to_look_up(fake_dns, outside_connections) -> None:
    apprise = pytest.importorskip("apprise")
    for url in [
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        "tgram://123456789:abcdefg_hijklmnop/12315544",
        "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
        "ntfy://backups",  # the public ntfy.sh: the "host" is the topic
        "mailgun://alerts@mail.internal/key-abcdef0123456789",  # the sender's domain, not a server
    ]:
        plugin = load_apprise_plugin(url)
        assert isinstance(plugin, apprise.plugins.NotifyBase), url
        assert apprise_hosts(url, plugin) == [], url
    assert fake_dns.lookups == []


def test_with_private_addresses_allowed_a_loopback_ntfy_gets_the_alert() -> None:
    pytest.importorskip("apprise")

    async def scenario() -> None:
        async with Receiver() as rx:
            ch = apprise_channel(f"ntfy://127.0.0.1:{rx.port}/backups")
            result = await deliver(ch, make_ctx(), AlertSettings(allow_private=True, timeout=3.0))
            assert result == DeliveryResult(ok=True)
            (req,) = rx.requests
            assert (req.method, req.path) == ("POST", "/")
            payload = json.loads(req.body)
            assert (payload["topic"], payload["title"]) == ("backups", "DOWN | Nightly backup")

    run(scenario())
