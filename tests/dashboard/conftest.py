"""Browser fixtures: Playwright driving the system's Chromium (Debian's `chromium` package; Playwright's
own browser download is not used), against the `live` server of tests/conftest.py.

Without Chromium or Playwright the browser tests are skipped, except under CI (CI=true), where that
is a failure: .ci/run installs Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer

CHROMIUM = os.environ.get("HC_CHROMIUM", "/usr/bin/chromium")
# Every wait in a browser test is bounded by this (ms).
WAIT_MS = 10_000
HTML = {"Accept": "text/html"}


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: the browser tests must run in CI", pytrace=False)
    pytest.skip(reason)


# Module scope, not session: while Playwright's sync API is started, the main thread counts as
# running an event loop, and later tests that call asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        _missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: Playwright's waits evaluate JavaScript, which the dashboard's CSP forbids; it also
    # makes the markup tests hold without the CSP's help (escaping alone must keep scripts out).
    context = browser.new_context(viewport={"width": 1200, "height": 800}, bypass_csp=True)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    tab.dialogs = []  # every dialog seen (an alert() from injected markup would land here)

    def on_dialog(dialog: Any) -> None:
        tab.dialogs.append((dialog.type, dialog.message))
        if dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()

    tab.on("dialog", on_dialog)
    try:
        yield tab
    finally:
        context.close()


def sign_in(page: Any, live: LiveServer, key: str) -> None:
    page.goto(live.url + "/")
    page.fill("input[name=api_key]", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()


class Browserless:
    """A signed-in session over plain HTTP: cookies kept, the XSRF token read from the pages."""

    def __init__(self, live: LiveServer) -> None:
        self.client = httpx.Client(base_url=live.url, timeout=10, headers=HTML)

    def xsrf(self) -> str:
        text = self.client.get("/", follow_redirects=True).text
        found = re.search(r'name="_xsrf" value="([^"]+)"', text)
        assert found, text[:500]
        return found.group(1)

    def sign_in(self, key: str) -> httpx.Response:
        return self.client.post("/signin", data={"api_key": key, "_xsrf": self.xsrf()})

    def post(self, path: str, **data: Any) -> httpx.Response:
        data.setdefault("_xsrf", self.xsrf())
        return self.client.post(path, data=data)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)


@pytest.fixture
def http(live: LiveServer) -> Iterator[Browserless]:
    session = Browserless(live)
    try:
        yield session
    finally:
        session.client.close()
