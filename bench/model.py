"""What a bench run produces: rows of figures, targets met or not, and the correctness checks.

Plain dataclasses, so `dataclasses.asdict` gives the JSON file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(slots=True)
class Row:
    """One measured line of the table. `value`/`unit` hold a figure that is not a rate or a latency."""

    scenario: str
    case: str
    server: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    ok: int | None = None
    errors: int | None = None
    elapsed_s: float | None = None
    value: float | None = None
    unit: str = ""
    note: str = ""
    # Detail rows (single rounds) go to the JSON file only; the table shows their summary row.
    detail: bool = False


@dataclass(slots=True)
class Target:
    """A goal from the issue: `measured <op> limit`. `measured` None means it could not be measured."""

    name: str
    measured: float | None
    op: str  # "<=" or ">="
    limit: float
    unit: str = ""
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        if self.op == "<=":
            return self.measured <= self.limit
        return self.measured >= self.limit


@dataclass(slots=True)
class Correctness:
    """After a scenario: the server's sum of n_pings against the 2xx ping answers the bench counted."""

    scenario: str
    server: str
    expected: int
    actual: int | None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.actual == self.expected


@dataclass(slots=True)
class ScenarioRun:
    name: str
    seconds: float
    error: str | None = None


@dataclass(slots=True)
class SuiteResult:
    mode: str
    machine: dict[str, Any]
    config: dict[str, Any]
    started_at: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    correctness: list[Correctness] = field(default_factory=list)
    scenarios: list[ScenarioRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """No scenario failed and every correctness check held (targets may be missed: they are goals)."""
        return all(s.error is None for s in self.scenarios) and all(c.ok for c in self.correctness)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SuiteResult:
        """The inverse of `to_json`, to render a saved run again."""
        row_fields = {f.name for f in fields(Row)}
        return cls(
            mode=data["mode"],
            machine=data["machine"],
            config=data["config"],
            started_at=data["started_at"],
            rows=[Row(**{k: v for k, v in r.items() if k in row_fields}) for r in data["rows"]],
            targets=[
                Target(t["name"], t["measured"], t["op"], t["limit"], t.get("unit", ""), t.get("note", ""))
                for t in data["targets"]
            ],
            correctness=[
                Correctness(c["scenario"], c["server"], c["expected"], c["actual"], c.get("note", ""))
                for c in data["correctness"]
            ],
            scenarios=[ScenarioRun(s["name"], s["seconds"], s["error"]) for s in data["scenarios"]],
            notes=list(data["notes"]),
            seconds=float(data["seconds"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 1),
            "passed": self.passed,
            "machine": self.machine,
            "config": self.config,
            "scenarios": [{"name": s.name, "seconds": round(s.seconds, 2), "error": s.error} for s in self.scenarios],
            "rows": [_row_json(r) for r in self.rows],
            "targets": [
                {
                    "name": t.name,
                    "measured": t.measured,
                    "op": t.op,
                    "limit": t.limit,
                    "unit": t.unit,
                    "met": t.met,
                    "note": t.note,
                }
                for t in self.targets
            ],
            "correctness": [
                {
                    "scenario": c.scenario,
                    "server": c.server,
                    "expected": c.expected,
                    "actual": c.actual,
                    "ok": c.ok,
                    "note": c.note,
                }
                for c in self.correctness
            ],
            "notes": self.notes,
        }


def _row_json(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(row):
        value = getattr(row, f.name)
        out[f.name] = round(value, 4) if isinstance(value, float) else value
    return out
