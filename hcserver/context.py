"""The small object every handler gets through `initialize`: settings, index, recorder, clock, observers.

Handlers change the index through the domain, then report the change here; this hands it to the
recorder (persistence) and to observers (the deadline scheduler, alert delivery). Nothing else does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from hcserver.config import Settings
from hcserver.domain.checks import Check
from hcserver.domain.index import Index
from hcserver.domain.pings import Flip, Ping
from hcserver.ports import Recorder


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
    # Reasons the server cannot serve right now (e.g. a failing disk); `/api/v3/status/` reports them.
    health: Callable[[], str | None] = lambda: None

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
