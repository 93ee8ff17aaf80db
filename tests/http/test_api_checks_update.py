"""POST /api/v3/checks/<uuid>: only the fields sent change; validation leaves the check untouched."""

from __future__ import annotations

import pytest

from tests.conftest import PING_KEY


def update(live, code, **body):
    r = live.api("POST", f"checks/{code}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_only_sent_fields_change(live):
    before = live.create(name="a", tags="t", desc="d", timeout=120, grace=300, methods="POST", manual_resume=True)
    after = update(live, before["uuid"], desc="new")
    assert after == {**before, "desc": "new"}
    assert live.get_check(before["uuid"]) == after


def test_empty_update_changes_nothing(live):
    before = live.create(name="a", schedule="0 0 * * *", tz="Asia/Tokyo")
    assert update(live, before["uuid"]) == before
    r = live.api("POST", f"checks/{before['uuid']}", content=b"")
    assert (r.status_code, r.json()) == (200, before)


def test_every_setting_can_change(live):
    uuid = live.create(name="a")["uuid"]
    body = {
        "name": "b", "slug": "bee", "tags": "x y", "desc": "dd", "timeout": 61, "grace": 62, "manual_resume": True,
        "methods": "POST", "start_kw": "s", "success_kw": "ok", "failure_kw": "bad", "filter_subject": True,
        "filter_body": True, "filter_http_body": True, "filter_default_fail": True,
    }  # fmt: skip
    after = update(live, uuid, **body)
    for field, value in body.items():
        assert after[field] == value, field
    back = update(live, uuid, methods="", manual_resume=False, filter_http_body=False, tags="", desc="")
    assert (back["methods"], back["manual_resume"], back["filter_http_body"], back["tags"]) == ("", False, False, "")


def test_kind_switches_between_simple_and_cron(live):
    uuid = live.create(timeout=300)["uuid"]
    cron = update(live, uuid, schedule="*/10 * * * *", tz="Europe/Berlin")
    assert (cron["schedule"], cron["tz"]) == ("*/10 * * * *", "Europe/Berlin") and "timeout" not in cron
    # A tz alone keeps it a cron check.
    assert update(live, uuid, tz="UTC")["schedule"] == "*/10 * * * *"
    simple = update(live, uuid, timeout=600)
    assert simple["timeout"] == 600 and "schedule" not in simple and "tz" not in simple
    oncalendar = update(live, uuid, schedule="*-*-* 03:00")
    assert oncalendar["schedule"] == "*-*-* 03:00" and oncalendar["tz"] == "UTC"
    # Only the timeout shown matters for an ongoing deadline.
    live.ping(f"/ping/{uuid}")
    assert live.get_check(uuid)["next_ping"] == "2023-11-15T03:00:00+00:00"


def test_grace_change_moves_the_status(live):
    uuid = live.create(timeout=60, grace=60)["uuid"]
    live.ping(f"/ping/{uuid}")
    live.clock.advance(150)
    assert live.get_check(uuid)["status"] == "down"
    assert update(live, uuid, grace=3600)["status"] == "grace"


def test_state_fields_cannot_be_written(live):
    uuid = live.create(name="a")["uuid"]
    live.ping(f"/ping/{uuid}")
    after = update(live, uuid, status="down", n_pings=0, last_ping=None, started=True, uuid="x", unique_key="y")
    assert (after["status"], after["n_pings"], after["started"], after["uuid"]) == ("up", 1, False, uuid)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": None}, "name is not a string"),
        ({"timeout": 59}, "timeout is too small"),
        ({"grace": 31536001}, "grace is too large"),
        ({"slug": "No"}, "slug does not match pattern"),
        ({"schedule": "* * *"}, "schedule is not a valid cron or OnCalendar expression"),
        ({"tz": "Nowhere/City"}, "tz is not a valid timezone"),
        ({"manual_resume": "yes"}, "manual_resume is not a boolean"),
        ({"methods": "PUT"}, "methods has unexpected value"),
        ({"unique": "name"}, "unique is not an array"),
        ({"name": "valid", "desc": "valid", "timeout": 1}, "timeout is too small"),
    ],
)
def test_invalid_update_changes_nothing(live, body, message):
    before = live.create(name="a", timeout=120)
    r = live.api("POST", f"checks/{before['uuid']}", json=body)
    assert (r.status_code, r.json()) == (400, {"error": "json validation error: " + message})
    assert live.get_check(before["uuid"]) == before


def test_bad_channel_changes_nothing(live):
    before = live.create(name="a")
    r = live.api("POST", f"checks/{before['uuid']}", json={"name": "b", "channels": "nope"})
    assert (r.status_code, r.json()) == (400, {"error": "invalid channel identifier: nope"})
    assert live.get_check(before["uuid"]) == before


def test_new_slug_is_pingable_and_old_one_is_not(live):
    uuid = live.create(name="Old Name")["uuid"]
    assert live.ping(f"/ping/{PING_KEY}/old-name").status_code == 200
    update(live, uuid, slug="new-slug")
    assert live.ping(f"/ping/{PING_KEY}/old-name").status_code == 404
    assert live.ping(f"/ping/{PING_KEY}/new-slug").status_code == 200
    assert live.get_check(uuid)["n_pings"] == 2


def test_update_to_a_shared_slug_makes_slug_pings_ambiguous(live):
    a = live.create(name="a")["uuid"]
    live.create(name="b")
    update(live, a, slug="b")
    r = live.ping(f"/ping/{PING_KEY}/b")
    assert (r.status_code, r.text) == (409, "ambiguous slug")
    update(live, a, slug="a")
    assert live.ping(f"/ping/{PING_KEY}/b").status_code == 200
