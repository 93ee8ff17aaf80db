"""GET /api/v3/channels/ and the `channels` field of checks ("*", "" or ids/names, comma-separated)."""

from __future__ import annotations

import socket

import pytest

from hcserver.alerts.channels import Channel
from hcserver.alerts.settings import AlertSettings
from hcserver.notify import Notifier
from tests.alerts.helpers import FakeDNS
from tests.conftest import PING_KEY, T0, make_settings
from tests.http.test_api_projects import ADMIN_KEY, add_project

EMAIL_ID = "4ec5a071-2d08-4baa-898a-eb4eb3cd6941"
HOOK_ID = "9a2d3e1f-7b6c-4d5e-8f90-a1b2c3d4e5f6"
OTHER_HOOK_ID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def settings():
    return make_settings(admin_key=ADMIN_KEY)


def make_channel(channel_id, project_id, name, kind):
    body = {"name": name, "kind": kind, "email": "ops@example.org", "url_down": "https://example.org/down"}
    return Channel.create(project_id, body, T0, channel_id=channel_id)


def add_channels(live, *channels):
    def add():
        for channel in channels:
            live.ctx.index.channels[channel.id] = channel

    live.call(add)


def default_project_id(live):
    return live.call(lambda: next(iter(live.ctx.index.projects)))


def with_two_channels(live):
    project = default_project_id(live)
    add_channels(
        live,
        make_channel(EMAIL_ID, project, "Ops email", "email"),
        make_channel(HOOK_ID, project, "Deploy hook", "webhook"),
    )


def test_no_channels(live):
    r = live.api("GET", "channels/")
    assert (r.status_code, r.json()) == (200, {"channels": []})


def test_lists_the_projects_channels(live):
    with_two_channels(live)
    r = live.api("GET", "channels/")
    assert r.json() == {
        "channels": [
            {"id": EMAIL_ID, "name": "Ops email", "kind": "email"},
            {"id": HOOK_ID, "name": "Deploy hook", "kind": "webhook"},
        ]
    }


def test_check_channels_field(live):
    with_two_channels(live)
    assert live.create(name="none")["channels"] == ""
    everything = live.create(channels="*")
    assert everything["channels"] == f"{EMAIL_ID},{HOOK_ID}"
    assert live.create(channels=HOOK_ID)["channels"] == HOOK_ID
    # Names work as well as ids; repeats collapse.
    assert live.create(channels=f"Deploy hook,{EMAIL_ID},Ops email")["channels"] == f"{HOOK_ID},{EMAIL_ID}"
    uuid = everything["uuid"]
    r = live.api("POST", f"checks/{uuid}", json={"channels": ""})
    assert r.json()["channels"] == ""
    r = live.api("POST", f"checks/{uuid}", json={"channels": "Ops email"})
    assert r.json()["channels"] == EMAIL_ID
    # Not sending the field keeps the channels.
    assert live.api("POST", f"checks/{uuid}", json={"name": "x"}).json()["channels"] == EMAIL_ID


def test_bad_channel_identifiers(live):
    with_two_channels(live)
    project = default_project_id(live)
    add_channels(live, make_channel(OTHER_HOOK_ID, project, "Deploy hook", "webhook"))
    for value, message in [
        ("nope", "invalid channel identifier: nope"),
        (f"{EMAIL_ID},", "empty channel identifier"),
        (f"{EMAIL_ID.upper()}", f"invalid channel identifier: {EMAIL_ID.upper()}"),
        ("Deploy hook", "non-unique channel identifier: Deploy hook"),
        (" Ops email", "invalid channel identifier:  Ops email"),
    ]:
        r = live.api("POST", "checks/", json={"channels": value})
        assert (r.status_code, r.json()) == (400, {"error": message}), value
    # An ambiguous name can still be given by id.
    assert live.create(channels=OTHER_HOOK_ID)["channels"] == OTHER_HOOK_ID


def test_slug_ping_with_create_assigns_all_channels(live):
    with_two_channels(live)
    assert live.ping(f"/ping/{PING_KEY}/made-by-ping?create=1").status_code == 201
    (check,) = live.api("GET", "checks/").json()["checks"]
    assert check["channels"] == f"{EMAIL_ID},{HOOK_ID}"


def test_projects_see_only_their_channels(live):
    with_two_channels(live)
    other = add_project(live)
    add_channels(live, make_channel(OTHER_HOOK_ID, other["id"], "Theirs", "webhook"))
    listed = live.api("GET", "channels/", key=other["api_key"]).json()["channels"]
    assert listed == [{"id": OTHER_HOOK_ID, "name": "Theirs", "kind": "webhook"}]
    assert len(live.api("GET", "channels/").json()["channels"]) == 2
    r = live.api("POST", "checks/", json={"channels": OTHER_HOOK_ID})
    assert r.json() == {"error": f"invalid channel identifier: {OTHER_HOOK_ID}"}
    theirs = live.api("POST", "checks/", key=other["api_key"], json={"channels": "*"}).json()
    assert theirs["channels"] == OTHER_HOOK_ID


def test_unknown_kind_lists_the_accepted_kinds(live):
    for kind in ["slack", "", "Webhook", None]:
        r = live.api("POST", "channels/", json={"name": "x", "kind": kind, "url_down": "http://127.0.0.1/"})
        assert (r.status_code, r.json()) == (
            400,
            {"error": "json validation error: kind must be one of: apprise, email, webhook"},
        ), kind
    assert live.api("GET", "channels/").json() == {"channels": []}


# -- hosts that delivery would refuse are refused when the channel is saved ---------------------------

PREFIX = "json validation error: "


@pytest.fixture
def dns(monkeypatch):
    """Names resolve through this table only (no DNS query leaves the machine)."""
    resolver = FakeDNS(
        {
            "gotify.internal": [["10.0.0.5"]],
            "chat.internal": [["10.0.0.5"]],
            "metadata.internal": [["169.254.169.254"]],
            "ntfy.example.test": [["93.184.216.34"]],
        }
    )
    monkeypatch.setattr(socket, "getaddrinfo", resolver.getaddrinfo)
    return resolver


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "apprise", "url": "ntfy://10.0.0.5/backups"}, "url points to a private address 10.0.0.5"),
        (
            {"kind": "apprise", "url": "gotify://gotify.internal/AbCdEf123456"},
            "url points to a private address (gotify.internal is 10.0.0.5)",
        ),
        (
            {"kind": "apprise", "url": "mmosts://chat.internal:8065/3ccdd113474722377935511fc85d3dd4"},
            "url points to a private address (chat.internal is 10.0.0.5)",
        ),
        (
            {"kind": "apprise", "url": "mmost://[fe80::1]/3ccdd113474722377935511fc85d3dd4"},
            "url points to a private address fe80::1",
        ),
        (
            {"kind": "apprise", "url": "json://169.254.169.254/latest/meta-data"},
            "url points to a private address 169.254.169.254",
        ),
        ({"kind": "apprise", "url": "json://127.0.0.1:9/"}, "url points to a private address 127.0.0.1"),
        ({"kind": "webhook", "url_down": "http://10.0.0.5/alert"}, "url_down points to a private address 10.0.0.5"),
        (
            {"kind": "webhook", "url_down": "https://ntfy.example.test/", "url_up": "http://metadata.internal/"},
            "url_up points to a private address (metadata.internal is 169.254.169.254)",
        ),
    ],
)
def test_create_refuses_private_hosts(live, dns, fields, message):
    r = live.api("POST", "channels/", json={"name": "x", **fields})
    assert (r.status_code, r.json()) == (400, {"error": PREFIX + message})
    assert live.api("GET", "channels/").json() == {"channels": []}


def test_update_refuses_private_hosts(live, dns):
    r = live.api(
        "POST", "channels/", json={"name": "push", "kind": "apprise", "url": "ntfy://ntfy.example.test/backups"}
    )
    assert r.status_code == 201, r.text
    channel_id = r.json()["id"]
    r = live.api("POST", f"channels/{channel_id}", json={"url": "gotify://gotify.internal/AbCdEf123456"})
    assert (r.status_code, r.json()) == (
        400,
        {"error": PREFIX + "url points to a private address (gotify.internal is 10.0.0.5)"},
    )
    assert live.api("GET", f"channels/{channel_id}").json()["url"] == "ntfy://ntfy.example.test/backups"
    # Changing the kind to a webhook is checked the same way.
    r = live.api("POST", f"channels/{channel_id}", json={"kind": "webhook", "url_down": "http://[::ffff:10.0.0.5]/"})
    assert (r.status_code, r.json()) == (400, {"error": PREFIX + "url_down points to a private address ::ffff:a00:5"})


def test_hosted_services_and_names_not_resolvable_yet_are_accepted(live, dns):
    for url in [
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",  # tokens only
        "ntfy://backups",  # the public ntfy.sh
        "gotify://not-yet.internal/AbCdEf123456",  # delivery checks it again
    ]:
        r = live.api("POST", "channels/", json={"name": "x", "kind": "apprise", "url": url})
        assert r.status_code == 201, (url, r.text)
    # A placeholder in a webhook's host is filled in at delivery, which checks the result.
    r = live.api("POST", "channels/", json={"name": "x", "kind": "webhook", "url_down": "https://$SLUG.example.test/"})
    assert r.status_code == 201, r.text
    assert dns.lookups == ["not-yet.internal"]


def test_private_hosts_accepted_when_the_server_allows_them(live, dns):
    live.call(lambda: live.ctx.observers.append(Notifier(live.ctx, AlertSettings(allow_private=True))))
    for fields in [
        {"kind": "apprise", "url": "ntfy://127.0.0.1:9/backups"},
        {"kind": "apprise", "url": "gotify://localhost:9/AbCdEf123456"},
        {"kind": "webhook", "url_down": "http://127.0.0.1:9/alert"},
    ]:
        r = live.api("POST", "channels/", json={"name": "x", **fields})
        assert r.status_code == 201, (fields, r.text)
