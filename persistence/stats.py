"""What the write-behind has done so far, as its status shows it: flushes, errors, the last flush,
commit lag percentiles, records skipped because they could not be encoded or decoded, and how often
answers were held back for a writer slower than the pings.

    stats = FlushStats()
    stats.committed(rows=ws.rows(), accepted=batch.accepted, started=t0, committed=t1)
    stats.status()["commit_lag_ms_p99"]
"""

from __future__ import annotations

from collections import deque
from typing import Any

# Commit lags kept for the percentiles: the most recent changes, sampled per flush (at most ~1000
# from one flush: taking 8192 from a big one cost ~1 ms of the event loop).
LAG_SAMPLES = 8192
LAG_SAMPLES_PER_FLUSH = 1000


class FlushStats:
    __slots__ = (
        "_lags",
        "_percentiles",
        "flush_errors",
        "flushes",
        "last_changes",
        "last_ms",
        "last_size",
        "skipped",
        "slowed",
    )

    def __init__(self) -> None:
        self.flushes = 0
        self.flush_errors = 0
        self.skipped = 0
        # Times answers began to wait because the oldest unwritten change was past its age limit.
        self.slowed = 0
        self.last_size = 0
        self.last_changes = 0
        self.last_ms = 0.0
        self._lags: deque[float] = deque(maxlen=LAG_SAMPLES)
        # (p50, p99) of the lags, worked out when status() is first asked after a flush: sorting
        # the samples takes ~0.7 ms, and status is polled far more often than flushes happen.
        self._percentiles: tuple[float, float] | None = None

    def committed(self, rows: int, accepted: list[float], started: float, committed: float) -> None:
        """A flush of `rows` rows, holding changes accepted at the clock readings `accepted`, ran
        from `started` to `committed`."""
        self.flushes += 1
        self.last_size = rows
        self.last_changes = len(accepted)
        self.last_ms = (committed - started) * 1000
        step = max(1, len(accepted) // LAG_SAMPLES_PER_FLUSH)
        self._lags.extend(committed - t for t in accepted[::step])
        self._percentiles = None

    def status(self) -> dict[str, Any]:
        if self._percentiles is None:
            lags = sorted(self._lags)
            self._percentiles = (_percentile_ms(lags, 0.50), _percentile_ms(lags, 0.99))
        p50, p99 = self._percentiles
        return {
            "last_flush_size": self.last_size,
            "last_flush_changes": self.last_changes,
            "last_flush_ms": round(self.last_ms, 3),
            "flush_errors": self.flush_errors,
            "flushes": self.flushes,
            "commit_lag_ms_p50": p50,
            "commit_lag_ms_p99": p99,
            "skipped_records": self.skipped,
            "slowed_for_the_writer": self.slowed,
        }


def _percentile_ms(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)
