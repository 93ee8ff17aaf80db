"""Start a server under test as a subprocess on a free loopback port, and stop it cleanly.

    keys = Keys.generate()
    with ServerProcess.hcserver(tmp / "db.sqlite3", keys) as server:
        server.url, server.rss_kib(), server.ready_s

The context manager sends SIGTERM on exit and records the exit code; `hcserver` must flush and
exit 0 then.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_PATH = "/api/v3/status/"
BENCH_CHECK_LIMIT = 10_000_000
_ALNUM = string.ascii_lowercase + string.digits
# The baseline servers, bench/baseline_<kind>.py: Tornado's web.Application, its HTTP/1.1 layer
# under a bare delegate, TCPServer + IOStream with httptools, and an asyncio.Protocol with httptools.
BASELINES = ("web", "delegate", "iostream", "protocol")


class ServerError(RuntimeError):
    """The server did not start, died, or did not stop as asked; the message ends with its log tail."""


def cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat; None when
    /proc or the process is gone. Children's time is not in it."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The pids of a process's children, from /proc/<pid>/task/*/children (any thread may be the
    parent), else by scanning /proc for that parent pid."""
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found.update(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    except OSError:
        return []
    if found:
        return sorted(found)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(found)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _token(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length - len(prefix)))


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys the bench fixes through the environment, so it can call the API and ping by slug."""

    api: str
    api_readonly: str
    ping: str
    admin: str

    @classmethod
    def generate(cls) -> Keys:
        return cls(
            api=_token("hcw_", 32),
            api_readonly=_token("hcr_", 32),
            ping=_token("", 22),
            admin=_token("hca_", 32),
        )

    def env(self) -> dict[str, str]:
        return {
            "HC_API_KEY": self.api,
            "HC_API_KEY_READONLY": self.api_readonly,
            "HC_PING_KEY": self.ping,
            "HC_ADMIN_KEY": self.admin,
        }


def hcserver_available(python: str = sys.executable) -> bool:
    """True when the working tree's server has a `serve` command."""
    proc = subprocess.run(
        [python, "-m", "hcserver", "serve", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return proc.returncode == 0


class ServerProcess:
    """A server subprocess; a context manager that waits until it answers and SIGTERMs it at the end."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        ready_timeout_s: float = 120.0,
        stop_timeout_s: float = 120.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.host = "127.0.0.1"
        self.env = dict(os.environ) | dict(env or {})
        if log_path is None:
            log_path = Path(tempfile.mkdtemp(prefix="bench-log-")) / f"{name}.log"
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None
        self.returncode: int | None = None
        self.stop_s: float | None = None

    @classmethod
    def hcserver(
        cls,
        db: Path,
        keys: Keys,
        *,
        durable: bool = False,
        port: int | None = None,
        python: str = sys.executable,
        extra_env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> ServerProcess:
        port = port or free_port()
        argv = [python, "-m", "hcserver", "serve", "--host", "127.0.0.1", "--port", str(port), "--db", str(db)]
        if durable:
            argv.append("--durable")
        # The bench puts up to 100,000 checks in one project, past the default HC_CHECK_LIMIT.
        env = keys.env() | {"SITE_ROOT": f"http://127.0.0.1:{port}", "HC_CHECK_LIMIT": str(BENCH_CHECK_LIMIT)}
        env |= dict(extra_env or {})
        label = name or ("hcserver --durable" if durable else "hcserver")
        return cls(label, argv, port, env=env, log_path=db.with_suffix(".log"))

    @classmethod
    def baseline(cls, kind: str, workdir: Path, *, python: str = sys.executable) -> ServerProcess:
        """kind: one of BASELINES, the module bench/baseline_<kind>.py."""
        if kind not in BASELINES:
            raise ValueError(f"unknown baseline {kind!r}")
        port = free_port()
        argv = [python, "-m", f"bench.baseline_{kind}", "--host", "127.0.0.1", "--port", str(port)]
        return cls(f"baseline-{kind}", argv, port, log_path=workdir / f"baseline-{kind}.log")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerError(f"{self.name} is not running")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> float:
        """Start the process and wait until the status endpoint answers 200; returns seconds taken."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = started + self.ready_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode} before it was ready{self._tail()}")
            if self._ready():
                self.ready_s = time.monotonic() - started
                return self.ready_s
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"{self.name} not ready after {self.ready_timeout_s:.0f}s{self._tail()}")
            # Polling this often keeps the error of the start-to-ready figure near 2 ms.
            time.sleep(0.002)

    def _ready(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            conn.request("GET", READY_PATH)
            resp = conn.getresponse()
            return resp.status == 200 and resp.read().strip() == b"OK"
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self) -> int:
        """SIGTERM, wait for the exit; returns the exit code (killed after the stop timeout: -9)."""
        if self.proc is None:
            raise ServerError(f"{self.name} was never started")
        if self.proc.poll() is None:
            started = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
            self.stop_s = time.monotonic() - started
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def rss_kib(self) -> int | None:
        """Resident set size from /proc/<pid>/status (VmRSS), or None where /proc is missing."""
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def cpu_s(self) -> float | None:
        """CPU seconds this server process has used (its own threads, not its children)."""
        return cpu_s(self.pid) if self.alive() else None

    def children_cpu_s(self) -> dict[int, float]:
        """CPU seconds of each child process (hcserver's SQLite writer) by pid."""
        if not self.alive():
            return {}
        return {pid: t for pid in children(self.pid) if (t := cpu_s(pid)) is not None}

    def _tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- {self.log_path} (last {lines} lines) ---\n{tail}" if tail else ""

    def log_tail(self, lines: int = 30) -> str:
        return self._tail(lines)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            self.stop()
