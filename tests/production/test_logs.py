"""Logs an operator can use: flips at INFO, failed deliveries and disabled channels at WARNING,
HC_LOG_LEVEL and HC_LOG_FORMAT=json, a masked access line per ping at DEBUG, the version and the
project's uuid at startup."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

from tests.persistence.helpers import ROOT
from tests.persistence.serve_process import start

PING_KEY = "startup000000000000000"  # the key tests.persistence.serve_process gives its servers


def wait(predicate, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_flip_is_logged_with_its_reason(full, caplog):
    caplog.set_level(logging.INFO)
    check = full.create(name='nightly "db"', timeout=60, grace=60)
    full.ping(f"/ping/{check['uuid']}")
    full.advance(121)
    line = f'check {check["uuid"]} "nightly "db"" up -> down (missed deadline)'
    assert wait(lambda: line in [r.getMessage() for r in caplog.records if r.levelno == logging.INFO])
    assert f'check {check["uuid"]} "nightly "db"" new -> up (success ping)' in caplog.messages


def test_a_failed_delivery_and_a_disabled_channel_are_warned_about(full, receiver, caplog):
    caplog.set_level(logging.INFO)
    body = {"name": "gone", "kind": "webhook", "url_down": receiver.url("/code/404/"), "url_up": ""}
    channel = full.api("POST", "channels/", json=body).json()
    check = full.create(name="job", channels="*")
    full.ping(f"/ping/{check['uuid']}/fail")

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    assert wait(lambda: any("disabled" in w for w in warnings()))
    [failed] = [w for w in warnings() if w.startswith(f"alert for {check['uuid']}")]
    assert "webhook channel gone failed (attempt 1 of 3)" in failed and "404" in failed
    [disabled] = [w for w in warnings() if "disabled" in w]
    assert disabled.startswith(f"webhook channel gone ({channel['id']}) is disabled until it is updated: ")


def test_json_lines_and_a_masked_access_line_per_ping_at_debug(tmp_path):
    server = start(tmp_path / "hc.sqlite3", tmp_path, environ={"HC_LOG_LEVEL": "debug", "HC_LOG_FORMAT": "json"})
    try:
        assert server.request("GET", f"/ping/{PING_KEY}/backup?create=1")[0] == 201
        assert server.request("GET", "/ping/00000000-0000-4000-8000-000000000000/fail")[0] == 404
    finally:
        server.stop()
    entries = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    access = [e["message"] for e in entries if e["logger"] == "hcserver.access"]
    assert access[0].startswith("GET /ping/***/backup?create=1 201 ") and access[0].endswith(" us")
    assert access[1].startswith("GET /ping/00000000-0000-4000-8000-000000000000/fail 404 ")
    assert PING_KEY not in server.log.read_text()
    assert any(e["message"].startswith("hcserver ") and "(Python " in e["message"] for e in entries)


def test_no_access_line_at_info_and_the_uuid_beside_the_keys(tmp_path):
    server = start(tmp_path / "hc.sqlite3", tmp_path)
    try:
        assert server.request("GET", f"/ping/{PING_KEY}/backup?create=1")[0] == 201
    finally:
        server.stop()
    text = server.log.read_text()
    assert "hcserver.access" not in text and " DEBUG " not in text
    [line] = [line for line in server.stdout.splitlines() if "Project uuid:" in line]
    uuid = line.split()[-1]
    assert len(uuid) == 36
    # Started again, the keys are not shown, the uuid is.
    server = start(tmp_path / "hc.sqlite3", tmp_path)
    server.stop()
    assert f"uuid {uuid}, metrics at " in server.log.read_text()


def test_a_bad_log_setting_is_refused_in_one_line():
    env = {"HC_LOG_LEVEL": "chatty", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "hcserver", "serve"], env=env, capture_output=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        "hcserver: HC_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not 'chatty'"
    )


def test_version():
    done = subprocess.run([sys.executable, "-m", "hcserver", "--version"], capture_output=True, timeout=30, cwd=ROOT)
    assert done.returncode == 0
    assert done.stdout.decode().startswith("hcserver ") and done.stdout.decode().strip() != "hcserver unknown"
