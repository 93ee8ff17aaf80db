"""GET /api/v<n>/status/: `OK` without a key while the server can serve, 503 with the reason otherwise."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY, make_settings, start_server


@pytest.mark.parametrize("version", [1, 2, 3])
def test_ok_without_a_key(live, version):
    r = live.client.get(f"/api/v{version}/status/")
    assert (r.status_code, r.text) == (200, "OK")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_any_key_is_ignored(live):
    assert live.api("GET", "status/", key="x").text == "OK"


def test_unhealthy_server_answers_503(live):
    live.call(lambda: setattr(live.ctx, "health", lambda: "the disk is full"))
    r = live.client.get("/api/v3/status/")
    assert (r.status_code, r.text) == (503, "the disk is full")
    live.call(lambda: setattr(live.ctx, "health", lambda: None))
    assert live.client.get("/api/v3/status/").text == "OK"


ADMIN_KEY = "admin-key-for-tests-0123456789"


@pytest.fixture
def settings():
    return make_settings(admin_key=ADMIN_KEY)


def test_verbose_status_with_the_admin_key(live):
    live.create()
    r = live.client.get("/api/v3/status/?verbose=1", headers={"X-Api-Key": ADMIN_KEY})
    assert r.status_code == 200
    details = r.json()
    assert (details["ok"], details["error"], details["checks"], details["projects"]) == (True, "", 1, 1)
    connections = details["connections"]
    assert connections["open"] >= 1 and connections["max"] > connections["open"] and connections["refused"] == 0
    live.call(lambda: setattr(live.ctx, "health", lambda: "writer stalled"))
    r = live.client.get("/api/v3/status/?verbose=1", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 503
    assert (r.json()["ok"], r.json()["error"]) == (False, "writer stalled")


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Api-Key": API_KEY}, {"X-Api-Key": ADMIN_KEY[:-1] + "x"}, {"Authorization": f"Basic {ADMIN_KEY}"},
     {"Authorization": "Bearer"}],
)  # fmt: skip
def test_verbose_status_from_loopback_without_the_admin_key_is_the_plain_answer(live, headers):
    # Behind a reverse proxy on the same host, every client is a loopback peer.
    r = live.client.get("/api/v3/status/?verbose=1", headers=headers)
    assert (r.status_code, r.text) == (200, "OK")
    live.call(lambda: setattr(live.ctx, "health", lambda: "writer stalled"))
    r = live.client.get("/api/v3/status/?verbose=1", headers=headers)
    assert (r.status_code, r.text) == (503, "writer stalled")


def test_no_verbose_status_without_an_admin_key_set(clock):
    server, stop = start_server(make_settings(), clock)
    try:
        r = server.client.get("/api/v3/status/?verbose=1", headers={"X-Api-Key": ADMIN_KEY})
        assert (r.status_code, r.text) == (200, "OK")
    finally:
        stop()
