"""Turn a `SuiteResult` into the terminal table, the JSON file and the PNG chart.

print(render_table(result))
write_json(result, Path("bench/results/latest.json"))
write_chart(result, Path("bench/results/latest.png"))   # False when matplotlib is missing
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from bench.model import Row, SuiteResult, Target

_COLUMNS = ("scenario", "case", "server", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "2xx", "errors", "other", "note")
_RIGHT = {"req/s", "p50 ms", "p99 ms", "p99.9 ms", "2xx", "errors", "other"}


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _int(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _load(value: object) -> str:
    # The 1-minute load average: above ~0.3 before a run, something else was using the cores.
    return f"{value[0]:.2f}" if isinstance(value, list) and value else "?"


def _other(row: Row) -> str:
    if row.value is None:
        return ""
    return f"{_num(row.value)} {row.unit}".strip()


def _row_cells(row: Row) -> list[str]:
    measured_rate = row.rps is not None
    return [
        row.scenario,
        row.case,
        row.server,
        _num(row.rps, 0) if measured_rate else "",
        _num(row.p50_ms) if row.p50_ms is not None else "",
        _num(row.p99_ms) if row.p99_ms is not None else "",
        _num(row.p999_ms) if row.p999_ms is not None else "",
        _int(row.ok) if row.ok is not None else "",
        _int(row.errors) if row.errors is not None else "",
        _other(row),
        row.note,
    ]


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[str]) -> list[str]:
    widths = [len(h) for h in header]
    for cells in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cells, widths, header, strict=True)]
        return " | ".join(parts).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return [line(header), rule, *(line(cells) for cells in rows)]


def _verdict(target: Target) -> str:
    met = target.met
    return "n/a" if met is None else ("met" if met else "NOT MET")


def render_table(result: SuiteResult, *, details: bool = False) -> str:
    """The results table, then the targets and the correctness checks, as plain text."""
    machine = result.machine
    lines = [
        f"hcserver bench ({result.mode}) {result.started_at}  {result.seconds:.0f} s  "
        f"{machine.get('cpu_model', '?')} x{machine.get('cpu_count', '?')}, "
        f"{machine.get('memory_gib', '?')} GiB, Linux {machine.get('kernel', '?')}, "
        f"Python {machine.get('python', '?')}, Tornado {machine.get('tornado', '?')}, "
        f"load average before the run {_load(machine.get('load_average'))}",
        "",
    ]
    rows = [_row_cells(r) for r in result.rows if details or not r.detail]
    lines += _grid(_COLUMNS, rows, _RIGHT)
    if result.targets:
        lines.append("")
        header = ("target", "measured", "goal", "result", "note")
        cells = [
            [
                t.name,
                # Three digits, so that 0.498 against a goal of 0.5 does not read "0.50 ... NOT MET".
                f"{_num(t.measured, 3)} {t.unit}".strip(),
                f"{t.op} {_num(t.limit)} {t.unit}".strip(),
                _verdict(t),
                t.note,
            ]
            for t in result.targets
        ]
        lines += _grid(header, cells, {"measured", "goal"})
    if result.correctness:
        lines.append("")
        header = ("after scenario", "server", "2xx pings counted", "sum n_pings", "check")
        cells = [
            [
                c.scenario,
                c.server,
                _int(c.expected),
                _int(c.actual),
                ("ok" if c.ok else "MISMATCH") + (f" {c.note}" if c.note else ""),
            ]
            for c in result.correctness
        ]
        lines += _grid(header, cells, {"2xx pings counted", "sum n_pings"})
    failed = [s for s in result.scenarios if s.error]
    if failed or result.notes:
        lines.append("")
        lines += [f"FAILED {s.name}: {s.error}" for s in failed]
        lines += [f"note: {n}" for n in result.notes]
    lines.append("")
    lines.append(
        "bench " + ("PASSED" if result.passed else "FAILED") + " (correctness and scenarios; targets are goals)"
    )
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, data: bytes) -> None:
    # Write next to the target, then rename, so a reader never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(result: SuiteResult, path: Path) -> None:
    _atomic_write(path, (json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n").encode())


def write_text(text: str, path: Path) -> None:
    _atomic_write(path, text.encode())


def write_chart(result: SuiteResult, path: Path) -> bool:
    """Throughput and p99 per case, ours beside the baselines. False when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Request rows only: the commit-lag row has a p99 too, but of another kind and scale.
    rows = [r for r in result.rows if not r.detail and r.rps is not None]
    if not rows:
        return False
    labels = [f"{r.scenario}: {r.case}\n{r.server}" for r in rows]
    palette = {"hcserver": "#4c72b0", "hcserver, flushing held off": "#8fb0de", "hcserver --durable": "#dd8452"}
    colors = [palette.get(r.server, "#aaaaaa") for r in rows]
    height = max(4.0, 0.42 * len(rows) + 1.5)
    fig, (ax_rate, ax_p99) = plt.subplots(1, 2, figsize=(15, height), sharey=True)
    ypos = list(range(len(rows)))[::-1]
    ax_rate.barh(ypos, [r.rps or 0.0 for r in rows], color=colors)
    ax_rate.set_yticks(ypos)
    ax_rate.set_yticklabels(labels, fontsize=7)
    ax_rate.set_xlabel("requests / s (higher is better)")
    ax_rate.set_title("throughput")
    ax_p99.barh(ypos, [r.p99_ms or 0.0 for r in rows], color=colors)
    ax_p99.set_xlabel("p99 latency, ms (lower is better)")
    ax_p99.set_title("p99")
    ax_p99.set_xscale("symlog", linthresh=1.0)
    for ax in (ax_rate, ax_p99):
        ax.grid(axis="x", alpha=0.3)
    machine = result.machine
    fig.suptitle(
        f"hcserver bench ({result.mode}, {result.started_at})  "
        "blue: hcserver (light: writer held off), orange: --durable, grey: the baselines\n"
        f"{machine.get('cpu_model', '?')} x{machine.get('cpu_count', '?')}, Python {machine.get('python', '?')}, "
        f"Tornado {machine.get('tornado', '?')}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return True
