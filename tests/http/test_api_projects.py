"""The projects admin API (/api/v3/projects/): off without HC_ADMIN_KEY; list, create, delete."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import API_KEY, PING_KEY, make_settings

ADMIN_KEY = "admin-key-for-tests-0123456789"


def add_project(live: Any, name: str = "Second") -> dict[str, Any]:
    """Create a project through the admin API; the answer carries its keys (shown this once)."""
    r = live.api("POST", "projects/", key=ADMIN_KEY, json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def settings():
    return make_settings(admin_key=ADMIN_KEY)


@pytest.mark.parametrize("settings", [make_settings()])
def test_disabled_without_admin_key(live):
    for method, path in (("GET", "projects/"), ("POST", "projects/")):
        r = live.api(method, path, key=API_KEY, json={} if method == "POST" else None)
        assert r.status_code == 403
        assert r.json() == {"error": "the projects API is disabled (set HC_ADMIN_KEY)"}
        assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_wrong_or_missing_admin_key(live):
    for key in ("", API_KEY, ADMIN_KEY + "x", ADMIN_KEY[:-1]):
        r = live.api("GET", "projects/", key=key)
        assert (r.status_code, r.json()) == (401, {"error": "wrong api key"})
    # An API key of a project does not open the admin API, in the header or in the body.
    r = live.api("POST", "projects/", key="", json={"api_key": API_KEY, "name": "x"})
    assert r.status_code == 401


def test_list_has_the_default_project(live):
    live.create(name="a")
    r = live.api("GET", "projects/", key=ADMIN_KEY)
    assert r.status_code == 200
    (project,) = r.json()["projects"]
    assert project["name"] == "Default"
    assert project["n_checks"] == 1
    assert set(project) == {"id", "name", "n_checks"}


def test_create_answers_working_keys_once(live):
    created = add_project(live, "Team B")
    assert set(created) == {"id", "name", "n_checks", "api_key", "api_key_readonly", "ping_key"}
    assert created["name"] == "Team B" and created["n_checks"] == 0
    assert len(created["api_key"]) == 32 and len(created["api_key_readonly"]) == 32
    assert len(created["ping_key"]) == 22

    # The new keys work, and see only their own project's checks.
    live.create(name="default one")
    r = live.api("POST", "checks/", key=created["api_key"], json={"name": "Nightly"})
    assert r.status_code == 201
    uuid = r.json()["uuid"]
    r = live.api("GET", "checks/", key=created["api_key_readonly"])
    assert [c["name"] for c in r.json()["checks"]] == ["Nightly"]
    assert live.ping(f"/ping/{created['ping_key']}/nightly").text == "OK"
    assert live.api("GET", f"checks/{uuid}", key=created["api_key"]).json()["n_pings"] == 1
    # The same slug under the first project's ping key is not this check.
    assert live.ping(f"/ping/{PING_KEY}/nightly").status_code == 404

    listed = live.api("GET", "projects/", key=ADMIN_KEY).json()["projects"]
    by_name = {p["name"]: p for p in listed}
    assert by_name["Team B"] == {"id": created["id"], "name": "Team B", "n_checks": 1}
    # Keys are never listed again.
    assert all("api_key" not in p for p in listed)


def test_unique_matches_only_checks_of_the_same_project(live):
    other = add_project(live)
    mine = live.create(name="db")
    r = live.api("POST", "checks/", key=other["api_key"], json={"name": "db", "unique": ["name"]})
    assert r.status_code == 201 and r.json()["uuid"] != mine["uuid"]
    r = live.api("POST", "checks/", key=other["api_key"], json={"name": "db", "unique": ["name"]})
    assert r.status_code == 200


def test_two_projects_get_different_keys(live):
    a, b = add_project(live, "a"), add_project(live, "b")
    assert a["id"] != b["id"]
    assert {a["api_key"], a["ping_key"]}.isdisjoint({b["api_key"], b["ping_key"]})


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": None}, "json validation error: name is not a string"),
        ({"name": 5}, "json validation error: name is not a string"),
        ({"name": "x" * 101}, "json validation error: name is too long"),
    ],
)
def test_create_validates_name(live, body, error):
    r = live.api("POST", "projects/", key=ADMIN_KEY, json=body)
    assert (r.status_code, r.json()) == (400, {"error": error})


def test_create_without_name(live):
    r = live.api("POST", "projects/", key=ADMIN_KEY)
    assert r.status_code == 201
    assert r.json()["name"] == ""


def test_delete_removes_its_checks_and_keys(live):
    project = add_project(live)
    key = project["api_key"]
    uuid = live.api("POST", "checks/", key=key, json={"name": "gone"}).json()["uuid"]
    assert live.ping(f"/ping/{uuid}").status_code == 200
    kept = live.create(name="kept")

    r = live.api("DELETE", f"projects/{project['id']}", key=ADMIN_KEY)
    assert r.status_code == 200
    assert r.json() == {"id": project["id"], "name": "Second", "n_checks": 1}

    assert live.ping(f"/ping/{uuid}").status_code == 404
    assert live.ping(f"/ping/{project['ping_key']}/gone").status_code == 404
    assert live.api("GET", f"checks/{uuid}").status_code == 404
    assert live.api("GET", "checks/", key=key).json() == {"error": "wrong api key"}
    assert live.call(lambda: uuid in live.ctx.index.checks) is False
    # The other project is untouched.
    assert live.get_check(kept["uuid"])["name"] == "kept"
    names = [p["name"] for p in live.api("GET", "projects/", key=ADMIN_KEY).json()["projects"]]
    assert names == ["Default"]


def test_delete_unknown_project(live):
    r = live.api("DELETE", "projects/00000000-0000-0000-0000-000000000000", key=ADMIN_KEY)
    assert (r.status_code, r.json()) == (404, {"error": "not found"})


def test_delete_needs_the_admin_key(live):
    project = add_project(live)
    r = live.api("DELETE", f"projects/{project['id']}", key=project["api_key"])
    assert r.status_code == 401
    assert len(live.api("GET", "projects/", key=ADMIN_KEY).json()["projects"]) == 2
