"""POST /api/v3/checks/: create, validation messages, the `unique` upsert, and the check's JSON shape."""

from __future__ import annotations

import pytest

from tests.conftest import READONLY_KEY

COMMON = {
    "name", "slug", "tags", "desc", "grace", "n_pings", "status", "started", "last_ping", "next_ping",
    "manual_resume", "methods", "subject", "subject_fail", "start_kw", "success_kw", "failure_kw",
    "filter_subject", "filter_body", "filter_http_body", "filter_default_fail", "badge_url",
}  # fmt: skip
READ_WRITE = {"uuid", "ping_url", "update_url", "pause_url", "resume_url", "channels"}


def error(live, body, status=400):
    r = live.api("POST", "checks/", json=body)
    assert r.status_code == status, r.text
    return r.json()["error"]


# -- the JSON of a check --------------------------------------------------------------------------


def test_defaults_and_exact_fields_of_a_simple_check(live):
    r = live.api("POST", "checks/", json={})
    assert r.status_code == 201
    assert r.headers["Content-Type"] == "application/json"
    check = r.json()
    assert set(check) == COMMON | READ_WRITE | {"timeout"}
    uuid = check["uuid"]
    api = f"http://hc.test/api/v3/checks/{uuid}"
    assert check == {
        "name": "", "slug": "", "tags": "", "desc": "", "grace": 3600, "n_pings": 0, "status": "new",
        "started": False, "last_ping": None, "next_ping": None, "manual_resume": False, "methods": "",
        "subject": "", "subject_fail": "", "start_kw": "", "success_kw": "", "failure_kw": "",
        "filter_subject": False, "filter_body": False, "filter_http_body": False, "filter_default_fail": False,
        "badge_url": check["badge_url"], "timeout": 86400, "uuid": uuid,
        "ping_url": f"http://hc.test/ping/{uuid}", "update_url": api, "pause_url": api + "/pause",
        "resume_url": api + "/resume", "channels": "",
    }  # fmt: skip
    assert check["badge_url"].startswith("http://hc.test/badge/") and check["badge_url"].endswith(".svg")
    assert live.get_check(uuid) == check


def test_readonly_fields_of_a_cron_check(live):
    uuid = live.create(name="c", schedule="0 9 * * 1-5", tz="Europe/Riga")["uuid"]
    check = live.api("GET", f"checks/{uuid}", key=READONLY_KEY).json()
    assert set(check) == COMMON | {"schedule", "tz", "unique_key"}
    assert (check["schedule"], check["tz"]) == ("0 9 * * 1-5", "Europe/Riga")


def test_all_settings_round_trip(live):
    body = {
        "name": "Nightly Backup", "slug": "nb", "tags": "prod db", "desc": "the\nbackup", "timeout": 60,
        "grace": 31536000, "manual_resume": True, "methods": "POST", "start_kw": "begin",
        "success_kw": "ok,done", "failure_kw": "error", "filter_subject": True, "filter_body": True,
        "filter_http_body": True, "filter_default_fail": True,
    }  # fmt: skip
    check = live.create(**body)
    for field, value in body.items():
        assert check[field] == value, field
    assert check["subject"] == "ok,done" and check["subject_fail"] == "error"
    assert live.get_check(check["uuid"]) == check


def test_slug_is_derived_from_the_name(live):
    assert live.create(name="Database Backup")["slug"] == "database-backup"
    assert live.create(name="  Caf\u00e9 -- d\u00e9j\u00e0 vu!  ")["slug"] == "cafe-deja-vu"
    assert live.create(name="_under_ score_")["slug"] == "under_-score"
    assert live.create(name="Backup", slug="custom")["slug"] == "custom"
    assert live.create(name="Backup", slug="")["slug"] == ""


def test_schedule_makes_a_cron_or_oncalendar_check(live):
    cron = live.create(schedule="*/5 * * * *")
    assert (cron["schedule"], cron["tz"]) == ("*/5 * * * *", "UTC")
    assert "timeout" not in cron
    oncalendar = live.create(schedule="Mon..Fri *-*-* 09:00", tz="America/New_York")
    assert (oncalendar["schedule"], oncalendar["tz"]) == ("Mon..Fri *-*-* 09:00", "America/New_York")
    # With both, the schedule wins and the timeout is not shown.
    both = live.create(schedule="0 * * * *", timeout=120)
    assert both["schedule"] == "0 * * * *" and "timeout" not in both
    # A tz alone does not make a cron check.
    simple = live.create(tz="Europe/Riga", timeout=300)
    assert simple["timeout"] == 300 and "schedule" not in simple and "tz" not in simple


def test_subject_aliases(live):
    check = live.create(subject="SUCCESS", subject_fail="FAIL")
    assert (check["success_kw"], check["failure_kw"], check["filter_subject"]) == ("SUCCESS", "FAIL", True)
    assert (check["subject"], check["subject_fail"]) == ("SUCCESS", "FAIL")
    cleared = live.api("POST", f"checks/{check['uuid']}", json={"subject": "", "subject_fail": ""}).json()
    assert (cleared["success_kw"], cleared["failure_kw"], cleared["filter_subject"]) == ("", "", False)


def test_unknown_fields_are_ignored(live):
    check = live.create(
        name="a", foo=1, kind="cron", status="up", n_pings=7, uuid="nope", last_ping="2020-01-01T00:00:00+00:00",
        req_success_kw=[1], api_key_readonly=None,
    )  # fmt: skip
    assert check["name"] == "a" and check["status"] == "new" and check["n_pings"] == 0
    assert check["uuid"] != "nope" and check["last_ping"] is None and "timeout" in check


def test_each_create_makes_a_new_check(live):
    a, b = live.create(name="same"), live.create(name="same")
    assert a["uuid"] != b["uuid"] and a["slug"] == b["slug"] == "same"
    assert len(live.api("GET", "checks/").json()["checks"]) == 2


# -- validation -----------------------------------------------------------------------------------

STRINGS = ["name", "slug", "tags", "desc", "schedule", "tz", "channels",
           "subject", "subject_fail", "start_kw", "success_kw", "failure_kw"]  # fmt: skip
BOOLEANS = ["manual_resume", "filter_subject", "filter_body", "filter_http_body", "filter_default_fail"]


@pytest.mark.parametrize("field", STRINGS)
def test_strings(live, field):
    for value in (None, 5, 1.5, True, [], {}):
        assert error(live, {field: value}) == f"json validation error: {field} is not a string", value


@pytest.mark.parametrize("field", BOOLEANS)
def test_booleans(live, field):
    for value in (None, 1, 0, "true", "", []):
        assert error(live, {field: value}) == f"json validation error: {field} is not a boolean", value
    assert live.create(**{field: True})[field] is True


@pytest.mark.parametrize("field", ["timeout", "grace"])
def test_periods(live, field):
    for value in (None, "60", 60.0, 60.5, True, [60], {}):
        assert error(live, {field: value}) == f"json validation error: {field} is not a number", value
    for value in (59, 0, -1, -(10**20)):
        assert error(live, {field: value}) == f"json validation error: {field} is too small", value
    for value in (31536001, 10**30):
        assert error(live, {field: value}) == f"json validation error: {field} is too large", value
    assert live.create(**{field: 60})[field] == 60
    assert live.create(**{field: 31536000})[field] == 31536000


@pytest.mark.parametrize(
    ("field", "limit"),
    [("name", 100), ("slug", 100), ("tags", 500), ("schedule", 100), ("subject", 200), ("subject_fail", 200),
     ("start_kw", 200), ("success_kw", 200), ("failure_kw", 200)],
)  # fmt: skip
def test_lengths(live, field, limit):
    assert error(live, {field: "a" * (limit + 1)}) == f"json validation error: {field} is too long"
    if field != "schedule":
        assert live.create(**{field: "a" * limit})[field] == "a" * limit


def test_unlimited_strings(live):
    assert live.create(desc="d" * 20000)["desc"] == "d" * 20000


@pytest.mark.parametrize("slug", ["Upper", "with space", "dot.ted", "sl/ash", "\u00e9", "a\n"])
def test_slug_pattern(live, slug):
    assert error(live, {"slug": slug}) == "json validation error: slug does not match pattern"


def test_slug_pattern_accepts(live):
    assert live.create(slug="a-z_0-9")["slug"] == "a-z_0-9"


@pytest.mark.parametrize(
    "schedule", ["", "* * * *", "61 * * * *", "0 0 31 2 *", "* * * * * *", "@daily", "*-*-* 25:00", "nonsense!"]
)
def test_bad_schedules(live, schedule):
    message = "json validation error: schedule is not a valid cron or OnCalendar expression"
    assert error(live, {"schedule": schedule}) == message


@pytest.mark.parametrize("tz", ["", "Mars/Olympus", "utc ", "Europe/", "../../etc/passwd", "+02:00"])
def test_bad_timezones(live, tz):
    assert error(live, {"tz": tz, "schedule": "* * * * *"}) == "json validation error: tz is not a valid timezone"


@pytest.mark.parametrize("methods", ["GET", "post", " POST", None, 1, ["POST"]])
def test_bad_methods(live, methods):
    assert error(live, {"methods": methods}) == "json validation error: methods has unexpected value"


def test_unique_must_be_a_list_of_known_fields(live):
    for value in ("name", None, {"name": 1}, 1):
        assert error(live, {"unique": value}) == "json validation error: unique is not an array"
    for value in (["desc"], ["name", "schedule"], [None], [1], ["Name"]):
        assert error(live, {"unique": value}) == "json validation error: an item in 'unique' has unexpected value"


def test_first_error_wins_and_nothing_is_created(live):
    message = error(live, {"timeout": 1, "name": 5, "tz": "nowhere"})
    assert message == "json validation error: name is not a string"
    assert live.api("GET", "checks/").json() == {"checks": []}


def test_bad_channel_creates_nothing(live):
    assert error(live, {"name": "a", "channels": "no-such-channel"}) == "invalid channel identifier: no-such-channel"
    assert error(live, {"channels": ","}) == "empty channel identifier"
    assert live.api("GET", "checks/").json() == {"checks": []}


# -- unique: update-or-create ---------------------------------------------------------------------


def upsert(live, **body):
    r = live.api("POST", "checks/", json=body)
    assert r.status_code in (200, 201), r.text
    return r.status_code, r.json()


def test_unique_name_updates_the_match(live):
    first = live.create(name="db", timeout=60)
    status, again = upsert(live, name="db", timeout=120, unique=["name"])
    assert status == 200
    assert again["uuid"] == first["uuid"] and again["timeout"] == 120
    status, other = upsert(live, name="web", timeout=120, unique=["name"])
    assert status == 201 and other["uuid"] != first["uuid"]
    assert len(live.api("GET", "checks/").json()["checks"]) == 2


@pytest.mark.parametrize(
    ("existing", "body", "expected"),
    [
        ({"slug": "s"}, {"slug": "s", "desc": "x", "unique": ["slug"]}, 200),
        ({"tags": "a b"}, {"tags": "a b", "unique": ["tags"]}, 200),
        ({"tags": "a b"}, {"tags": "b a", "unique": ["tags"]}, 201),
        ({"timeout": 600}, {"timeout": 600, "unique": ["timeout"]}, 200),
        ({"grace": 600}, {"grace": 600, "unique": ["grace"]}, 200),
        ({"grace": 600}, {"grace": 601, "unique": ["grace"]}, 201),
        ({"name": "n", "tags": "t"}, {"name": "n", "tags": "t", "unique": ["name", "tags"]}, 200),
        ({"name": "n", "tags": "t"}, {"name": "n", "tags": "u", "unique": ["name", "tags"]}, 201),
        # A field named in `unique` but not sent: no match is possible, so create.
        ({"name": "n"}, {"unique": ["name"]}, 201),
        ({"name": "n"}, {"name": "n", "unique": ["name", "timeout"]}, 201),
        ({"name": "n"}, {"name": "n", "unique": []}, 201),
        ({"name": "n"}, {"name": "n"}, 201),
    ],
)
def test_unique_fields(live, existing, body, expected):
    first = live.create(**existing)
    status, check = upsert(live, **body)
    assert status == expected
    assert (check["uuid"] == first["uuid"]) == (expected == 200)


def test_unique_update_changes_only_sent_fields(live):
    first = live.create(name="db", tags="prod", desc="keep me", grace=120)
    status, check = upsert(live, name="db", tags="staging", unique=["name"])
    assert status == 200
    assert (check["tags"], check["desc"], check["grace"]) == ("staging", "keep me", 120)
    assert check["uuid"] == first["uuid"]


def test_readonly_key_cannot_upsert(live):
    live.create(name="db")
    r = live.api("POST", "checks/", key=READONLY_KEY, json={"name": "db", "unique": ["name"]})
    assert r.status_code == 401
