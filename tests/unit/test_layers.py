"""The direction of imports: nothing below web/ loads web/; reading a channel loads no transport."""

from __future__ import annotations

import subprocess
import sys

import pytest


def loaded_after(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["hcserver.notify", "hcserver.services", "hcserver.views", "hcserver.scheduler"])
def test_no_web_below_web(module):
    assert not {m for m in loaded_after(module) if m.startswith("hcserver.web")}


def test_domain_loads_neither_web_nor_persistence():
    loaded = loaded_after("hcserver.domain.index")
    assert not {m for m in loaded if m.startswith(("hcserver.web", "persistence", "tornado"))}


def test_a_channel_loads_no_transport():
    loaded = loaded_after("hcserver.alerts.channels")
    assert "aiosmtplib" not in loaded and "tornado.simple_httpclient" not in loaded
