"""The bench's nginx scenario: the site file rendered as the production test renders it, h2load's
output read, and the scenario on a tiny load (or its skip when nginx or h2load is missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.scenarios
from bench.nginx import (
    CEILING_PATH,
    CONF,
    add_ceiling,
    missing_tools,
    parse_h2load_output,
    read_request_log,
    render,
)
from bench.scenarios import FULL, QUICK, TINY, Suite

H2LOAD_OUTPUT = """\
starting benchmark...
spawning thread #0: 50 total client(s). 20000 total requests
TLS Protocol: TLSv1.3
Application protocol: h2
progress: 100% done

finished in 1.52s, 13157.89 req/s, 1.02MB/s
requests: 20000 total, 20000 started, 19990 done, 19985 succeeded, 5 failed, 10 errored, 0 timeout
status codes: 19985 2xx, 0 3xx, 2 4xx, 3 5xx
traffic: 1.02MB (1068476) total, 300.12KB (307322) headers (space savings 92.11%), 39.06KB (40000) data
"""


def test_nginx_is_in_the_full_run_only():
    assert "nginx" in FULL.scenarios and "nginx" not in QUICK.scenarios


def test_the_ceiling_is_answered_by_nginx_in_the_tls_server(tmp_path):
    site = render(
        CONF.read_text(), upstream=8123, plain=8080, tls=8443, cert=tmp_path / "c", key=tmp_path / "k", ipv6=False
    )
    with_ceiling = add_ceiling(site)
    plain, tls = with_ceiling.split("listen 127.0.0.1:8443 ssl http2;")
    assert CEILING_PATH not in plain
    assert f'location = {CEILING_PATH} {{\n        return 200 "OK";\n    }}' in tls
    assert with_ceiling.replace(f'    location = {CEILING_PATH} {{\n        return 200 "OK";\n    }}\n', "") == site


def test_parse_h2load_output():
    parsed = parse_h2load_output(H2LOAD_OUTPUT)
    assert parsed["codes"] == {"2xx": 19985, "3xx": 0, "4xx": 2, "5xx": 3}
    assert parsed["requests"] == {
        "total": 20000,
        "started": 20000,
        "done": 19990,
        "succeeded": 19985,
        "failed": 5,
        "errored": 10,
        "timeout": 0,
    }
    assert parsed["rps"] == pytest.approx(13157.89)
    assert parsed["protocol"] == "h2"


def test_read_request_log(tmp_path):
    log = tmp_path / "requests.tsv"
    # start (µs since the epoch), status, µs to the end of the answer; -1: no answer
    log.write_text("1000000\t200\t500\n1000100\t200\t1500\n1000200\t502\t900\n1000300\t-1\t0\n")
    answered, elapsed, latency = read_request_log(log)
    assert answered == 3
    assert elapsed == pytest.approx((1001600 - 1000000) / 1e6)
    assert latency["p50"] == 0.9 and latency["max"] == 1.5
    assert read_request_log(tmp_path / "missing.tsv") == (0, 0.0, {})


def test_without_nginx_or_h2load_the_scenario_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(bench.scenarios, "missing_tools", lambda: "h2load not installed (apt-get ...)")
    monkeypatch.delenv("CI", raising=False)
    suite = Suite(TINY, tmp_path / "work", progress=lambda _message: None)
    try:
        result = suite.run(["nginx"])
    finally:
        suite.close()
    assert [(s.name, s.error) for s in result.scenarios] == [("nginx", None)]
    [row] = result.rows
    assert (row.case, row.note) == ("not run", "skipped: h2load not installed (apt-get ...)")
    assert result.correctness == [] and result.passed


@pytest.mark.slow
@pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))
def test_tiny_nginx_scenario_against_the_real_server(tmp_path: Path):
    suite = Suite(TINY, tmp_path / "work", progress=lambda _message: None)
    try:
        result = suite.run(["nginx"])
    finally:
        suite.close()

    assert [(s.name, s.error) for s in result.scenarios] == [("nginx", None)]
    rows = [r for r in result.rows if r.scenario == "nginx" and not r.detail]
    c, m, n = TINY.connections, TINY.nginx_streams, TINY.small_checks
    assert [r.case for r in rows] == [
        f"uuid success over HTTP/2, c={c} x {m} streams, {n:,} checks",
        f"uuid success over HTTP/1.1, c={c}, {n:,} checks",
        f'nginx\'s own return 200 "OK" over HTTP/2, c={c} x {m} streams',
        "pings over HTTP/2 / nginx's own answers",
        "pings over HTTP/1.1 / nginx's own answers",
        "pings over HTTP/2 / over HTTP/1.1",
    ]
    for row in rows[:3]:
        assert row.ok and row.errors == 0 and row.rps and row.p99_ms is not None
    assert all(row.value and row.unit == "x" for row in rows[3:])
    details = [r for r in result.rows if r.scenario == "nginx" and r.detail]
    protocols = [next(p for p in r.note.split("; ") if p in ("h2", "http/1.1")) for r in details]
    assert protocols == ["h2", "http/1.1", "h2"] * TINY.rounds
    [target] = result.targets
    assert target.measured == 0 and target.met
    # Every ping h2load saw answered 2xx through nginx is one n_ping on the server, no more.
    [check] = result.correctness
    assert check.ok and check.expected > 0
    assert result.notes == []
    assert result.passed
