"""When a check expects its next ping: simple (period), cron (cronsim) and OnCalendar (oncalendar).

Times are epoch seconds (float); schedules are read in the check's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError
from oncalendar import OnCalendar, OnCalendarError

SIMPLE, CRON, ONCALENDAR = "simple", "cron", "oncalendar"


def guess_kind(schedule: str) -> str:
    """A single line of five fields is cron; anything else is OnCalendar."""
    if "\n" not in schedule.strip() and len(schedule.split()) == 5:
        return CRON
    return ONCALENDAR


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones() | {"UTC"})


def is_valid_tz(name: str) -> bool:
    if name not in _zones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_valid_schedule(schedule: str) -> bool:
    """True when the expression parses and yields at least one future time."""
    try:
        if guess_kind(schedule) == CRON:
            next(CronSim(schedule, datetime(2000, 1, 1)))
        else:
            next(OnCalendar(schedule, datetime(2000, 1, 1, tzinfo=UTC)))
    except (CronSimError, OnCalendarError, StopIteration, ValueError, KeyError, IndexError):
        return False
    return True


def next_after(kind: str, schedule: str, tz: str, after: float) -> float | None:
    """The first schedule time strictly after `after` (epoch seconds), or None if the schedule has ended."""
    local = datetime.fromtimestamp(after, zone(tz))
    try:
        if kind == CRON:
            # cronsim works in whole minutes and yields times after the start;
            # strip seconds so a ping at 10:00:30 expects the next run, not 10:00 again.
            nxt = next(CronSim(schedule, local.replace(second=0, microsecond=0)))
        else:
            nxt = next(OnCalendar(schedule, local))
    except (StopIteration, CronSimError, OnCalendarError):
        return None
    return nxt.timestamp()
