"""`unique` upserts through the API keep matching right after updates and deletes (the index follows)."""

from __future__ import annotations

from typing import Any

from tests.conftest import LiveServer


def upsert(live: LiveServer, **body: Any) -> tuple[int, dict[str, Any]]:
    r = live.api("POST", "checks/", json=body)
    assert r.status_code in (200, 201), r.text
    return r.status_code, r.json()


def indexed(live: LiveServer, **wanted: Any) -> str | None:
    """The uuid the index finds for these fields, read on the server's loop."""
    project_id = next(iter(live.ctx.index.projects))
    found = live.call(lambda: live.ctx.index.find_matching(project_id, wanted))
    return None if found is None else found.uuid


def test_updates_through_the_api_move_checks_between_values(live):
    first = live.create(name="db", tags="prod", timeout=600, grace=60)
    second = live.create(name="web", tags="prod", timeout=600, grace=60)
    r = live.api(
        "POST", f"checks/{first['uuid']}", json={"name": "db2", "tags": "staging", "timeout": 900, "grace": 120}
    )
    assert r.status_code == 200
    assert indexed(live, name="db") is None and indexed(live, name="db2") == first["uuid"]
    assert indexed(live, slug="db") is None and indexed(live, slug="db2") == first["uuid"]
    assert indexed(live, tags="prod") == second["uuid"] and indexed(live, tags="staging") == first["uuid"]
    assert indexed(live, timeout=900, grace=120) == first["uuid"]
    assert indexed(live, timeout=600, grace=60) == second["uuid"]

    status, created = upsert(live, name="db", unique=["name"])
    assert status == 201 and created["uuid"] not in (first["uuid"], second["uuid"])
    status, updated = upsert(live, name="db2", tags="x", unique=["name"])
    assert status == 200 and updated["uuid"] == first["uuid"]
    assert indexed(live, tags="staging") is None and indexed(live, tags="x") == first["uuid"]


def test_a_deleted_check_no_longer_matches(live):
    gone = live.create(name="gone", slug="gone")
    assert live.api("DELETE", f"checks/{gone['uuid']}").status_code == 200
    assert indexed(live, name="gone") is None and indexed(live, slug="gone") is None
    status, again = upsert(live, name="gone", unique=["name"])
    assert status == 201 and again["uuid"] != gone["uuid"]


def test_unique_slug_follows_a_v1_rename(live):
    check = live.create(name="Old Name")
    r = live.client.post(
        f"/api/v1/checks/{check['uuid']}", json={"name": "New Name"}, headers={"X-Api-Key": live.ctx.settings.api_key}
    )
    assert r.status_code == 200 and r.json()["slug"] == "new-name"
    assert indexed(live, slug="old-name") is None and indexed(live, slug="new-name") == check["uuid"]
