"""Management API: API keys (header or body), read-only keys, other projects' checks, CORS, bad bodies."""

from __future__ import annotations

import json

import pytest

from tests.conftest import API_KEY, READONLY_KEY, make_settings
from tests.http.test_api_projects import ADMIN_KEY, add_project

MISSING = {"error": "missing api key"}
WRONG = {"error": "wrong api key"}
NIL_UUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def settings():
    return make_settings(admin_key=ADMIN_KEY)


def write_endpoints(uuid: str) -> list[tuple[str, str]]:
    return [
        ("POST", "checks/"),
        ("POST", f"checks/{uuid}"),
        ("DELETE", f"checks/{uuid}"),
        ("POST", f"checks/{uuid}/pause"),
        ("POST", f"checks/{uuid}/resume"),
        ("GET", f"checks/{uuid}/pings/"),
        ("GET", f"checks/{uuid}/pings/1/body"),
        ("GET", "channels/"),
    ]


def read_endpoints(uuid: str) -> list[str]:
    return ["checks/", f"checks/{uuid}", f"checks/{uuid}/flips/", "badges/"]


# -- which key ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "short", API_KEY + "x", API_KEY[:-1]])
def test_key_not_32_chars_is_missing(live, key):
    check = live.create(name="a")
    for method, path in write_endpoints(check["uuid"]):
        r = live.api(method, path, key=key)
        assert (r.status_code, r.json()) == (401, MISSING), (method, path)
    for path in read_endpoints(check["uuid"]):
        r = live.api("GET", path, key=key)
        assert (r.status_code, r.json()) == (401, MISSING), path


def test_unknown_key_is_wrong(live):
    check = live.create(name="a")
    unknown = "hcw_" + "z" * 28
    for method, path in write_endpoints(check["uuid"]):
        r = live.api(method, path, key=unknown)
        assert (r.status_code, r.json()) == (401, WRONG), (method, path)
    for path in read_endpoints(check["uuid"]):
        assert live.api("GET", path, key=unknown).json() == WRONG


def test_readonly_key_on_every_write_endpoint_is_wrong(live):
    check = live.create(name="a")
    live.ping(f"/ping/{check['uuid']}", method="POST", content=b"body")
    for method, path in write_endpoints(check["uuid"]):
        r = live.api(method, path, key=READONLY_KEY, json={"name": "changed"} if method == "POST" else None)
        assert (r.status_code, r.json()) == (401, WRONG), (method, path)
    # ... and changed nothing.
    after = live.get_check(check["uuid"])
    assert after["name"] == "a" and after["status"] == "up"
    assert len(live.api("GET", "checks/").json()["checks"]) == 1


def test_readonly_key_reads_without_revealing_uuids(live):
    check = live.create(name="Backup", tags="prod")
    uuid = check["uuid"]
    listed = live.api("GET", "checks/", key=READONLY_KEY)
    assert listed.status_code == 200
    (item,) = listed.json()["checks"]
    one = live.api("GET", f"checks/{uuid}", key=READONLY_KEY).json()
    assert one == item
    assert len(item["unique_key"]) == 40
    for hidden in ("uuid", "ping_url", "update_url", "pause_url", "resume_url", "channels"):
        assert hidden not in item
    assert uuid not in json.dumps(item)
    # The unique key reads the same check, with either key.
    assert live.api("GET", f"checks/{item['unique_key']}", key=READONLY_KEY).json() == item
    assert live.api("GET", f"checks/{item['unique_key']}").json()["uuid"] == uuid
    for path in read_endpoints(uuid)[2:]:
        assert live.api("GET", path, key=READONLY_KEY).status_code == 200, path
    r = live.api("GET", f"checks/{item['unique_key']}/flips/", key=READONLY_KEY)
    assert r.status_code == 200


def test_key_in_post_body(live):
    r = live.api("POST", "checks/", key="", json={"api_key": API_KEY, "name": "from body"})
    assert r.status_code == 201
    uuid = r.json()["uuid"]
    r = live.api("POST", f"checks/{uuid}", key="", json={"api_key": API_KEY, "desc": "d"})
    assert r.status_code == 200 and r.json()["desc"] == "d"
    r = live.api("POST", f"checks/{uuid}/pause", key="", json={"api_key": API_KEY})
    assert r.json()["status"] == "paused"
    # The read-only key in the body is still wrong for writes; a non-string is no key at all.
    r = live.api("POST", "checks/", key="", json={"api_key": READONLY_KEY})
    assert (r.status_code, r.json()) == (401, WRONG)
    r = live.api("POST", "checks/", key="", json={"api_key": 12345678901234567890123456789012})
    assert (r.status_code, r.json()) == (401, MISSING)
    r = live.api("POST", "checks/", key="", json={})
    assert (r.status_code, r.json()) == (401, MISSING)


def test_header_key_wins_over_body_key(live):
    r = live.api("POST", "checks/", key=API_KEY, json={"api_key": "x", "name": "n"})
    assert r.status_code == 201
    r = live.api("POST", "checks/", key=READONLY_KEY, json={"api_key": API_KEY, "name": "n"})
    assert (r.status_code, r.json()) == (401, WRONG)


def test_body_key_is_ignored_outside_post(live):
    r = live.api("GET", "checks/", key="", content=json.dumps({"api_key": API_KEY}))
    assert (r.status_code, r.json()) == (401, MISSING)


# -- other projects -------------------------------------------------------------------------------


def test_check_of_another_project_is_forbidden(live):
    other = add_project(live)
    mine = live.create(name="mine")
    theirs = live.api("POST", "checks/", key=other["api_key"], json={"name": "theirs"}).json()
    live.ping(f"/ping/{theirs['uuid']}", method="POST", content=b"x")
    uuid = theirs["uuid"]
    for method, path in [
        ("GET", f"checks/{uuid}"),
        *write_endpoints(uuid)[1:-1],
        ("GET", f"checks/{uuid}/flips/"),
    ]:
        r = live.api(method, path, key=API_KEY)
        assert r.status_code == 403, (method, path, r.text)
        assert r.headers["Access-Control-Allow-Origin"] == "*"
    unique = live.api("GET", f"checks/{uuid}", key=other["api_key_readonly"]).json()["unique_key"]
    assert live.api("GET", f"checks/{unique}", key=READONLY_KEY).status_code == 403
    assert live.api("GET", f"checks/{unique}/flips/", key=READONLY_KEY).status_code == 403
    # Nothing of theirs changed; each project lists only its own checks.
    after = live.api("GET", f"checks/{uuid}", key=other["api_key"]).json()
    assert after["status"] == "up" and after["name"] == "theirs"
    assert [c["name"] for c in live.api("GET", "checks/").json()["checks"]] == ["mine"]
    assert live.api("GET", f"checks/{mine['uuid']}", key=other["api_key"]).status_code == 403


def test_unknown_check_is_not_found(live):
    for method, path in write_endpoints(NIL_UUID)[1:-1]:
        r = live.api(method, path)
        assert (r.status_code, r.json()) == (404, {"error": "not found"}), (method, path)
    assert live.api("GET", f"checks/{NIL_UUID}").status_code == 404
    assert live.api("GET", "checks/" + "0" * 40).status_code == 404
    assert live.api("GET", f"checks/{NIL_UUID}/flips/").status_code == 404


def test_malformed_ids_are_not_found(live):
    check = live.create(name="a")
    for path in (f"checks/{check['uuid'].upper()}", "checks/not-a-uuid", f"checks/{check['uuid']}x"):
        r = live.api("GET", path)
        assert (r.status_code, r.json()) == (404, {"error": "not found"}), path
    # The unique key reads, it does not write.
    unique = live.api("GET", f"checks/{check['uuid']}", key=READONLY_KEY).json()["unique_key"]
    assert live.api("POST", f"checks/{unique}", json={"name": "x"}).status_code == 404
    assert live.api("DELETE", f"checks/{unique}").status_code == 404
    assert live.api("POST", f"checks/{unique}/pause").status_code == 404
    assert live.get_check(check["uuid"])["name"] == "a"


# -- request bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"name": "a",}', b"{'name': 'a'}", b"[" * 100_000])
def test_unparseable_body(live, body):
    for key in (API_KEY, ""):
        r = live.api("POST", "checks/", key=key, content=body)
        assert (r.status_code, r.json()) == (400, {"error": "could not parse request body"})


def test_non_utf8_body(live):
    r = live.api("POST", "checks/", content='{"name": "caf\u00e9"}'.encode("latin-1"))
    assert (r.status_code, r.json()) == (400, {"error": "could not parse request body"})
    r = live.api("POST", "checks/", content=b"\xff\xfe{}")
    assert r.status_code == 400


@pytest.mark.parametrize("body", [b"[]", b'[{"name": "a"}]', b"null", b"1", b'"string"', b"true"])
def test_json_that_is_not_an_object(live, body):
    r = live.api("POST", "checks/", content=body)
    assert (r.status_code, r.json()) == (400, {"error": "json validation error: value is not an object"})


def test_bad_body_on_every_post_endpoint(live):
    uuid = live.create(name="a")["uuid"]
    for path in ("checks/", f"checks/{uuid}", f"checks/{uuid}/pause", f"checks/{uuid}/resume"):
        r = live.api("POST", path, content=b"{oops")
        assert (r.status_code, r.json()) == (400, {"error": "could not parse request body"}), path
        r = live.api("POST", path, content=b"[]")
        assert r.json() == {"error": "json validation error: value is not an object"}, path
    assert live.get_check(uuid)["status"] == "new"


def test_empty_post_body_is_an_empty_object(live):
    r = live.api("POST", "checks/", content=b"")
    assert r.status_code == 201
    assert r.json()["name"] == ""


@pytest.mark.parametrize("settings", [make_settings(max_api_body=1024)])
def test_body_over_the_api_limit(live):
    r = live.api("POST", "checks/", json={"name": "a", "desc": "x" * 2000})
    assert (r.status_code, r.json()) == (413, {"error": "request body too large"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert live.api("POST", "checks/", json={"desc": "x" * 900}).status_code == 201


# -- CORS and method handling ---------------------------------------------------------------------


CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-headers": "X-Api-Key, Content-Type",
    "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
    "access-control-max-age": "600",
}


def assert_cors(r):
    for name, value in CORS.items():
        assert r.headers.get(name) == value, (r.request.method, r.request.url, name)


def test_cors_headers_on_every_api_answer(live):
    uuid = live.create(name="a")["uuid"]
    answers = [
        live.api("GET", "checks/"),
        live.api("POST", "checks/", json={"name": "b"}),
        live.api("POST", "checks/", json={"timeout": 1}),
        live.api("POST", "checks/", content=b"{"),
        live.api("GET", "checks/", key=""),
        live.api("GET", "checks/", key="x" * 32),
        live.api("GET", f"checks/{uuid}"),
        live.api("GET", f"checks/{NIL_UUID}"),
        live.api("POST", f"checks/{uuid}/resume"),
        live.api("GET", f"checks/{uuid}/pings/"),
        live.api("GET", f"checks/{uuid}/pings/1/body"),
        live.api("GET", f"checks/{uuid}/flips/?seconds=x"),
        live.api("GET", "channels/"),
        live.api("GET", "badges/"),
        live.api("GET", "status/", key=""),
        live.api("GET", "projects/", key=ADMIN_KEY),
        live.api("GET", "no/such/endpoint"),
        live.api("PUT", "checks/"),
        live.api("DELETE", f"checks/{uuid}"),
    ]
    for r in answers:
        assert_cors(r)
    assert [r.status_code for r in answers] == [
        200, 201, 400, 400, 401, 401, 200, 404, 409, 200, 404, 400, 200, 200, 200, 200, 404, 405, 200,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "path", ["checks/", f"checks/{NIL_UUID}", f"checks/{NIL_UUID}/pause", f"checks/{NIL_UUID}/pings/", "badges/"]
)
def test_options_preflight(live, path):
    r = live.api(
        "OPTIONS",
        path,
        key="",
        headers={"Origin": "https://dash.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-api-key, content-type"},
    )  # fmt: skip
    assert r.status_code == 204
    assert r.content == b""
    assert_cors(r)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "checks/"),
        ("PATCH", "checks/{uuid}"),
        ("DELETE", "checks/"),
        ("POST", "badges/"),
        ("GET", "checks/{uuid}/pause"),
    ],
)
def test_unsupported_methods(live, method, path):
    uuid = live.create(name="a")["uuid"]
    r = live.api(method, path.format(uuid=uuid), json={})
    assert (r.status_code, r.json()) == (405, {"error": "method not allowed"})


@pytest.mark.parametrize("version", ["v0", "v4", "v33", "latest"])
def test_unknown_api_version(live, version):
    r = live.client.get(f"/api/{version}/checks/", headers={"X-Api-Key": API_KEY})
    assert (r.status_code, r.json()) == (404, {"error": "not found"})
