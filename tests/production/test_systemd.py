"""deploy/systemd/hcserver.service: `systemd-analyze verify` accepts it, and hcserver tells a
NOTIFY_SOCKET READY=1 once its port is open (Type=notify), and STOPPING=1 when it stops."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.persistence.helpers import ROOT
from tests.persistence.serve_process import spawn

UNIT = ROOT / "deploy" / "systemd" / "hcserver.service"


def test_the_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (it comes with systemd)")
    text = UNIT.read_text()
    for line in ("Type=notify", "DynamicUser=yes", "StateDirectory=hcserver", "EnvironmentFile=-/etc/hcserver/env",
                 "Restart=on-failure", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes"):  # fmt: skip
        assert f"\n{line}\n" in text, line
    # verify insists that ExecStart's program exists: point it at this installation's.
    hcserver = Path(sys.executable).parent / "hcserver"
    assert "ExecStart=/usr/local/bin/hcserver " in text
    unit = tmp_path / "hcserver.service"
    unit.write_text(text.replace("/usr/local/bin/hcserver", str(hcserver)))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, timeout=60)
    said = [line for line in done.stderr.decode().splitlines() if "hcserver.service" in line]
    assert done.returncode == 0 and said == [], done.stderr.decode()


def test_ready_comes_once_the_port_is_open(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(15)
        server = spawn(tmp_path / "hc.sqlite3", tmp_path, environ={"NOTIFY_SOCKET": str(path)})
        try:
            assert listener.recv(4096) == b"READY=1"
            # Ready means listening: the port is printed before, and takes a connection at once.
            assert server.proc.stdout is not None
            out = b""
            deadline = time.monotonic() + 5
            while b"listening on port" not in out and time.monotonic() < deadline:
                out += os.read(server.proc.stdout.fileno(), 4096)
            port = int(out.decode().split("listening on port")[1].split(";")[0])
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            server.port = port
            assert server.request("GET", "/api/v3/status/")[0] == 200
        finally:
            server.proc.terminate()
        assert server.proc.wait(timeout=15) == 0, server.log.read_text()
        assert listener.recv(4096) == b"STOPPING=1"


def test_no_notify_socket_no_message(tmp_path: Path) -> None:
    from hcserver.systemd import notify

    assert notify("READY=1", environ={}) is False
    assert notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "nobody")}) is False
