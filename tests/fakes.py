"""Fakes that implement the server's ports and its clock, for tests that need no store."""

from __future__ import annotations

from collections import deque
from typing import Any

from hcserver.domain.checks import Check
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.projects import Project
from hcserver.ports import NotificationKey


class FakeClock:
    """A clock for `Context(clock=...)`: `clock()` is `clock.now`, which moves only by `advance`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryRecorder:
    """A `Recorder` keeping history in RAM, bounded per check; it never asks a request to wait."""

    def __init__(self, ping_log_limit: int = 100, flip_limit: int = 1000) -> None:
        self.ping_log_limit = ping_log_limit
        self.flip_limit = flip_limit
        self._pings: dict[str, deque[Ping]] = {}
        self._flips: dict[str, deque[Flip]] = {}

    def check_changed(self, check: Check) -> None:
        return None

    def check_deleted(self, check: Check) -> None:
        self._pings.pop(check.uuid, None)
        self._flips.pop(check.uuid, None)

    def ping_recorded(self, check: Check, ping: Ping, flip: Flip | None) -> None:
        log = self._pings.get(check.uuid)
        if log is None:
            log = self._pings[check.uuid] = deque(maxlen=self.ping_log_limit)
        log.append(ping)
        if flip is not None:
            self.flip_made(check, flip)

    def flip_made(self, check: Check, flip: Flip) -> None:
        flips = self._flips.get(check.uuid)
        if flips is None:
            flips = self._flips[check.uuid] = deque(maxlen=self.flip_limit)
        flips.append(flip)

    def project_changed(self, project: Project) -> None:
        return None

    def project_deleted(self, project: Project) -> None:
        return None

    def channel_changed(self, record: dict[str, Any]) -> None:
        return None

    def channel_deleted(self, channel_id: str) -> None:
        return None

    def notification_changed(self, key: NotificationKey, record: dict[str, Any]) -> None:
        return None

    async def recent_pings(self, check: Check, limit: int) -> list[Ping]:
        log = self._pings.get(check.uuid, ())
        return list(reversed(log))[:limit]

    async def get_ping(self, check: Check, n: int) -> Ping | None:
        for ping in self._pings.get(check.uuid, ()):
            if ping.n == n:
                return ping
        return None

    async def flips(self, check: Check) -> list[Flip]:
        return list(self._flips.get(check.uuid, ()))

    def status(self) -> dict[str, Any]:
        return {}
