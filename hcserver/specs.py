"""Validation of check bodies (the Management API's), with the reference's messages.

`parse_check_spec(body)` returns a CheckSpec whose fields are None when not sent. Unknown fields
are ignored, as the reference does.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from hcserver.domain.errors import Invalid
from hcserver.domain.schedules import SIMPLE, guess_kind, is_valid_schedule, is_valid_tz
from hcserver.domain.slugs import slug_problem

MIN_PERIOD, MAX_PERIOD = 60, 31536000
UNIQUE_FIELDS = ("name", "slug", "tags", "timeout", "grace")


@dataclass(frozen=True, slots=True)
class CheckSpec:
    channels: str | None = None
    desc: str | None = None
    failure_kw: str | None = None
    filter_body: bool | None = None
    filter_default_fail: bool | None = None
    filter_http_body: bool | None = None
    filter_subject: bool | None = None
    grace: int | None = None
    manual_resume: bool | None = None
    methods: str | None = None
    name: str | None = None
    schedule: str | None = None
    slug: str | None = None
    start_kw: str | None = None
    subject: str | None = None
    subject_fail: str | None = None
    success_kw: str | None = None
    tags: str | None = None
    timeout: int | None = None
    tz: str | None = None
    unique: tuple[str, ...] | None = None

    def kind(self) -> str | None:
        if self.schedule:
            return guess_kind(self.schedule)
        if self.timeout is not None:
            return SIMPLE
        return None


def _error(field: str, reason: str) -> Invalid:
    return Invalid(f"json validation error: {field} {reason}")


def _string(name: str, value: Any, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise _error(name, "is not a string")
    if max_length is not None and len(value) > max_length:
        raise _error(name, "is too long")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _error(name, "is not a boolean")
    return value


def _period(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(name, "is not a number")
    if value < MIN_PERIOD:
        raise _error(name, "is too small")
    if value > MAX_PERIOD:
        raise _error(name, "is too large")
    return value


_STRINGS = {"desc": None, "name": 100, "tags": 500, "channels": None,
            "start_kw": 200, "success_kw": 200, "failure_kw": 200, "subject": 200, "subject_fail": 200}  # fmt: skip
_BOOLS = ("filter_body", "filter_default_fail", "filter_http_body", "filter_subject", "manual_resume")


def parse_check_spec(body: dict[str, Any]) -> CheckSpec:
    """Validate fields in alphabetical order, so the first error reported is stable."""
    values: dict[str, Any] = {}
    for f in fields(CheckSpec):
        name = f.name
        if name not in body:
            continue
        value = body[name]
        if name in _STRINGS:
            values[name] = _string(name, value, _STRINGS[name])
        elif name in _BOOLS:
            values[name] = _boolean(name, value)
        elif name in ("timeout", "grace"):
            values[name] = _period(name, value)
        elif name == "methods":
            # One message for any value but these two (null and non-strings too), as the reference.
            if value not in ("", "POST"):
                raise _error(name, "has unexpected value")
            values[name] = value
        elif name == "schedule":
            if not is_valid_schedule(_string(name, value, 100)):
                raise _error(name, "is not a valid cron or OnCalendar expression")
            values[name] = value
        elif name == "slug":
            problem = slug_problem(_string(name, value))
            if problem is not None:
                raise _error(name, problem)
            values[name] = value
        elif name == "tz":
            if not is_valid_tz(_string(name, value)):
                raise _error(name, "is not a valid timezone")
            values[name] = value
        elif name == "unique":
            if not isinstance(value, list):
                raise _error(name, "is not an array")
            if any(item not in UNIQUE_FIELDS for item in value):
                raise Invalid("json validation error: an item in 'unique' has unexpected value")
            values[name] = tuple(value)
    return CheckSpec(**values)
