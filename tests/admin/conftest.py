"""Fixtures of the admin command tests: the environment they run in, a fake source, a whole server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hcserver.__main__ import main
from tests.admin.fake_source import FakeHealthchecks
from tests.conftest import API_KEY, PING_KEY, READONLY_KEY, LiveServer, make_settings, start_server
from tests.fakes import FakeClock


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys of a first project, as `serve` reads them; nothing else of the caller's HC_*."""
    import os

    for name in list(os.environ):
        if name.startswith("HC_") or name in ("SITE_ROOT", "PING_ENDPOINT", "PING_LOG_LIMIT", "PING_BODY_LIMIT"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HC_API_KEY", API_KEY)
    monkeypatch.setenv("HC_API_KEY_READONLY", READONLY_KEY)
    monkeypatch.setenv("HC_PING_KEY", PING_KEY)


@pytest.fixture
def source() -> Iterator[FakeHealthchecks]:
    with FakeHealthchecks() as fake:
        yield fake


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hc.sqlite3"


@pytest.fixture
def hc(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `hcserver ARGS...` in this process: (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def serve(db: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start the whole server (`Runtime`) on the test's store; stopped at the end of the test."""
    stops: list[Callable[[], None]] = []

    def start(**overrides: Any) -> LiveServer:
        live, stop = start_server(make_settings(db=str(db), **overrides), FakeClock(time.time()), alerts={})
        stops.append(stop)
        return live

    yield start
    for stop in stops:
        stop()
