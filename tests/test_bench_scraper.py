"""The bench's scraper scenario on a tiny load: both metrics endpoints read while wrk pings."""

from __future__ import annotations

import shutil

import pytest

from bench.scenarios import FULL, QUICK, TINY, Suite


def test_scraper_is_in_the_full_run_only():
    assert "scraper" in FULL.scenarios and "scraper" not in QUICK.scenarios
    assert FULL.scrape_interval_s == 1.0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_tiny_scraper_scenario_against_the_real_server(tmp_path):
    suite = Suite(TINY, tmp_path / "work", progress=lambda _message: None)
    try:
        result = suite.run(["scraper"])
    finally:
        suite.close()

    assert [(s.name, s.error) for s in result.scenarios] == [("scraper", None)]
    n, every = TINY.small_checks, f"{TINY.scrape_interval_s:g} s"
    rows = [r for r in result.rows if r.scenario == "scraper" and not r.detail]
    assert [r.case for r in rows] == [
        f"uuid success, {n:,} checks, no scraper",
        f"uuid success, {n:,} checks, /metrics and the project's metrics scraped every {every}",
    ]
    for row in rows:
        assert row.ok and row.errors == 0 and row.rps
    scraped = [r for r in result.rows if r.scenario == "scraper" and r.detail and "scraped" in r.case]
    assert len(scraped) == TINY.rounds
    assert all(" scrapes of both (/metrics " in r.note and "; project " in r.note for r in scraped)
    [target] = result.targets
    assert target.name.endswith(f"scraped every {every} / without") and target.measured
    # Scrapes are no pings: the exact count still holds.
    assert [c.ok for c in result.correctness] == [True]
    assert result.notes == []
    assert result.passed
