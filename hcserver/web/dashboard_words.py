"""The dashboard's words for times, schedules and statuses. Pure: the time is a parameter.

>>> duration_words(86400), duration_words(5400), duration_words(60)
('1 day', '1 hour 30 minutes', '1 minute')
>>> ago(1000.0, now=1000.0 + 3 * 60 + 5)
'3 minutes ago'
"""

from __future__ import annotations

from datetime import UTC, datetime

from hcserver.domain.checks import DOWN, PAUSED, STARTED, Check
from hcserver.domain.pings import FAIL, IGN, LOG, START, SUCCESS, Ping
from hcserver.domain.schedules import SIMPLE

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))

# The icon beside each status word (the word is always shown too: the icon alone says nothing to a
# screen reader or to someone who does not know the glyph).
STATUS_ICONS = {
    "new": "\u25cb",  # white circle
    "up": "\u2714",  # heavy check mark
    "grace": "\u0021",  # exclamation mark
    "down": "\u2716",  # heavy multiplication x
    "paused": "\u2016",  # double vertical line
    "started": "\u25b6",  # play
}

PING_KINDS = {SUCCESS: "success", START: "start", FAIL: "fail", LOG: "log", IGN: "ignored"}


def display_status(check: Check, now: float) -> str:
    """The status a row shows: the API's, or `started` while a run is open and the check is not
    down or paused (as the reference's dashboard shows a running job)."""
    status = check.status_at(now)
    if check.runs and status not in (DOWN, PAUSED):
        return STARTED
    return status


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def duration_words(seconds: float) -> str:
    """Every non-zero unit, largest first: exact, so "every 1 day 1 minute" is not rounded away."""
    rest = int(seconds)
    if rest <= 0:
        return "0 seconds"
    parts = []
    for word, size in _UNITS:
        n, rest = divmod(rest, size)
        if n:
            parts.append(plural(n, word))
    return " ".join(parts)


def short_duration(seconds: float) -> str:
    """A run's duration: "1.25 s", "3 min 4 s", "2 h 5 min"."""
    if seconds < 60:
        return f"{seconds:.2f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def schedule_words(check: Check) -> str:
    """ "every 1 day, grace 1 hour", or the cron / OnCalendar expression with its time zone."""
    grace = duration_words(check.grace)
    if check.kind == SIMPLE:
        return f"every {duration_words(check.timeout)}, grace {grace}"
    return f"{' '.join(check.schedule.split())} ({check.tz}), grace {grace}"


def ago(ts: float | None, now: float) -> str:
    """How long ago, in the largest whole unit; the same rule as `ago()` in static/dashboard.js."""
    if ts is None:
        return "never"
    seconds = int(now - ts)
    if seconds < 10:
        return "just now"
    for word, size in _UNITS:
        if seconds >= size:
            return plural(seconds // size, word) + " ago"
    return "just now"


def exact_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ping_kind(ping: Ping) -> str:
    """What the log shows as a ping's type: an exit status reads as such."""
    if ping.exitstatus is not None:
        return f"exit status {ping.exitstatus}"
    return PING_KINDS.get(ping.kind, ping.kind)


def excerpt(body: bytes | None, limit: int = 120) -> str:
    """The start of a ping body as text (invalid UTF-8 replaced), on one line."""
    if not body:
        return ""
    text = body[: limit * 4].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
