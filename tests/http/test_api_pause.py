"""POST /api/v3/checks/<uuid>/pause and /resume, and the flips they make."""

from __future__ import annotations

import asyncio

from tests.conftest import API_KEY


def recorded_flips(live, uuid):
    """(old, new) status of every flip the server recorded for a check, the API's filter aside."""
    check = live.call(lambda: live.ctx.index.checks[uuid])
    flips = asyncio.run_coroutine_threadsafe(live.ctx.recorder.flips(check), live.loop).result(5)
    return [(f.old_status, f.new_status) for f in flips]


def post(live, uuid, action):
    return live.api("POST", f"checks/{uuid}/{action}")


def test_pause_an_up_check(live):
    uuid = live.create(timeout=60, grace=60)["uuid"]
    live.ping(f"/ping/{uuid}")
    live.ping(f"/ping/{uuid}/start")
    r = post(live, uuid, "pause")
    assert r.status_code == 200
    check = r.json()
    assert (check["status"], check["started"], check["next_ping"]) == ("paused", False, None)
    assert check["last_ping"] == "2023-11-14T22:13:20+00:00"
    assert check == live.get_check(uuid)
    assert recorded_flips(live, uuid) == [("new", "up"), ("up", "paused")]
    # Paused checks do not go down with time.
    live.clock.advance(10 * 86400)
    assert live.get_check(uuid)["status"] == "paused"
    assert recorded_flips(live, uuid) == [("new", "up"), ("up", "paused")]


def test_pause_a_new_and_a_down_check(live):
    new = live.create()["uuid"]
    assert post(live, new, "pause").json()["status"] == "paused"
    down = live.create()["uuid"]
    live.ping(f"/ping/{down}/fail")
    assert post(live, down, "pause").json()["status"] == "paused"
    assert recorded_flips(live, new) == [("new", "paused")]
    assert recorded_flips(live, down) == [("new", "down"), ("down", "paused")]


def test_pause_when_paused_is_a_no_op(live):
    uuid = live.create()["uuid"]
    first = post(live, uuid, "pause").json()
    live.clock.advance(30)
    r = post(live, uuid, "pause")
    assert (r.status_code, r.json()) == (200, first)
    assert recorded_flips(live, uuid) == [("new", "paused")]


def test_a_ping_unpauses_unless_manual_resume(live):
    auto = live.create(name="auto")["uuid"]
    manual = live.create(name="manual", manual_resume=True)["uuid"]
    for uuid in (auto, manual):
        post(live, uuid, "pause")
        live.ping(f"/ping/{uuid}")
    assert live.get_check(auto)["status"] == "up"
    assert live.get_check(manual)["status"] == "paused"
    assert live.api("GET", f"checks/{manual}/pings/").json()["pings"][0]["type"] == "ign"
    assert live.api("GET", f"checks/{auto}/flips/").json()["flips"] == [
        {"timestamp": "2023-11-14T22:13:20+00:00", "up": 1}
    ]


def test_a_run_started_while_paused_goes_down_after_grace(live):
    uuid = live.create(grace=120)["uuid"]
    post(live, uuid, "pause")
    live.ping(f"/ping/{uuid}/start")
    check = live.get_check(uuid)
    assert (check["status"], check["started"]) == ("paused", True)
    live.clock.advance(120)
    assert live.get_check(uuid)["status"] == "down"


def test_resume_when_not_paused_is_a_conflict(live):
    uuid = live.create()["uuid"]
    r = post(live, uuid, "resume")
    assert (r.status_code, r.json()) == (409, {"error": "check is not paused"})
    live.ping(f"/ping/{uuid}")
    assert post(live, uuid, "resume").status_code == 409
    assert live.get_check(uuid)["status"] == "up"
    assert recorded_flips(live, uuid) == [("new", "up")]


def test_resume_makes_the_check_new(live):
    uuid = live.create(timeout=60)["uuid"]
    live.ping(f"/ping/{uuid}")
    post(live, uuid, "pause")
    live.ping(f"/ping/{uuid}/start")
    live.clock.advance(5)
    r = post(live, uuid, "resume")
    assert r.status_code == 200
    check = r.json()
    assert (check["status"], check["last_ping"], check["next_ping"], check["started"]) == ("new", None, None, False)
    assert check["n_pings"] == 2
    assert recorded_flips(live, uuid) == [("new", "up"), ("up", "paused"), ("paused", "new")]
    # A new check waits for its first ping: no deadline, however long.
    live.clock.advance(86400 * 30)
    assert live.get_check(uuid)["status"] == "new"
    assert post(live, uuid, "resume").status_code == 409


def test_pause_and_resume_answer_in_the_version_asked(live):
    uuid = live.create()["uuid"]
    r = live.client.post(f"/api/v1/checks/{uuid}/pause", headers={"X-Api-Key": API_KEY})
    assert r.json()["pause_url"] == f"http://hc.test/api/v1/checks/{uuid}/pause"
    r = live.client.post(f"/api/v2/checks/{uuid}/resume", headers={"X-Api-Key": API_KEY})
    assert r.json()["resume_url"] == f"http://hc.test/api/v2/checks/{uuid}/resume"
