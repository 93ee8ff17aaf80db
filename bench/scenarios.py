"""The scenarios of the suite, the servers they share, and the correctness check run after each.

    suite = Suite(QUICK, workdir)
    try:
        result = suite.run(["throughput", "burst"])
    finally:
        suite.close()

A `Suite` starts servers lazily and keeps them for the scenarios that follow, counting the 2xx ping
answers each hcserver gave; after every scenario the sum of `n_pings` over its checks must equal that.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import selectors
import socket
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from bench.api import (
    CheckRef,
    create_checks,
    flush_status,
    ping_paths,
    request_json,
    slug_paths,
    sum_n_pings,
    write_paths,
)
from bench.machine import describe_machine
from bench.model import Correctness, Row, ScenarioRun, SuiteResult, Target
from bench.nginx import CEILING_PATH, H2loadResult, H2loadSpec, Nginx, missing_tools, run_h2load
from bench.server import BASELINES, Keys, ServerProcess
from bench.wrk import MAX_RATE_PER_S, LoadSpec, WrkResult, run_wrk


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Sizes and durations of one suite run; FULL, QUICK and TINY are the presets."""

    name: str
    scenarios: tuple[str, ...]
    connections: int = 50
    threads: int = 1
    duration_s: float = 5.0
    warmup_s: float = 1.0
    rounds: int = 3
    latency_s: float = 5.0
    latency_rounds: int = 2
    paced_connections: int = 100
    small_checks: int = 1000
    large_checks: int = 100_000
    mid_checks: int = 10_000
    mid_pings: int = 100_000
    large_pings: int = 1_000_000
    backlog_pings: int = 50_000
    backlog_max_s: float = 5.0
    # One flush window is a p99 of a few thousand requests on a shared machine: take the median.
    # Rounds per load (c=1, and half our peak rate).
    backlog_rounds: int = 5
    burst_pings: int = 20_000
    burst_connections: int = 1000
    # Browser dashboards holding the checks page's event stream open in the dashboards scenario.
    dashboards: int = 20
    # How often the scraper scenario reads both metrics endpoints.
    scrape_interval_s: float = 1.0
    # The nginx scenario: HTTP/2 streams in flight per connection, and the requests of each case's
    # warm-up, whose rate sizes the first round's request count (later rounds: the round before).
    nginx_streams: int = 10
    nginx_warmup: int = 5000
    # Wall-time budget of the whole run; filling the store for the recovery scenario uses what is left
    # of it, keeping back `reserve_s` for the restart and the final listing of every check. A run
    # ends about 30 s short of it, so `make bench` takes under 10 minutes.
    budget_s: float = 590.0
    reserve_s: float = 45.0


ALL_SCENARIOS = (
    "baselines",
    "throughput",
    "latency",
    "backlog",
    "burst",
    "durability",
    "throughput-100k",
    "listing",
    "dashboards",
    "scraper",
    "nginx",
    "memory",
    "recovery",
)

FULL = BenchConfig(name="full", scenarios=ALL_SCENARIOS)
QUICK = BenchConfig(
    name="quick",
    scenarios=tuple(s for s in ALL_SCENARIOS if s not in ("throughput-100k", "scraper", "nginx")),
    duration_s=2.0,
    warmup_s=0.5,
    rounds=1,
    latency_s=2.0,
    latency_rounds=1,
    large_checks=10_000,
    mid_checks=0,
    large_pings=50_000,
    backlog_pings=20_000,
    backlog_max_s=2.0,
    backlog_rounds=1,
    budget_s=78.0,
    reserve_s=8.0,
)
# For tests: a handful of checks and one-second runs.
TINY = BenchConfig(
    name="tiny",
    scenarios=("throughput",),
    connections=4,
    duration_s=1.0,
    warmup_s=0.2,
    rounds=1,
    latency_s=1.0,
    latency_rounds=1,
    paced_connections=4,
    small_checks=5,
    large_checks=20,
    mid_checks=0,
    large_pings=200,
    backlog_pings=200,
    backlog_max_s=1.0,
    backlog_rounds=1,
    burst_pings=200,
    burst_connections=20,
    dashboards=3,
    scrape_interval_s=0.25,
    nginx_warmup=200,
    budget_s=60.0,
    reserve_s=5.0,
)

# case -> (wrk mode, kind of path)
PING_CASES: dict[str, tuple[str, str]] = {
    "uuid success": ("get", "uuid"),
    "slug success": ("get", "slug"),
    "POST 1 KB body": ("post", "uuid"),
    "start+success with rid": ("pairs", "uuid"),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class HcTarget:
    """An hcserver under test, its checks, and the 2xx ping answers the bench has counted from it."""

    def __init__(
        self,
        label: str,
        workdir: Path,
        keys: Keys,
        *,
        durable: bool,
        python: str,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.label = label
        self.dir = workdir / label
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keys = keys
        self.server = ServerProcess.hcserver(
            self.dir / "hc.sqlite3",
            keys,
            durable=durable,
            python=python,
            name=f"hcserver ({label})",
            extra_env=extra_env,
        )
        self.server_label = "hcserver --durable" if durable else "hcserver"
        self.checks: list[CheckRef] = []
        self.expected = 0
        self.rss_empty_kib: int | None = None
        self.rss_checks_kib: int | None = None
        self.create_s: float | None = None
        self._paths: dict[str, Path] = {}

    def start(self, n_checks: int) -> None:
        self.server.start()
        self.rss_empty_kib = self.server.rss_kib()
        started = time.monotonic()
        self.checks = create_checks(self.server, self.keys, n_checks, self.dir)
        self.create_s = time.monotonic() - started
        self.rss_checks_kib = self.server.rss_kib()

    def paths(self, kind: str) -> Path:
        if kind not in self._paths:
            if kind == "uuid":
                paths = ping_paths(self.checks)
            elif kind == "slug":
                paths = slug_paths(self.checks, self.keys.ping)
            else:
                raise ValueError(f"unknown path kind {kind!r}")
            self._paths[kind] = write_paths(paths, self.dir / f"paths-{kind}.txt")
        return self._paths[kind]

    def restart(self) -> tuple[int, float, float]:
        """SIGTERM (the server flushes), then start on the same store: (exit code, stop s, ready s)."""
        code = self.server.stop()
        stop_s = self.server.stop_s or 0.0
        ready_s = self.server.start()
        return code, stop_s, ready_s

    def close(self) -> int | None:
        if self.server.proc is None:
            return None
        return self.server.stop()


class StatusPoller:
    """Samples the verbose status endpoint in a thread: (monotonic time, status dict) pairs."""

    def __init__(self, server: ServerProcess, keys: Keys, interval_s: float = 0.05, max_s: float = 600.0) -> None:
        self.server = server
        self.keys = keys
        self.interval_s = interval_s
        self.max_s = max_s
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-poller", daemon=True)
        self.started = 0.0

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            status = flush_status(self.server, self.keys)
            if status is not None:
                self.samples.append((time.monotonic(), status))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> StatusPoller:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def seen(self, predicate: Callable[[dict[str, Any]], bool], min_s: float = 0.0) -> bool:
        """True once `min_s` has passed and the latest sample satisfies `predicate`."""
        if time.monotonic() - self.started < min_s or not self.samples:
            return False
        return predicate(self.samples[-1][1])


class CpuMeter:
    """CPU used by an hcserver process and by its children (the SQLite writer) over a load:
    `with CpuMeter(server) as m: ...`, then m.server_s, m.writer_s, m.wall_s."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.server_s: float | None = None
        self.writer_s: float | None = None
        self.writers: list[int] = []
        self.wall_s = 0.0
        self._server0: float | None = None
        self._children0: dict[int, float] = {}
        self._t0 = 0.0

    def __enter__(self) -> CpuMeter:
        self._children0 = self.server.children_cpu_s()
        self._server0 = self.server.cpu_s()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.monotonic() - self._t0
        server1 = self.server.cpu_s()
        children1 = self.server.children_cpu_s()
        if self._server0 is not None and server1 is not None:
            self.server_s = server1 - self._server0
        if children1:
            # A child started during the load counts from zero.
            self.writers = sorted(children1)
            self.writer_s = sum(t - self._children0.get(pid, 0.0) for pid, t in children1.items())


# Verbose status fields about flushes or the event loop, reported as the server gives them.
def _flush_fields(samples: Sequence[tuple[float, dict[str, Any]]]) -> str:
    if not samples:
        return "verbose status n/a"
    first, last = samples[0][1], samples[-1][1]
    parts = [
        f"{key} {value}"
        for key, value in last.items()
        if ("flush" in key or "loop" in key) and isinstance(value, int | float) and key != "flushes"
    ]
    f0, f1 = first.get("flushes"), last.get("flushes")
    if isinstance(f0, int) and isinstance(f1, int):
        parts.insert(0, f"{f1 - f0:,} flushes seen")
    return ", ".join(parts)


def _add_cpu_rows(
    s: Suite,
    scenario: str,
    case: str,
    server_label: str,
    meter: CpuMeter,
    pings: int,
    samples: Sequence[tuple[float, dict[str, Any]]],
) -> None:
    """Rows: the writer process's CPU (share of one core, per 1,000 pings) and the server's CPU per ping."""
    if meter.writer_s is None or meter.wall_s <= 0:
        s.add(Row(scenario, f"writer process CPU, {case}", server_label, note="no child process found"))
    else:
        per_k = meter.writer_s / pings * 1000 * 1000 if pings else None
        s.add(
            Row(
                scenario,
                f"writer process CPU, {case}",
                server_label,
                value=100 * meter.writer_s / meter.wall_s,
                unit="% of a core",
                note=(f"{per_k:.1f} ms CPU per 1,000 pings; " if per_k is not None else "")
                + f"pid {', '.join(map(str, meter.writers))}; {_flush_fields(samples)}",
            )
        )
    per_ping = meter.server_s / pings * 1e6 if meter.server_s is not None and pings else None
    share = f"{100 * meter.server_s / meter.wall_s:.0f}% of a core" if meter.server_s and meter.wall_s > 0 else ""
    s.add(
        Row(
            scenario,
            f"server CPU per ping, {case}",
            server_label,
            value=per_ping,
            unit="us",
            note=", ".join(filter(None, [share, f"{pings:,} pings in {meter.wall_s:.1f} s"])),
        )
    )


def _num(status: dict[str, Any], key: str) -> float | None:
    value = status.get(key)
    return float(value) if isinstance(value, int | float) else None


def persistence_lag(samples: Sequence[tuple[float, dict[str, Any]]]) -> tuple[float, float, str] | None:
    """(p50 ms, p99 ms, how) of answer-to-commit lag, from the server's own figures when it reports them,
    else estimated from samples as the age of the oldest pending change plus the last flush's duration."""
    if not samples:
        return None
    last = samples[-1][1]
    for p50_key, p99_key in (("commit_lag_ms_p50", "commit_lag_ms_p99"), ("lag_p50_ms", "lag_p99_ms")):
        p50, p99 = _num(last, p50_key), _num(last, p99_key)
        if p50 is not None and p99 is not None:
            return p50, p99, f"reported by the server ({p50_key}, {p99_key})"
    estimates = []
    for _, status in samples:
        age, flush = _num(status, "oldest_pending_age_ms"), _num(status, "last_flush_ms")
        if age is not None:
            estimates.append(age + (flush or 0.0))
    if not estimates:
        return None
    estimates.sort()
    p99_index = min(len(estimates) - 1, int(0.99 * len(estimates)))
    return statistics.median(estimates), estimates[p99_index], f"estimated from {len(estimates)} status samples"


def row_from(result: WrkResult, scenario: str, case: str, server: str, *, note: str = "", detail: bool = False) -> Row:
    notes = [note] if note else []
    bad = {code: n for code, n in result.codes.items() if not 200 <= code < 300}
    if bad:
        notes.append("answers " + ", ".join(f"{code}: {n}" for code, n in sorted(bad.items())))
    sock = {k: v for k, v in result.socket_errors.items() if k != "timeout" and v}
    if sock:
        notes.append("socket errors " + ", ".join(f"{k} {v}" for k, v in sock.items()))
    if not result.finished:
        notes.append("did not drain cleanly")
    if not result.latency_exact:
        notes.append("latency as wrk corrected it")
    lat = result.latency_ms
    return Row(
        scenario=scenario,
        case=case,
        server=server,
        rps=result.rps,
        p50_ms=lat.get("p50"),
        p99_ms=lat.get("p99"),
        p999_ms=lat.get("p99.9"),
        ok=result.ok,
        errors=result.errors,
        elapsed_s=result.elapsed_s,
        note="; ".join(notes),
        detail=detail,
    )


def _median_row(rows: Sequence[Row], case: str, note: str) -> Row:
    """A summary row whose figures are the medians over rounds."""

    def med(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    first = rows[0]
    return Row(
        scenario=first.scenario,
        case=case,
        server=first.server,
        rps=med([r.rps for r in rows]),
        p50_ms=med([r.p50_ms for r in rows]),
        p99_ms=med([r.p99_ms for r in rows]),
        p999_ms=med([r.p999_ms for r in rows]),
        ok=sum(r.ok or 0 for r in rows),
        errors=sum(r.errors or 0 for r in rows),
        note="; ".join(filter(None, [note, *sorted({r.note for r in rows if r.note})])),
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


class Suite:
    """Runs scenarios in order with shared, lazily started servers; collects a `SuiteResult`."""

    def __init__(
        self,
        config: BenchConfig,
        workdir: Path,
        *,
        python: str = sys.executable,
        progress: Callable[[str], None] = _log,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.python = python
        self.progress = progress
        self.keys = Keys.generate()
        # HC_METRICS_KEY of the scraper scenario's server (at least 16 characters).
        self.metrics_key = "hcm_" + secrets.token_hex(14)
        self.started = time.monotonic()
        self.result = SuiteResult(
            mode=config.name,
            machine=describe_machine(),
            config=asdict(config),
            started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        )
        self.targets: dict[str, HcTarget] = {}
        self.baselines: dict[str, ServerProcess] = {}
        self.peak_rps: float | None = None
        # The bare delegate's uuid pings/s at c=50 from the baselines scenario of this run.
        self.delegate_rps: float | None = None
        # Targets stopped once the current scenario's correctness check has read them.
        self._retire: set[str] = set()
        self._touched: set[str] = set()
        self._runs = 0
        self._scenario = ""

    # -- servers -------------------------------------------------------------------------------

    def _checks_for(self, label: str) -> int:
        sizes = {
            "small": self.config.small_checks,
            "durable": self.config.small_checks,
            "backlog": self.config.small_checks,
            "held": self.config.small_checks,
            "dashboards": self.config.small_checks,
            "scraper": self.config.small_checks,
            "nginx": self.config.small_checks,
            "mid": self.config.mid_checks,
            "large": self.config.large_checks,
        }
        return sizes[label]

    def target(self, label: str) -> HcTarget:
        """The hcserver called `label` (small, durable, backlog, held, dashboards, scraper, nginx, mid,
        large), started with its checks on first use."""
        self._touched.add(label)
        if label not in self.targets:
            n = self._checks_for(label)
            env = {}
            if label == "backlog":
                env = {"HC_FLUSH_BATCH": str(self.config.backlog_pings), "HC_FLUSH_INTERVAL_MS": "60000"}
            elif label == "held":
                env = HELD_ENV
            elif label == "scraper":
                env = {"HC_METRICS_KEY": self.metrics_key}
            elif label == "nginx":
                # As deploy/nginx/hcserver.conf asks of the server behind it.
                env = {"HC_TRUSTED_PROXIES": "127.0.0.1"}
            target = HcTarget(
                label, self.workdir, self.keys, durable=label == "durable", python=self.python, extra_env=env
            )
            self.progress(f"      starting {target.server_label} ({label}) and creating {n:,} checks")
            self.targets[label] = target
            target.start(n)
            rate = n / target.create_s if target.create_s else 0.0
            self.progress(
                f"      ready in {target.server.ready_s or 0:.2f} s; {n:,} checks in {target.create_s or 0:.1f} s "
                f"({rate:,.0f}/s)"
            )
        return self.targets[label]

    def baseline(self, kind: str) -> ServerProcess:
        if kind not in self.baselines:
            server = ServerProcess.baseline(kind, self.workdir, python=self.python)
            self.baselines[kind] = server
            server.start()
        return self.baselines[kind]

    def close(self) -> None:
        for label, target in list(self.targets.items()):
            try:
                code = target.close()
            except Exception as exc:
                self.result.notes.append(f"stopping hcserver ({label}) failed: {exc}")
                target.server.kill()
                continue
            if code not in (0, None):
                self.result.notes.append(f"hcserver ({label}) exited with {code} on SIGTERM (expected 0)")
        for server in self.baselines.values():
            if server.proc is not None:
                server.stop()
        self.targets.clear()
        self.baselines.clear()

    def retire(self, label: str) -> None:
        """Stop the target `label` after this scenario's correctness check, so that it does not run
        (or flush what it holds) during the scenarios that follow."""
        self._retire.add(label)

    def _close_retired(self) -> None:
        for label in sorted(self._retire):
            target = self.targets.pop(label, None)
            if target is None:
                continue
            code = target.close()
            if code not in (0, None):
                self.result.notes.append(f"hcserver ({label}) exited with {code} on SIGTERM (expected 0)")
        self._retire.clear()

    def time_left(self) -> float:
        return self.config.budget_s - (time.monotonic() - self.started)

    # -- load ----------------------------------------------------------------------------------

    def spec(self, **changes: Any) -> LoadSpec:
        base = LoadSpec(connections=self.config.connections, threads=self.config.threads)
        return replace(base, **changes)

    def load(
        self,
        server: ServerProcess,
        spec: LoadSpec,
        target: HcTarget | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> WrkResult:
        """One wrk run; 2xx answers from an hcserver are added to the pings it must have counted."""
        self._runs += 1
        sync_dir = self.workdir / "wrk" / f"{self._runs:03d}"

        def stop() -> bool:
            return not server.alive() or (should_stop is not None and should_stop())

        cpu0 = server.cpu_s()
        result = run_wrk(server.url, spec, sync_dir, should_stop=stop)
        cpu1 = server.cpu_s()
        if cpu0 is not None and cpu1 is not None:
            result.server_cpu_s = cpu1 - cpu0
        if target is not None and spec.mode != "create":
            target.expected += result.ok
        if not server.alive():
            raise RuntimeError(f"{server.name} died during the run{server.log_tail()}")
        return result

    def add(self, row: Row) -> Row:
        self.result.rows.append(row)
        return row

    def add_target(self, target: Target) -> None:
        self.result.targets.append(target)

    def ensure_peak(self) -> float:
        """Our UUID ping throughput at c=50, measured now unless an earlier scenario measured it."""
        if self.peak_rps is None:
            small = self.target("small")
            result = self.load(
                small.server, self.spec(paths=small.paths("uuid"), duration_s=self.config.duration_s), small
            )
            self.add(row_from(result, self._scenario, "uuid success (peak, for pacing)", "hcserver"))
            self.peak_rps = result.rps
        return self.peak_rps

    # -- running -------------------------------------------------------------------------------

    def run(self, names: Sequence[str]) -> SuiteResult:
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        for i, name in enumerate(names, 1):
            scenario = SCENARIOS[name]
            self._scenario = name
            self._touched = set()
            self.progress(f"[{i}/{len(names)}] {name}: {scenario.title}")
            started = time.monotonic()
            error: str | None = None
            try:
                scenario.run(self)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self.progress(traceback.format_exc())
            try:
                self._check_correctness(name)
            except Exception as exc:
                error = error or f"correctness check failed: {type(exc).__name__}: {exc}"
            try:
                self._close_retired()
            except Exception as exc:
                self.result.notes.append(f"stopping a server after {name} failed: {exc}")
            seconds = time.monotonic() - started
            self.result.scenarios.append(ScenarioRun(name, seconds, error))
            self._drop_dead_targets()
            status = "FAILED " + error.splitlines()[0] if error else "done"
            self.progress(f"[{i}/{len(names)}] {name}: {status} in {seconds:.1f} s (elapsed {self.elapsed():.0f} s)")
        self.result.seconds = self.elapsed()
        self.result.machine["load_average_end"] = list(os.getloadavg())
        return self.result

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _check_correctness(self, scenario: str) -> None:
        for label in sorted(self._touched):
            target = self.targets.get(label)
            if target is None or not target.server.alive():
                continue
            actual = sum_n_pings(target.server, self.keys)
            check = Correctness(scenario, f"{target.server_label} ({label})", target.expected, actual)
            self.result.correctness.append(check)
            if not check.ok:
                self.progress(
                    f"      MISMATCH on {label}: counted {target.expected:,} 2xx pings, n_pings sum {actual:,}"
                )

    def _drop_dead_targets(self) -> None:
        # A server that died cannot be trusted by later scenarios; they start a fresh one.
        for label, target in list(self.targets.items()):
            if not target.server.alive():
                target.server.kill()
                del self.targets[label]
                self.result.notes.append(f"hcserver ({label}) was not running after {self._scenario}")


# -- scenarios -------------------------------------------------------------------------------------


def _cpu_note(rows: Sequence[WrkResult]) -> str:
    """The server's CPU per answer and wrk's share of a core, medians over runs: wrk near
    `threads` x 100% means the client, not the server, set the pace."""
    per_answer = [u for r in rows if (u := r.server_us_per_answer) is not None]
    wrk_share = [c for r in rows if (c := r.cpu_share) is not None]
    parts = []
    if per_answer:
        parts.append(f"server {statistics.median(per_answer):.1f} us CPU/answer")
    if wrk_share:
        parts.append(f"wrk {statistics.median(wrk_share):.0%} of a core")
    return ", ".join(parts)


def scenario_baselines(s: Suite) -> None:
    cfg = s.config
    ours = s.target("small")
    servers: list[tuple[str, ServerProcess, HcTarget | None]] = [("hcserver", ours.server, ours)]
    servers += [(f"baseline-{kind}", s.baseline(kind), None) for kind in BASELINES]
    paths = ours.paths("uuid")
    for _, server, target in servers:
        s.load(server, s.spec(paths=paths, duration_s=cfg.warmup_s), target)
    rounds: dict[str, list[Row]] = {name: [] for name, _, _ in servers}
    results: dict[str, list[WrkResult]] = {name: [] for name, _, _ in servers}
    # A B C D E, A B C D E, ...: drift on a shared machine hits every server alike.
    for r in range(cfg.rounds):
        for name, server, target in servers:
            result = s.load(server, s.spec(paths=paths, duration_s=cfg.duration_s), target)
            results[name].append(result)
            rounds[name].append(s.add(row_from(result, "baselines", f"uuid success, round {r + 1}", name, detail=True)))
    how = f"median of {cfg.rounds} interleaved rounds"
    summary = {
        name: _median_row(rows, f"uuid success, {cfg.small_checks:,} checks", how) for name, rows in rounds.items()
    }
    for name, rows in rounds.items():
        for row, result in zip(rows, results[name], strict=True):
            row.note = "; ".join(filter(None, [row.note, _cpu_note([result])]))
    for name, row in summary.items():
        row.note = "; ".join(filter(None, [row.note, _cpu_note(results[name])]))
        s.add(row)
    ours_rps = summary["hcserver"].rps
    s.delegate_rps = summary["baseline-delegate"].rps
    s.peak_rps = max(r.rps or 0.0 for r in rounds["hcserver"])
    ceilings = {"iostream", "protocol"}
    for kind in BASELINES:
        what = " (a ceiling: httptools, no Tornado HTTP layer)" if kind in ceilings else ""
        s.add(
            Row(
                "baselines",
                f"uuid pings/s, hcserver / baseline-{kind}{what}",
                "hcserver",
                value=_ratio(ours_rps, summary[f"baseline-{kind}"].rps),
                unit="x",
                note=how,
            )
        )
    s.add_target(
        Target(
            f"uuid pings/s at c={cfg.connections}, {cfg.small_checks:,} checks / bare delegate",
            _ratio(ours_rps, s.delegate_rps),
            ">=",
            3.0,
            "x",
            note=f"stretch goal 5x; {how}",
        )
    )


def _throughput(s: Suite, label: str, scenario: str, against_delegate: Sequence[str] = ()) -> None:
    """The kinds of ping at c=50 on the target `label`. For the cases in `against_delegate`, the bare
    delegate gets the same requests (paths, method, body) in a run right before ours, and the target
    is the ratio of the two."""
    cfg = s.config
    target = s.target(label)
    n = len(target.checks)
    s.load(target.server, s.spec(paths=target.paths("uuid"), duration_s=cfg.warmup_s), target)
    delegate = s.baseline("delegate") if against_delegate else None
    if delegate is not None:
        s.load(delegate, s.spec(paths=target.paths("uuid"), duration_s=cfg.warmup_s))
    for case, (mode, kind) in PING_CASES.items():
        spec = s.spec(mode=mode, paths=target.paths(kind), duration_s=cfg.duration_s)
        bare: WrkResult | None = None
        if delegate is not None and case in against_delegate:
            bare = s.load(delegate, spec)
            s.add(row_from(bare, scenario, f"{case}, same requests", "baseline-delegate", note=_cpu_note([bare])))
        result = s.load(target.server, spec, target)
        s.add(row_from(result, scenario, f"{case}, {n:,} checks", target.server_label, note=_cpu_note([result])))
        if case == "uuid success" and label == "small":
            s.peak_rps = max(s.peak_rps or 0.0, result.rps)
        if bare is not None:
            s.add_target(
                Target(
                    f"{case} pings/s at c={cfg.connections} / bare delegate",
                    _ratio(result.rps, bare.rps),
                    ">=",
                    2.5,
                    "x",
                    note="the delegate given the same requests in the run just before",
                )
            )


def scenario_throughput(s: Suite) -> None:
    _throughput(s, "small", "throughput", against_delegate=("slug success", "POST 1 KB body"))


def scenario_throughput_large(s: Suite) -> None:
    _throughput(s, "large", "throughput-100k")


# The hcserver whose writer holds everything back for the whole latency scenario: one flush tick
# every 20 s, no flush by count, no backpressure.
HELD_ENV = {"HC_FLUSH_INTERVAL_MS": "20000", "HC_FLUSH_BATCH": "10000000", "HC_MAX_PENDING": "100000000"}


def _flushes(s: Suite, target: HcTarget) -> int | None:
    status = flush_status(target.server, s.keys)
    value = status.get("flushes") if status is not None else None
    return value if isinstance(value, int) else None


def _held_run(s: Suite, held: HcTarget, spec: LoadSpec) -> tuple[WrkResult, str]:
    """A run on the held-off server during which nothing flushed. Its one flush tick every 20 s may
    fall in a run; then the run is done again at once, 20 s clear of the next tick."""
    note = ""
    for _ in range(2):
        before = _flushes(s, held)
        result = s.load(held.server, spec, held)
        after = _flushes(s, held)
        if before is None or after is None:
            return result, "flush count n/a"
        if after == before:
            return result, note
        note = "a flush tick fell in the first try; run again"
    return result, "a flush fell in the run"


def scenario_latency(s: Suite) -> None:
    cfg = s.config
    ours = s.target("small")
    held = s.target("held")
    delegate = s.baseline("delegate")
    paths = ours.paths("uuid")
    names = ("hcserver", "hcserver, flushing held off", "baseline-delegate")
    closed: dict[str, list[Row]] = {name: [] for name in names}
    spec = s.spec(paths=paths, connections=1, duration_s=cfg.latency_s)
    held_spec = replace(spec, paths=held.paths("uuid"))
    s.load(held.server, replace(held_spec, duration_s=cfg.warmup_s), held)
    added: list[float] = []
    for r in range(cfg.latency_rounds):
        case = f"c=1, round {r + 1}"
        result = s.load(ours.server, spec, ours)
        closed[names[0]].append(s.add(row_from(result, "latency", case, names[0], detail=True)))
        result, note = _held_run(s, held, held_spec)
        closed[names[1]].append(
            s.add(row_from(result, "latency", case, names[1], note="; ".join(filter(None, [note])), detail=True))
        )
        result = s.load(delegate, spec)
        closed[names[2]].append(s.add(row_from(result, "latency", case, names[2], detail=True)))
        on, off = closed[names[0]][-1].p99_ms, closed[names[1]][-1].p99_ms
        if on is not None and off is not None:
            added.append(on - off)
    held_how = ", ".join(f"{k}={v}" for k, v in HELD_ENV.items())
    c1 = {
        name: s.add(
            _median_row(
                rows,
                f"c=1 (closed loop), {cfg.small_checks:,} checks",
                f"median of {cfg.latency_rounds} interleaved rounds" + (f"; {held_how}" if name == names[1] else ""),
            )
        )
        for name, rows in closed.items()
    }
    s.add_target(
        Target(
            "p99 at c=1, flushing on / bare delegate p99",
            _ratio(c1["hcserver"].p99_ms, c1["baseline-delegate"].p99_ms),
            "<=",
            1.0,
            "x",
            note=f"medians of {cfg.latency_rounds} interleaved rounds",
        )
    )
    s.add_target(
        Target(
            "p99 at c=1 added by flushing (vs writer held off)",
            statistics.median(added) if added else None,
            "<=",
            0.2,
            "ms",
            note="median over rounds, each vs the held-off run right after it: "
            + ", ".join(f"{a:+.2f}" for a in added),
        )
    )
    # Its writer holds every ping of the scenario; stopped now, it does not flush them during the next.
    s.retire("held")
    rate = s.ensure_peak() / 2
    for name, server, target in (("hcserver", ours.server, ours), ("baseline-delegate", delegate, None)):
        spec = s.spec(paths=paths, connections=cfg.paced_connections, duration_s=cfg.latency_s, rate=rate)
        result = s.load(server, spec, target)
        s.add(
            row_from(
                result,
                "latency",
                f"offered {rate:,.0f}/s (1/2 our peak), c={cfg.paced_connections}",
                name,
                note=f"achieved {result.rps:,.0f}/s",
            )
        )


# How often the backlog scenario reads the verbose status, to see its flush end.
_POLL_S = 0.05


def scenario_backlog(s: Suite) -> None:
    # The target: flushing adds at most 2 ms to the p99 at c=1. The same rounds at half our peak rate
    # with 100 connections are the harder case, held to the same 2 ms.
    cfg = s.config
    rate = s.ensure_peak() / 2
    # A server of its own whose writer holds everything back until `backlog_pings` changes wait, so
    # that the backlog really is that big and its flush starts right at the end of the preload.
    ours = s.target("backlog")
    paths = ours.paths("uuid")
    loads = (
        ("c=1", s.spec(paths=paths, connections=1), "p99 at c=1 added while flushing a backlog"),
        (
            f"offered {rate:,.0f}/s, c={cfg.paced_connections}",
            s.spec(paths=paths, connections=cfg.paced_connections, rate=rate),
            "p99 at half our peak added while flushing a backlog",
        ),
    )
    for load, spec, goal in loads:
        added = _backlog_rounds(s, ours, spec, load)
        s.add_target(
            Target(
                goal,
                statistics.median(added) if added else None,
                "<=",
                2.0,
                "ms",
                note="median over rounds, each vs the window right after it, writer idle; rounds: "
                + ", ".join(f"{a:+.1f}" for a in added),
            )
        )


def _backlog_rounds(s: Suite, ours: HcTarget, spec: LoadSpec, load: str) -> list[float]:
    """Rounds of a flush window and the quiet window right after it, under one load; the p99 each
    flush added. Rows: every window (details) and the medians."""
    cfg = s.config
    held = f"HC_FLUSH_BATCH={cfg.backlog_pings}, HC_FLUSH_INTERVAL_MS=60000"
    quiet_rows: list[Row] = []
    flush_rows: list[Row] = []
    added: list[float] = []
    for r in range(1, cfg.backlog_rounds + 1):
        flushing = _flush_backlog(s, ours, spec, f"{load}, round {r}")
        flush_rows.append(flushing)
        # Right after, for as long, under the same load and with the same status polling: the
        # machine is in the same mood, and the two p99s come from windows of the same length. Too
        # few changes wait to start a flush.
        with StatusPoller(ours.server, s.keys, interval_s=_POLL_S):
            quiet = s.load(ours.server, replace(spec, duration_s=flushing.elapsed_s or cfg.latency_s), ours)
        quiet_rows.append(
            s.add(row_from(quiet, "backlog", f"writer idle, {load}, round {r}", "hcserver", note=held, detail=True))
        )
        if quiet_rows[-1].p99_ms is not None and flushing.p99_ms is not None:
            added.append(flushing.p99_ms - quiet_rows[-1].p99_ms)
    rounds = f"median of {cfg.backlog_rounds} rounds"
    s.add(_median_row(quiet_rows, f"{load}, writer idle", rounds))
    s.add(_median_row(flush_rows, f"{load} while flushing the backlog", rounds))
    return added


def _flush_backlog(s: Suite, ours: HcTarget, spec: LoadSpec, label: str) -> Row:
    """Fill the held-back batch to `backlog_pings`, then run `spec` while it flushes."""
    cfg = s.config
    before = flush_status(ours.server, s.keys)
    pending = int(before.get("pending", 0)) if before is not None else 0
    budget = max(1, cfg.backlog_pings - pending + 10)
    preload = s.load(ours.server, s.spec(paths=ours.paths("uuid"), budget=budget), ours)
    s.add(
        row_from(
            preload,
            "backlog",
            f"preload to {cfg.backlog_pings:,} pending, c={cfg.connections}, {label}",
            "hcserver",
            note=f"{budget:,} pings",
            detail=True,
        )
    )
    start = flush_status(ours.server, s.keys)
    flushes0 = start.get("flushes") if start is not None else None
    pending0 = float(start.get("pending", 0)) if start is not None else 0.0

    def flushed(status: dict[str, Any]) -> bool:
        if isinstance(flushes0, int) and isinstance(status.get("flushes"), int):
            return bool(status["flushes"] > flushes0)
        return float(status.get("pending", 0)) < pending0 / 2

    with StatusPoller(ours.server, s.keys, interval_s=_POLL_S) as poller:
        result = s.load(
            ours.server,
            replace(spec, duration_s=cfg.backlog_max_s),
            ours,
            should_stop=(lambda: poller.seen(flushed, min_s=0.5)) if start is not None else None,
        )
    if start is None:
        note = "verbose status n/a: measured for a fixed time after the preload"
    else:
        done = [t for t, st in poller.samples if flushed(st)]
        last = poller.samples[-1][1] if poller.samples else {}
        note = (
            f"{pending0:,.0f} pending at start; "
            + (f"flushed after {done[0] - poller.started:.2f} s" if done else "flush not finished in the run")
            + f"; last flush {last.get('last_flush_size', 'n/a')} rows in {last.get('last_flush_ms', 'n/a')} ms"
        )
    case = f"while flushing the backlog, {label}"
    return s.add(row_from(result, "backlog", case, "hcserver", note=note, detail=True))


def scenario_burst(s: Suite) -> None:
    cfg = s.config
    ours = s.target("small")
    paths = ours.paths("uuid")
    budget = cfg.burst_pings
    steady = s.load(ours.server, s.spec(paths=paths, budget=budget, max_seconds=120.0), ours)
    steady_row = row_from(steady, "burst", f"{budget:,} pings at steady c={cfg.connections}", "hcserver")
    steady_row.value, steady_row.unit = steady.elapsed_s, "s"
    s.add(steady_row)
    burst = s.load(
        ours.server, s.spec(paths=paths, connections=cfg.burst_connections, budget=budget, max_seconds=120.0), ours
    )
    burst_row = row_from(
        burst, "burst", f"{budget:,} pings from {cfg.burst_connections:,} connections at once", "hcserver"
    )
    burst_row.value, burst_row.unit = burst.elapsed_s, "s"
    s.add(burst_row)
    s.add_target(
        Target("burst errors", float(burst.errors), "<=", 0.0, "", note=f"{burst.ok:,} of {budget:,} answered 2xx")
    )
    s.add_target(
        Target(
            "burst absorb time / same pings at steady c=50", _ratio(burst.elapsed_s, steady.elapsed_s), "<=", 1.5, "x"
        )
    )


def scenario_durability(s: Suite) -> None:
    cfg = s.config
    write_behind = s.target("small")
    durable = s.target("durable")
    with StatusPoller(write_behind.server, s.keys, interval_s=0.02) as poller, CpuMeter(write_behind.server) as wb_cpu:
        wb = s.load(
            write_behind.server, s.spec(paths=write_behind.paths("uuid"), duration_s=cfg.duration_s), write_behind
        )
    s.load(durable.server, s.spec(paths=durable.paths("uuid"), duration_s=cfg.warmup_s), durable)
    with StatusPoller(durable.server, s.keys, interval_s=0.25) as du_poller, CpuMeter(durable.server) as du_cpu:
        du = s.load(durable.server, s.spec(paths=durable.paths("uuid"), duration_s=cfg.duration_s), durable)
    case = f"uuid success, {cfg.small_checks:,} checks"
    s.add(row_from(wb, "durability", case, "hcserver"))
    s.add(
        row_from(du, "durability", case, "hcserver --durable", note=f"{_ratio(du.rps, wb.rps) or 0:.2f}x write-behind")
    )
    _add_cpu_rows(s, "durability", f"c={cfg.connections}", "hcserver", wb_cpu, wb.ok, poller.samples)
    _add_cpu_rows(s, "durability", f"c={cfg.connections}", "hcserver --durable", du_cpu, du.ok, du_poller.samples)
    lag = persistence_lag(poller.samples)
    if lag is None:
        s.add(
            Row("durability", "persistence lag, answer to commit", "hcserver", note="n/a: verbose status not available")
        )
    else:
        s.add(
            Row(
                "durability", "persistence lag, answer to commit", "hcserver", p50_ms=lag[0], p99_ms=lag[1], note=lag[2]
            )
        )
    s.add_target(Target("durable throughput / write-behind", _ratio(du.rps, wb.rps), ">=", 0.5, "x"))


class Lister:
    """Lists every check of a server over and over in a thread, as a dashboard or an exporter
    polling GET /api/v3/checks/ would; reads and drops the body. Bounded by `max_s` and `max_listings`;
    on exit it stops at once, closing a listing midway."""

    def __init__(self, server: ServerProcess, keys: Keys, max_s: float, max_listings: int = 1000) -> None:
        self.server = server
        self.keys = keys
        self.max_s = max_s
        self.max_listings = max_listings
        self.listings = 0  # read to the end
        self.bytes = 0
        self.seconds: list[float] = []
        self.error: str | None = None
        self.reading = threading.Event()  # set once the first bytes of a listing arrive
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lister", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < deadline and self.listings < self.max_listings:
            started = time.monotonic()
            conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=60)
            try:
                conn.request("GET", "/api/v3/checks/", headers={"X-Api-Key": self.keys.api})
                response = conn.getresponse()
                if response.status != 200:
                    self.error = f"GET /api/v3/checks/ answered {response.status}"
                    return
                while not self._stop.is_set():
                    chunk = response.read(1 << 20)
                    if not chunk:
                        self.listings += 1
                        self.seconds.append(time.monotonic() - started)
                        break
                    self.bytes += len(chunk)
                    self.reading.set()
            except OSError as exc:
                self.error = f"listing failed: {exc}"
                return
            finally:
                conn.close()

    def __enter__(self) -> Lister:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=70)

    def note(self) -> str:
        each = f", {statistics.median(self.seconds):.1f} s each" if self.seconds else ""
        return f"{self.listings} whole listings{each}, {self.bytes / 1e6:,.0f} MB read" + (
            f"; {self.error}" if self.error else ""
        )


def scenario_listing(s: Suite) -> None:
    """Ping p99 at c=1 while another client lists every check in a loop, against the same run
    without the listing, interleaved (quiet, listing) x rounds."""
    cfg = s.config
    ours = s.target("large")
    n = len(ours.checks)
    spec = s.spec(paths=ours.paths("uuid"), connections=1, duration_s=cfg.latency_s)
    quiet_rows: list[Row] = []
    busy_rows: list[Row] = []
    added: list[float] = []
    for r in range(1, cfg.latency_rounds + 1):
        quiet = s.load(ours.server, spec, ours)
        quiet_rows.append(s.add(row_from(quiet, "listing", f"c=1, no listing, round {r}", "hcserver", detail=True)))
        with Lister(ours.server, s.keys, max_s=cfg.latency_s + 60.0) as lister:
            if not lister.reading.wait(60.0):
                raise RuntimeError(f"no listing started in 60 s: {lister.note()}")
            busy = s.load(ours.server, spec, ours)
        if lister.error:
            raise RuntimeError(lister.error)
        case = f"c=1 while listing {n:,} checks in a loop, round {r}"
        busy_rows.append(s.add(row_from(busy, "listing", case, "hcserver", note=lister.note(), detail=True)))
        if quiet_rows[-1].p99_ms is not None and busy_rows[-1].p99_ms is not None:
            added.append(busy_rows[-1].p99_ms - quiet_rows[-1].p99_ms)
    rounds = f"median of {cfg.latency_rounds} interleaved rounds"
    s.add(_median_row(quiet_rows, f"uuid pings at c=1, {n:,} checks, no listing", rounds))
    s.add(_median_row(busy_rows, f"uuid pings at c=1 while a client lists all {n:,} checks in a loop", rounds))
    scale = "" if n >= 100_000 else f"; measured at {n:,} checks"
    s.add_target(
        Target(
            "ping p99 at c=1 added while listing 100k checks in a loop",
            statistics.median(added) if added else None,
            "<=",
            20.0,
            "ms",
            note="median over rounds, each vs the round without listing before it: "
            + ", ".join(f"{a:+.1f}" for a in added)
            + scale,
        )
    )


class Dashboards:
    """`n` browser dashboards in one thread: each gets the sign-in form (and its XSRF cookie), signs
    in with the API key, renders the checks page for its event-stream token, and holds
    `/events?token=...` open, reading and dropping what arrives. Only the standard library, only the
    server's loopback address. Bounded by `max_s` and by `n` (one stream each, never reopened); on
    exit every socket is closed at once.

    with Dashboards(server, keys, 20, max_s=60) as d:
        d.ready.wait(30)   # every stream open, its first bytes in
        ... d.bytes, d.messages ...
    """

    def __init__(self, server: ServerProcess, keys: Keys, n: int, max_s: float) -> None:
        self.server = server
        self.keys = keys
        self.n = n
        self.max_s = max_s
        self.bytes = 0  # stream bytes after the headers (chunk framing included)
        self.messages = 0  # `data:` events
        self.closed = 0  # streams the server ended
        self.sign_in_s = 0.0  # sign-in, page and stream opening of all n
        self.cpu_s = 0.0  # CPU time of the client thread so far, updated as it reads
        self.error: str | None = None
        self.ready = threading.Event()  # set once every stream is open (or on error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboards", daemon=True)

    def _request(self, method: str, path: str, cookies: dict[str, str], body: str | None = None) -> tuple[int, str]:
        headers = {"Accept": "text/html"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=_DASHBOARD_TIMEOUT_S)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                cookies.update({k: m.value for k, m in SimpleCookie(header).items()})
            return response.status, text
        finally:
            conn.close()

    def _open(self) -> socket.socket:
        """Sign in as a browser does and open the checks page's event stream; the socket is past the
        answer's headers."""
        cookies: dict[str, str] = {}
        status, page = self._request("GET", "/", cookies)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page)
        if status != 200 or xsrf is None:
            raise RuntimeError(f"GET / answered {status} without an XSRF token")
        form = urlencode({"api_key": self.keys.api, "_xsrf": xsrf.group(1)})
        status, _ = self._request("POST", "/signin", cookies, body=form)
        if status != 303 or "hc_session" not in cookies:
            raise RuntimeError(f"POST /signin answered {status} without a session cookie")
        status, page = self._request("GET", "/", cookies)
        token = re.search(r'data-token="([^"]+)"', page)
        if status != 200 or token is None:
            raise RuntimeError(f"the checks page answered {status} without an event-stream token")
        sock = socket.create_connection((self.server.host, self.server.port), timeout=_DASHBOARD_TIMEOUT_S)
        try:
            sock.sendall(
                (
                    f"GET /events?token={quote(token.group(1))} HTTP/1.1\r\n"
                    f"Host: {self.server.host}:{self.server.port}\r\n"
                    "Accept: text/event-stream\r\n"
                    f"Cookie: hc_session={cookies['hc_session']}\r\n\r\n"
                ).encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("the event stream closed before its headers")
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in head:
                raise RuntimeError(f"GET /events answered {head.splitlines()[0]!r}")
            self._count(rest, b"")
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    def _count(self, chunk: bytes, tail: bytes) -> bytes:
        """Count bytes and `data:` events; `tail` (the last bytes of the chunk before) catches an
        event whose name is split between reads."""
        self.bytes += len(chunk)
        seen = tail + chunk
        self.messages += seen.count(b"data: ")
        return seen[-5:]

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        socks: list[socket.socket] = []
        tails: dict[int, bytes] = {}  # per stream, the last bytes read (see _count)
        with selectors.DefaultSelector() as selector:
            try:
                started = time.monotonic()
                for _ in range(self.n):
                    if self._stop.is_set() or time.monotonic() > deadline:
                        self.error = f"dashboard client: {len(socks)} of {self.n} streams open when stopped"
                        return
                    sock = self._open()
                    socks.append(sock)
                    selector.register(sock, selectors.EVENT_READ, sock)
                self.sign_in_s = time.monotonic() - started
                self.ready.set()
                while not self._stop.is_set() and time.monotonic() < deadline and selector.get_map():
                    for key, _ in selector.select(timeout=0.1):
                        sock = key.data
                        try:
                            chunk = sock.recv(1 << 16)
                        except BlockingIOError:
                            continue
                        if not chunk:
                            self.closed += 1
                            selector.unregister(sock)
                            continue
                        tails[sock.fileno()] = self._count(chunk, tails.get(sock.fileno(), b""))
                    self.cpu_s = time.thread_time()
            except (OSError, RuntimeError) as exc:
                self.error = f"dashboard client: {exc}"
            finally:
                self.ready.set()
                for sock in socks:
                    sock.close()

    def __enter__(self) -> Dashboards:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=_DASHBOARD_TIMEOUT_S + 5)


# Every request and read of a dashboard client gives up after this long.
_DASHBOARD_TIMEOUT_S = 10.0


def scenario_dashboards(s: Suite) -> None:
    """UUID pings/s at c=50 alone and with `dashboards` clients holding the checks page's event
    stream open, interleaved (alone, dashboards) x rounds on a server of their own."""
    cfg = s.config
    ours = s.target("dashboards")
    n = len(ours.checks)
    spec = s.spec(paths=ours.paths("uuid"), duration_s=cfg.duration_s)
    rows: dict[str, list[Row]] = {"alone": [], "open": []}
    results: dict[str, list[WrkResult]] = {"alone": [], "open": []}
    notes: list[str] = []
    rates: list[float] = []
    ratios: list[float] = []
    for r in range(1, cfg.rounds + 1):
        # A page's subscription outlives its stream by a minute (for reconnecting pages), and the
        # server counts every ping into it meanwhile: a restart makes the run alone really alone.
        code, _, _ = ours.restart()
        if code != 0:
            raise RuntimeError(f"hcserver (dashboards) exited with {code} on SIGTERM, expected 0")
        s.load(ours.server, replace(spec, duration_s=cfg.warmup_s), ours)
        alone = s.load(ours.server, spec, ours)
        results["alone"].append(alone)
        rows["alone"].append(s.add(row_from(alone, "dashboards", f"no dashboard, round {r}", "hcserver", detail=True)))
        with Dashboards(ours.server, s.keys, cfg.dashboards, max_s=cfg.duration_s + 60.0) as dash:
            if not dash.ready.wait(60.0) or dash.error:
                raise RuntimeError(dash.error or f"{cfg.dashboards} dashboards not signed in within 60 s")
            bytes0, messages0, cpu0 = dash.bytes, dash.messages, dash.cpu_s
            busy = s.load(ours.server, spec, ours)
            received, messages, cpu = dash.bytes - bytes0, dash.messages - messages0, dash.cpu_s - cpu0
        if dash.error:
            raise RuntimeError(dash.error)
        rate = received / busy.elapsed_s if busy.elapsed_s else 0.0
        rates.append(rate)
        results["open"].append(busy)
        case = f"{cfg.dashboards} dashboards streaming, round {r}"
        rows["open"].append(s.add(row_from(busy, "dashboards", case, "hcserver", detail=True)))
        notes.append(
            f"{messages:,} events, {rate / 1000:,.0f} KB/s to {cfg.dashboards} clients; "
            f"clients {cpu / busy.elapsed_s if busy.elapsed_s else 0:.0%} of a core; "
            f"signed in and streaming in {dash.sign_in_s:.2f} s"
            + (f"; {dash.closed} streams ended by the server" if dash.closed else "")
        )
        if (ratio := _ratio(busy.rps, alone.rps)) is not None:
            ratios.append(ratio)
    how = f"median of {cfg.rounds} interleaved rounds, each on a restarted server"
    case = f"uuid success, {n:,} checks"
    alone_row = s.add(_median_row(rows["alone"], f"{case}, no dashboard", how))
    open_row = s.add(_median_row(rows["open"], f"{case}, {cfg.dashboards} dashboards streaming", how))
    for kind, summary in (("alone", alone_row), ("open", open_row)):
        summary.note = "; ".join(filter(None, [summary.note, _cpu_note(results[kind])]))
        for row, result in zip(rows[kind], results[kind], strict=True):
            extra = notes.pop(0) if kind == "open" else ""
            row.note = "; ".join(filter(None, [row.note, extra, _cpu_note([result])]))
    s.add(
        Row(
            "dashboards",
            f"SSE received by {cfg.dashboards} dashboards during the pings",
            "hcserver",
            value=statistics.median(rates) / 1000 if rates else None,
            unit="KB/s",
            note="median over rounds; stream bytes after the headers, chunk framing included; rounds: "
            + ", ".join(f"{x / 1000:,.0f}" for x in rates),
        )
    )
    s.add_target(
        Target(
            f"uuid pings/s at c={cfg.connections} with {cfg.dashboards} dashboards open / without",
            _ratio(open_row.rps, alone_row.rps),
            ">=",
            0.95,
            "x",
            note=f"{how}; per round: " + ", ".join(f"{x:.2f}" for x in ratios),
        )
    )
    # Its pages' subscriptions would outlive the scenario by a minute.
    s.retire("dashboards")


class Scraper:
    """A Prometheus server in a thread: every `interval_s` it reads the server's own metrics
    (`GET /metrics`, Bearer HC_METRICS_KEY) and the project's (`/projects/<uuid>/metrics/<read-only
    key>`), each on a new connection, and drops the text. Bounded by `max_s`; the first scrape of
    both is done (and must answer 200) before `ready` is set.

    with Scraper(server, metrics_key, project_path, interval_s=1.0, max_s=60) as scraper:
        scraper.ready.wait(30)
        ... scraper.scrapes, scraper.seconds ...
    """

    def __init__(
        self, server: ServerProcess, metrics_key: str, project_path: str, interval_s: float, max_s: float
    ) -> None:
        self.server = server
        self.endpoints: tuple[tuple[str, dict[str, str]], ...] = (
            ("/metrics", {"Authorization": f"Bearer {metrics_key}"}),
            (project_path, {}),
        )
        self.interval_s = interval_s
        self.max_s = max_s
        self.scrapes = 0  # rounds of both endpoints
        self.bytes: dict[str, int] = {}  # per endpoint, the size of the last answer
        self.seconds: dict[str, list[float]] = {path: [] for path, _ in self.endpoints}
        self.error: str | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)

    def _scrape(self, path: str, headers: dict[str, str]) -> None:
        started = time.monotonic()
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200 or not body.startswith(b"# HELP "):
            raise RuntimeError(f"GET {path.split('/metrics/')[0]}... answered {response.status}: {body[:200]!r}")
        self.seconds[path].append(time.monotonic() - started)
        self.bytes[path] = len(body)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        due = time.monotonic()
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                for path, headers in self.endpoints:
                    self._scrape(path, headers)
                self.scrapes += 1
                self.ready.set()
                due += self.interval_s
                self._stop.wait(max(0.0, due - time.monotonic()))
        except (OSError, RuntimeError) as exc:
            self.error = f"scraper: {exc}"
        finally:
            self.ready.set()

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def note(self, since: int = 0) -> str:
        """Scrapes since the `since`-th, and each endpoint's answer size and median time."""
        parts = []
        for (path, _), name in zip(self.endpoints, ("/metrics", "project"), strict=True):
            took = self.seconds[path][since:]
            each = f", {statistics.median(took) * 1000:.1f} ms" if took else ""
            parts.append(f"{name} {self.bytes.get(path, 0) / 1000:,.0f} KB{each}")
        return f"{self.scrapes - since} scrapes of both ({'; '.join(parts)})"


def _project_id(s: Suite, target: HcTarget) -> str:
    status, data = request_json(target.server, "GET", "/api/v3/projects/", key=s.keys.admin, timeout=10.0)
    projects = data.get("projects") if isinstance(data, dict) else None
    if status != 200 or not isinstance(projects, list) or not projects:
        raise RuntimeError(f"GET /api/v3/projects/ answered {status}: {str(data)[:300]}")
    return str(projects[0]["id"])


def scenario_scraper(s: Suite) -> None:
    """UUID pings/s at c=50 alone and while a scraper reads both metrics endpoints every second,
    interleaved on a server of their own (started with HC_METRICS_KEY)."""
    cfg = s.config
    ours = s.target("scraper")
    n = len(ours.checks)
    project_path = f"/projects/{_project_id(s, ours)}/metrics/{s.keys.api_readonly}"
    spec = s.spec(paths=ours.paths("uuid"), duration_s=cfg.duration_s)
    s.load(ours.server, replace(spec, duration_s=cfg.warmup_s), ours)
    rows: dict[str, list[Row]] = {"alone": [], "scraped": []}
    results: dict[str, list[WrkResult]] = {"alone": [], "scraped": []}
    ratios: list[float] = []
    every = f"every {cfg.scrape_interval_s:g} s"
    for r in range(1, cfg.rounds + 1):
        # A B, B A, A B, ...: a drift of the machine within a round does not favour one side.
        order = ("alone", "scraped") if r % 2 else ("scraped", "alone")
        for kind in order:
            if kind == "alone":
                result = s.load(ours.server, spec, ours)
                note = ""
            else:
                with Scraper(
                    ours.server, s.metrics_key, project_path, cfg.scrape_interval_s, max_s=cfg.duration_s + 60.0
                ) as scraper:
                    if not scraper.ready.wait(30.0) or scraper.error:
                        raise RuntimeError(scraper.error or "the first scrape took over 30 s")
                    since = scraper.scrapes
                    result = s.load(ours.server, spec, ours)
                if scraper.error:
                    raise RuntimeError(scraper.error)
                note = scraper.note(since)
            results[kind].append(result)
            case = f"no scraper, round {r}" if kind == "alone" else f"scraped {every}, round {r}"
            row = row_from(result, "scraper", case, "hcserver", note=note, detail=True)
            row.note = "; ".join(filter(None, [row.note, _cpu_note([result])]))
            rows[kind].append(s.add(row))
        if (ratio := _ratio(results["scraped"][-1].rps, results["alone"][-1].rps)) is not None:
            ratios.append(ratio)
    how = f"median of {cfg.rounds} interleaved rounds"
    case = f"uuid success, {n:,} checks"
    alone_row = s.add(_median_row(rows["alone"], f"{case}, no scraper", how))
    scraped_row = s.add(
        _median_row(rows["scraped"], f"{case}, /metrics and the project's metrics scraped {every}", how)
    )
    for kind, summary in (("alone", alone_row), ("scraped", scraped_row)):
        summary.note = "; ".join(filter(None, [how, _cpu_note(results[kind])]))
    s.add_target(
        Target(
            f"uuid pings/s at c={cfg.connections} while both metrics endpoints are scraped {every} / without",
            _ratio(scraped_row.rps, alone_row.rps),
            ">=",
            0.98,
            "x",
            note=f"{how}; per round: " + ", ".join(f"{x:.2f}" for x in ratios),
        )
    )
    s.retire("scraper")


def scenario_nginx(s: Suite) -> None:
    """UUID pings/s through nginx (the deploy file, TLS) over HTTP/2 and over HTTP/1.1, beside nginx
    answering by itself, interleaved x rounds; h2load is the client."""
    cfg = s.config
    why = missing_tools()
    if why is not None:
        if os.environ.get("CI") == "true":
            raise RuntimeError(why)
        s.add(Row("nginx", "not run", "nginx", note=f"skipped: {why}"))
        return
    ours = s.target("nginx")
    n = len(ours.checks)
    front = Nginx(s.workdir / "nginx", ours.server.port)
    front.start()
    s.progress(f"      nginx listening on 127.0.0.1:{front.tls} (TLS) in {front.ready_s or 0:.2f} s")
    try:
        pings = front.write_urls(ping_paths(ours.checks), s.workdir / "nginx-urls" / "pings.txt")
        ceiling = front.write_urls([CEILING_PATH], s.workdir / "nginx-urls" / "ceiling.txt")
        c, m = cfg.connections, cfg.nginx_streams
        cases = {
            "h2": (f"uuid success over HTTP/2, c={c} x {m} streams, {n:,} checks", "hcserver via nginx", pings, False),
            "h1": (f"uuid success over HTTP/1.1, c={c}, {n:,} checks", "hcserver via nginx", pings, True),
            "ceiling": (f'nginx\'s own return 200 "OK" over HTTP/2, c={c} x {m} streams', "nginx", ceiling, False),
        }
        max_s = 4 * cfg.duration_s + 30.0

        def spec(key: str, requests: int) -> H2loadSpec:
            h1 = cases[key][3]
            return H2loadSpec(connections=c, streams=1 if h1 else m, requests=requests, h1=h1, max_seconds=max_s)

        rates: dict[str, float] = {}
        for key, (_, _, urls, _) in cases.items():
            warm = _h2load(s, front, ours if urls is pings else None, urls, spec(key, cfg.nginx_warmup))
            rates[key] = warm.rps
        rows: dict[str, list[Row]] = {key: [] for key in cases}
        runs: dict[str, list[H2loadResult]] = {key: [] for key in cases}
        for r in range(1, cfg.rounds + 1):
            for key, (case, server, urls, _) in cases.items():
                # Sized to last about duration_s at the rate of this case's run before.
                wanted = int(rates[key] * cfg.duration_s) or cfg.nginx_warmup
                requests = min(max(wanted, c * m), int(MAX_RATE_PER_S * cfg.duration_s))
                result = _h2load(s, front, ours if urls is pings else None, urls, spec(key, requests))
                rates[key] = result.rps or rates[key]
                runs[key].append(result)
                rows[key].append(s.add(_h2load_row(result, f"{case}, round {r}", server, detail=True)))
        how = f"median of {cfg.rounds} interleaved rounds"
        summary = {key: s.add(_median_row(rows[key], case, how)) for key, (case, _, _, _) in cases.items() if rows[key]}
        for key, row in summary.items():
            row.note = "; ".join(filter(None, [how, _h2load_cpu_note(runs[key])]))
        h2, h1, top = (summary[k].rps if k in summary else None for k in ("h2", "h1", "ceiling"))
        for what, a, b in (
            ("pings over HTTP/2 / nginx's own answers", h2, top),
            ("pings over HTTP/1.1 / nginx's own answers", h1, top),
            ("pings over HTTP/2 / over HTTP/1.1", h2, h1),
        ):
            s.add(Row("nginx", what, "hcserver via nginx", value=_ratio(a, b), unit="x", note=how))
        errors = sum(res.errors for results in runs.values() for res in results)
        answered = sum(res.ok for results in runs.values() for res in results)
        s.add_target(
            Target(
                "requests through nginx not answered 2xx",
                float(errors),
                "<=",
                0.0,
                "",
                note=f"{answered:,} answered 2xx; h2load over TLS, {cfg.rounds} rounds of 3 cases",
            )
        )
    finally:
        code = front.stop()
        if code not in (0, None):
            s.result.notes.append(f"nginx exited with {code} on SIGTERM")
    s.retire("nginx")


def _h2load(s: Suite, front: Nginx, target: HcTarget | None, urls: Path, spec: H2loadSpec) -> H2loadResult:
    """One h2load run through `front`; its 2xx answers are pings of `target` when one is given."""
    s._runs += 1
    server = s.targets["nginx"].server
    # nginx's own answers never reach hcserver: its CPU is read for the pings only.
    before = {"hcserver": server.cpu_s() if target is not None else None, "nginx": front.cpu_s()}
    try:
        result = run_h2load(urls, spec, s.workdir / "h2load" / f"{s._runs:03d}")
    finally:
        if not server.alive():
            raise RuntimeError(f"{server.name} died during the run{server.log_tail()}")
        if not front.alive():
            raise RuntimeError(f"nginx died during the run: {front.log_tail()}")
    after = {"hcserver": server.cpu_s(), "nginx": front.cpu_s()}
    result.server_cpu_s = {k: a - b for k, a in after.items() if a is not None and (b := before[k]) is not None}
    if target is not None:
        target.expected += result.ok
    if not result.finished:
        raise RuntimeError(f"h2load did not answer all {spec.requests:,} requests: {result.output[-500:]}")
    return result


def _h2load_row(result: H2loadResult, case: str, server: str, *, detail: bool = False) -> Row:
    notes = []
    bad = {code: n for code, n in result.codes.items() if code != "2xx" and n}
    if bad:
        notes.append("answers " + ", ".join(f"{code}: {n}" for code, n in sorted(bad.items())))
    failed = {k: v for k, v in result.requests.items() if k in ("errored", "timeout") and v}
    if failed:
        notes.append(", ".join(f"{k} {v}" for k, v in failed.items()))
    if result.protocol:
        notes.append(result.protocol)
    notes.append(_h2load_cpu_note([result]))
    lat = result.latency_ms
    return Row(
        scenario="nginx",
        case=case,
        server=server,
        rps=result.rps,
        p50_ms=lat.get("p50"),
        p99_ms=lat.get("p99"),
        p999_ms=lat.get("p99.9"),
        ok=result.ok,
        errors=result.errors,
        elapsed_s=result.elapsed_s,
        note="; ".join(filter(None, notes)),
        detail=detail,
    )


def _h2load_cpu_note(runs: Sequence[H2loadResult]) -> str:
    """Medians over runs: CPU per answer of hcserver and of nginx, h2load's share of a core."""
    parts = []
    for who in ("hcserver", "nginx"):
        per = [r.server_cpu_s[who] / r.answered * 1e6 for r in runs if who in r.server_cpu_s and r.answered]
        if per:
            parts.append(f"{who} {statistics.median(per):.1f} us CPU/answer")
    shares = [share for r in runs if (share := r.cpu_share) is not None]
    if shares:
        parts.append(f"h2load {statistics.median(shares):.0%} of a core")
    return ", ".join(parts)


def scenario_memory(s: Suite) -> None:
    large = s.target("large")
    n = len(large.checks)
    s.add(
        Row(
            "memory",
            f"create {n:,} checks through the API",
            "hcserver",
            rps=n / large.create_s if large.create_s else None,
            value=large.create_s,
            unit="s",
        )
    )
    per_check: float | None = None
    note = "VmRSS n/a"
    if large.rss_empty_kib is not None and large.rss_checks_kib is not None:
        per_check = (large.rss_checks_kib - large.rss_empty_kib) / n
        note = f"VmRSS {large.rss_empty_kib / 1024:,.1f} MiB empty -> {large.rss_checks_kib / 1024:,.1f} MiB"
    s.add(Row("memory", f"RSS per check at {n:,} checks", "hcserver", value=per_check, unit="KiB", note=note))
    scale = "" if n >= 100_000 else f"measured at {n:,} checks"
    s.add_target(Target("RSS per check", per_check, "<=", 1.0, "KiB", note=scale))


def scenario_recovery(s: Suite) -> None:
    cfg = s.config
    cases = [
        (label, pings)
        for label, pings in (("mid", cfg.mid_pings), ("large", cfg.large_pings))
        if s._checks_for(label) > 0
    ]
    for label, pings_wanted in cases:
        target = s.target(label)
        n = len(target.checks)
        missing = pings_wanted - target.expected
        if missing > 0:
            allowed = max(3.0, s.time_left() - cfg.reserve_s)
            spec = s.spec(paths=target.paths("uuid"), budget=missing, duration_s=allowed, max_seconds=allowed + 30.0)
            with StatusPoller(target.server, s.keys, interval_s=_FILL_POLL_S) as poller, CpuMeter(target.server) as cpu:
                fill = s.load(target.server, spec, target)
            s.add(row_from(fill, "recovery", f"store pings, {n:,} checks", "hcserver"))
            _add_cpu_rows(s, "recovery", f"full-speed fill, {n:,} checks", "hcserver", cpu, fill.ok, poller.samples)
            _add_loss_window(s, poller.samples, n, label)
        stored = target.expected
        code, stop_s, ready_s = target.restart()
        note = f"SIGTERM to exit {stop_s:.2f} s, exit code {code}"
        if stored < pings_wanted:
            note += f"; only {stored:,} of {pings_wanted:,} pings stored in the time budget"
        s.add(
            Row(
                "recovery",
                f"start to ready, {n:,} checks + {stored:,} pings",
                "hcserver",
                value=ready_s,
                unit="s",
                note=note,
            )
        )
        if code != 0:
            raise RuntimeError(f"hcserver ({label}) exited with {code} on SIGTERM, expected 0")
        if label == "large":
            scale = "" if n >= 100_000 and stored >= 1_000_000 else f"measured at {n:,} checks + {stored:,} pings"
            s.add_target(Target("recovery of 100k checks + 1M pings", ready_s, "<=", 2.0, "s", note=scale))
            s.add_target(
                Target(
                    "SIGTERM to exit after the fill",
                    stop_s,
                    "<=",
                    5.0,
                    "s",
                    note=f"{n:,} checks; the issue asks for well under 10 s, taken here as half of it",
                )
            )


# How often the recovery scenario's fill reads the verbose status, for the loss window under load.
_FILL_POLL_S = 0.25


def _add_loss_window(s: Suite, samples: Sequence[tuple[float, dict[str, Any]]], n: int, label: str) -> None:
    """What a crash during the fill (pings at full speed) would have cost: the age of the oldest change
    not yet committed, as sampled, and the server's own answer-to-commit lag at the end."""
    ages = sorted(age for _, status in samples if (age := _num(status, "oldest_pending_age_ms")) is not None)
    lag = persistence_lag(samples)
    if not ages or lag is None:
        s.add(Row("recovery", f"loss window at full speed, {n:,} checks", "hcserver", note="verbose status n/a"))
        return
    p99 = ages[min(len(ages) - 1, int(0.99 * len(ages)))]
    s.add(
        Row(
            "recovery",
            f"loss window at full speed, {n:,} checks",
            "hcserver",
            p50_ms=statistics.median(ages),
            p99_ms=p99,
            value=ages[-1],
            unit="ms",
            note=f"age of the oldest uncommitted change, {len(ages):,} samples (value: the largest); "
            f"commit lag p50/p99 {lag[0]:,.0f}/{lag[1]:,.0f} ms",
        )
    )
    if label == "large":
        s.add_target(
            Target(
                "commit lag p99 at full speed, 100k checks",
                lag[1],
                "<=",
                500.0,
                "ms",
                note=lag[2] + ("" if n >= 100_000 else f"; measured at {n:,} checks"),
            )
        )
        s.add_target(
            Target(
                "loss window at full speed, 100k checks",
                p99,
                "<=",
                1000.0,
                "ms",
                note="p99 of the oldest uncommitted change's age; ours: ten flush intervals"
                + ("" if n >= 100_000 else f"; measured at {n:,} checks"),
            )
        )


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    run: Callable[[Suite], None]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("baselines", "uuid pings, ours vs four bare servers, interleaved", scenario_baselines),
        Scenario("throughput", "ping throughput at c=50 per kind of ping, small store", scenario_throughput),
        Scenario(
            "latency",
            "p50/p99/p99.9 at c=1 (ours, ours with the writer held off, bare delegate) and at half our peak rate",
            scenario_latency,
        ),
        Scenario("backlog", "latency while the writer flushes a backlog of pings", scenario_backlog),
        Scenario("burst", "a cron storm: many pings from many connections at once", scenario_burst),
        Scenario("durability", "write-behind vs --durable, persistence lag", scenario_durability),
        Scenario("throughput-100k", "ping throughput at c=50 per kind of ping, 100k checks", scenario_throughput_large),
        Scenario("listing", "ping latency while a client lists 100k checks in a loop", scenario_listing),
        Scenario(
            "dashboards",
            "ping throughput while browser dashboards hold the event stream open",
            scenario_dashboards,
        ),
        Scenario(
            "scraper", "ping throughput while a scraper reads both metrics endpoints every second", scenario_scraper
        ),
        Scenario(
            "nginx", "pings through nginx (TLS) over HTTP/2 and HTTP/1.1, beside nginx's own answers", scenario_nginx
        ),
        Scenario("memory", "RSS per check", scenario_memory),
        Scenario("recovery", "start to ready with many checks and stored pings", scenario_recovery),
    )
}
