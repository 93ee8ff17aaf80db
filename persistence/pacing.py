"""Long work on the event loop, cut into slices so that pings get through in between.

    >>> pacer = Pacer()
    >>> for item in many:
    ...     work(item)
    ...     if pacer.due():
    ...         await pacer.rest()

A flush handles tens of thousands of records on the event loop (encoding snapshots, packing rows,
freeing them afterwards). Done in one go, that is a stall of several milliseconds that every ping
arriving meanwhile waits behind; sliced, a ping waits for one slice at most.
"""

from __future__ import annotations

import asyncio
import time

# Half a millisecond of work, then a turn of the loop (which costs a few tens of microseconds).
SLICE_S = 0.0005


class Pacer:
    __slots__ = ("_since", "_slice")

    def __init__(self, slice_s: float = SLICE_S) -> None:
        self._slice = slice_s
        self._since = time.perf_counter()

    def due(self) -> bool:
        """True once the current slice has run its time."""
        return time.perf_counter() - self._since >= self._slice

    async def rest(self) -> None:
        """Let everything else that is ready run, then start a new slice."""
        await asyncio.sleep(0)
        self._since = time.perf_counter()
