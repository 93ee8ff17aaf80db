"""A small Healthchecks server on a loopback port, for the importer: it serves the Management API
answers a real Healthchecks recorded (fixtures/healthchecks-api/, see its README), with that
server's SITE_ROOT replaced by this one's address.

The recording has the ping log of one check and the flips of another; the pings the other checks'
descriptions name are made up here in the same shape. `mode` makes it fail as a source can:
"401", "404", "html", "slow".
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "healthchecks-api"
RECORDED_ROOT = "http://127.0.0.1:8010"
RW_KEY = "hcw_source0000000000000000000000"
RO_KEY = "hcr_source0000000000000000000000"

BACKUP = "ad7ab307-df06-42be-9dd6-15cdd8b5a763"  # Nightly Backup: up, pings recorded
BILLING = "7b9696fd-68fa-4915-aa96-e667e03dd8e6"  # Billing Sync: down, flips recorded
REPORT = "7d203c68-9820-4091-8894-d751ea83be56"  # Weekly Report: up, a POST ping
CACHE = "85b353f0-22ec-40d4-b998-814f25a4113c"  # Cache Warmup: paused
UUIDS = (BACKUP, BILLING, REPORT, CACHE)


def _ping(root: str, uuid: str, n: int, kind: str, method: str, body: bool) -> dict[str, Any]:
    return {
        "type": kind, "date": "2026-12-01T02:50:05.101010+00:00", "n": n, "scheme": "http",
        "remote_addr": "127.0.0.1", "method": method, "ua": "curl/7.88.1", "rid": None,
        "body_url": f"{root}/api/v3/checks/{uuid}/pings/{n}/body" if body else None,
    }  # fmt: skip


class FakeHealthchecks:
    def __init__(self, mode: str = "") -> None:
        self.mode = mode
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                status, ctype, body = fake.answer(self.path, self.headers.get("X-Api-Key", ""))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the importer gave up waiting (the "slow" mode)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeHealthchecks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def fixture(self, name: str) -> bytes:
        return (FIXTURES / name).read_text().replace(RECORDED_ROOT, self.url).encode()

    def json(self, value: Any) -> tuple[int, str, bytes]:
        return 200, "application/json", json.dumps(value).encode()

    def answer(self, path: str, key: str) -> tuple[int, str, bytes]:
        if self.mode == "slow":
            time.sleep(3)
        if self.mode == "html":
            return 200, "text/html", b"<!DOCTYPE html><html><body>Sign in</body></html>"
        if self.mode == "404":
            return 404, "text/html", b"<h1>Not Found</h1>"
        if self.mode == "401" or key not in (RW_KEY, RO_KEY):
            return 401, "application/json", b'{"error": "wrong api key"}'
        if path == "/api/v3/checks/":
            return (
                200,
                "application/json",
                self.fixture("checks_list.json" if key == RW_KEY else "checks_list_readonly.json"),
            )
        if path == "/api/v3/channels/":
            return 200, "application/json", self.fixture("channels_list.json")
        m = re.fullmatch(r"/api/v3/checks/([0-9a-f-]+)/(pings|flips)/(?:(\d+)/body)?", path)
        if m is None or m.group(1) not in UUIDS:
            return 404, "application/json", b'{"error": "not found"}'
        uuid, what, n = m.groups()
        if n is not None:
            if uuid == BACKUP and n == "2":
                return 200, "text/plain", (FIXTURES / "ping_body.txt").read_bytes()
            if uuid == BILLING and n == "1":
                return 200, "text/plain", b"ERROR: card processor timed out"
            return 404, "application/json", b'{"error": "not found"}'
        if what == "pings":
            if uuid == BACKUP:
                return 200, "application/json", self.fixture("check_pings.json")
            ping = {
                BILLING: _ping(self.url, uuid, 1, "fail", "POST", body=True),
                REPORT: _ping(self.url, uuid, 1, "success", "POST", body=False),
                CACHE: _ping(self.url, uuid, 1, "success", "GET", body=False),
            }[uuid]
            return self.json({"pings": [ping]})
        if uuid == BILLING:
            return 200, "application/json", self.fixture("check_flips.json")
        return self.json({"flips": []})
