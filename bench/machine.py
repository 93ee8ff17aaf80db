"""Describe the machine a bench ran on, so figures from different runs can be compared fairly."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import tornado

from bench.server import REPO_ROOT
from bench.wrk import wrk_version


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def describe_machine() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "tornado": tornado.version,
        "wrk": wrk_version(),
        "git_commit": _git("rev-parse", "--short", "HEAD") or "none",
        "git_dirty": bool(_git("status", "--porcelain")),
        "load_average": list(os.getloadavg()),
    }
