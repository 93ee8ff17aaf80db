"""GET /api/v3/checks/ (with ?tag= and ?slug=) and GET of one check by UUID or unique key; status fields."""

from __future__ import annotations

from tests.conftest import READONLY_KEY


def names(live, query="", key=None):
    r = live.api("GET", "checks/" + query, **({"key": key} if key else {}))
    assert r.status_code == 200, r.text
    return [c["name"] for c in r.json()["checks"]]


def test_empty_project(live):
    r = live.api("GET", "checks/")
    assert r.json() == {"checks": []}
    assert r.headers["Content-Type"] == "application/json"


def test_lists_in_creation_order(live):
    for name in ("c", "a", "b"):
        live.create(name=name)
    assert names(live) == ["c", "a", "b"]
    assert names(live, key=READONLY_KEY) == ["c", "a", "b"]


def test_tag_filters_are_repeatable_and_all_must_match(live):
    live.create(name="both", tags="prod db")
    live.create(name="prod", tags="prod")
    live.create(name="db", tags="db backup")
    live.create(name="none")
    live.create(name="prefix", tags="production dbx")
    assert names(live, "?tag=prod") == ["both", "prod"]
    assert names(live, "?tag=db") == ["both", "db"]
    assert names(live, "?tag=prod&tag=db") == ["both"]
    assert names(live, "?tag=db&tag=prod") == ["both"]
    assert names(live, "?tag=prod&tag=prod") == ["both", "prod"]
    assert names(live, "?tag=prod&tag=backup") == []
    assert names(live, "?tag=nope") == []
    assert names(live, "?tag=prod", key=READONLY_KEY) == ["both", "prod"]


def test_tag_filter_matches_whole_tags_with_odd_spacing(live):
    live.create(name="spaced", tags="  a   b  ")
    live.create(name="substring", tags="ab")
    assert names(live, "?tag=a") == ["spaced"]
    assert names(live, "?tag=b&tag=a") == ["spaced"]


def test_slug_filter(live):
    live.create(name="Nightly Backup")
    live.create(name="other", slug="nightly-backup")
    live.create(name="Weekly Backup")
    assert names(live, "?slug=nightly-backup") == ["Nightly Backup", "other"]
    assert names(live, "?slug=weekly-backup&tag=x") == []
    assert names(live, "?slug=nope") == []
    # An empty slug filters nothing, as the reference.
    assert len(names(live, "?slug=")) == 3


def test_slug_and_tag_combine(live):
    live.create(name="a", slug="s", tags="t")
    live.create(name="b", slug="s", tags="u")
    assert names(live, "?slug=s&tag=u") == ["b"]


def test_get_by_uuid_and_by_unique_key(live):
    check = live.create(name="one", tags="x")
    live.create(name="two")
    got = live.get_check(check["uuid"])
    assert got == check
    unique = live.api("GET", "checks/", key=READONLY_KEY).json()["checks"][0]["unique_key"]
    by_key = live.api("GET", f"checks/{unique}", key=READONLY_KEY)
    assert by_key.status_code == 200
    assert by_key.json()["name"] == "one" and by_key.json()["unique_key"] == unique
    # The unique key is stable: the same on every read.
    assert live.api("GET", f"checks/{check['uuid']}", key=READONLY_KEY).json()["unique_key"] == unique


def test_status_follows_pings_and_time(live):
    uuid = live.create(name="t", timeout=60, grace=120)["uuid"]
    assert live.get_check(uuid)["status"] == "new"
    live.ping(f"/ping/{uuid}")
    check = live.get_check(uuid)
    assert (check["status"], check["n_pings"]) == ("up", 1)
    assert check["last_ping"] == "2023-11-14T22:13:20+00:00"
    assert check["next_ping"] == "2023-11-14T22:14:20+00:00"
    live.clock.advance(60)
    assert live.get_check(uuid)["status"] == "grace"
    live.clock.advance(119)
    assert live.get_check(uuid)["status"] == "grace"
    live.clock.advance(1)
    assert live.get_check(uuid)["status"] == "down"
    assert live.api("GET", "checks/").json()["checks"][0]["status"] == "down"
    live.ping(f"/ping/{uuid}/fail")
    assert live.get_check(uuid)["status"] == "down"
    live.ping(f"/ping/{uuid}")
    assert live.get_check(uuid)["status"] == "up"


def test_times_have_seconds_precision(live):
    uuid = live.create(timeout=3600)["uuid"]
    live.clock.advance(0.75)
    live.ping(f"/ping/{uuid}")
    check = live.get_check(uuid)
    assert check["last_ping"] == "2023-11-14T22:13:20+00:00"
    assert check["next_ping"] == "2023-11-14T23:13:20+00:00"


def test_next_ping_of_a_cron_check_is_in_its_timezone(live):
    # T0 is 2023-11-14 22:13:20 UTC, 2023-11-15 00:13:20 in Riga (UTC+2).
    uuid = live.create(schedule="0 9 * * *", tz="Europe/Riga")["uuid"]
    live.ping(f"/ping/{uuid}")
    assert live.get_check(uuid)["next_ping"] == "2023-11-15T07:00:00+00:00"
    utc = live.create(schedule="*/5 * * * *")["uuid"]
    live.ping(f"/ping/{utc}")
    assert live.get_check(utc)["next_ping"] == "2023-11-14T22:15:00+00:00"


def test_started_and_last_duration(live):
    uuid = live.create(timeout=3600, grace=600)["uuid"]
    assert "last_duration" not in live.get_check(uuid)
    live.ping(f"/ping/{uuid}/start")
    check = live.get_check(uuid)
    assert (check["status"], check["started"]) == ("new", True)
    # A run that is open: the grace time starts at its start at the latest.
    assert check["next_ping"] == "2023-11-14T22:13:20+00:00"
    assert "last_duration" not in check
    live.clock.advance(42.6)
    live.ping(f"/ping/{uuid}")
    check = live.get_check(uuid)
    assert (check["status"], check["started"], check["last_duration"]) == ("up", False, 42)
    # A later run that stays open longer than the grace time is down.
    live.ping(f"/ping/{uuid}/start")
    live.clock.advance(599)
    assert live.get_check(uuid)["status"] != "down"
    live.clock.advance(1)
    check = live.get_check(uuid)
    assert (check["status"], check["started"], check["last_duration"]) == ("down", True, 42)


def test_zero_duration_is_not_shown(live):
    uuid = live.create()["uuid"]
    live.ping(f"/ping/{uuid}/start")
    live.ping(f"/ping/{uuid}")
    check = live.get_check(uuid)
    assert check["status"] == "up" and "last_duration" not in check


def test_a_log_ping_counts_but_changes_nothing(live):
    uuid = live.create()["uuid"]
    live.ping(f"/ping/{uuid}/log", method="POST", content=b"hello")
    check = live.get_check(uuid)
    assert (check["status"], check["n_pings"], check["last_ping"]) == ("new", 1, None)
