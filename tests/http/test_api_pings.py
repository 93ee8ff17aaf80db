"""GET /api/v3/checks/<uuid>/pings/ and /pings/<n>/body."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY, make_settings

RID = "6f9e1e4c-5a3b-4c1d-9e2f-0a1b2c3d4e5f"


def pings(live, uuid, version=3):
    r = live.client.get(f"/api/v{version}/checks/{uuid}/pings/", headers={"X-Api-Key": API_KEY})
    assert r.status_code == 200, r.text
    return r.json()["pings"]


def body(live, uuid, n):
    return live.api("GET", f"checks/{uuid}/pings/{n}/body")


def test_no_pings(live):
    uuid = live.create()["uuid"]
    r = live.api("GET", f"checks/{uuid}/pings/")
    assert (r.status_code, r.json()) == (200, {"pings": []})
    assert r.headers["Content-Type"] == "application/json"


def test_ping_fields(live):
    uuid = live.create()["uuid"]
    live.clock.advance(0.25)
    live.ping(f"/ping/{uuid}", headers={"User-Agent": "curl/8.5.0"})
    assert pings(live, uuid) == [
        {
            "type": "success", "date": "2023-11-14T22:13:20.250000+00:00", "n": 1, "scheme": "http",
            "remote_addr": "127.0.0.1", "method": "GET", "ua": "curl/8.5.0", "rid": None, "body_url": None,
        }
    ]  # fmt: skip


def test_forwarded_headers_method_rid_and_body(live):
    uuid = live.create()["uuid"]
    live.ping(
        f"/ping/{uuid}/fail?rid={RID.upper()}",
        method="POST",
        content=b"it broke",
        headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Proto": "https", "User-Agent": "u" * 300},
    )
    (ping,) = pings(live, uuid)
    assert ping == {
        "type": "fail", "date": "2023-11-14T22:13:20+00:00", "n": 1, "scheme": "https", "remote_addr": "203.0.113.9",
        "method": "POST", "ua": "u" * 200, "rid": RID,
        "body_url": f"http://hc.test/api/v3/checks/{uuid}/pings/1/body",
    }  # fmt: skip


def test_types_and_order(live):
    uuid = live.create(methods="")["uuid"]
    for path in ("/start", "", "/fail", "/log", "/0", "/7"):
        live.ping(f"/ping/{uuid}{path}")
    live.api("POST", f"checks/{uuid}", json={"methods": "POST"})
    live.ping(f"/ping/{uuid}", method="HEAD")
    result = pings(live, uuid)
    assert [(p["n"], p["type"]) for p in result] == [
        (7, "ign"), (6, "fail"), (5, "success"), (4, "log"), (3, "fail"), (2, "success"), (1, "start"),
    ]  # fmt: skip
    assert result[0]["method"] == "HEAD"


def test_newest_first_limited_to_the_ping_log(live):
    uuid = live.create()["uuid"]
    for _ in range(105):
        live.ping(f"/ping/{uuid}")
        live.clock.advance(1)
    result = pings(live, uuid)
    assert len(result) == 100
    assert [p["n"] for p in result] == list(range(105, 5, -1))
    assert result[0]["date"] == "2023-11-14T22:15:04+00:00"
    assert live.get_check(uuid)["n_pings"] == 105


@pytest.mark.parametrize("settings", [make_settings(ping_log_limit=3)])
def test_ping_log_limit_setting(live):
    uuid = live.create()["uuid"]
    for i in range(5):
        live.ping(f"/ping/{uuid}", method="POST", content=f"body {i}".encode())
    assert [p["n"] for p in pings(live, uuid)] == [5, 4, 3]
    # Bodies of pings that fell out of the log are gone.
    assert body(live, uuid, 3).content == b"body 2"
    assert body(live, uuid, 2).status_code == 404
    assert body(live, uuid, 1).status_code == 404


@pytest.mark.parametrize(
    ("sequence", "durations"),
    [
        # (action, rid, seconds later): duration appears on the ping that closes a run.
        ([("start", RID, 0), ("", RID, 12.5)], [12.5, None]),
        ([("start", None, 0), ("", None, 3)], [3, None]),
        ([("start", None, 0), ("fail", None, 4)], [4, None]),
        ([("start", RID, 0), ("fail", RID, 4)], [4, None]),
        ([("start", RID, 0), ("", None, 3)], [None, None]),
        ([("start", None, 0), ("", RID, 3)], [None, None]),
        ([("start", RID, 0), ("", "0" * 8 + RID[8:], 3)], [None, None]),
        ([("", None, 0), ("", None, 5)], [None, None]),
        ([("start", None, 0), ("log", None, 1), ("", None, 2)], [3, None, None]),
        ([("start", None, 0), ("start", None, 10), ("", None, 2)], [2, None, None]),
        ([("start", None, 0), ("", None, 1), ("", None, 1)], [None, 1, None]),
        ([("start", None, 0), ("0", None, 6)], [6, None]),
    ],
)
def test_duration(live, sequence, durations):
    uuid = live.create()["uuid"]
    for action, rid, later in sequence:
        live.clock.advance(later)
        suffix = f"/{action}" if action else ""
        assert live.ping(f"/ping/{uuid}{suffix}" + (f"?rid={rid}" if rid else "")).status_code == 200
    assert [p.get("duration") for p in pings(live, uuid)] == durations


def test_body_url_follows_the_api_version(live):
    uuid = live.create()["uuid"]
    live.ping(f"/ping/{uuid}", method="POST", content=b"x")
    for version in (1, 2, 3):
        (ping,) = pings(live, uuid, version)
        assert ping["body_url"] == f"http://hc.test/api/v{version}/checks/{uuid}/pings/1/body"
        assert (
            live.client.get(ping["body_url"].replace("http://hc.test", ""), headers={"X-Api-Key": API_KEY}).text == "x"
        )


def test_body_is_served_as_raw_bytes(live):
    uuid = live.create()["uuid"]
    raw = bytes(range(256)) + b"\xff\xfe not utf-8 \xc3\x28"
    live.ping(f"/ping/{uuid}", method="POST", content=raw)
    live.ping(f"/ping/{uuid}/log", method="PUT", content="caf\u00e9 \u2713".encode())
    r = body(live, uuid, 1)
    assert r.status_code == 200
    assert r.content == raw
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert body(live, uuid, 2).content == "caf\u00e9 \u2713".encode()


@pytest.mark.parametrize("settings", [make_settings(ping_body_limit=10)])
def test_body_is_cut_at_the_limit(live):
    uuid = live.create()["uuid"]
    live.ping(f"/ping/{uuid}", method="POST", content=b"0123456789abcdef")
    assert body(live, uuid, 1).content == b"0123456789"


def test_missing_or_empty_body_is_not_found(live):
    uuid = live.create()["uuid"]
    live.ping(f"/ping/{uuid}")
    live.ping(f"/ping/{uuid}", method="POST", content=b"")
    live.ping(f"/ping/{uuid}", method="POST", content=b"x")
    assert [p["body_url"] is None for p in pings(live, uuid)] == [False, True, True]
    for n in ("1", "2", "0", "4", "99999999999999999999999"):
        r = body(live, uuid, n)
        assert (r.status_code, r.json()) == (404, {"error": "not found"}), n
    for n in ("-1", "x", "1.0"):
        assert body(live, uuid, n).status_code == 404, n
    assert body(live, uuid, 3).content == b"x"


def test_pings_of_an_unknown_check(live):
    r = live.api("GET", "checks/00000000-0000-0000-0000-000000000000/pings/")
    assert (r.status_code, r.json()) == (404, {"error": "not found"})
