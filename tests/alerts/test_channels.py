from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

from hcserver.alerts.channels import (
    AppriseSpec,
    Channel,
    ChannelInvalid,
    EmailSpec,
    WebhookSpec,
    WebhookTarget,
    parse_channel_body,
    parse_channel_spec,
)
from hcserver.alerts.results import DeliveryResult
from hcserver.views import channel_summary, channel_to_json

PREFIX = "json validation error: "


def invalid(kind: Any, body: dict[str, Any]) -> str:
    with pytest.raises(ChannelInvalid) as info:
        parse_channel_spec(kind, body)
    assert str(info.value) == info.value.message
    assert isinstance(info.value, ValueError)
    return info.value.message


# -- webhook ----------------------------------------------------------------------------------------


def test_webhook_defaults() -> None:
    spec = parse_channel_spec("webhook", {"url_down": "https://example.org/down"})
    assert spec == WebhookSpec(down=WebhookTarget(url="https://example.org/down"), up=WebhookTarget())
    assert isinstance(spec, WebhookSpec)
    assert spec.target("down").url == "https://example.org/down"
    assert spec.target("up").url == ""


def test_webhook_full() -> None:
    body = {
        "url_down": "http://example.org/$CODE?n=$NAME",
        "method_down": "POST",
        "body_down": '{"name": $NAME_JSON}',
        "headers_down": {"Content-Type": "application/json", "X-Token": "t"},
        "url_up": "https://example.org/up",
        "method_up": "PUT",
        "body_up": "",
        "headers_up": {},
    }
    spec = parse_channel_spec("webhook", body)
    assert isinstance(spec, WebhookSpec)
    assert spec.down.method == "POST"
    assert spec.down.headers == (("Content-Type", "application/json"), ("X-Token", "t"))
    assert spec.up == WebhookTarget(url="https://example.org/up", method="PUT")
    assert spec.to_record() == body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "url_down and url_up are both empty"),
        ({"url_down": "", "url_up": ""}, "url_down and url_up are both empty"),
        ({"url_down": 5}, "url_down is not a string"),
        ({"url_up": ["x"]}, "url_up is not a string"),
        ({"url_down": "http://e.org/" + "x" * 1000}, "url_down is too long"),
        ({"url_down": "ftp://e.org/"}, "url_down is not a valid URL"),
        ({"url_down": "e.org/hook"}, "url_down is not a valid URL"),
        ({"url_down": "http:///nohost"}, "url_down is not a valid URL"),
        ({"url_down": "http://e.org:99999/"}, "url_down is not a valid URL"),
        ({"url_down": "http://e.org/a b"}, "url_down is not a valid URL"),
        ({"url_down": "http://e.org/", "method_down": "DELETE"}, "method_down has unexpected value"),
        ({"url_down": "http://e.org/", "method_up": "get"}, "method_up has unexpected value"),
        ({"url_down": "http://e.org/", "method_down": 1}, "method_down is not a string"),
        ({"url_down": "http://e.org/", "body_down": {}}, "body_down is not a string"),
        ({"url_down": "http://e.org/", "body_up": "x" * 1001}, "body_up is too long"),
        ({"url_down": "http://e.org/", "headers_down": "X: y"}, "headers_down is not an object"),
        ({"url_down": "http://e.org/", "headers_up": {"X": 1}}, "a value in 'headers_up' is not a string"),
        (
            {"url_down": "http://e.org/", "headers_down": {"X": "a\r\nY: b"}},
            "a value in 'headers_down' has unexpected value",
        ),
        (
            {"url_down": "http://e.org/", "headers_down": {"Bad Name": "v"}},
            "a key in 'headers_down' has unexpected value",
        ),
        (
            {"url_down": "http://e.org/", "headers_down": {"X-Name\n": "v"}},
            "a key in 'headers_down' has unexpected value",
        ),
        ({"url_down": "http://e.org/", "headers_down": {"X": "v" * 1001}}, "a value in 'headers_down' is too long"),
    ],
)
def test_webhook_errors(body: dict[str, Any], message: str) -> None:
    assert invalid("webhook", body) == PREFIX + message


def test_webhook_null_fields_mean_defaults() -> None:
    spec = parse_channel_spec("webhook", {"url_up": "http://e.org/", "url_down": None, "headers_up": None})
    assert isinstance(spec, WebhookSpec)
    assert spec.down == WebhookTarget()


# -- email and apprise ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["alice@example.org", "a.b+tag@sub.example.co.uk", "root@localhost", "x@[10.0.0.1]"]
)
def test_email_accepts_plausible_addresses(address: str) -> None:
    assert parse_channel_spec("email", {"email": address}) == EmailSpec(email=address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "alice",
        "alice@",
        "@example.org",
        "a@b@example.org",
        "alice@example",
        "al ice@example.org",
        "alice@exa_mple.org",
        "alice@-example.org",
        "alice@example.123",
        ".alice@example.org",
        "a..b@example.org",
        "alice@example.org\nBcc: x@y.org",
        "a<b>@example.org",
        "alice@example.org\n",
        "alice\n@example.org",
        "ålice@example.org",
        "alice@exämple.org",
    ],
)
def test_email_refuses_implausible_addresses(address: str) -> None:
    assert invalid("email", {"email": address}) == PREFIX + "email is not a valid email address"


def test_email_other_errors() -> None:
    assert invalid("email", {}) == PREFIX + "key email absent in value"
    assert invalid("email", {"email": 42}) == PREFIX + "email is not a string"
    assert invalid("email", {"email": "a" * 250 + "@example.org"}) == PREFIX + "email is too long"


def test_apprise() -> None:
    url = "json://hooks.example.org/alerts"
    assert parse_channel_spec("apprise", {"url": url}) == AppriseSpec(url=url)
    assert invalid("apprise", {}) == PREFIX + "key url absent in value"
    assert invalid("apprise", {"url": None}) == PREFIX + "url is not a valid URL"
    assert invalid("apprise", {"url": "not a url"}) == PREFIX + "url is not a valid URL"
    assert invalid("apprise", {"url": "json://h/\n"}) == PREFIX + "url is not a valid URL"
    assert invalid("apprise", {"url": "json://" + "x" * 600}) == PREFIX + "url is too long"


@pytest.mark.parametrize("kind", ["slack", "", None, "WEBHOOK"])
def test_unknown_kind(kind: Any) -> None:
    assert invalid(kind, {"url_down": "http://e.org/"}) == PREFIX + "kind must be one of: apprise, email, webhook"


def test_kind_of_the_wrong_type() -> None:
    assert invalid(3, {}) == PREFIX + "kind is not a string"


# -- whole bodies and the entity --------------------------------------------------------------------


def test_body_needs_kind_and_checks_name() -> None:
    with pytest.raises(ChannelInvalid, match="key kind absent in value"):
        parse_channel_body({"name": "x", "email": "a@example.org"})
    with pytest.raises(ChannelInvalid, match="name is not a string"):
        parse_channel_body({"name": 1, "kind": "email", "email": "a@example.org"})
    with pytest.raises(ChannelInvalid, match="name is too long"):
        parse_channel_body({"name": "n" * 101, "kind": "email", "email": "a@example.org"})
    with pytest.raises(ChannelInvalid, match="value is not an object"):
        parse_channel_body(["kind", "email"])


def make_channel() -> Channel:
    body = {"name": "Ops hook", "kind": "webhook", "url_down": "http://e.org/down", "method_down": "POST"}
    return Channel.create("project-1", body, now=1000.0, channel_id="c-1")


def test_create() -> None:
    ch = make_channel()
    assert (ch.id, ch.project_id, ch.name, ch.kind, ch.created) == ("c-1", "project-1", "Ops hook", "webhook", 1000.0)
    assert (ch.last_notify, ch.last_error, ch.disabled) == (None, "", False)
    fresh = Channel.create("p", {"kind": "email", "email": "a@example.org"}, now=1.0)
    assert len(fresh.id) == 36 and fresh.name == ""


def test_update_keeps_what_the_body_leaves_out() -> None:
    ch = make_channel()
    ch.update({"url_up": "http://e.org/up"})
    assert isinstance(ch.spec, WebhookSpec)
    assert ch.spec.down == WebhookTarget(url="http://e.org/down", method="POST")
    assert ch.spec.up.url == "http://e.org/up"
    assert ch.name == "Ops hook"
    ch.update({"name": "Renamed"})
    assert ch.name == "Renamed" and ch.spec.up.url == "http://e.org/up"


def test_update_can_change_kind_but_then_needs_its_fields() -> None:
    ch = make_channel()
    with pytest.raises(ChannelInvalid, match="key email absent in value"):
        ch.update({"kind": "email"})
    assert ch.kind == "webhook"
    ch.update({"kind": "email", "email": "ops@example.org"})
    assert (ch.kind, ch.spec) == ("email", EmailSpec(email="ops@example.org"))


def test_update_validates_the_merged_result() -> None:
    ch = make_channel()
    with pytest.raises(ChannelInvalid, match="url_down and url_up are both empty"):
        ch.update({"url_down": ""})


def test_delivery_state_and_permanent_errors() -> None:
    ch = make_channel()
    ch.record_delivery(DeliveryResult.failure("Received status code 500"), now=2000.0)
    assert (ch.last_notify, ch.last_error, ch.disabled) == (2000.0, "Received status code 500", False)
    ch.record_delivery(DeliveryResult.failure("Received status code 404", permanent=True), now=2001.0)
    assert ch.disabled
    ch.update({"name": "same target"})
    assert ch.disabled, "a rename does not fix the target"
    ch.update({"url_down": "http://e.org/fixed"})
    assert (ch.disabled, ch.last_error) == (False, "")
    ch.record_delivery(DeliveryResult.success(), now=2002.0)
    assert (ch.last_notify, ch.last_error) == (2002.0, "")


def test_record_round_trip_through_msgpack_and_json() -> None:
    ch = make_channel()
    ch.update({"headers_down": {"X-Token": "abc"}, "body_down": "$NAME"})
    ch.record_delivery(DeliveryResult.failure("Connection timed out"), now=1234.5)
    for pack, unpack in ((msgpack.packb, msgpack.unpackb), (json.dumps, json.loads)):
        again = Channel.from_record(unpack(pack(ch.to_record())))
        assert again.to_record() == ch.to_record()
        assert again.spec == ch.spec
    for spec_body in ({"kind": "email", "email": "a@example.org"}, {"kind": "apprise", "url": "json://h/"}):
        other = Channel.create("p", spec_body, now=5.0)
        assert Channel.from_record(msgpack.unpackb(msgpack.packb(other.to_record()))).spec == other.spec


def test_api_forms() -> None:
    ch = make_channel()
    assert channel_summary(ch) == {"id": "c-1", "name": "Ops hook", "kind": "webhook"}
    doc = channel_to_json(ch)
    assert doc["url_down"] == "http://e.org/down" and doc["method_down"] == "POST"
    assert doc["headers_up"] == {}
    assert (doc["last_notify"], doc["last_error"], doc["disabled"]) == (None, "", False)
    ch.record_delivery(DeliveryResult.failure("x"), now=1704164645.9)
    assert channel_to_json(ch)["last_notify"] == "2024-01-02T03:04:05+00:00"
    email = Channel.create("p", {"name": "e", "kind": "email", "email": "a@example.org"}, now=1.0, channel_id="c-2")
    assert channel_to_json(email) == {
        "id": "c-2",
        "name": "e",
        "kind": "email",
        "email": "a@example.org",
        "last_notify": None,
        "last_error": "",
        "disabled": False,
    }
