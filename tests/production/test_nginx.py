"""deploy/nginx/hcserver.conf in front of a real hcserver, with Debian's nginx: pings over HTTP/2
with TLS, HTTP/1.1 and 1.0, IPv4 and IPv6, recorded with the client's address and scheme https; a
3 MB body streamed through; the API through it; X-Forwarded-For believed from nginx only.

Clients connect from 127.0.0.2 (any 127/8 address is loopback on Linux) while nginx reaches
hcserver from 127.0.0.1, the one trusted proxy: so "the real client address" is not nginx's.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.nginx import render
from tests.persistence.helpers import ROOT
from tests.persistence.serve_process import API_KEY, Server, start

CONF = ROOT / "deploy" / "nginx" / "hcserver.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
CLIENT = "127.0.0.2"

if NGINX is None:
    if os.environ.get("CI") == "true":
        pytest.fail("nginx is not installed (apt-get install -y nginx); CI runs this test", pytrace=False)
    pytest.skip("nginx is not installed (apt-get install -y nginx)", allow_module_level=True)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@dataclass
class Front:
    hcserver: Server
    tls: int
    plain: int
    cert: Path
    ipv6: bool

    def client(self, http2: bool = True, local: str = CLIENT) -> httpx.Client:
        transport = httpx.HTTPTransport(http2=http2, verify=str(self.cert), local_address=local)
        return httpx.Client(transport=transport, timeout=10)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{self.tls}{path}"


@pytest.fixture(scope="module")
def front(tmp_path_factory) -> Iterator[Front]:
    if os.path.exists("/tmp/bench_quiet"):
        pytest.skip("a benchmark is running (/tmp/bench_quiet)")
    tmp = tmp_path_factory.mktemp("nginx")
    os.chmod(tmp, 0o755)
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    hcserver = start(tmp / "hc.sqlite3", tmp, environ={"HC_TRUSTED_PROXIES": "127.0.0.1"})
    ipv6 = has_ipv6()
    plain, tls = free_port(), free_port()
    site = render(CONF.read_text(), upstream=hcserver.port, plain=plain, tls=tls, cert=cert, key=key, ipv6=ipv6)
    (tmp / "hcserver.conf").write_text(site)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / name).mkdir()
    user = "user root;" if os.geteuid() == 0 else ""  # workers that can read this tmp directory
    (tmp / "nginx.conf").write_text(f"""
{user}
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/hcserver.conf;
}}
""")
    args = [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stderr.decode()
    nginx = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", tls), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None, nginx.stderr.read().decode() if nginx.stderr else ""
                assert time.monotonic() < deadline, (tmp / "error.log").read_text()
                time.sleep(0.05)
        yield Front(hcserver, tls, plain, cert, ipv6)
    finally:
        nginx.terminate()
        try:
            nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
        hcserver.stop()


def new_check(front: Front, name: str) -> str:
    with front.client() as client:
        r = client.post(front.url("/api/v3/checks/"), headers={"X-Api-Key": API_KEY}, json={"name": name})
    assert r.status_code == 201, r.text
    assert r.http_version == "HTTP/2"
    return str(r.json()["uuid"])


def pings(front: Front, uuid: str) -> list[dict]:
    with front.client() as client:
        r = client.get(front.url(f"/api/v3/checks/{uuid}/pings/"), headers={"X-Api-Key": API_KEY})
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["pings"]))


def test_pings_over_http2_http11_http10_and_ipv6_carry_the_client_and_https(front):
    uuid = new_check(front, "protocols")
    with front.client(http2=True) as client:
        r = client.get(front.url(f"/ping/{uuid}"))
        assert (r.status_code, r.text, r.http_version) == (200, "OK", "HTTP/2")
        r = client.post(front.url(f"/{uuid}/start"), content=b"root form")
        assert (r.status_code, r.http_version) == (200, "HTTP/2")
    with front.client(http2=False) as client:
        r = client.get(front.url(f"/ping/{uuid}/log"))
        assert (r.status_code, r.http_version) == (200, "HTTP/1.1")
    # HTTP/1.0, by hand over TLS.
    context = ssl.create_default_context(cafile=str(front.cert))
    raw = socket.create_connection(("127.0.0.1", front.tls), source_address=(CLIENT, 0), timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(f"GET /ping/{uuid}/0 HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\nOK"), answer
    expected = [("success", "GET"), ("start", "POST"), ("log", "GET"), ("success", "GET")]
    addresses = [CLIENT] * 4
    if front.ipv6:
        with front.client(local="::1") as client:
            r = client.get(front.url(f"/ping/{uuid}/fail", host="::1"))
            assert (r.status_code, r.http_version) == (200, "HTTP/2")
        expected.append(("fail", "GET"))
        addresses.append("::1")
    got = pings(front, uuid)
    assert [(p["type"], p["method"]) for p in got] == expected
    assert [p["remote_addr"] for p in got] == addresses
    assert {p["scheme"] for p in got} == {"https"}


def test_plain_http_pings_and_a_redirect_for_the_rest(front):
    uuid = new_check(front, "plain")
    with httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT), timeout=10) as client:
        r = client.get(f"http://127.0.0.1:{front.plain}/ping/{uuid}")
        assert r.status_code == 200
        r = client.get(f"http://127.0.0.1:{front.plain}/api/v3/checks/")
        assert r.status_code == 301 and r.headers["Location"].startswith("https://")
    [ping] = pings(front, uuid)
    assert (ping["scheme"], ping["remote_addr"]) == ("http", CLIENT)


def test_a_3mb_body_streams_through_and_counts(front):
    uuid = new_check(front, "big")
    body = b"x" * (3 * 1024 * 1024)
    with front.client(http2=True) as client:
        r = client.post(front.url(f"/ping/{uuid}"), content=body)
        assert (r.status_code, r.http_version) == (200, "HTTP/2")
    with front.client(http2=False) as client:
        r = client.post(front.url(f"/ping/{uuid}/fail"), content=iter([body[:1_000_000], body[1_000_000:]]))
        assert r.status_code == 200  # chunked, streamed
    with front.client() as client:
        check = client.get(front.url(f"/api/v3/checks/{uuid}"), headers={"X-Api-Key": API_KEY}).json()
    assert check["n_pings"] == 2 and check["status"] == "down"
    assert [p["type"] for p in pings(front, uuid)] == ["success", "fail"]


def test_forwarded_headers_are_believed_from_nginx_only(front):
    uuid = new_check(front, "forwarded")
    spoof = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
    with front.client() as client:  # through nginx, with a made-up X-Forwarded-For of the client's own
        assert client.get(front.url(f"/ping/{uuid}"), headers=spoof).status_code == 200
    # Straight to hcserver from an address that is not a trusted proxy: both headers are ignored.
    with httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT), timeout=10) as client:
        assert client.get(f"http://127.0.0.1:{front.hcserver.port}/ping/{uuid}/log", headers=spoof).status_code == 200
    got = pings(front, uuid)
    assert [(p["remote_addr"], p["scheme"]) for p in got] == [(CLIENT, "https"), (CLIENT, "http")]
