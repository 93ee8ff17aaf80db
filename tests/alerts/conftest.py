"""Fixtures for the alert tests; the receivers themselves live in helpers.py."""

from __future__ import annotations

from tests.alerts.helpers import smtp_server

__all__ = ["smtp_server"]
