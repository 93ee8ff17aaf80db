"""A failing disk, end to end: pings keep their 200s, status says 503 and why, nothing is lost."""

from __future__ import annotations

import time

from tests.conftest import make_settings, start_server
from tests.persistence.test_faults import heal, inject

ADMIN_KEY = "admin-key-for-tests-0123456789"


def wait_status(live, code: int, limit: float = 10.0):
    deadline = time.monotonic() + limit
    while True:
        r = live.client.get("/api/v3/status/")
        if r.status_code == code or time.monotonic() > deadline:
            return r
        time.sleep(0.02)


def test_store_fault_then_recovery_loses_nothing(tmp_path, clock):
    db = str(tmp_path / "hc.sqlite3")
    settings = make_settings(db=db, flush_interval_ms=20, admin_key=ADMIN_KEY)
    live, stop = start_server(settings, clock, alerts={})
    try:
        uuid = live.create(name="through the fault")["uuid"]
        assert live.ping(f"/ping/{uuid}").status_code == 200
        assert wait_status(live, 200).status_code == 200

        inject(db)
        for i in range(50):
            r = live.ping(f"/ping/{uuid}/log", method="POST", content=f"during {i}".encode())
            assert r.status_code == 200
        r = wait_status(live, 503)
        assert r.status_code == 503 and "injected disk fault" in r.text
        verbose = live.client.get("/api/v3/status/?verbose=1", headers={"X-Api-Key": ADMIN_KEY}).json()
        assert verbose["ok"] is False and verbose["pending"] > 0 and verbose["flush_errors"] >= 1
        # reads still answer from memory, read-your-writes included
        assert live.get_check(uuid)["n_pings"] == 51
        assert live.api("GET", f"checks/{uuid}/pings/").json()["pings"][0]["type"] == "log"

        heal(db)
        assert wait_status(live, 200).text == "OK"
    finally:
        stop()

    live, stop = start_server(settings, clock, alerts={})
    try:
        assert live.get_check(uuid)["n_pings"] == 51
        pings = live.api("GET", f"checks/{uuid}/pings/").json()["pings"]
        assert [p["n"] for p in pings] == list(range(51, 0, -1))
        body = live.api("GET", f"checks/{uuid}/pings/51/body")
        assert body.content == b"during 49"
    finally:
        stop()
