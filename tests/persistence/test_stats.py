"""Flush statistics: what status() reports of the flushes so far."""

from __future__ import annotations

from persistence.stats import LAG_SAMPLES_PER_FLUSH, FlushStats


def test_a_flush_sets_the_last_flush_figures_and_adds_its_lags():
    stats = FlushStats()
    assert stats.status()["commit_lag_ms_p99"] == 0.0 and stats.status()["flushes"] == 0
    stats.committed(rows=12, accepted=[10.0, 10.5, 11.0], started=11.5, committed=12.0)
    status = stats.status()
    assert (status["flushes"], status["last_flush_size"], status["last_flush_changes"]) == (1, 12, 3)
    assert status["last_flush_ms"] == 500.0
    assert (status["commit_lag_ms_p50"], status["commit_lag_ms_p99"]) == (1500.0, 2000.0)
    stats.committed(rows=5, accepted=[20.0] * 5, started=20.0, committed=20.001)
    assert stats.status()["commit_lag_ms_p50"] == 1.0  # worked out again after a flush


def test_a_big_flush_gives_a_sample_of_its_lags():
    stats = FlushStats()
    stats.committed(rows=50_000, accepted=[float(i) for i in range(50_000)], started=0.0, committed=50_000.0)
    assert len(stats._lags) == LAG_SAMPLES_PER_FLUSH


def test_status_keeps_the_order_of_its_keys():
    assert list(FlushStats().status()) == [
        "last_flush_size", "last_flush_changes", "last_flush_ms", "flush_errors", "flushes",
        "commit_lag_ms_p50", "commit_lag_ms_p99", "skipped_records", "slowed_for_the_writer",
    ]  # fmt: skip
