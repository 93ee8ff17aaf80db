"""Long work on the event loop, cut into slices so that pings get through in between.

    pacer = Pacer()
    for item in many:
        work(item)
        if pacer.due():
            await pacer.rest()

A flush handles tens of thousands of records on the event loop (encoding snapshots, packing rows,
freeing them afterwards). Done in one go, that is a stall of several milliseconds that every ping
arriving meanwhile waits behind; sliced, a ping waits for one slice at most.

A slice is half a millisecond while the loop has little else to do. Under load it grows with the
loop: each rest lets every ready request run, and a turn of a saturated loop can take 10 ms or
more of them. With a fixed slice the flush would then get a few percent of the loop, too little to
keep up with the pings arriving, and the changes waiting for the disk (the loss window) would grow
by seconds. So a slice is a third of the time the loop takes for everything else during a rest:
the work gets a quarter of a busy loop, and a ping's wait grows by at most that share. That time is
smoothed over the rests of every pacer (each flush makes several, and each lives for a few rests):
a busy loop is a load that lasts, and one burst of requests should not lengthen the next slice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# Half a millisecond of work, then a turn of the loop (which costs a few tens of microseconds).
SLICE_S = 0.0005
# Work time per unit of the others' time in a rest: 1/3 is a quarter of a busy loop.
SHARE_OF_OTHERS = 1 / 3
# The longest slice, whatever the loop did before (a process stopped for a while, say).
MAX_SLICE_S = 0.05
# Weight of the newest rest in the smoothed time the others take.
SMOOTHING = 0.25


class LoopLoad:
    """How long the rest of the loop takes while paced work rests: an exponential moving average."""

    __slots__ = ("others_s", "smoothing")

    def __init__(self, smoothing: float = SMOOTHING) -> None:
        self.smoothing = smoothing
        self.others_s = 0.0

    def observe(self, seconds: float) -> float:
        self.others_s += (seconds - self.others_s) * self.smoothing
        return self.others_s


# The load of this process's event loop, as every pacer sees it.
LOOP_LOAD = LoopLoad()


class Pacer:
    __slots__ = ("_clock", "_load", "_min", "_since", "_slice")

    def __init__(
        self, slice_s: float = SLICE_S, clock: Callable[[], float] = time.perf_counter, load: LoopLoad = LOOP_LOAD
    ) -> None:
        self._clock = clock
        self._load = load
        self._min = slice_s
        self._slice = self._sized(load.others_s)
        self._since = clock()

    @property
    def slice_s(self) -> float:
        """The length of the current slice."""
        return self._slice

    def due(self) -> bool:
        """True once the current slice has run its time."""
        return self._clock() - self._since >= self._slice

    async def rest(self) -> None:
        """Let everything else that is ready run, then start a new slice sized by how long that takes."""
        resting = self._clock()
        await asyncio.sleep(0)
        self._since = self._clock()
        self._slice = self._sized(self._load.observe(self._since - resting))

    def _sized(self, others_s: float) -> float:
        return min(MAX_SLICE_S, max(self._min, others_s * SHARE_OF_OTHERS))
