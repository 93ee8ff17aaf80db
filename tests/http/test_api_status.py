"""GET /api/v<n>/status/: `OK` without a key while the server can serve, 503 with the reason otherwise."""

from __future__ import annotations

import pytest


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


def test_verbose_status_for_a_loopback_client(live):
    live.create()
    r = live.client.get("/api/v3/status/?verbose=1")
    assert r.status_code == 200
    details = r.json()
    assert (details["ok"], details["error"], details["checks"], details["projects"]) == (True, "", 1, 1)
    live.call(lambda: setattr(live.ctx, "health", lambda: "writer stalled"))
    r = live.client.get("/api/v3/status/?verbose=1")
    assert r.status_code == 503
    assert (r.json()["ok"], r.json()["error"]) == (False, "writer stalled")
