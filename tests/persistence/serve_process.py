"""`python -m hcserver serve` as a real process, for the startup and lock tests: start it and wait
until it answers, or wait for it to exit and look at what it printed and what it left running."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.persistence.helpers import ROOT

API_KEY = "hcw_" + "s" * 28
PING_KEY = "startup000000000000000"
# A start that cannot succeed must have exited within this long.
EXIT_WITHIN_S = 5.0
# Every server started here gets this variable, with a value of its own. Its writer process inherits
# the server's environment, so whatever is left of a server is found by it, even once reparented.
MARK = "HCSERVER_TEST_RUN"
# A line of the server's log: "2024-01-01 12:00:00,000 INFO name: message".
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) ")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    mark: str
    log: Path
    started: float
    port: int = 0
    stdout: str = ""

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            conn.request(method, path, body=body, headers={"X-Api-Key": API_KEY})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=15) == 0, self.log.read_text()


@dataclass(frozen=True)
class Exit:
    code: int
    seconds: float
    stderr: str

    @property
    def said(self) -> list[str]:
        """What the server wrote to stderr outside its log lines."""
        return [line for line in self.stderr.splitlines() if not _LOG_LINE.match(line)]


def spawn(
    db: str | Path,
    logs: Path,
    *extra: str,
    cwd: Path | None = None,
    environ: dict[str, str] | None = None,
    wrap: tuple[str, ...] = (),
) -> Server:
    """Start the server on a free port (unless `extra` gives one); `wrap` goes before the command."""
    mark = uuid.uuid4().hex
    env = dict(os.environ, HC_API_KEY=API_KEY, HC_PING_KEY=PING_KEY, PYTHONPATH=str(ROOT))
    env.update(environ or {})
    env[MARK] = mark
    env.pop("SITE_ROOT", None)
    log = logs / f"server-{mark}.log"
    port = () if "--port" in extra else ("--port", "0")
    command = [*wrap, sys.executable, "-m", "hcserver", "serve", "--host", "127.0.0.1", *port, "--db", str(db)]
    with log.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen([*command, *extra], stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd or logs)
    return Server(proc, mark, log, started)


def start(db: str | Path, logs: Path, *extra: str, **options: Any) -> Server:
    """Start the server and wait until its status endpoint answers."""
    server = spawn(db, logs, *extra, **options)
    assert server.proc.stdout is not None
    deadline = time.monotonic() + 15
    out = b""
    while b"listening on port" not in out:
        if time.monotonic() > deadline or server.proc.poll() is not None:
            server.proc.kill()
            raise AssertionError(f"the server did not start: {out!r} {server.log.read_text()}")
        if select.select([server.proc.stdout], [], [], 0.1)[0]:
            out += os.read(server.proc.stdout.fileno(), 4096)
    while not out.endswith(b"\n"):
        out += os.read(server.proc.stdout.fileno(), 4096)
    server.stdout = out.decode()
    server.port = int(server.stdout.split("listening on port")[1].split(";")[0])
    while server.request("GET", "/api/v3/status/")[0] != 200:
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)
    return server


def wait_exit(server: Server) -> Exit:
    """Wait for a server that should not start to exit (killing it if it does not, three times too late)."""
    try:
        code = server.proc.wait(timeout=3 * EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        kill_leftovers(server)
        raise AssertionError(f"still running after {3 * EXIT_WITHIN_S} s: {server.log.read_text()}") from None
    return Exit(code, time.monotonic() - server.started, server.log.read_text())


def leftovers(server: Server) -> list[str]:
    """Processes still running (not zombies) that carry the server's mark: it, or its writer."""
    needle = f"{MARK}={server.mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue  # gone meanwhile
        if state != "Z":
            found.append(f"{entry.name}: {command}")
    return found


def kill_leftovers(server: Server) -> None:
    for line in leftovers(server):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)


def assert_refused(result: Exit, server: Server, *, says: str) -> None:
    """Status 2 within EXIT_WITHIN_S, one line (and only one) outside the log lines, which says
    `says`, no traceback, no error logged, and nothing left running."""
    left = leftovers(server)
    kill_leftovers(server)
    assert result.code == 2, result.stderr
    assert result.seconds < EXIT_WITHIN_S, (result.seconds, result.stderr)
    assert len(result.said) == 1 and result.said[0].startswith("hcserver: "), result.stderr
    assert says in result.said[0], result.said[0]
    assert "Traceback" not in result.stderr
    assert not [line for line in result.stderr.splitlines() if " ERROR " in line or " CRITICAL " in line]
    assert left == [], left
