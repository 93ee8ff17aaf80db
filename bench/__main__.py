"""python -m bench [--quick | --scenario NAME ...]: run the suite, print the table, write JSON and PNG."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.model import SuiteResult
from bench.report import render_table, write_chart, write_json, write_text
from bench.scenarios import FULL, QUICK, SCENARIOS, Suite
from bench.server import hcserver_available
from bench.wrk import wrk_binary

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def raise_open_files_limit(wanted: int = 65536) -> int:
    """The burst opens 1000+ connections; servers started from here inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmark hcserver against bare Tornado.")
    parser.add_argument("--quick", action="store_true", help="the one-minute subset")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--render", type=Path, metavar="JSON", help="print the table of a saved run, redraw its PNG")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for the JSON, PNG and text results")
    parser.add_argument("--name", help="file name stem of the results (default: latest, quick, or scenario-NAME)")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG")
    parser.add_argument("--details", action="store_true", help="also show every round in the table")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs the servers")
    parser.add_argument("--workdir", type=Path, help="keep stores, logs and wrk output here (default: a temp dir)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:16} {scenario.title}")
        return 0
    if args.render is not None:
        result = SuiteResult.from_json(json.loads(args.render.read_text()))
        print(render_table(result, details=args.details))
        if not args.no_chart and write_chart(result, args.render.with_suffix(".png")):
            print(f"wrote {args.render.with_suffix('.png')}", file=sys.stderr)
        return 0
    if wrk_binary() is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if not hcserver_available(args.python):
        print("`python -m hcserver serve --help` fails: the server is not there to benchmark", file=sys.stderr)
        return 2
    raise_open_files_limit()
    config = QUICK if args.quick else FULL
    names = list(config.scenarios)
    if args.scenario:
        names = [n for n in SCENARIOS if n in args.scenario]
        # A single scenario gets the preset's sizes but the whole time budget of the full suite.
        config = replace(config, budget_s=max(config.budget_s, FULL.budget_s))
    stem = args.name or ("scenario-" + "-".join(names) if args.scenario else config.name if args.quick else "latest")
    with tempfile.TemporaryDirectory(prefix="hcbench-") as tmp:
        workdir = args.workdir or Path(tmp)
        suite = Suite(config, workdir, python=args.python)
        try:
            result = suite.run(names)
        finally:
            suite.close()
    result.mode = config.name if not args.scenario else f"{config.name}: {', '.join(names)}"
    table = render_table(result, details=args.details)
    print(table)
    write_json(result, args.out / f"{stem}.json")
    write_text(table, args.out / f"{stem}.txt")
    written = [args.out / f"{stem}.json", args.out / f"{stem}.txt"]
    if not args.no_chart:
        if write_chart(result, args.out / f"{stem}.png"):
            written.append(args.out / f"{stem}.png")
        else:
            print("matplotlib is not installed: no chart (pip install -e '.[bench]')", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
