"""The whole server (real SQLite store, scheduler, notifier) in a thread, with a fake clock: the
`full` fixture, or `start_server(settings, clock, alerts=environ)` from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts.helpers import smtp_server
from tests.conftest import LiveServer, make_settings, start_server
from tests.integration.receiver import Receiver

__all__ = ["smtp_server"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    try:
        yield rx
    finally:
        rx.close()


@pytest.fixture
def alert_env() -> dict[str, str]:
    return {"INTEGRATIONS_ALLOW_PRIVATE_IPS": "1", "INTEGRATIONS_TIMEOUT": "3"}


@pytest.fixture
def full(tmp_path, clock, alert_env) -> Iterator[LiveServer]:
    live, stop = start_server(
        make_settings(db=str(tmp_path / "hc.sqlite3"), flush_interval_ms=20), clock, alerts=alert_env
    )
    try:
        yield live
    finally:
        stop()
