"""The small object every front end and background loop gets: settings, index, recorder, clock, observers.

Code that changes the index (the use cases in `hcserver.services`, the deadline scheduler, alert
delivery) reports each change here, never to the recorder directly: this hands it to the recorder
(persistence) and to the observers (the deadline scheduler, alert delivery). Reads of history (pings,
flips) go to `ctx.recorder` itself.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hcserver.config import Settings
from hcserver.domain.checks import Check
from hcserver.domain.index import Index
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.projects import Project
from hcserver.ports import NotificationKey, Recorder


class Observer(Protocol):
    def check_changed(self, check: Check) -> None: ...

    def check_deleted(self, check: Check) -> None: ...

    def flipped(self, check: Check, flip: Flip) -> None: ...


@dataclass(slots=True)
class Context:
    settings: Settings
    index: Index
    recorder: Recorder
    clock: Callable[[], float] = time.time
    observers: list[Observer] = field(default_factory=list)
    # Why the server cannot serve right now (e.g. a failing disk), or None; `/api/v3/status/` reports
    # it. The recorder's health unless replaced (tests replace it).
    health: Callable[[], str | None] = field(init=False)

    def __post_init__(self) -> None:
        self.health = self.recorder_health

    def recorder_health(self) -> str | None:
        status = self.recorder.status()
        if status.get("ok", True):
            return None
        return f"the store is failing: {status.get('error') or 'unknown error'}"

    # -- checks -----------------------------------------------------------------------------------

    def ping_recorded(self, check: Check, ping: Ping, flip: Flip | None) -> Awaitable[None] | None:
        waiter = self.recorder.ping_recorded(check, ping, flip)
        self._tell_observers(check, flip)
        return waiter

    def check_changed(self, check: Check, flip: Flip | None = None) -> Awaitable[None] | None:
        waiter = self.recorder.check_changed(check)
        if flip is not None:
            waiter = self.recorder.flip_made(check, flip) or waiter
        self._tell_observers(check, flip)
        return waiter

    def _tell_observers(self, check: Check, flip: Flip | None) -> None:
        # After the recorder: a notification made for the flip joins the flip's write batch.
        for observer in self.observers:
            observer.check_changed(check)
            if flip is not None:
                observer.flipped(check, flip)

    def check_deleted(self, check: Check) -> Awaitable[None] | None:
        self.index.remove_check(check)
        waiter = self.recorder.check_deleted(check)
        for observer in self.observers:
            observer.check_deleted(check)
        return waiter

    # -- projects, channels, notifications (no observer follows these) --------------------------

    def project_changed(self, project: Project) -> Awaitable[None] | None:
        return self.recorder.project_changed(project)

    def project_deleted(self, project: Project) -> Awaitable[None] | None:
        self.index.remove_project(project.id)
        return self.recorder.project_deleted(project)

    def channel_changed(self, record: dict[str, Any]) -> Awaitable[None] | None:
        """A channel's plain record (`Channel.to_record()`)."""
        return self.recorder.channel_changed(record)

    def channel_deleted(self, channel_id: str) -> Awaitable[None] | None:
        return self.recorder.channel_deleted(channel_id)

    def notification_changed(self, key: NotificationKey, record: dict[str, Any]) -> Awaitable[None] | None:
        return self.recorder.notification_changed(key, record)
