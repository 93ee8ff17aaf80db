"""Kill -9 between a flip and its delivery: after a restart the notification is delivered once."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.integration.receiver import Receiver
from tests.persistence.test_process import FLUSH_MS, start

pytestmark = pytest.mark.slow


def test_notification_survives_kill_9_and_is_delivered_once(tmp_path):
    receiver = Receiver()
    env = {"INTEGRATIONS_ALLOW_PRIVATE_IPS": "1", "INTEGRATIONS_TIMEOUT": "30"}
    db = tmp_path / "hc.sqlite3"
    try:
        server = start(db, tmp_path, environ=env)
        channel = server.api("POST", "channels/", {"name": "hook", "kind": "webhook",
                                                   "url_down": receiver.url("/hang/down?check=$CODE")})  # fmt: skip
        uuid = server.api("POST", "checks/", {"name": "killed", "channels": "*"})["uuid"]
        assert server.request("GET", f"/ping/{uuid}/fail")[0] == 200
        assert len(receiver.wait_for(1)) == 1  # the delivery is in flight, held by the receiver
        time.sleep(3 * FLUSH_MS / 1000)  # the flip and its pending notification are committed
        server.stop(signal.SIGKILL)

        receiver.holding = False
        server = start(db, tmp_path, environ=env)
        done = receiver.wait_for(1, completed=True)
        assert [h.answered for h in done] == [200]
        assert len(receiver.hits) == 2  # the one cut off by the kill, and the one delivered
        assert done[0].path == f"/hang/down?check={uuid}"
        state = server.api("GET", f"channels/{channel['id']}")
        assert state["last_error"] == "" and state["last_notify"] is not None

        # delivered is remembered: another restart sends nothing more
        time.sleep(3 * FLUSH_MS / 1000)
        server.stop(signal.SIGTERM)
        server = start(db, tmp_path, environ=env)
        time.sleep(0.5)
        assert len(receiver.hits) == 2
        assert json.loads(server.request("GET", f"/api/v3/checks/{uuid}", api=True)[1])["status"] == "down"
        server.stop(signal.SIGTERM)
    finally:
        receiver.close()
