"""HC_CHECK_LIMIT: checks per project. Past it the API answers 403 and a `?create=1` ping 404
(the reference's answers); updates, `unique` matches and pings of existing checks go on."""

from __future__ import annotations

import logging

import pytest

from hcserver.config import Settings, SettingsError
from hcserver.services import add_project as create_project
from tests.conftest import PING_KEY, make_settings

LIMIT = 3


@pytest.fixture
def settings() -> Settings:
    return make_settings(check_limit=LIMIT)


def count(live) -> int:
    return len(live.api("GET", "checks/").json()["checks"])


def fill(live) -> list[dict]:
    return [live.create(name=f"c{i}") for i in range(LIMIT)]


def test_setting_default_and_parsing():
    assert Settings().check_limit == 10_000
    assert Settings.from_env({}).check_limit == 10_000
    assert Settings.from_env({"HC_CHECK_LIMIT": "25"}).check_limit == 25
    for bad in ("0", "-1", "many"):
        with pytest.raises(SettingsError, match="HC_CHECK_LIMIT"):
            Settings.from_env({"HC_CHECK_LIMIT": bad})


def test_api_create_past_the_limit_is_403(live):
    checks = fill(live)
    r = live.api("POST", "checks/", json={"name": "one too many"})
    assert r.status_code == 403
    assert r.json() == {"error": "check limit reached"}
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert count(live) == LIMIT
    # Updates and upserts that match go on.
    assert live.api("POST", f"checks/{checks[0]['uuid']}", json={"desc": "x"}).status_code == 200
    r = live.api("POST", "checks/", json={"name": "c1", "tags": "t", "unique": ["name"]})
    assert r.status_code == 200 and r.json()["uuid"] == checks[1]["uuid"]
    # An upsert that would create is refused like a create.
    r = live.api("POST", "checks/", json={"name": "new", "unique": ["name"]})
    assert r.status_code == 403 and count(live) == LIMIT
    # Room again after a delete.
    assert live.api("DELETE", f"checks/{checks[2]['uuid']}").status_code == 200
    assert live.api("POST", "checks/", json={"name": "fits"}).status_code == 201


def test_ping_create_past_the_limit_is_404_not_found(live):
    for i in range(LIMIT - 1):
        assert live.ping(f"/ping/{PING_KEY}/job-{i}?create=1").status_code == 201
    live.create(name="api made")
    r = live.ping(f"/ping/{PING_KEY}/job-new?create=1")
    assert (r.status_code, r.text) == (404, "not found")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert count(live) == LIMIT
    # Existing checks are still pinged, with or without ?create=1.
    assert live.ping(f"/ping/{PING_KEY}/job-0?create=1").status_code == 200
    assert live.ping(f"/ping/{PING_KEY}/job-0").status_code == 200
    [job] = live.api("GET", "checks/?slug=job-0").json()["checks"]
    assert job["n_pings"] == 3


def test_the_log_says_so_once_per_project_per_minute(live, clock, caplog):
    fill(live)
    with caplog.at_level(logging.WARNING, logger="hcserver.checks"):
        for _ in range(5):
            assert live.api("POST", "checks/", json={}).status_code == 403
            assert live.ping(f"/ping/{PING_KEY}/more?create=1").status_code == 404
        clock.advance(59)
        assert live.api("POST", "checks/", json={}).status_code == 403
        messages = [r.getMessage() for r in caplog.records if r.name == "hcserver.checks"]
        assert len(messages) == 1
        assert f"limit of {LIMIT} checks" in messages[0] and "HC_CHECK_LIMIT" in messages[0]
        clock.advance(2)
        assert live.ping(f"/ping/{PING_KEY}/more?create=1").status_code == 404
        assert live.api("POST", "checks/", json={}).status_code == 403
        messages = [r.getMessage() for r in caplog.records if r.name == "hcserver.checks"]
        assert len(messages) == 2


def test_the_limit_is_per_project(live):
    fill(live)
    assert live.api("POST", "checks/", json={}).status_code == 403
    _, keys = live.call(lambda: create_project(live.ctx, "second"))
    r = live.client.post("/api/v3/checks/", json={"name": "elsewhere"}, headers={"X-Api-Key": keys.api_key})
    assert r.status_code == 201
    assert live.ping(f"/ping/{keys.ping_key}/job?create=1").status_code == 201
