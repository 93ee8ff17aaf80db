"""Fixtures for the alert tests; the receivers themselves live in helpers.py."""

from __future__ import annotations

from tests.alerts.helpers import fake_dns, outside_connections, smtp_server

__all__ = ["fake_dns", "outside_connections", "smtp_server"]
