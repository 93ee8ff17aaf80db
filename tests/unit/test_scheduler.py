"""The deadline scheduler, driven step by step with the clock as a parameter."""

from __future__ import annotations

import pytest

from hcserver.config import Settings
from hcserver.context import Context
from hcserver.domain.checks import Check
from hcserver.domain.index import Index
from hcserver.domain.pings import PingRequest
from hcserver.domain.projects import KeyHasher, issue_keys, make_project
from hcserver.scheduler import DeadlineScheduler
from tests.fakes import MemoryRecorder

T = 1_700_000_000.0


def world():
    index = Index(KeyHasher(b"s"))
    index.add_project(make_project("p", "P", T, index.hasher, issue_keys()))
    ctx = Context(settings=Settings(), index=index, recorder=MemoryRecorder())
    scheduler = DeadlineScheduler(ctx)
    ctx.observers.append(scheduler)
    return ctx, scheduler


def add(ctx, uuid, **kw) -> Check:
    check = Check(uuid=uuid, project_id="p", created=T, timeout=3600, grace=600, **kw)
    ctx.index.add_check(check)
    return check


def ping(ctx, check, now, action="success", rid=None):
    p, flip = check.ping(PingRequest(action=action, method="GET", rid=rid), now)
    ctx.ping_recorded(check, p, flip)


def test_goes_down_at_deadline_with_flip_dated_there():
    ctx, scheduler = world()
    check = add(ctx, "a")
    ping(ctx, check, T)
    assert scheduler.next_deadline() == T + 4200
    assert scheduler.sweep_once(T + 4199) == []
    [flip] = scheduler.sweep_once(T + 4300)
    assert (flip.old_status, flip.new_status, flip.created, flip.reason) == ("up", "down", T + 4200, "timeout")
    assert check.status == "down"
    assert scheduler.next_deadline() is None
    assert scheduler.sweep_once(T + 10**6) == []


def test_pings_move_the_deadline_without_growing_the_heap():
    ctx, scheduler = world()
    check = add(ctx, "a")
    for i in range(1000):
        ping(ctx, check, T + i)
    assert len(scheduler._heap) == 1
    assert scheduler.sweep_once(T + 4200) == []  # the real deadline moved to T + 999 + 4200
    assert scheduler.next_deadline() == T + 999 + 4200
    assert len(scheduler.sweep_once(T + 999 + 4200)) == 1


def test_many_checks_share_one_deadline():
    ctx, scheduler = world()
    checks = [add(ctx, str(i)) for i in range(50)]
    for check in checks:
        ping(ctx, check, T)
    flips = scheduler.sweep_once(T + 4200)
    assert len(flips) == 50 and all(c.status == "down" for c in checks)


def test_update_while_pending_moves_deadline_earlier():
    ctx, scheduler = world()
    check = add(ctx, "a")
    ping(ctx, check, T)
    check.timeout = 60  # as an API update would, then report the change
    ctx.check_changed(check)
    assert scheduler.next_deadline() == T + 660
    assert len(scheduler.sweep_once(T + 660)) == 1


def test_delete_while_pending():
    ctx, scheduler = world()
    check = add(ctx, "a")
    ping(ctx, check, T)
    ctx.check_deleted(check)
    assert scheduler.sweep_once(T + 10**6) == []
    assert scheduler.next_deadline() is None


def test_pause_cancels_and_resume_waits_for_a_ping():
    ctx, scheduler = world()
    check = add(ctx, "a")
    ping(ctx, check, T)
    ctx.check_changed(check, check.pause(T + 1))
    assert scheduler.sweep_once(T + 10**6) == []
    ctx.check_changed(check, check.resume(T + 2))
    assert scheduler.next_deadline() is None and check.status == "new"


def test_run_past_grace_goes_down_even_for_a_new_check():
    ctx, scheduler = world()
    check = add(ctx, "a")
    ping(ctx, check, T, action="start")
    [flip] = scheduler.sweep_once(T + 600)
    assert (flip.old_status, flip.new_status) == ("new", "down")


def test_cron_check():
    ctx, scheduler = world()
    check = add(ctx, "a", kind="cron", schedule="0 * * * *", tz="Europe/Riga")
    ping(ctx, check, 1_700_002_800.0)  # 2023-11-14T23:00:00Z
    assert scheduler.next_deadline() == 1_700_002_800.0 + 3600 + 600


def test_restart_grace_on_holds_missed_deadlines():
    ctx, scheduler = world()
    late = add(ctx, "late")
    ping(ctx, late, T)  # deadline T + 4200 passes while "the server is down"
    fine = add(ctx, "fine")
    ping(ctx, fine, T + 8000)  # its deadline, T + 12200, is still ahead at restart
    ctx2, scheduler2 = world()
    for check in (late, fine):
        ctx2.index.add_check(check)
    start = T + 9000
    assert scheduler2.load(start, restart_grace=True) == 1
    assert late.status_at(start) == "grace"
    assert scheduler2.sweep_once(start + 599) == []
    [flip] = scheduler2.sweep_once(start + 600)
    assert flip.check == "late" and flip.created == start + 600


def test_restart_grace_off_is_the_reference():
    ctx, scheduler = world()
    late = add(ctx, "late")
    ping(ctx, late, T)
    ctx2, scheduler2 = world()
    ctx2.index.add_check(late)
    assert scheduler2.load(T + 9000, restart_grace=False) == 0
    [flip] = scheduler2.sweep_once(T + 9000)
    assert flip.created == T + 4200


def test_a_ping_during_the_hold_ends_it():
    ctx, scheduler = world()
    late = add(ctx, "late")
    ping(ctx, late, T)
    scheduler.load(T + 9000, restart_grace=True)
    ping(ctx, late, T + 9001)
    assert late.held_until is None and late.status_at(T + 9002) == "up"


@pytest.mark.parametrize(("kind", "schedule"), [("cron", "30 1 * * *"), ("oncalendar", "*-*-* 01:30:00")])
def test_scheduled_deadline_across_fall_back(kind, schedule):
    # Europe/Riga leaves summer time on 2024-10-27 at 04:00 -> 03:00: that day has 25 hours.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    def local(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Riga")).timestamp()

    ctx, scheduler = world()
    check = add(ctx, "a", kind=kind, schedule=schedule, tz="Europe/Riga")
    ping(ctx, check, local("2024-10-26T01:30:05"))
    due = local("2024-10-27T01:30:00") + 600
    assert due - local("2024-10-26T01:30:05") == 24 * 3600 - 5 + 600  # before the change: a plain day
    ping(ctx, check, local("2024-10-27T01:30:02"))
    due = local("2024-10-28T01:30:00") + 600
    assert check.going_down_after() == due  # the scheduler's earlier wake-up finds nothing due
    assert due - local("2024-10-27T01:30:02") == 25 * 3600 - 2 + 600  # the 25-hour day
    assert scheduler.sweep_once(due - 1) == []
    [flip] = scheduler.sweep_once(due + 30)
    assert flip.created == due and check.status == "down"
