"""`hcserver import-healthchecks` against a fake Healthchecks on a loopback port (the recorded
answers of a real one), into a real store, then served by the real server."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from tests.admin.fake_source import BACKUP, BILLING, CACHE, REPORT, RO_KEY, RW_KEY, FakeHealthchecks
from tests.conftest import API_KEY, PING_KEY, make_settings, start_server
from tests.fakes import FakeClock


def import_args(source: FakeHealthchecks, db: Path, *extra: str) -> list[str]:
    return ["import-healthchecks", "--url", source.url, "--api-key", RW_KEY, "--db", str(db), *extra]


def rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_import_into_an_empty_store_keeps_uuids_state_and_history(hc, source, db, serve):
    code, out, err = hc(*import_args(source, db))
    assert code == 0, err
    assert "Created a project" in out and API_KEY in out and PING_KEY in out
    assert "[4/4]" in err  # progress
    assert sum(line.startswith("new ") for line in out.splitlines()) == 4 and "4 checks: 4 new" in out
    assert "'Ops hook' (webhook)" in out and "'On call' (email)" in out

    live = serve()
    checks = {c["uuid"]: c for c in live.api("GET", "checks/").json()["checks"]}
    assert set(checks) == {BACKUP, BILLING, REPORT, CACHE}
    backup, billing, report, cache = checks[BACKUP], checks[BILLING], checks[REPORT], checks[CACHE]
    assert (backup["name"], backup["slug"], backup["tags"], backup["desc"]) == (
        "Nightly Backup", "nightly-backup", "prod db", "pg_dump to S3",
    )  # fmt: skip
    assert (backup["timeout"], backup["grace"], backup["n_pings"], backup["last_duration"]) == (86400, 3600, 2, 1)
    assert backup["last_ping"] == "2026-12-01T02:50:05+00:00"
    assert (billing["schedule"], billing["tz"], billing["manual_resume"], billing["status"]) == (
        "*/15 * * * *", "Europe/Riga", True, "down",
    )  # fmt: skip
    assert (report["schedule"], report["tz"], report["methods"]) == ("Mon *-*-* 08:00", "America/New_York", "POST")
    assert (report["success_kw"], report["failure_kw"], report["filter_subject"]) == ("SUCCESS", "ERROR", True)
    assert (cache["status"], cache["start_kw"], cache["timeout"], cache["grace"]) == ("paused", "begin", 300, 60)
    assert all(c["channels"] == "" for c in checks.values())  # nothing it cannot see

    pings = live.api("GET", f"checks/{BACKUP}/pings/").json()["pings"]
    assert [(p["n"], p["type"], p["method"]) for p in pings] == [(2, "success", "POST"), (1, "start", "GET")]
    assert pings[0]["duration"] == 1.04 and pings[0]["date"] == "2026-12-01T02:50:05.721910+00:00"
    body = live.client.get(f"/api/v3/checks/{BACKUP}/pings/2/body", headers={"X-Api-Key": API_KEY})
    assert body.content == (source.fixture("ping_body.txt"))
    flips = live.api("GET", f"checks/{BILLING}/flips/").json()["flips"]
    assert flips == [{"timestamp": "2026-12-01T02:50:05+00:00", "up": 0}]

    # The old ping URL works as it did, and a down check stays down until it is pinged.
    assert live.ping(f"/ping/{BACKUP}").status_code == 200
    assert live.get_check(BACKUP)["n_pings"] == 3
    assert live.get_check(BILLING)["status"] == "down"
    assert live.ping(f"/ping/{BILLING}").status_code == 200
    assert live.get_check(BILLING)["status"] == "up"
    assert live.api("GET", f"checks/{BACKUP}/pings/").json()["pings"][0]["n"] == 3


def test_running_it_again_changes_nothing(hc, source, db):
    assert hc(*import_args(source, db))[0] == 0
    counts = {t: rows(db, t) for t in ("checks", "pings", "flips", "projects")}
    code, out, err = hc(*import_args(source, db))
    assert code == 0, err
    assert "4 checks: 4 unchanged" in out and "Created a project" not in out
    assert {t: rows(db, t) for t in counts} == counts


def test_a_check_changed_at_the_source_is_updated_under_its_uuid(hc, source, db, serve):
    assert hc(*import_args(source, db))[0] == 0
    original = source.answer

    def renamed(path, key):
        status, ctype, body = original(path, key)
        return status, ctype, body.replace(b'"pg_dump to S3"', b'"pg_dump to B2"')

    source.answer = renamed
    code, out, _ = hc(*import_args(source, db))
    assert code == 0 and "1 updated, 3 unchanged" in out
    live = serve()
    assert len(live.api("GET", "checks/").json()["checks"]) == 4
    assert live.get_check(BACKUP)["desc"] == "pg_dump to B2"


def test_dry_run_writes_nothing(hc, source, db):
    code, out, _ = hc(*import_args(source, db, "--dry-run"))
    assert code == 0 and "would import" in out and "4 new" in out and "nothing written" in out
    assert "hcw_" not in out  # no keys are made up
    assert not db.exists()
    assert hc(*import_args(source, db))[0] == 0
    before = db.stat().st_mtime_ns, rows(db, "pings")
    code, out, _ = hc(*import_args(source, db, "--dry-run"))
    assert code == 0 and "4 unchanged" in out
    assert (db.stat().st_mtime_ns, rows(db, "pings")) == before


def test_ping_key_keeps_slug_urls(hc, source, db, serve):
    assert hc(*import_args(source, db, "--ping-key", "sourcepingkey000000000"))[0] == 0
    live = serve()
    assert live.ping("/ping/sourcepingkey000000000/nightly-backup").status_code == 200
    assert live.ping(f"/ping/{PING_KEY}/nightly-backup").status_code == 404
    assert live.get_check(BACKUP)["n_pings"] == 3


def test_into_a_chosen_project(hc, source, db, serve):
    assert hc("projects", "create", "First", "--db", str(db))[0] == 0
    code, out, _ = hc("projects", "create", "Imported", "--db", str(db))
    chosen = re.search(r"Project uuid:\s+(\S+)", out).group(1)
    key = re.search(r"API key \(read-write\):\s+(\S+)", out).group(1)
    code, out, err = hc(*import_args(source, db, "--project", chosen))
    assert code == 0, err
    assert f"({chosen})" in out and "Created a project" not in out
    code, out, _ = hc("checks", "--project", chosen, "--db", str(db))
    assert out.count(chosen) == 0 and sum(uuid in out for uuid in (BACKUP, BILLING, REPORT, CACHE)) == 4
    live = serve()
    assert len(live.api("GET", "checks/", key=key).json()["checks"]) == 4


def test_a_running_server_keeps_its_store(hc, source, db, serve):
    serve()
    code, out, err = hc(*import_args(source, db))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "is in use by a running hcserver (pid " in lines[0] and "stop it first" in lines[0]
    assert source.requests == []  # the source was not even asked


def fails(hc, source, db, *extra):
    code, out, err = hc(*import_args(source, db, *extra))
    lines = err.strip().splitlines()
    assert code == 1, err
    assert lines[-1].startswith("hcserver: ") and not any("Traceback" in line for line in lines)
    assert not db.exists()
    return lines[-1]


def test_source_errors(hc, db):
    for mode, words in (("401", "answered 401"), ("404", "answered 404"), ("html", "not JSON")):
        with FakeHealthchecks(mode) as source:
            assert words in fails(hc, source, db)
    with FakeHealthchecks("slow") as source:
        assert "did not answer within 0.5 s" in fails(hc, source, db, "--timeout", "0.5")


def test_read_only_key_is_refused(hc, source, db):
    code, _, err = hc("import-healthchecks", "--url", source.url, "--api-key", RO_KEY, "--db", str(db))
    assert code == 1 and "read-only key" in err and not db.exists()


def test_unreachable_source(hc, db):
    with FakeHealthchecks() as source:
        url = source.url
    code, _, err = hc("import-healthchecks", "--url", url, "--api-key", RW_KEY, "--db", str(db))
    assert code == 1 and "cannot reach" in err and not db.exists()


def test_nothing_half_written_when_the_source_fails_late(hc, source, db):
    assert hc(*import_args(source, db))[0] == 0
    before = {t: rows(db, t) for t in ("checks", "pings", "flips")}
    original = source.answer

    def flips_fail(path, key):
        if path.endswith(f"{CACHE}/flips/"):
            return 500, "text/plain", b"oops"
        return original(path, key)

    source.answer = flips_fail
    code, _, err = hc(*import_args(source, db))
    assert code == 1 and "answered HTTP 500" in err
    assert {t: rows(db, t) for t in before} == before


def test_a_started_run_stays_open(hc, source, db, serve):
    original = source.answer
    start = (
        b'{"type": "start", "date": "2026-12-01T02:55:00.500000+00:00", "n": 3, "scheme": "http", '
        b'"remote_addr": "127.0.0.1", "method": "GET", "ua": "curl", "rid": null, "body_url": null}, '
    )

    def running(path, key):
        status, ctype, body = original(path, key)
        if path == "/api/v3/checks/":
            body = body.replace(
                b'"n_pings": 2, "status": "up", "started": false', b'"n_pings": 3, "status": "started", "started": true'
            )
        elif path == f"/api/v3/checks/{BACKUP}/pings/":
            body = body.replace(b'{"pings": [', b'{"pings": [' + start)
        return status, ctype, body

    source.answer = running
    assert hc(*import_args(source, db))[0] == 0
    live = serve()
    check = live.get_check(BACKUP)
    assert check["started"] is True and check["n_pings"] == 3 and check["status"] == "up"
    assert live.ping(f"/ping/{BACKUP}").status_code == 200
    assert live.api("GET", f"checks/{BACKUP}/pings/").json()["pings"][0]["duration"] > 0


def test_a_check_pinged_here_since_keeps_its_state(hc, source, db):
    assert hc(*import_args(source, db))[0] == 0
    live, stop = start_server(make_settings(db=str(db)), FakeClock(time.time()), alerts={})
    try:
        assert live.ping(f"/ping/{BILLING}").status_code == 200
    finally:
        stop()
    code, out, _ = hc(*import_args(source, db))
    assert code == 0 and "1 kept" in out and "3 unchanged" in out and "pinged here since" in out
    live, stop = start_server(make_settings(db=str(db)), FakeClock(time.time()), alerts={})
    try:
        assert live.get_check(BILLING)["status"] == "up" and live.get_check(BILLING)["n_pings"] == 2
    finally:
        stop()
