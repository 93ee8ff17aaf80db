"""The deadline scheduler: moves checks to down when their `going_down_after` passes.

A heap of (deadline, uuid) with at most one live entry per check, and no polling: `run()` sleeps
until the earliest deadline (or until an earlier one is added), then `sweep_once(now)` takes every
check that is really due down through the domain, dating each Flip at its deadline.

Entries are hints, not promises. A ping usually moves a deadline later; rather than pushing a new
entry per ping (a busy check would fill the heap), the earlier entry stays and, when it comes due,
the check's real deadline is computed again and pushed if it moved. A deadline that moves earlier
is pushed at once.

    scheduler = DeadlineScheduler(ctx)
    ctx.observers.append(scheduler)
    scheduler.load(now, restart_grace=True)   # after recovery, before serving
    task = asyncio.create_task(scheduler.run())
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging

from hcserver.context import Context
from hcserver.domain.checks import DOWN, Check
from hcserver.domain.pings import Flip

log = logging.getLogger("hcserver.scheduler")


class DeadlineScheduler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._heap: list[tuple[float, str]] = []
        self._planned: dict[str, float] = {}  # uuid -> the deadline of its live heap entry
        self._wake = asyncio.Event()
        self._stopping = False

    # -- Observer ---------------------------------------------------------------------------------

    def check_changed(self, check: Check) -> None:
        deadline = check.going_down_after()
        if deadline is None:
            return  # a live entry, if any, finds nothing due and is dropped
        planned = self._planned.get(check.uuid)
        if planned is not None and planned <= deadline:
            return  # an earlier wake-up is planned; it will look again
        self._planned[check.uuid] = deadline
        heapq.heappush(self._heap, (deadline, check.uuid))
        if self._heap[0][1] == check.uuid:
            self._wake.set()

    def check_deleted(self, check: Check) -> None:
        self._planned.pop(check.uuid, None)

    def flipped(self, check: Check, flip: Flip) -> None:
        pass

    # -- steps ------------------------------------------------------------------------------------

    def load(self, now: float, restart_grace: bool) -> int:
        """Plan every check's deadline. With restart grace, a deadline that fell while the server
        was down is held for one grace period from `now`. Returns how many checks were held."""
        held = 0
        for check in self.ctx.index.checks.values():
            deadline = check.going_down_after()
            if deadline is None:
                continue
            if restart_grace and deadline <= now and check.status != DOWN:
                check.hold(now + check.grace)
                held += 1
            self.check_changed(check)
        if held:
            log.info("restart grace: %d checks missed a deadline while the server was down; "
                     "each gets one grace period from now before it goes down", held)  # fmt: skip
        return held

    def next_deadline(self) -> float | None:
        while self._heap:
            deadline, uuid = self._heap[0]
            if self._planned.get(uuid) == deadline:
                return deadline
            heapq.heappop(self._heap)  # stale: replaced or deleted
        return None

    def sweep_once(self, now: float) -> list[Flip]:
        """Take every due check down; return the flips made."""
        flips: list[Flip] = []
        index = self.ctx.index
        while self._heap and self._heap[0][0] <= now:
            deadline, uuid = heapq.heappop(self._heap)
            if self._planned.get(uuid) != deadline:
                continue
            del self._planned[uuid]
            check = index.checks.get(uuid)
            if check is None:
                continue
            flip = check.go_down_if_due(now)
            if flip is not None:
                flips.append(flip)
                self.ctx.check_changed(check, flip)  # observers, this one included, replan it
            else:
                self.check_changed(check)
        return flips

    async def run(self) -> None:
        """Sleep until the earliest deadline, sweep, repeat; until `stop()`."""
        clock = self.ctx.clock
        while not self._stopping:
            self._wake.clear()
            deadline = self.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - clock())
            if timeout is None or timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            try:
                self.sweep_once(clock())
            except Exception:
                log.exception("deadline sweep failed")
                await asyncio.sleep(1)

    def poke(self) -> None:
        """Look at the clock again now (for a clock that jumps, as in tests)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
