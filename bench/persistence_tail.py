"""The p99 that regular flushes add at c=1: servers with flushes every 100 ms against servers whose
flushes are held off, from one or more source trees, interleaved over rounds (not part of `python -m bench`).

    .venv/bin/python -m bench.persistence_tail [--tree NAME=DIR ...] [--checks 1000] [--seconds 5] [--rounds 3]
        [--config NAME=ENV,ENV ...]

Each (tree, config) gets a server of its own (run from that tree, on a loopback port, with a fresh
store and `--checks` checks); every round runs wrk at c=1 for `--seconds` on each in turn, UUID
pings spread over its checks, and prints p50/p99/p99.9, the rate, and the CPU the server and its
writer process used per 1,000 pings. Configs default to `flush100` (HC_FLUSH_INTERVAL_MS=100)
and `held` (HC_FLUSH_INTERVAL_MS=20000).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

from bench.api import create_checks, ping_paths, write_paths
from bench.server import Keys, ServerProcess, free_port
from bench.wrk import LoadSpec, run_wrk

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def start(tree: Path, env: dict[str, str], keys: Keys, workdir: Path, n_checks: int) -> tuple[ServerProcess, Path]:
    port = free_port()
    db = workdir / "hc.sqlite3"
    serve = [sys.executable, "-m", "hcserver", "serve", "--host", "127.0.0.1", "--port", str(port), "--db", str(db)]
    # Run from the tree itself, so that its writer process (python -m persistence.writer) is that tree's too.
    argv = ["/bin/sh", "-c", f"cd {shlex.quote(str(tree))} && exec {shlex.join(serve)}"]
    server_env = keys.env() | {"SITE_ROOT": f"http://127.0.0.1:{port}", "HC_CHECK_LIMIT": "1000000"} | env
    server = ServerProcess(workdir.name, argv, port, env=server_env, log_path=workdir / "server.log")
    server.start()
    assert server.proc is not None
    # _WRITER_SCHED (an experiment, not a setting of the server): change the writer's policy from outside.
    how = env.get("_WRITER_SCHED", "")
    for pid in children(server.proc.pid) if how else ():
        if how == "batch":
            os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
        elif how.startswith("nice"):
            os.setpriority(os.PRIO_PROCESS, pid, int(how[4:]))
    checks = create_checks(server, keys, n_checks, workdir)
    return server, write_paths(ping_paths(checks), workdir / "paths.txt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", default=[], help="NAME=DIR (default: this checkout)")
    parser.add_argument("--config", action="append", default=[], help="NAME=VAR=VALUE,VAR=VALUE")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(Path(__file__).resolve().parents[1])}
    configs: dict[str, dict[str, str]] = {}
    for spec in args.config or ["flush100=HC_FLUSH_INTERVAL_MS=100", "held=HC_FLUSH_INTERVAL_MS=20000"]:
        name, _, pairs = spec.partition("=")
        configs[name] = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    keys = Keys.generate()
    results: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="tail-") as tmp:
        servers: dict[str, tuple[ServerProcess, Path]] = {}
        try:
            for tname, tree in trees.items():
                for cname, env in configs.items():
                    label = f"{tname}/{cname}"
                    workdir = Path(tmp) / label.replace("/", "-")
                    workdir.mkdir()
                    servers[label] = start(Path(tree), env, keys, workdir, args.checks)
            for r in range(args.rounds):
                for label, (server, paths) in servers.items():
                    assert server.proc is not None
                    pids = [server.proc.pid, *children(server.proc.pid)]
                    before = [cpu_s(p) for p in pids]
                    spec = LoadSpec(paths=paths, connections=1, duration_s=args.seconds)
                    res = run_wrk(server.url, spec, Path(tmp) / "wrk")
                    used = [cpu_s(p) - b for p, b in zip(pids, before, strict=True)]
                    lat = res.latency_ms
                    per_1k = [round(u / max(res.answered, 1) * 1e6, 1) for u in used]
                    results.setdefault(label, []).append((lat["p50"], lat["p99"], lat["p99.9"]))
                    print(
                        f"round {r + 1} {label:20} {res.rps:8,.0f}/s  p50 {lat['p50']:.3f}  p99 {lat['p99']:.3f}  "
                        f"p99.9 {lat['p99.9']:.3f} ms  cpu ms/1k pings server {per_1k[0]} writer {per_1k[1:]}",
                        flush=True,
                    )
        finally:
            for server, _ in servers.values():
                if server.alive():
                    server.stop()
    print("medians over rounds (p50 / p99 / p99.9 ms):")
    for label, rows in results.items():
        print(f"  {label:20} " + " / ".join(f"{statistics.median(col):.3f}" for col in zip(*rows, strict=True)))


if __name__ == "__main__":
    main()
