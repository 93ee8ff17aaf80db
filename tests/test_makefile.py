"""`make run` serves where the operator asked, by make variable or by the server's own settings."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def planned_command(*args: str, **env: str) -> str:
    # Run as a make of its own, not a sub-make of `make test`, whose variables would come along.
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("HC_") and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }
    done = subprocess.run(
        ["make", "-n", "run", *args], cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, check=True
    )
    [serve] = [line for line in done.stdout.splitlines() if " serve " in line]
    return serve


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {}, "--host 127.0.0.1 --port 8000 --db ./data/hcserver.sqlite3"),
        (("PORT=9001",), {}, "--port 9001"),
        (
            (),
            {"HC_PORT": "9002", "HC_HOST": "::", "HC_DB": "/srv/hc.sqlite3"},
            "--host :: --port 9002 --db /srv/hc.sqlite3",
        ),
        (("PORT=9003",), {"HC_PORT": "9002"}, "--port 9003"),
    ],
)
def test_make_run_takes_the_port_from_make_or_the_environment(args, env, expected):
    assert expected in planned_command(*args, **env)
