"""The bench's listing scenario on a tiny load, and the check limit of the servers the bench starts."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from bench.scenarios import FULL, QUICK, TINY, Suite
from bench.server import Keys, ServerProcess


def test_bench_servers_take_as_many_checks_as_the_bench_makes(tmp_path):
    server = ServerProcess.hcserver(tmp_path / "hc.sqlite3", Keys.generate())
    limit = int(server.env["HC_CHECK_LIMIT"])
    assert limit >= max(FULL.large_checks, QUICK.large_checks, FULL.mid_checks, FULL.small_checks)


def test_listing_is_in_the_full_and_quick_runs():
    assert "listing" in FULL.scenarios and "listing" in QUICK.scenarios


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_tiny_listing_scenario_against_the_real_server(tmp_path):
    # More checks than one piece of a listing, so the tiny run streams too.
    config = replace(TINY, large_checks=450)
    suite = Suite(config, tmp_path / "work", progress=lambda _message: None)
    try:
        result = suite.run(["listing"])
    finally:
        suite.close()

    assert [(s.name, s.error) for s in result.scenarios] == [("listing", None)]
    rows = [r for r in result.rows if r.scenario == "listing" and not r.detail]
    assert [r.case for r in rows] == [
        "uuid pings at c=1, 450 checks, no listing",
        "uuid pings at c=1 while a client lists all 450 checks in a loop",
    ]
    for row in rows:
        assert row.ok and row.errors == 0 and row.p99_ms is not None
    busy = [r for r in result.rows if r.scenario == "listing" and r.detail and "while listing" in r.case]
    assert busy and all("whole listings" in r.note for r in busy)
    [target] = result.targets
    assert target.name.startswith("ping p99 at c=1 added while listing") and target.measured is not None
    assert all(check.ok for check in result.correctness)
    assert result.passed
