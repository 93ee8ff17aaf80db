"""The whole server (real SQLite store, scheduler, notifier) in a thread with a fake clock, with
the keys the metrics endpoints take."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, make_settings, start_server
from tests.integration.conftest import receiver

__all__ = ["receiver"]

ADMIN_KEY = "admin-key-0123456789"
METRICS_KEY = "metrics-key-0123456789"


@pytest.fixture
def full(tmp_path, clock) -> Iterator[LiveServer]:
    settings = make_settings(
        db=str(tmp_path / "hc.sqlite3"), flush_interval_ms=20, admin_key=ADMIN_KEY, metrics_key=METRICS_KEY
    )
    live, stop = start_server(settings, clock, alerts={"INTEGRATIONS_ALLOW_PRIVATE_IPS": "1"})
    try:
        yield live
    finally:
        stop()
