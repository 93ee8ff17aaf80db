"""Status rules of the Check entity, with the clock as a parameter."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from hcserver.domain.checks import MAX_OPEN_RUNS, Check
from hcserver.domain.pings import PingRequest

T = 1_700_000_000.0


def ping(check: Check, action: str, now: float, rid: str | None = None, **kw):
    return check.ping(PingRequest(action=action, method=kw.pop("method", "GET"), rid=rid, **kw), now)


def simple(**kw) -> Check:
    return Check(uuid="u", project_id="p", created=T, timeout=3600, grace=600, **kw)


def ts(text: str, tz: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_new_stays_new_with_time():
    check = simple()
    assert check.status_at(T + 10**6) == "new"
    assert check.grace_start() is None and check.going_down_after() is None


def test_simple_up_grace_down():
    check = simple()
    _, flip = ping(check, "success", T)
    assert flip is not None and (flip.old_status, flip.new_status) == ("new", "up")
    assert check.status_at(T + 3599) == "up"
    assert check.status_at(T + 3600) == "grace"
    assert check.status_at(T + 4199) == "grace"
    assert check.status_at(T + 4200) == "down"
    assert check.going_down_after() == T + 4200


def test_go_down_flip_is_dated_at_the_deadline():
    check = simple()
    ping(check, "success", T)
    assert check.go_down_if_due(T + 4199) is None
    flip = check.go_down_if_due(T + 5000)
    assert flip is not None and flip.created == T + 4200 and flip.reason == "timeout"
    assert check.status == "down"
    assert check.go_down_if_due(T + 6000) is None


def test_fail_then_success():
    check = simple()
    _, flip = ping(check, "fail", T)
    assert flip is not None and flip.new_status == "down"
    assert check.status_at(T) == "down"
    _, flip = ping(check, "success", T + 1)
    assert flip is not None and (flip.old_status, flip.new_status) == ("down", "up")
    _, flip = ping(check, "success", T + 2)
    assert flip is None


def test_start_keeps_status_and_reports_started():
    check = simple()
    _, flip = ping(check, "start", T)
    assert flip is None and check.status == "new" and check.started


def test_run_longer_than_grace_is_down_even_when_new_or_paused():
    check = simple()
    ping(check, "start", T)
    assert check.status_at(T + 599) == "new"
    assert check.status_at(T + 600) == "down"
    assert check.going_down_after() == T + 600
    paused = simple(status="paused")
    ping(paused, "start", T)
    assert paused.status_at(T + 600) == "down"


def test_open_run_pulls_grace_start_earlier():
    check = simple()
    ping(check, "success", T)
    ping(check, "start", T + 100)
    assert check.grace_start() == T + 100
    assert check.status_at(T + 700) == "down"


def test_duration_with_and_without_rid():
    check = simple()
    ping(check, "start", T)
    p, _ = ping(check, "success", T + 30)
    assert p.duration == 30 and check.last_duration == 30 and not check.started
    ping(check, "start", T + 40, rid="a")
    p, _ = ping(check, "success", T + 50)  # no rid: the rid-less run is absent, but every run ends
    assert p.duration is None and not check.started


def test_overlapping_runs():
    check = simple()
    ping(check, "start", T, rid="a")
    ping(check, "start", T + 5, rid="b")
    p, _ = ping(check, "success", T + 20, rid="b")
    assert p.duration == 15 and check.started
    p, _ = ping(check, "fail", T + 30, rid="a")
    assert p.duration == 30 and not check.started


def test_open_runs_are_bounded():
    check = simple()
    for i in range(MAX_OPEN_RUNS + 10):
        ping(check, "start", T + i, rid=str(i))
    assert check.runs is not None and len(check.runs) == MAX_OPEN_RUNS
    assert "0" not in check.runs and str(MAX_OPEN_RUNS + 9) in check.runs


def test_log_and_ign_change_nothing_but_count():
    check = simple()
    ping(check, "success", T)
    p, flip = ping(check, "log", T + 1)
    assert p.kind == "log" and flip is None and check.last_ping == T and check.n_pings == 2


def test_methods_post_ignores_get():
    check = simple(methods="POST")
    p, flip = ping(check, "success", T)
    assert p.kind == "ign" and flip is None and check.status == "new"
    p, flip = ping(check, "success", T, method="POST")
    assert p.kind == "success" and flip is not None


def test_pause_and_resume():
    check = simple()
    ping(check, "success", T)
    ping(check, "start", T + 1)
    flip = check.pause(T + 2)
    assert flip is not None and flip.new_status == "paused" and not check.started
    assert check.pause(T + 3) is None
    assert check.status_at(T + 10**6) == "paused"
    flip = check.resume(T + 4)
    assert flip is not None and check.status == "new" and check.last_ping is None


def test_paused_with_manual_resume_ignores_pings():
    check = simple(status="paused", manual_resume=True)
    p, flip = ping(check, "success", T)
    assert p.kind == "ign" and flip is None and check.status == "paused"


@pytest.mark.parametrize("kind,schedule", [("cron", "0 2 * * *"), ("oncalendar", "*-*-* 02:00:00")])
def test_scheduled_check_across_spring_forward(kind, schedule):
    # Europe/Riga moves clocks from 03:00 to 04:00 on 2024-03-31; a 02:00 job still runs at 02:00 local.
    tz = "Europe/Riga"
    check = Check(uuid="u", project_id="p", created=T, kind=kind, schedule=schedule, tz=tz, grace=300)
    ping(check, "success", ts("2024-03-30T02:00:10", tz))
    assert check.grace_start() == ts("2024-03-31T02:00:00", tz)
    assert check.grace_start() - ts("2024-03-30T02:00:10", tz) == 24 * 3600 - 10  # 02:00 EET both days
    due = ts("2024-03-31T02:00:00", tz)
    assert check.status_at(due - 1) == "up"
    assert check.status_at(due) == "grace"
    assert check.status_at(due + 300) == "down"


@pytest.mark.parametrize(
    "kind,schedule,expected",
    [
        # cron runs a job whose local time is skipped right after the jump (cronsim follows cron)
        ("cron", "30 3 * * *", "2024-03-31T04:00:00"),
        # OnCalendar follows systemd: a time that does not exist that day is skipped
        ("oncalendar", "*-*-* 03:30", "2024-04-01T03:30:00"),
    ],
)
def test_scheduled_check_in_the_skipped_hour(kind, schedule, expected):
    # 03:30 does not exist on 2024-03-31 in Riga (clocks go from 03:00 to 04:00).
    tz = "Europe/Riga"
    check = Check(uuid="u", project_id="p", created=T, kind=kind, schedule=schedule, tz=tz, grace=300)
    ping(check, "success", ts("2024-03-30T03:30:00", tz))
    assert check.grace_start() == ts(expected, tz)


@pytest.mark.parametrize("kind,schedule", [("cron", "0 * * * *"), ("oncalendar", "hourly")])
def test_scheduled_check_across_fall_back(kind, schedule):
    # On 2024-10-27 Riga repeats 03:00-04:00; an hourly job is expected every real hour.
    tz = "Europe/Riga"
    check = Check(uuid="u", project_id="p", created=T, kind=kind, schedule=schedule, tz=tz, grace=60)
    last = ts("2024-10-27T02:00:00", tz)
    ping(check, "success", last)
    nxt = check.grace_start()
    assert nxt is not None and 0 < nxt - last <= 2 * 3600


def test_schedule_with_seconds_in_ping():
    check = Check(uuid="u", project_id="p", created=T, kind="cron", schedule="*/5 * * * *", tz="UTC")
    last = ts("2024-01-01T10:00:30", "UTC")
    ping(check, "success", last)
    assert check.grace_start() == ts("2024-01-01T10:05:00", "UTC")


def test_keyword_classify():
    check = simple(filter_http_body=True, success_kw="ok,done", failure_kw="error", start_kw="begin")
    assert check.classify(b"all done") == "success"
    assert check.classify(b"error but done") == "fail"
    assert check.classify(b"begin") == "start"
    assert check.classify(b"\xff\xfe") == "ign"
    assert check.classify(None) == "ign"


def test_open_run_does_not_make_an_up_check_graced():
    check = simple()
    ping(check, "success", T)
    ping(check, "start", T + 100)
    assert check.status_at(T + 400) == "up"  # the reference: a run counts only once past grace
    assert check.grace_start() == T + 100  # but next_ping shows the run's start


@pytest.mark.parametrize(
    "kind,settings,expected_local",
    [
        # a simple period is absolute: 24 h after 12:00 EET is 13:00 EEST
        ("simple", {"timeout": 86400}, "2024-03-31T13:00:00"),
        # schedules are local: the next noon comes 23 h later across the spring-forward
        ("cron", {"schedule": "0 12 * * *"}, "2024-03-31T12:00:00"),
        ("oncalendar", {"schedule": "*-*-* 12:00:00"}, "2024-03-31T12:00:00"),
    ],
)
def test_every_transition_across_dst(kind, settings, expected_local):
    tz = "Europe/Riga"
    check = Check(uuid="u", project_id="p", created=T, kind=kind, tz=tz, grace=3600, **settings)
    t0 = ts("2024-03-30T12:00:00", tz)
    # new, then started while new
    assert check.status_at(t0) == "new"
    ping(check, "start", t0 - 60)
    assert (check.status_at(t0), check.started) == ("new", True)
    # up
    _, flip = ping(check, "success", t0)
    assert flip is not None and flip.new_status == "up" and not check.started
    expected = ts(expected_local, tz)
    assert check.grace_start() == expected
    assert check.status_at(expected - 1) == "up"
    # grace, then down by time (the flip dated at the deadline)
    assert check.status_at(expected) == "grace"
    assert check.status_at(expected + 3599) == "grace"
    assert check.status_at(expected + 3600) == "down"
    flip = check.go_down_if_due(expected + 7200)
    assert flip is not None and flip.created == expected + 3600
    # up again; a run that outlasts grace is down
    ping(check, "success", expected + 7300)
    ping(check, "start", expected + 7400)
    assert check.status_at(expected + 7400 + 3599) == "up"
    assert check.status_at(expected + 7400 + 3600) == "down"
    assert check.go_down_if_due(expected + 7400 + 3600) is not None
    # paused: time changes nothing; resume: new
    assert check.pause(expected + 20000) is not None
    assert check.status_at(expected + 10**7) == "paused"
    assert check.resume(expected + 20001) is not None
    assert check.status_at(expected + 10**7) == "new"
