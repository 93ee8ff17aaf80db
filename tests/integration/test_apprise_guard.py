"""INTEGRATIONS_ALLOW_PRIVATE_IPS through the whole server: the API refuses channels whose hosts the
private-address rule refuses, and with the rule lifted an Apprise alert reaches a loopback receiver."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import make_settings, start_server


@pytest.fixture
def guarded(tmp_path, clock):
    # The server's own defaults: private addresses refused.
    live, stop = start_server(
        make_settings(db=str(tmp_path / "hc.sqlite3")), clock, alerts={"INTEGRATIONS_TIMEOUT": "3"}
    )
    try:
        yield live
    finally:
        stop()


def test_private_hosts_refused_when_saved(guarded, receiver):
    url = f"ntfy://127.0.0.1:{receiver.port}/backups"
    r = guarded.api("POST", "channels/", json={"name": "push", "kind": "apprise", "url": url})
    assert (r.status_code, r.json()) == (
        400,
        {"error": "json validation error: url points to a private address 127.0.0.1"},
    )
    r = guarded.api("POST", "channels/", json={"name": "hook", "kind": "webhook", "url_down": receiver.url("/ok")})
    assert (r.status_code, r.json()) == (
        400,
        {"error": "json validation error: url_down points to a private address 127.0.0.1"},
    )
    assert guarded.api("GET", "channels/").json() == {"channels": []}
    time.sleep(0.1)
    assert receiver.hits == []


def test_allowed_private_hosts_get_apprise_alerts(full, receiver):
    pytest.importorskip("apprise")
    url = f"ntfy://127.0.0.1:{receiver.port}/backups"
    r = full.api("POST", "channels/", json={"name": "push", "kind": "apprise", "url": url})
    assert r.status_code == 201, r.text
    check = full.create(name="Nightly DB", channels="*")
    full.ping(f"/ping/{check['uuid']}/fail")
    [hit] = receiver.wait_for(1)
    payload = json.loads(hit.body)
    assert (hit.method, hit.path, payload["topic"], payload["title"]) == ("POST", "/", "backups", "DOWN | Nightly DB")
