"""Drive wrk with bench/lua/load.lua and turn its output into a `WrkResult`.

    result = run_wrk("http://127.0.0.1:8000", LoadSpec(paths=paths_file, duration_s=5), workdir)
    result.ok, result.rps, result.latency_ms["p99"]

Every run is bounded in time (wrk's -d and our own deadline) and in count (a request budget).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.server import cpu_s

LUA_SCRIPT = Path(__file__).with_name("lua") / "load.lua"

# Upper bound on the rate any run could reach here; turns a duration into a request budget.
MAX_RATE_PER_S = 200_000
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed something we cannot read."""


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    binary = wrk_binary()
    if binary is None:
        return "n/a"
    proc = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (proc.stdout or proc.stderr).strip().splitlines()
    return first[0] if first else "unknown"


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What one wrk run does. `duration_s` and `budget` may both be set; the first reached stops it."""

    mode: str = "get"  # get | post | pairs | create
    paths: Path | None = None
    connections: int = 50
    threads: int = 1
    duration_s: float = 0.0
    budget: int = 0
    rate: float = 0.0  # offered requests/s in total; 0 = closed loop
    body_bytes: int = 1024
    prefix: str = "bench"
    offset: int = 0
    headers: tuple[str, ...] = ()
    # Hard bound on wall time; past it the run is told to stop and counts as unfinished.
    max_seconds: float = 0.0

    def request_cap(self) -> int:
        if self.budget > 0:
            return self.budget
        return max(1, int(self.duration_s * MAX_RATE_PER_S))

    def time_cap(self) -> float:
        if self.max_seconds > 0:
            return self.max_seconds
        if self.duration_s > 0:
            return self.duration_s + 30.0
        return 60.0 + self.budget / 1000.0


@dataclass(slots=True)
class WrkResult:
    """Counts and timings of one run. Latencies are in milliseconds, without wrk's synthetic samples."""

    codes: dict[int, int]
    issued: int
    answered: int
    elapsed_s: float
    t_first: float
    t_last: float
    finished: bool
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    latency_exact: bool
    created: list[tuple[str, str]] = field(default_factory=list)
    output: str = ""
    # CPU seconds wrk used (all its threads), read once every thread is done; None where unknown.
    cpu_s: float | None = None
    # CPU seconds the server process used from wrk's start to its end (the bench sets it).
    server_cpu_s: float | None = None

    @property
    def server_us_per_answer(self) -> float | None:
        """The server's CPU microseconds per answer over the run (its own threads)."""
        if self.server_cpu_s is None or not self.answered:
            return None
        return self.server_cpu_s / self.answered * 1e6

    @property
    def cpu_share(self) -> float | None:
        """wrk's CPU seconds per second of the run: near `threads`, wrk itself was the ceiling."""
        return self.cpu_s / self.elapsed_s if self.cpu_s is not None and self.elapsed_s > 0 else None

    @property
    def ok(self) -> int:
        """Answers with a 2xx status."""
        return sum(n for code, n in self.codes.items() if 200 <= code < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.codes.items() if not 200 <= code < 300)

    @property
    def errors(self) -> int:
        """Non-2xx answers plus connect/read/write errors (wrk's "timeout" counts idle waits, not errors)."""
        sock = self.socket_errors
        return self.non_2xx + sock.get("connect", 0) + sock.get("read", 0) + sock.get("write", 0)

    @property
    def rps(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0


_THREAD_RE = re.compile(r"^BENCH thread (.*)$", re.M)
_SUMMARY_RE = re.compile(r"^BENCH summary (.*)$", re.M)
_LATENCY_RE = re.compile(r"^BENCH latency_us (.*)$", re.M)
_UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}


def _fields(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


def _duration_us(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise WrkError(f"cannot read duration {text!r}")
    return float(match.group(1)) * _UNIT_US[match.group(2)]


def parse_wrk_output(text: str) -> dict[str, object]:
    """Read wrk's summary and our script's BENCH lines into a dict of plain values.

    Keys (each present only when wrk printed it): requests, duration_s, rps, latency_avg_us,
    latency_max_us, socket_errors {connect, read, write, timeout}, non_2xx_3xx, and from the
    script: threads [per-thread dicts with codes {status: count}], codes (summed), issued, answered,
    t_first, t_last, finished, latency_us {p50, ...} (wrk's corrected figures).
    """
    out: dict[str, object] = {}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+), ", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
        out["duration_s"] = _duration_us(m.group(2)) / 1e6
    m = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"^\s*Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)", text, re.M)
    if m:
        out["latency_avg_us"] = _duration_us(m.group(1))
        out["latency_max_us"] = _duration_us(m.group(3))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non_2xx_3xx"] = int(m.group(1))

    threads: list[dict[str, object]] = []
    codes: dict[int, int] = {}
    for line in _THREAD_RE.findall(text):
        f = _fields(line)
        thread_codes: dict[int, int] = {}
        for pair in filter(None, f.get("codes", "").split(",")):
            code, count = pair.split(":")
            thread_codes[int(code)] = thread_codes.get(int(code), 0) + int(count)
            codes[int(code)] = codes.get(int(code), 0) + int(count)
        threads.append(
            {
                "id": int(f["id"]),
                "issued": int(f["issued"]),
                "answered": int(f["answered"]),
                "created": int(f.get("created", "0")),
                "finished": f.get("finished") == "1",
                "t_first": float(f["t_first"]),
                "t_last": float(f["t_last"]),
                "codes": thread_codes,
            }
        )
    if threads:
        out["threads"] = threads
        out["codes"] = codes
        out["issued"] = sum(int(str(t["issued"])) for t in threads)
        out["answered"] = sum(int(str(t["answered"])) for t in threads)
        firsts = [float(str(t["t_first"])) for t in threads if float(str(t["t_first"])) > 0]
        lasts = [float(str(t["t_last"])) for t in threads]
        out["t_first"] = min(firsts) if firsts else 0.0
        out["t_last"] = max(lasts) if lasts else 0.0
        out["finished"] = all(bool(t["finished"]) for t in threads)
    m = _SUMMARY_RE.search(text)
    if m:
        summary = {k: int(v) for k, v in _fields(m.group(1)).items()}
        out["summary"] = summary
        out["socket_errors"] = {k: summary[k] for k in ("connect", "read", "write", "timeout")}
    m = _LATENCY_RE.search(text)
    if m:
        out["latency_us"] = {k: float(v) for k, v in _fields(m.group(1)).items()}
    return out


def uncorrect_histogram(hist: dict[int, int], duration_us: int, requests: int, connections: int) -> dict[int, int]:
    """Remove the samples wrk's `stats_correct` added, giving back the measured latencies.

    wrk adds, for every recorded value v >= 2E (E = duration / (requests / connections)), copies at
    v-E, v-2E, ... while above E. Going from the top down, each value's measured count is what is left
    once the copies from the values above it (same remainder mod E) are taken off.
    """
    per_conn = requests // connections if connections > 0 else 0
    if per_conn <= 0:
        return dict(hist)
    interval = duration_us // per_conn
    if interval <= 0:
        return dict(hist)
    carried: dict[int, int] = {}
    measured: dict[int, int] = {}
    for value in sorted(hist, reverse=True):
        residue = value % interval
        copies = carried.get(residue, 0) if value > interval else 0
        count = hist[value] - copies
        if count > 0:
            measured[value] = count
        if value >= 2 * interval:
            carried[residue] = carried.get(residue, 0) + max(count, 0)
    return measured


def percentiles_ms(hist: dict[int, int], points: tuple[float, ...] = PERCENTILES) -> dict[str, float]:
    """p50.. of a {microseconds: count} histogram, plus max and mean, in milliseconds."""
    total = sum(hist.values())
    if total == 0:
        return {}
    values = sorted(hist)
    out: dict[str, float] = {}
    for p in points:
        rank = max(1, math.ceil(p / 100.0 * total))
        running = 0
        for v in values:
            running += hist[v]
            if running >= rank:
                out[_pname(p)] = v / 1000.0
                break
    out["max"] = values[-1] / 1000.0
    out["mean"] = sum(v * c for v, c in hist.items()) / total / 1000.0
    return out


def _pname(p: float) -> str:
    return f"p{p:g}"


def _read_histogram(path: Path) -> dict[int, int]:
    hist: dict[int, int] = {}
    if not path.exists():
        return hist
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            value, count = line.split()
            hist[int(value)] = int(count)
    return hist


def _read_created(sync_dir: Path) -> list[tuple[str, str]]:
    created: list[tuple[str, str]] = []
    for path in sorted(sync_dir.glob("created-*.tsv")):
        for line in path.read_text().splitlines():
            uuid, _, slug = line.partition("\t")
            if uuid:
                created.append((uuid, slug))
    created.sort(key=lambda item: item[1])
    return created


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT makes wrk stop its threads and print its summary; escalate if it does not."""
    for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGINT, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def run_wrk(url: str, spec: LoadSpec, sync_dir: Path, *, should_stop: Callable[[], bool] | None = None) -> WrkResult:
    """Run wrk once against `url` (a loopback base URL) and wait until every thread has stopped cleanly.

    `should_stop` is polled every 10 ms; once it says yes, the threads stop sending and drain.
    """
    binary = wrk_binary()
    if binary is None:
        raise WrkError("wrk is not installed (apt-get install wrk)")
    if not url.startswith(("http://127.", "http://[::1]", "http://localhost")):
        raise WrkError(f"refusing to load a non-loopback address: {url}")
    if spec.mode != "create" and spec.paths is None:
        raise WrkError(f"mode {spec.mode} needs a paths file")
    if sync_dir.exists():
        shutil.rmtree(sync_dir)
    sync_dir.mkdir(parents=True)
    time_cap = spec.time_cap()
    env = dict(os.environ)
    env.update(
        {
            "BENCH_MODE": spec.mode,
            "BENCH_PATHS": str(spec.paths or ""),
            "BENCH_THREADS": str(spec.threads),
            "BENCH_DURATION": repr(spec.duration_s),
            "BENCH_BUDGET": str(spec.request_cap()),
            "BENCH_RATE": repr(spec.rate),
            "BENCH_BODY_BYTES": str(spec.body_bytes),
            "BENCH_PREFIX": spec.prefix,
            "BENCH_OFFSET": str(spec.offset),
            "BENCH_SYNC_DIR": str(sync_dir),
        }
    )
    # wrk's own -d is only a backstop: we stop it ourselves once every thread is idle, so that no
    # request is left unanswered (the server would count a ping that we did not).
    argv = [binary, "-t", str(spec.threads), "-c", str(spec.connections), "-d", f"{math.ceil(time_cap) + 15}s"]
    argv += ["--timeout", "30s", "-s", str(LUA_SCRIPT)]
    for header in spec.headers:
        argv += ["-H", header]
    argv.append(url)
    stdout_path, stderr_path = sync_dir / "stdout.txt", sync_dir / "stderr.txt"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        wrk_cpu: float | None = None
        try:
            _wait_threads(proc, spec.threads, sync_dir, time.monotonic() + time_cap, should_stop)
            wrk_cpu = cpu_s(proc.pid)
        finally:
            _stop(proc)
    text = stdout_path.read_text(errors="replace")
    errors_text = stderr_path.read_text(errors="replace").strip()
    parsed = parse_wrk_output(text)
    if "threads" not in parsed:
        raise WrkError(f"wrk printed no BENCH lines (exit {proc.returncode}): {errors_text or text}"[:2000])
    result = _result(parsed, text + errors_text, spec, sync_dir)
    result.cpu_s = wrk_cpu
    return result


def _wait_threads(
    proc: subprocess.Popen[bytes],
    threads: int,
    sync_dir: Path,
    deadline: float,
    should_stop: Callable[[], bool] | None,
) -> None:
    stop_file = sync_dir / "stop"
    drain_until: float | None = None
    while proc.poll() is None:
        if len(list(sync_dir.glob("done-*"))) >= threads:
            return
        now = time.monotonic()
        if drain_until is None:
            if now >= deadline or (should_stop is not None and should_stop()):
                # Ask the threads to stop sending; answers still in flight get a few seconds.
                stop_file.touch()
                drain_until = now + 5.0
        elif now >= drain_until:
            return
        time.sleep(0.01)


def _result(parsed: dict[str, object], text: str, spec: LoadSpec, sync_dir: Path) -> WrkResult:
    summary = parsed.get("summary")
    hist = _read_histogram(sync_dir / "latency.txt")
    latency: dict[str, float] = {}
    exact = False
    if isinstance(summary, dict) and hist:
        measured = uncorrect_histogram(hist, summary["duration_us"], summary["requests"], spec.connections)
        # Every answer is measured once (answers slower than --timeout are counted as timeouts instead).
        exact = sum(measured.values()) == summary["requests"] - summary["timeout"]
        latency = percentiles_ms(measured if exact else hist)
    elif isinstance(parsed.get("latency_us"), dict):
        corrected = parsed["latency_us"]
        assert isinstance(corrected, dict)
        latency = {k: float(v) / 1000.0 for k, v in corrected.items() if k.startswith("p") or k == "max"}
    codes = parsed.get("codes", {})
    sock = parsed.get("socket_errors", {})
    assert isinstance(codes, dict) and isinstance(sock, dict)
    t_first = float(str(parsed.get("t_first", 0.0)))
    t_last = float(str(parsed.get("t_last", 0.0)))
    return WrkResult(
        codes={int(k): int(v) for k, v in codes.items()},
        issued=int(str(parsed.get("issued", 0))),
        answered=int(str(parsed.get("answered", 0))),
        elapsed_s=max(0.0, t_last - t_first),
        t_first=t_first,
        t_last=t_last,
        finished=bool(parsed.get("finished", False)),
        socket_errors={str(k): int(v) for k, v in sock.items()},
        latency_ms=latency,
        latency_exact=exact,
        created=_read_created(sync_dir) if spec.mode == "create" else [],
        output=text,
    )
