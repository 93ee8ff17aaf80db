"""The bench machinery on a tiny load, so it cannot rot.

No timing thresholds: the assertions are about structure and about the one exact figure, the sum of
n_pings against the 2xx ping answers wrk counted.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from bench.model import Correctness, Row, ScenarioRun, SuiteResult, Target
from bench.report import render_table, write_chart, write_json
from bench.scenarios import PING_CASES, TINY, Suite
from bench.wrk import parse_wrk_output, percentiles_ms, uncorrect_histogram

WRK_OUTPUT = """\
Running 7s test @ http://127.0.0.1:8000
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.74ms  588.46us  10.65ms   94.82%
    Req/Sec    13.45k     1.23k   14.29k    90.00%
  40129 requests in 3.00s, 3.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 7
Requests/sec:  13376.33
Transfer/sec:      1.03MB
BENCH thread id=0 issued=20070 answered=20070 created=0 finished=1 t_first=100.5 t_last=103.5 codes=200:20063,404:7
BENCH thread id=1 issued=20059 answered=20059 created=0 finished=1 t_first=100.25 t_last=103.0 codes=200:20059
BENCH summary duration_us=3000000 requests=40129 bytes=3250000 connect=0 read=2 write=0 status=7 timeout=5
BENCH latency_us min=90 max=10650 mean=3740.0 stdev=588.5 p50=3600 p90=4200 p99=9000 p99.9=10500 p99.99=10650
"""


def test_parse_wrk_output():
    parsed = parse_wrk_output(WRK_OUTPUT)
    assert parsed["requests"] == 40129
    assert parsed["duration_s"] == pytest.approx(3.0)
    assert parsed["rps"] == pytest.approx(13376.33)
    assert parsed["latency_avg_us"] == pytest.approx(3740.0)
    assert parsed["latency_max_us"] == pytest.approx(10650.0)
    assert parsed["non_2xx_3xx"] == 7
    assert parsed["socket_errors"] == {"connect": 0, "read": 2, "write": 0, "timeout": 5}
    assert parsed["codes"] == {200: 40122, 404: 7}
    assert parsed["issued"] == parsed["answered"] == 40129
    assert parsed["t_first"] == 100.25
    assert parsed["t_last"] == 103.5
    assert parsed["finished"] is True
    assert isinstance(parsed["latency_us"], dict) and parsed["latency_us"]["p99.9"] == 10500


def test_parse_plain_wrk_output_without_script():
    parsed = parse_wrk_output(WRK_OUTPUT.split("BENCH")[0])
    assert parsed["requests"] == 40129
    assert "threads" not in parsed


def _wrk_stats_correct(hist: dict[int, int], interval: int) -> dict[int, int]:
    """What wrk's stats_correct does to its histogram (reimplemented to test the inverse)."""
    data = dict(hist)
    for value in range(2 * interval, max(hist) + 1):
        count = data.get(value, 0)
        m = value - interval
        while count and m > interval:
            data[m] = data.get(m, 0) + count
            m -= interval
    return data


def test_uncorrect_histogram_gives_back_the_measured_latencies():
    measured = {90: 5, 120: 300, 150: 40, 400: 3, 950: 2, 3000: 1, 3001: 1}
    requests, connections, duration_us = sum(measured.values()), 1, 35_200
    interval = duration_us // (requests // connections)
    corrected = _wrk_stats_correct(measured, interval)
    assert sum(corrected.values()) > requests  # wrk added samples
    assert uncorrect_histogram(corrected, duration_us, requests, connections) == measured


def test_percentiles_ms():
    hist = {1000: 98, 5000: 1, 9000: 1}
    p = percentiles_ms(hist)
    assert p["p50"] == 1.0
    assert p["p99"] == 5.0
    assert p["p99.9"] == 9.0
    assert p["max"] == 9.0


def _sample_result() -> SuiteResult:
    result = SuiteResult(mode="test", machine={"cpu_model": "cpu", "cpu_count": 2}, config={}, started_at="now")
    result.rows += [
        Row(
            "throughput", "uuid success", "hcserver", rps=9000.0, p50_ms=5.0, p99_ms=12.0, p999_ms=20.0, ok=10, errors=0
        ),
        Row("throughput", "uuid success, round 1", "hcserver", rps=9100.0, detail=True),
        Row("memory", "RSS per check", "hcserver", value=0.8, unit="KiB", note="VmRSS 30 -> 40 MiB"),
    ]
    result.targets += [
        Target("RSS per check", 0.8, "<=", 1.0, "KiB"),
        Target("durable / write-behind", 0.4, ">=", 0.5, "x"),
        Target("persistence lag", None, "<=", 100.0, "ms"),
    ]
    result.correctness.append(Correctness("throughput", "hcserver (small)", 10, 10))
    result.scenarios.append(ScenarioRun("throughput", 1.0))
    return result


def test_render_table_and_json(tmp_path):
    result = _sample_result()
    table = render_table(result)
    assert "req/s" in table and "p99.9 ms" in table
    assert "round 1" not in table  # detail rows stay in the JSON
    assert "round 1" in render_table(result, details=True)
    assert "met" in table and "NOT MET" in table and "n/a" in table
    assert "bench PASSED" in table
    write_json(result, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is True
    assert [t["met"] for t in data["targets"]] == [True, False, None]
    assert len(data["rows"]) == 3


def test_a_saved_run_renders_the_same(tmp_path):
    result = _sample_result()
    write_json(result, tmp_path / "r.json")
    again = SuiteResult.from_json(json.loads((tmp_path / "r.json").read_text()))
    assert render_table(again, details=True) == render_table(result, details=True)


def test_a_count_mismatch_fails_the_bench():
    result = _sample_result()
    result.correctness.append(Correctness("burst", "hcserver (small)", 20, 19))
    assert not result.passed
    assert "MISMATCH" in render_table(result)
    assert "bench FAILED" in render_table(result)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_tiny_bench_against_the_real_server(tmp_path):
    suite = Suite(TINY, tmp_path / "work", progress=lambda _message: None)
    try:
        result = suite.run(["throughput"])
    finally:
        suite.close()

    assert [(s.name, s.error) for s in result.scenarios] == [("throughput", None)]
    rows = [r for r in result.rows if r.scenario == "throughput" and r.server == "hcserver"]
    assert sorted(r.case.split(",")[0] for r in rows) == sorted(PING_CASES)
    # Slug and POST pings are measured against the bare delegate given the same requests just before.
    bare = [r for r in result.rows if r.scenario == "throughput" and r.server == "baseline-delegate"]
    assert sorted(r.case.split(",")[0] for r in bare) == ["POST 1 KB body", "slug success"]
    assert all(r.ok and r.errors == 0 for r in bare)
    assert sorted(t.name for t in result.targets) == [
        f"POST 1 KB body pings/s at c={TINY.connections} / bare delegate",
        f"slug success pings/s at c={TINY.connections} / bare delegate",
    ]
    assert all(t.measured is not None and t.measured > 0 for t in result.targets)
    for row in rows:
        assert row.ok and row.ok > 0
        assert row.errors == 0, row.note
        assert row.rps and row.rps > 0
        assert row.p50_ms is not None and row.p99_ms is not None and row.p999_ms is not None

    # The exact check: every 2xx ping answer counted by wrk is one n_ping on the server, no more.
    assert len(result.correctness) == 1
    check = result.correctness[0]
    assert check.actual == check.expected
    assert check.expected >= sum(r.ok or 0 for r in rows)
    assert result.notes == []  # e.g. the server exited 0 on SIGTERM
    assert result.passed

    table = render_table(result)
    assert "throughput" in table and "bench PASSED" in table
    write_json(result, tmp_path / "out" / "tiny.json")
    data = json.loads((tmp_path / "out" / "tiny.json").read_text())
    assert {"machine", "config", "rows", "targets", "correctness", "scenarios"} <= set(data)
    assert {"cpu_model", "cpu_count", "memory_gib", "kernel", "python", "tornado"} <= set(data["machine"])
    if importlib.util.find_spec("matplotlib") is not None:
        assert write_chart(result, tmp_path / "out" / "tiny.png")
        assert (tmp_path / "out" / "tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
