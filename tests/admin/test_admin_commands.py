"""keys, projects, checks, export and import-json on real store files, checked through the real server."""

from __future__ import annotations

import json
import re
import time

from tests.admin.fake_source import BACKUP, BILLING, RW_KEY
from tests.conftest import API_KEY, PING_KEY, make_settings, start_server
from tests.fakes import FakeClock


def printed_keys(out: str) -> dict[str, str]:
    found = dict(
        re.findall(r"^\s+(API key \(read-write\)|API key \(read-only\)|Ping key|Project uuid):\s+(\S+)$", out, re.M)
    )
    return found


def imported(hc, source, db) -> None:
    code, _, err = hc("import-healthchecks", "--url", source.url, "--api-key", RW_KEY, "--db", str(db))
    assert code == 0, err


def test_rotated_keys_replace_the_old_ones(hc, source, db, serve):
    imported(hc, source, db)
    code, out, err = hc("keys", "--rotate", "all", "--db", str(db))
    assert code == 0, err
    new = printed_keys(out)
    assert new["API key (read-write)"].startswith("hcw_") and new["API key (read-only)"].startswith("hcr_")
    live = serve()
    assert live.api("GET", "checks/").status_code == 401  # the old key
    assert len(live.api("GET", "checks/", key=new["API key (read-write)"]).json()["checks"]) == 4
    assert "uuid" not in live.api("GET", "checks/", key=new["API key (read-only)"]).json()["checks"][0]
    assert live.ping(f"/ping/{PING_KEY}/nightly-backup").status_code == 404
    assert live.ping(f"/ping/{new['Ping key']}/nightly-backup").status_code == 200
    assert live.ping(f"/ping/{BACKUP}").status_code == 200  # UUID URLs do not depend on keys


def test_rotating_one_key_keeps_the_others(hc, source, db, serve):
    imported(hc, source, db)
    code, out, _ = hc("keys", "--rotate", "ping", "--db", str(db))
    assert code == 0 and "API key" not in out
    live = serve()
    assert live.api("GET", "checks/").status_code == 200


def test_show_project_and_projects(hc, source, db, serve):
    imported(hc, source, db)
    code, out, _ = hc("projects", "create", "Staging", "--db", str(db))
    assert code == 0
    staging = printed_keys(out)
    code, out, _ = hc("keys", "--show-project", "--db", str(db))
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["UUID", "CHECKS", "NAME"]
    assert any(line.endswith("Default") and " 4 " in line for line in lines)
    assert any(line.startswith(staging["Project uuid"]) and line.endswith("Staging") for line in lines)

    code, out, _ = hc("projects", "delete", staging["Project uuid"], "--db", str(db))
    assert code == 0 and "Deleted project 'Staging'" in out
    code, out, _ = hc("projects", "list", "--db", str(db))
    assert "Staging" not in out and "Default" in out
    live = serve()
    assert live.api("GET", "checks/", key=staging["API key (read-write)"]).status_code == 401


def test_a_created_project_works(hc, db, serve):
    code, out, _ = hc("projects", "create", "Ops", "--db", str(db))
    keys = printed_keys(out)
    live = serve()
    r = live.api("POST", "checks/", key=keys["API key (read-write)"], json={"name": "x"})
    assert r.status_code == 201


def test_checks_table_while_the_server_runs(hc, source, db, serve):
    imported(hc, source, db)
    live = serve()
    live.ping(f"/ping/{BACKUP}")
    code, out, err = hc("checks", "--db", str(db))
    assert code == 0, err
    assert "As of the store's last commit" in out and "HC_FLUSH_INTERVAL_MS" in out
    assert out.count("\n") == 6  # the note, the header, four checks
    assert "Nightly Backup" in out and "every 1 day, grace 1 hour" in out
    assert "*/15 * * * * (Europe/Riga)" in out
    code, out, _ = hc("checks", "--status", "down", "--db", str(db))
    assert BILLING in out and "Nightly Backup" not in out
    code, out, err = hc("projects", "delete", "x", "--db", str(db))
    assert code == 2 and "is in use by a running hcserver" in err


def test_export_then_import_json_into_another_store(hc, source, db, tmp_path, serve):
    imported(hc, source, db)
    code, out, err = hc("export", "--db", str(db))
    assert code == 0, err
    dump = json.loads(out)
    assert dump["format"] == "hcserver-dump" and len(dump["projects"][0]["checks"]) == 4
    path = tmp_path / "dump.json"
    path.write_text(out)

    other = tmp_path / "other.sqlite3"
    code, out, err = hc("import-json", str(path), "--db", str(other))
    assert code == 0, err
    assert "Loaded 1 projects, 0 channels, 4 checks, 5 pings and 1 flips" in out
    keys = printed_keys(out)  # another store, another secret: new keys
    assert keys["Project uuid"] == dump["projects"][0]["id"]
    code, again, _ = hc("import-json", str(path), "--db", str(other))
    assert code == 0 and "0 pings and 0 flips" in again and "new keys" not in again

    live, stop = start_server(make_settings(db=str(other)), FakeClock(time.time()), alerts={})
    try:
        key = keys["API key (read-write)"]
        checks = live.api("GET", "checks/", key=key).json()["checks"]
        assert {c["uuid"] for c in checks} >= {BACKUP, BILLING}
        pings = live.api("GET", f"checks/{BACKUP}/pings/", key=key).json()["pings"]
        assert [p["n"] for p in pings] == [2, 1]
        body = live.client.get(f"/api/v3/checks/{BACKUP}/pings/2/body", headers={"X-Api-Key": key})
        assert body.content == source.fixture("ping_body.txt")
        assert live.api("GET", f"checks/{BILLING}/flips/", key=key).json()["flips"] == [
            {"timestamp": "2026-12-01T02:50:05+00:00", "up": 0}
        ]
    finally:
        stop()


def test_restoring_into_the_same_store_keeps_the_keys(hc, source, db, tmp_path, serve):
    imported(hc, source, db)
    code, out, _ = hc("export", "--db", str(db))
    path = tmp_path / "dump.json"
    path.write_text(out)
    code, out, _ = hc("projects", "delete", json.loads(out)["projects"][0]["id"], "--db", str(db))
    assert code == 0
    code, out, err = hc("import-json", str(path), "--db", str(db))
    assert code == 0 and "new keys" not in out, err
    live = serve()
    assert len(live.api("GET", "checks/", key=API_KEY).json()["checks"]) == 4


def test_import_json_refuses_what_is_not_a_dump(hc, db, tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    code, _, err = hc("import-json", str(path), "--db", str(db))
    assert code == 1 and "not an hcserver dump" in err
