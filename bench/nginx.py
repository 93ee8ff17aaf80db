"""Debian's nginx with deploy/nginx/hcserver.conf in front of an hcserver, and h2load to load it.

    front = Nginx(workdir, upstream_port=server.port)
    front.start()                       # self-signed certificate, TLS on a free loopback port
    urls = front.write_urls(["/ping/<uuid>", ...], workdir / "urls.txt")
    result = run_h2load(urls, H2loadSpec(connections=50, streams=10, requests=50_000), workdir / "h2")
    result.ok, result.rps, result.latency_ms["p99"]
    front.stop()

`render` fills the site file's ports and certificate paths (each line it replaces must be found);
tests/production/test_nginx.py renders it with the same function. The bench adds
`location = /ceiling { return 200 "OK"; }` in the TLS server: nginx answering by itself, the
ceiling for anything proxied.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.server import REPO_ROOT, children, cpu_s, free_port

CONF = REPO_ROOT / "deploy" / "nginx" / "hcserver.conf"
CEILING_PATH = "/ceiling"
# The TLS server's first location after the ping locations; the ceiling goes right before it.
_CEILING_BEFORE = "    location = /events {"


class NginxError(RuntimeError):
    """nginx or h2load is missing, did not start, or printed something the bench cannot read."""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def h2load_binary() -> str | None:
    return shutil.which("h2load")


def missing_tools() -> str | None:
    """Why the nginx scenario cannot run here, or None."""
    missing = [name for name, binary in (("nginx", nginx_binary()), ("h2load", h2load_binary())) if binary is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (apt-get install -y nginx nghttp2-client)"


def render(conf: str, *, upstream: int, plain: int, tls: int, cert: Path, key: Path, ipv6: bool) -> str:
    """The deploy file with these ports and this certificate; each line it replaces must be there."""
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
        "listen 80;": f"listen 127.0.0.1:{plain};",
        "listen [::]:80;": f"listen [::1]:{plain};" if ipv6 else "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{tls} ssl http2;",
        "listen [::]:443 ssl http2;": f"listen [::1]:{tls} ssl http2;" if ipv6 else "",
        "/etc/letsencrypt/live/hc.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/hc.example.org/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        if old not in conf:
            raise NginxError(f"{CONF} no longer has {old!r}: update bench/nginx.py and its callers")
        conf = conf.replace(old, new)
    return conf


def add_ceiling(conf: str) -> str:
    """The rendered site with `location = /ceiling { return 200 "OK"; }` in its TLS server."""
    if conf.count(_CEILING_BEFORE) != 1:
        raise NginxError(f"{CONF} no longer has one {_CEILING_BEFORE.strip()!r}: update bench/nginx.py")
    ceiling = f'    location = {CEILING_PATH} {{\n        return 200 "OK";\n    }}\n'
    return conf.replace(_CEILING_BEFORE, ceiling + _CEILING_BEFORE)


def main_config(prefix: Path, site: Path) -> str:
    """nginx.conf around the site file: everything in `prefix`, one worker, no access log, client
    connections kept for any number of requests."""
    user = "user root;" if os.geteuid() == 0 else ""  # workers that can read the prefix directory
    return f"""
{user}
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    # h2load does not reconnect: past nginx's default of 1,000 requests a client connection is
    # closed and the rest of the run's requests are never sent.
    keepalive_requests 100000000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1: (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class Nginx:
    """nginx in a prefix of its own, in front of an hcserver on `upstream_port`; IPv4 loopback only."""

    def __init__(self, prefix: Path, upstream_port: int) -> None:
        self.prefix = prefix
        self.upstream_port = upstream_port
        self.tls = 0
        self.plain = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None

    def start(self, timeout_s: float = 10.0) -> float:
        binary = nginx_binary()
        if binary is None:
            raise NginxError("nginx is not installed (apt-get install -y nginx)")
        prefix = self.prefix
        prefix.mkdir(parents=True, exist_ok=True)
        os.chmod(prefix, 0o755)
        cert, key = make_certificate(prefix)
        self.plain, self.tls = free_port(), free_port()
        site = render(
            CONF.read_text(),
            upstream=self.upstream_port,
            plain=self.plain,
            tls=self.tls,
            cert=cert,
            key=key,
            ipv6=False,
        )
        (prefix / "hcserver.conf").write_text(add_ceiling(site))
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / name).mkdir(exist_ok=True)
        (prefix / "nginx.conf").write_text(main_config(prefix, prefix / "hcserver.conf"))
        args = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
        checked = subprocess.run([*args, "-t"], capture_output=True, timeout=30, check=False)
        if checked.returncode != 0:
            raise NginxError(f"nginx -t failed: {checked.stderr.decode(errors='replace')[-2000:]}")
        started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = started + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise NginxError(f"nginx exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.tls), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise NginxError(f"nginx not listening after {timeout_s:.0f} s: {self.log_tail()}") from None
                time.sleep(0.02)
        self.ready_s = time.monotonic() - started
        return self.ready_s

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.tls}{path}"

    def write_urls(self, paths: list[str], file: Path) -> Path:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("".join(self.url(p) + "\n" for p in paths))
        return file

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_s(self) -> float | None:
        """CPU seconds of the master and its workers so far."""
        if self.proc is None or not self.alive():
            return None
        times = [cpu_s(pid) for pid in (self.proc.pid, *children(self.proc.pid))]
        return sum(t for t in times if t is not None)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self.prefix / "error.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM (nginx's fast shutdown), then SIGKILL after 10 s."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@dataclass(frozen=True, slots=True)
class H2loadSpec:
    """One h2load run: `requests` in all over `connections`, `streams` in flight on each (HTTP/2
    streams; with `h1`, HTTP/1.1 requests pipelined). The run is bounded by the count and by
    `max_seconds`, past which h2load is killed and the run fails: its counts die with it."""

    connections: int = 50
    streams: int = 10
    requests: int = 1000
    h1: bool = False
    max_seconds: float = 60.0


@dataclass(slots=True)
class H2loadResult:
    """What h2load printed (its status code counts) and, from its per-request log, the answers'
    timing. Latencies in milliseconds, each from the request's start to the end of its answer."""

    codes: dict[str, int]  # "2xx", "3xx", "4xx", "5xx"
    requests: dict[str, int]  # total, started, done, succeeded, failed, errored, timeout
    elapsed_s: float
    answered: int
    latency_ms: dict[str, float]
    finished: bool
    protocol: str = ""
    output: str = ""
    cpu_s: float | None = None  # h2load's own CPU seconds
    server_cpu_s: dict[str, float] = field(default_factory=dict)  # set by the bench: per server

    @property
    def ok(self) -> int:
        return self.codes.get("2xx", 0)

    @property
    def errors(self) -> int:
        req = self.requests
        bad = sum(n for code, n in self.codes.items() if code != "2xx")
        return bad + req.get("errored", 0) + req.get("timeout", 0) + (req.get("total", 0) - req.get("done", 0))

    @property
    def rps(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cpu_share(self) -> float | None:
        return self.cpu_s / self.elapsed_s if self.cpu_s is not None and self.elapsed_s > 0 else None


def parse_h2load_output(text: str) -> dict[str, object]:
    """h2load's summary: requests {total, started, done, succeeded, failed, errored, timeout}, codes
    {2xx, 3xx, 4xx, 5xx}, rps (its own, from the start of the first connection), protocol."""
    out: dict[str, object] = {}
    m = re.search(r"^requests: (.*)$", text, re.M)
    if m:
        out["requests"] = {name: int(n) for n, name in re.findall(r"(\d+) (\w+)", m.group(1))}
    m = re.search(r"^status codes: (.*)$", text, re.M)
    if m:
        out["codes"] = {name: int(n) for n, name in re.findall(r"(\d+) (\dxx)", m.group(1))}
    m = re.search(r"^finished in [\d.]+\w+, ([\d.]+) req/s", text, re.M)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"^Application protocol: (\S+)", text, re.M)
    if m:
        out["protocol"] = m.group(1)
    return out


def read_request_log(path: Path) -> tuple[int, float, dict[str, float]]:
    """From h2load's --log-file (start µs since the epoch, status, µs to the end of the answer):
    (answers, seconds from the first start to the last end, {p50, p99, p99.9, max} in ms)."""
    durations: list[int] = []
    first = math.inf
    last = 0.0
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0, 0.0, {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        start, status, took = int(parts[0]), int(parts[1]), int(parts[2])
        if status <= 0:
            continue
        durations.append(took)
        first = min(first, start)
        last = max(last, start + took)
    if not durations:
        return 0, 0.0, {}
    durations.sort()
    n = len(durations)

    def pick(p: float) -> float:
        return durations[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))] / 1000.0

    latency = {"p50": pick(50), "p99": pick(99), "p99.9": pick(99.9), "max": durations[-1] / 1000.0}
    return n, (last - first) / 1e6, latency


def _exited(pid: int) -> bool:
    """True once the child has exited, without reaping it (its /proc stat stays readable)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    return info is not None


def run_h2load(urls: Path, spec: H2loadSpec, workdir: Path) -> H2loadResult:
    """One h2load run over the loopback URLs in `urls` (one per line, used in turn)."""
    binary = h2load_binary()
    if binary is None:
        raise NginxError("h2load is not installed (apt-get install -y nghttp2-client)")
    first = urls.read_text().split("\n", 1)[0]
    if not first.startswith("https://127.0.0.1:"):
        raise NginxError(f"refusing to load a non-loopback address: {first}")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    log = workdir / "requests.tsv"
    requests = max(spec.requests, spec.connections)  # h2load wants at least one per client
    argv = [binary, "-c", str(spec.connections), "-m", str(spec.streams), "-n", str(requests), "-t", "1"]
    argv += ["-i", str(urls), "--log-file", str(log)]
    if spec.h1:
        argv.append("--h1")
    stdout_path = workdir / "stdout.txt"
    cpu: float | None = None
    with stdout_path.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + spec.max_seconds
        killed = False
        try:
            while not _exited(proc.pid):
                if time.monotonic() > deadline:
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.01)
            if not killed:
                cpu = cpu_s(proc.pid)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
    text = stdout_path.read_text(errors="replace")
    if killed:
        # Its counts die with it: the answers it had are not known.
        raise NginxError(f"h2load did not finish {requests:,} requests in {spec.max_seconds:.0f} s: {text[-500:]}")
    parsed = parse_h2load_output(text)
    answered, elapsed, latency = read_request_log(log)
    req = parsed.get("requests", {})
    codes = parsed.get("codes", {})
    if not isinstance(req, dict) or not isinstance(codes, dict) or not codes:
        raise NginxError(f"h2load printed no status code counts (exit {proc.returncode}): {text[-2000:]}")
    done = req.get("done", 0) == req.get("total", -1) == requests
    return H2loadResult(
        codes={str(k): int(v) for k, v in codes.items()},
        requests={str(k): int(v) for k, v in req.items()},
        elapsed_s=elapsed,
        answered=answered,
        latency_ms=latency,
        finished=proc.returncode == 0 and done,
        protocol=str(parsed.get("protocol", "")),
        output=text,
        cpu_s=cpu,
    )
