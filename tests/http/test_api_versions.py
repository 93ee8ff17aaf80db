"""/api/v1/, /api/v2/ and /api/v3/: the same endpoints; v1 says "started"; slugs on rename; printed URLs."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY, PING_KEY, READONLY_KEY


def call(live, version, method, path, key=API_KEY, **kwargs):
    return live.client.request(method, f"/api/v{version}/{path}", headers={"X-Api-Key": key}, **kwargs)


def get(live, version, uuid):
    r = call(live, version, "GET", f"checks/{uuid}")
    assert r.status_code == 200, r.text
    return r.json()


def rename(live, version, uuid, **body):
    r = call(live, version, "POST", f"checks/{uuid}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_endpoint_answers_in_every_version(live, version):
    r = call(live, version, "POST", "checks/", json={"name": "v", "tags": "t"})
    assert r.status_code == 201
    uuid = r.json()["uuid"]
    live.ping(f"/ping/{uuid}", method="POST", content=b"b")
    unique = call(live, version, "GET", f"checks/{uuid}", key=READONLY_KEY).json()["unique_key"]
    for method, path, status in [
        ("GET", "checks/", 200),
        ("GET", "checks/?tag=t", 200),
        ("GET", f"checks/{uuid}", 200),
        ("GET", f"checks/{unique}", 200),
        ("POST", f"checks/{uuid}", 200),
        ("GET", f"checks/{uuid}/pings/", 200),
        ("GET", f"checks/{uuid}/pings/1/body", 200),
        ("GET", f"checks/{uuid}/flips/", 200),
        ("GET", f"checks/{unique}/flips/", 200),
        ("GET", "channels/", 200),
        ("GET", "badges/", 200),
        ("GET", "status/", 200),
        ("POST", f"checks/{uuid}/pause", 200),
        ("POST", f"checks/{uuid}/resume", 200),
        ("DELETE", f"checks/{uuid}", 200),
    ]:
        r = call(live, version, method, path, json={} if method == "POST" else None)
        assert r.status_code == status, (method, path, r.text)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_urls_name_the_version(live, version):
    r = call(live, version, "POST", "checks/", json={})
    check = r.json()
    api = f"http://hc.test/api/v{version}/checks/{check['uuid']}"
    assert (check["update_url"], check["pause_url"], check["resume_url"]) == (api, api + "/pause", api + "/resume")
    assert check["ping_url"] == f"http://hc.test/ping/{check['uuid']}"
    # Otherwise the versions answer the same check alike.
    v1, v2, v3 = ({k: v for k, v in get(live, n, check["uuid"]).items() if not k.endswith("_url")} for n in (1, 2, 3))
    assert v1 == v2 == v3
    assert "ping_url" in check and "badge_url" in check


def test_v1_reports_a_running_check_as_started(live):
    uuid = live.create(timeout=3600, grace=600)["uuid"]
    live.ping(f"/ping/{uuid}/start")
    assert [get(live, v, uuid)["status"] for v in (1, 2, 3)] == ["started", "new", "new"]
    assert all(get(live, v, uuid)["started"] for v in (1, 2, 3))
    live.ping(f"/ping/{uuid}")
    assert [get(live, v, uuid)["status"] for v in (1, 2, 3)] == ["up", "up", "up"]
    live.ping(f"/ping/{uuid}/start")
    assert get(live, 1, uuid)["status"] == "started"
    # In the list too.
    assert call(live, 1, "GET", "checks/").json()["checks"][0]["status"] == "started"
    # A run open longer than the grace time is down in every version.
    live.clock.advance(600)
    assert [get(live, v, uuid)["status"] for v in (1, 2, 3)] == ["down", "down", "down"]


def test_a_run_does_not_put_an_up_check_in_grace(live):
    uuid = live.create(timeout=3600, grace=600)["uuid"]
    live.ping(f"/ping/{uuid}")
    live.ping(f"/ping/{uuid}/start")
    live.clock.advance(300)
    check = get(live, 3, uuid)
    # next_ping shows the run's start (when the run's grace time began) ...
    assert check["next_ping"] == "2023-11-14T22:13:20+00:00"
    # ... but the status stays up until the run overruns its grace or the period ends.
    assert [get(live, v, uuid)["status"] for v in (1, 2, 3)] == ["started", "up", "up"]


def test_v1_started_for_down_and_paused_checks(live):
    down = live.create(grace=600)["uuid"]
    live.ping(f"/ping/{down}/fail")
    live.ping(f"/ping/{down}/start")
    assert [get(live, v, down)["status"] for v in (1, 2, 3)] == ["started", "down", "down"]
    paused = live.create(grace=600)["uuid"]
    live.api("POST", f"checks/{paused}/pause")
    live.ping(f"/ping/{paused}/start")
    assert [get(live, v, paused)["status"] for v in (1, 2, 3)] == ["started", "paused", "paused"]


@pytest.mark.parametrize("version", [1, 2])
def test_v1_v2_rename_rederives_the_slug(live, version):
    uuid = live.create(name="First Name", slug="chosen")["uuid"]
    assert rename(live, version, uuid, name="Second Name")["slug"] == "second-name"
    assert live.ping(f"/ping/{PING_KEY}/second-name").status_code == 200
    assert live.ping(f"/ping/{PING_KEY}/chosen").status_code == 404
    # A slug sent with the name wins.
    assert rename(live, version, uuid, name="Third", slug="mine")["slug"] == "mine"
    # The same name again is no rename: the slug stays.
    assert rename(live, version, uuid, name="Third")["slug"] == "mine"


@pytest.mark.parametrize("version", [1, 2])
def test_v1_v2_create_derives_the_slug(live, version):
    r = call(live, version, "POST", "checks/", json={"name": "Hello World"})
    assert r.json()["slug"] == "hello-world"
    r = call(live, version, "POST", "checks/", json={"name": "Hello World", "slug": "x"})
    assert r.json()["slug"] == "x"


def test_v3_keeps_an_explicit_slug_and_rederives_an_implicit_one(live):
    implicit = live.create(name="Nightly Job")["uuid"]
    assert rename(live, 3, implicit, name="Weekly Job")["slug"] == "weekly-job"
    explicit = live.create(name="Nightly Job", slug="nj")["uuid"]
    assert rename(live, 3, explicit, name="Weekly Job")["slug"] == "nj"
    # A slug set later by update is explicit too.
    assert rename(live, 3, implicit, slug="wj")["slug"] == "wj"
    assert rename(live, 3, implicit, name="Monthly Job")["slug"] == "wj"
    # Until a v1/v2 rename derives it again: from then on it follows the name.
    assert rename(live, 2, implicit, name="Yearly Job")["slug"] == "yearly-job"
    assert rename(live, 3, implicit, name="Daily Job")["slug"] == "daily-job"


def test_v3_slug_only_update_and_unchanged_name(live):
    uuid = live.create(name="A B")["uuid"]
    assert rename(live, 3, uuid, name="A B", desc="d")["slug"] == "a-b"
    assert rename(live, 3, uuid, slug="")["slug"] == ""
    assert live.ping(f"/ping/{PING_KEY}/a-b").status_code == 404
