"""A real HTTP receiver on loopback for alert tests, in its own thread (tests stay synchronous).

Paths choose the behaviour: /ok/..., /flaky/N/... (500 to the first N requests, then 200),
/hang/... (hold the request until `release()`), /code/N/... (answer N), anything else 200.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int  # the status we answered, 0 while held


class Receiver:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.completed: list[Hit] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        # While True, /hang/... requests are held; set it False to answer them at once.
        self.holding = True
        self._counts: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                code = receiver._decide(self.path)
                hit = Hit(self.command, self.path, dict(self.headers.items()), body, 0)
                with receiver._lock:
                    receiver.hits.append(hit)
                if code == 0:
                    receiver._released.wait(30)
                    code = 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with receiver._lock:
                    receiver.completed.append(Hit(hit.method, hit.path, hit.headers, hit.body, code))

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _decide(self, path: str) -> int:
        parts = path.split("?")[0].strip("/").split("/")
        if parts[0] == "hang":
            return 0 if self.holding else 200
        if parts[0] == "code":
            return int(parts[1])
        if parts[0] == "flaky":
            with self._lock:
                seen = self._counts.get(path, 0)
                self._counts[path] = seen + 1
            return 500 if seen < int(parts[1]) else 200
        return 200

    def release(self) -> None:
        self._released.set()

    def wait_for(self, count: int, completed: bool = False, limit: float = 10.0) -> list[Hit]:
        """Wait (bounded) until `count` requests arrived (or completed); return them."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self._lock:
                got = list(self.completed if completed else self.hits)
            if len(got) >= count:
                return got
            time.sleep(0.01)
        with self._lock:
            return list(self.completed if completed else self.hits)

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
