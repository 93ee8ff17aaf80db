"""The Dockerfile, built and run with Podman: the healthcheck reports healthy, the first start's keys
are in the logs, a check is created and pinged through the published port, SIGTERM stops it with
status 0 within 10 s, a new container on the same volume has the check and its pings, and the
server runs as a user other than root.

The image is built on a Debian base made here (tests/container/podman.py), as no image registry is
reachable. Everything it sends goes to 127.0.0.1 and the container's own bridge.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.container.podman import BUILD_FLAGS, RUN_FLAGS, Unavailable, base_image, missing_tools, podman
from tests.persistence.helpers import ROOT

pytestmark = pytest.mark.slow

if os.geteuid() != 0 or (missing := missing_tools()):
    reason = (
        "debootstrap and podman's chroot builds need root"
        if os.geteuid() != 0
        else f"{', '.join(missing)} not installed (apt-get install -y podman debootstrap runc)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI runs this test", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

HEALTHY_WITHIN_S = 60.0
STOP_WITHIN_S = 10.0
KEY_LINE = re.compile(r"API key \(read-write\): (\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Container:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        done = podman("logs", self.name)
        return done.stdout + done.stderr

    def wait_healthy(self) -> None:
        """Run the image's HEALTHCHECK until it passes; podman then reports the container healthy."""
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while True:
            done = podman("healthcheck", "run", self.name, check=False, timeout=30)
            if done.returncode == 0:
                break
            state = podman("inspect", "--format", "{{.State.Status}}", self.name).stdout.strip()
            if state != "running" or time.monotonic() > deadline:
                raise AssertionError(f"not healthy ({state}): {done.stdout}{done.stderr}\n{self.logs()}")
            time.sleep(0.5)
        assert podman("inspect", "--format", "{{.State.Health.Status}}", self.name).stdout.strip() == "healthy"


@dataclass
class Image:
    tag: str
    volume: str
    started: list[str]

    def run(self) -> Container:
        container = Container(f"hcserver-test-{uuid.uuid4().hex[:12]}", free_port())
        self.started.append(container.name)
        podman(
            "run",
            "--detach",
            *RUN_FLAGS,
            "--name",
            container.name,
            "--publish",
            f"127.0.0.1:{container.port}:8000",
            "--volume",
            f"{self.volume}:/data",
            self.tag,
        )
        return container


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    try:
        base = base_image()
    except Unavailable as e:
        pytest.skip(str(e))
    suffix = uuid.uuid4().hex[:12]
    tag = f"localhost/hcserver-test:{suffix}"
    volume = f"hcserver-test-{suffix}"
    made = Image(tag, volume, [])
    try:
        podman(
            "build", *BUILD_FLAGS, "--layers=false", "--build-arg", f"BASE={base}", "--tag", tag, str(ROOT), timeout=900
        )
        podman("volume", "create", volume)
        yield made
    finally:
        for name in made.started:
            podman("rm", "--force", "--time", "0", name, check=False)
        podman("volume", "rm", "--force", volume, check=False)
        podman("rmi", "--force", tag, check=False, timeout=120)


def test_the_image_serves_stops_cleanly_and_keeps_its_store(image: Image) -> None:
    first = image.run()
    first.wait_healthy()

    found = KEY_LINE.search(first.logs())
    assert found, first.logs()
    client = httpx.Client(base_url=first.url, headers={"X-Api-Key": found[1]}, timeout=10)
    created = client.post("/api/v3/checks/", json={"name": "backup", "timeout": 3600, "grace": 60})
    assert created.status_code == 201, created.text
    check = created.json()["uuid"]
    assert client.get(f"/ping/{check}/start").text == "OK"
    assert client.post(f"/ping/{check}", content=b"done in 3 s").text == "OK"

    began = time.monotonic()
    podman("stop", "--time", str(int(STOP_WITHIN_S)), first.name, timeout=STOP_WITHIN_S + 20)
    took = time.monotonic() - began
    exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", first.name).stdout.strip()
    assert exit_code == "0", first.logs()
    assert took < STOP_WITHIN_S, f"stopped after {took:.1f} s"

    second = image.run()
    second.wait_healthy()
    client = httpx.Client(base_url=second.url, headers={"X-Api-Key": found[1]}, timeout=10)
    assert client.get(f"/api/v3/checks/{check}").json()["status"] == "up"
    pings = sorted(client.get(f"/api/v3/checks/{check}/pings/").json()["pings"], key=lambda p: p["n"])
    assert [(p["type"], p["method"]) for p in pings] == [("start", "GET"), ("success", "POST")]
    assert client.get(f"/api/v3/checks/{check}/pings/{pings[1]['n']}/body").content == b"done in 3 s"
    assert "API key" not in second.logs()  # the keys are shown on the first start only

    status = podman("exec", second.name, "cat", "/proc/1/status").stdout
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    assert uids and uids[1] != "0" and uids[2] != "0", status
    assert podman("exec", second.name, "id", "-un").stdout.strip() == "hcserver"
