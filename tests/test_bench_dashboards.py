"""The bench's dashboards scenario on a tiny load: browser clients signed in and streaming while wrk pings."""

from __future__ import annotations

import shutil

import pytest

from bench.scenarios import FULL, QUICK, TINY, Suite


def test_dashboards_is_in_the_full_and_quick_runs():
    assert "dashboards" in FULL.scenarios and "dashboards" in QUICK.scenarios
    assert FULL.dashboards == 20


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_tiny_dashboards_scenario_against_the_real_server(tmp_path):
    suite = Suite(TINY, tmp_path / "work", progress=lambda _message: None)
    try:
        result = suite.run(["dashboards"])
    finally:
        suite.close()

    assert [(s.name, s.error) for s in result.scenarios] == [("dashboards", None)]
    n, clients = TINY.small_checks, TINY.dashboards
    rows = [r for r in result.rows if r.scenario == "dashboards" and not r.detail]
    assert [r.case for r in rows] == [
        f"uuid success, {n:,} checks, no dashboard",
        f"uuid success, {n:,} checks, {clients} dashboards streaming",
        f"SSE received by {clients} dashboards during the pings",
    ]
    for row in rows[:2]:
        assert row.ok and row.errors == 0 and row.rps
    assert rows[2].value and rows[2].value > 0 and rows[2].unit == "KB/s"
    streaming = [r for r in result.rows if r.scenario == "dashboards" and r.detail and "streaming" in r.case]
    assert len(streaming) == TINY.rounds
    assert all(" events, " in r.note and "ended by the server" not in r.note for r in streaming)
    [target] = result.targets
    assert target.name.endswith(f"with {clients} dashboards open / without") and target.measured
    # Sign-in, pages and event streams are no pings: the exact count still holds.
    assert [c.ok for c in result.correctness] == [True]
    assert result.notes == []  # the server exited 0 on every restart and at the end
    assert result.passed
