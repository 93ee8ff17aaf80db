from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from hcserver.alerts.channels import Channel
from hcserver.alerts.results import DeliveryResult
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.transports import deliver, is_noop
from tests.alerts.helpers import Receiver, make_ctx, run

ALLOW = AlertSettings(allow_private=True, timeout=2.0)


def webhook(**fields: Any) -> Channel:
    return Channel.create("p", {"kind": "webhook", **fields}, now=0.0, channel_id="hook")


def test_get_with_placeholders_url_encoded() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            ch = webhook(url_down=rx.url("/status/200?code=$CODE&name=$NAME&s=$STATUS&at=$NOW&t=$TAG2"))
            result = await deliver(ch, make_ctx(name="Backup & restore/1"), ALLOW)
            assert result == DeliveryResult(ok=True, permanent=False, error="")
            (req,) = rx.requests
            assert req.method == "GET"
            assert "name=Backup%20%26%20restore%2F1" in req.query
            assert parse_qs(req.query) == {
                "code": ["5d0b7e2c-5f27-4a5e-9b9e-8a4b1f2c3d4e"],
                "name": ["Backup & restore/1"],
                "s": ["down"],
                "at": ["2024-01-02T03:04:05+00:00"],
                "t": ["db"],
            }
            assert req.headers["User-Agent"] == "hcserver"

    run(scenario())


def test_post_body_and_headers_are_not_encoded() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            ch = webhook(
                url_down=rx.url("/status/201"),
                method_down="POST",
                body_down='{"check": $NAME_JSON, "body": $BODY_JSON, "exit": $EXITSTATUS, "raw": "$NAME"}',
                headers_down={"Content-Type": "application/json", "X-Check": "$NAME ($STATUS)"},
            )
            ctx = make_ctx(name="Backup & restore", body=b"\xffoops")
            assert (await deliver(ch, ctx, ALLOW)).ok
            (req,) = rx.requests
            assert req.method == "POST"
            assert json.loads(req.body) == {
                "check": "Backup & restore",
                "body": "\ufffdoops",
                "exit": 1,
                "raw": "Backup & restore",
            }
            assert req.headers["X-Check"] == "Backup & restore (down)"
            assert req.headers["Content-Type"] == "application/json"

    run(scenario())


def test_up_uses_the_up_target_and_a_missing_direction_is_a_no_op() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            ch = webhook(url_up=rx.url("/status/200?dir=up"), method_up="PUT", body_up="$STATUS")
            assert is_noop(ch, "down") and not is_noop(ch, "up")
            assert (await deliver(ch, make_ctx(status="down"), ALLOW)).ok
            assert rx.requests == []
            assert (await deliver(ch, make_ctx(status="up"), ALLOW)).ok
            (req,) = rx.requests
            assert (req.method, req.query, req.body) == ("PUT", "dir=up", b"up")

    run(scenario())


def test_get_ignores_the_body_template_and_user_agent_can_be_set() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            ch = webhook(url_down=rx.url("/status/204"), body_down="ignored", headers_down={"User-Agent": "custom"})
            assert (await deliver(ch, make_ctx(), ALLOW)).ok
            (req,) = rx.requests
            assert (req.body, req.headers["User-Agent"]) == (b"", "custom")

    run(scenario())


def test_server_errors_are_retryable_and_a_retry_succeeds() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            ch = webhook(url_down=rx.url("/flaky/2"))
            first = await deliver(ch, make_ctx(), ALLOW)
            second = await deliver(ch, make_ctx(), ALLOW)
            third = await deliver(ch, make_ctx(), ALLOW)
            assert first == second == DeliveryResult(ok=False, permanent=False, error="Received status code 500")
            assert third.ok
            assert len(rx.requests) == 3

    run(scenario())


def test_client_errors_are_permanent_except_408_and_429() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            outcomes = {}
            for code in (400, 404, 410, 408, 429, 503, 302):
                result = await deliver(webhook(url_down=rx.url(f"/status/{code}")), make_ctx(), ALLOW)
                outcomes[code] = (result.ok, result.permanent, result.error)
            assert outcomes == {
                400: (False, True, "Received status code 400"),
                404: (False, True, "Received status code 404"),
                410: (False, True, "Received status code 410"),
                408: (False, False, "Received status code 408"),
                429: (False, False, "Received status code 429"),
                503: (False, False, "Received status code 503"),
                # A redirect without a Location header cannot be followed.
                302: (False, False, "Received status code 302"),
            }

    run(scenario())


def test_redirects_followed_up_to_three() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            assert (await deliver(webhook(url_down=rx.url("/redirect/3")), make_ctx(), ALLOW)).ok
            result = await deliver(webhook(url_down=rx.url("/redirect/5")), make_ctx(), ALLOW)
            assert result == DeliveryResult(ok=False, permanent=False, error="Too many redirects")

    run(scenario())


def test_private_address_refused_by_default() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            ch = webhook(url_down=rx.url("/status/200"))
            result = await deliver(ch, make_ctx(), AlertSettings(timeout=1.0))
            assert result == DeliveryResult(
                ok=False, permanent=True, error="Refusing to connect to a private address 127.0.0.1"
            )
            assert rx.requests == []

    run(scenario())


def test_hanging_receiver_times_out() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            ch = webhook(url_down=rx.url("/hang"))
            started = time.monotonic()
            result = await deliver(ch, make_ctx(), ALLOW, timeout=0.3)
            elapsed = time.monotonic() - started
            assert result == DeliveryResult(ok=False, permanent=False, error="Connection timed out")
            assert 0.25 < elapsed < 1.0

    run(scenario())


def test_channel_records_the_outcome() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            ch = webhook(url_down=rx.url("/status/404"))
            ch.record_delivery(await deliver(ch, make_ctx(), ALLOW), now=10.0)
            assert (ch.last_notify, ch.last_error, ch.disabled) == (10.0, "Received status code 404", True)

    run(scenario())


def test_credentials_in_the_url_are_sent_as_basic_auth() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            base = f"127.0.0.1:{rx.port}/status/200"
            # A user name without a password: an empty password, as curl sends it.
            assert await deliver(webhook(url_down=f"http://user@{base}"), make_ctx(), ALLOW) == DeliveryResult(ok=True)
            # Percent-escapes in the user name and password are decoded first.
            assert (await deliver(webhook(url_down=f"http://us%40er:p%3As@{base}"), make_ctx(), ALLOW)).ok
            # An Authorization header of the user's own wins over the URL's credentials.
            ch = webhook(url_down=f"http://user:pw@{base}", headers_down={"Authorization": "Bearer t0ken"})
            assert (await deliver(ch, make_ctx(), ALLOW)).ok
            first, second, third = rx.requests
            assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"user:").decode()
            assert second.headers["Authorization"] == "Basic " + base64.b64encode(b"us@er:p:s").decode()
            assert third.headers["Authorization"] == "Bearer t0ken"
            assert {r.headers["Host"] for r in rx.requests} == {f"127.0.0.1:{rx.port}"}

    run(scenario())


def test_status_must_be_up_or_down() -> None:
    with pytest.raises(ValueError, match="not 'grace'"):
        run(deliver(webhook(url_down="http://e.org/"), make_ctx(status="grace"), ALLOW))
