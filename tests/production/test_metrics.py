"""Prometheus metrics, read with prometheus_client's parser: a project's (the reference's text,
behind its read-only key) and the server's own (behind the admin key or HC_METRICS_KEY)."""

from __future__ import annotations

import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import API_KEY, READONLY_KEY, make_settings, start_server
from tests.production.conftest import ADMIN_KEY, METRICS_KEY


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def project_id(live) -> str:
    r = live.client.get("/api/v3/projects/", headers={"X-Api-Key": ADMIN_KEY})
    assert r.status_code == 200, r.text
    [project] = r.json()["projects"]
    return project["id"]


def test_a_projects_metrics_are_the_references_text(full):
    check = full.create(name="Alice Was Here", tags="foo", timeout=60, grace=60)
    full.ping(f"/ping/{check['uuid']}")
    code = project_id(full)
    r = full.client.get(f"/projects/{code}/metrics/{READONLY_KEY}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    key = full.api("GET", "checks/", key=READONLY_KEY).json()["checks"][0]["unique_key"]
    labels = f'{{name="Alice Was Here", tags="foo", unique_key="{key}"}}'
    assert r.text == (
        "# HELP hc_check_up Whether the check is currently up (1 for yes, 0 for no).\n"
        "# TYPE hc_check_up gauge\n"
        f"hc_check_up{labels} 1\n"
        "\n"
        "# HELP hc_check_started Whether the check is currently started (1 for yes, 0 for no).\n"
        "# TYPE hc_check_started gauge\n"
        f"hc_check_started{labels} 0\n"
        "\n"
        "# HELP hc_check_grace Whether the check is currently in the grace period (1 for yes, 0 for no).\n"
        "# TYPE hc_check_grace gauge\n"
        f"hc_check_grace{labels} 0\n"
        "\n"
        "# HELP hc_check_paused Whether the check is currently paused (1 for yes, 0 for no).\n"
        "# TYPE hc_check_paused gauge\n"
        f"hc_check_paused{labels} 0\n"
        "\n"
        "# HELP hc_tag_up Whether all checks with this tag are up (1 for yes, 0 for no).\n"
        "# TYPE hc_tag_up gauge\n"
        'hc_tag_up{tag="foo"} 1\n'
        "\n"
        "# HELP hc_checks_total The total number of checks.\n"
        "# TYPE hc_checks_total gauge\n"
        "hc_checks_total 1\n"
        "\n"
        "# HELP hc_checks_down_total The number of checks currently down.\n"
        "# TYPE hc_checks_down_total gauge\n"
        "hc_checks_down_total 0\n"
    )


def test_a_projects_metrics_follow_each_status(full):
    made = {}
    for name, tags in [
        ("up", "prod"),
        ("down", "prod db"),
        ("grace", "batch"),
        ("paused", ""),
        ("started", "batch"),
        ("new", ""),
        ('odd "name"\nwith \\ things', 'a\\b q"t'),
    ]:
        made[name] = full.create(name=name, tags=tags, timeout=60, grace=60)
    full.ping(f"/ping/{made['grace']['uuid']}")
    full.advance(90)  # grace: 60 s timeout passed, 60 s grace not yet
    for name in ("up", "paused"):
        full.ping(f"/ping/{made[name]['uuid']}")
    full.ping(f"/ping/{made['down']['uuid']}/fail")
    full.ping(f"/ping/{made['started']['uuid']}/start")
    assert full.api("POST", f"checks/{made['paused']['uuid']}/pause").status_code == 200
    code = project_id(full)
    r = full.client.get(f"/projects/{code}/metrics/", headers={"Authorization": "Bearer " + READONLY_KEY})
    assert r.status_code == 200
    found = samples(r.text)
    keys = {c["name"]: c["unique_key"] for c in full.api("GET", "checks/", key=READONLY_KEY).json()["checks"]}

    def value(metric: str, name: str) -> float:
        [(labels, v)] = [(labels, v) for (n, labels), v in found.items() if n == metric and ("name", name) in labels]
        assert dict(labels)["unique_key"] == keys[name]
        return v

    expected = {  # name: (up, started, grace, paused)
        "up": (1, 0, 0, 0),
        "down": (0, 0, 0, 0),
        "grace": (1, 0, 1, 0),
        "paused": (1, 0, 0, 1),
        "started": (1, 1, 0, 0),
        "new": (1, 0, 0, 0),
    }
    for name, values in expected.items():
        got = tuple(value(m, name) for m in ("hc_check_up", "hc_check_started", "hc_check_grace", "hc_check_paused"))
        assert got == values, name
    odd = [labels for (n, labels), _ in found.items() if n == "hc_check_up" and ("tags", 'a\\b q"t') in labels]
    assert dict(odd[0])["name"] == 'odd "name"\nwith \\ things'
    assert 'name="odd \\"name\\"\\nwith \\\\ things"' in r.text
    assert found[("hc_tag_up", (("tag", "prod"),))] == 0  # "down" has it
    assert found[("hc_tag_up", (("tag", "db"),))] == 0
    assert found[("hc_tag_up", (("tag", "batch"),))] == 1
    assert found[("hc_tag_up", (("tag", 'q"t'),))] == 1
    assert found[("hc_checks_total", ())] == 7
    assert found[("hc_checks_down_total", ())] == 1


def test_a_projects_metrics_take_only_its_read_only_key(full):
    code = project_id(full)
    get = full.client.get
    assert get(f"/projects/{code}/metrics/{READONLY_KEY}").status_code == 200
    assert get(f"/projects/{code}/checks/metrics/{READONLY_KEY}").status_code == 200  # the reference's older URL
    assert get(f"/projects/{code}/metrics/{API_KEY}").status_code == 403  # read-write: refused
    assert get(f"/projects/{code}/metrics/{'x' * 32}").status_code == 403
    assert get(f"/projects/{code}/metrics/{READONLY_KEY}R").status_code == 400
    assert get(f"/projects/{code}/metrics/").status_code == 401
    assert get(f"/projects/{code}/metrics/", headers={"Authorization": READONLY_KEY}).status_code == 401
    bearer = {"Authorization": "Bearer " + API_KEY}
    assert get(f"/projects/{code}/metrics/", headers=bearer).status_code == 403
    # The dashboard's project picker keeps its path beside them.
    assert get("/projects/").status_code in (200, 302, 303)


def test_the_servers_metrics_need_a_key(full):
    get = full.client.get
    assert get("/metrics").status_code == 401
    assert get("/metrics", headers={"Authorization": "Bearer " + API_KEY}).status_code == 401
    for key in (ADMIN_KEY, METRICS_KEY):
        r = get("/metrics", headers={"Authorization": "Bearer " + key})
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_the_servers_metrics_are_not_found_without_a_key(tmp_path, clock):
    live, stop = start_server(make_settings(db=str(tmp_path / "hc.sqlite3")), clock, alerts={})
    try:
        assert live.client.get("/metrics").status_code == 404
        assert live.client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 404
    finally:
        stop()


def wait_for(live, predicate, limit: float = 10.0):
    deadline = time.monotonic() + limit
    while True:
        r = live.client.get("/metrics", headers={"Authorization": "Bearer " + METRICS_KEY})
        assert r.status_code == 200
        found = samples(r.text)
        if predicate(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_the_servers_metrics_count_what_happened(full, receiver):
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{refused.getsockname()[1]}/"
    refused.close()  # nothing listens there: every attempt fails
    for name, url in (("ok", receiver.url("/ok/")), ("dead", dead)):
        body = {"name": name, "kind": "webhook", "url_down": url, "url_up": ""}
        assert full.api("POST", "channels/", json=body).status_code == 201
    a = full.create(name="a", timeout=60, grace=60, channels="*")
    b = full.create(name="b", timeout=60, grace=60)
    c = full.create(name="c", timeout=60, grace=60)
    full.ping(f"/ping/{a['uuid']}")
    full.ping(f"/ping/{a['uuid']}/start")
    full.ping(f"/ping/{b['uuid']}/log")
    full.ping(f"/ping/{c['uuid']}")
    full.ping(f"/{c['uuid']}/fail")  # up -> down
    assert full.ping("/ping/00000000-0000-4000-8000-000000000000").status_code == 404
    assert full.ping(f"/ping/{a['uuid']}/256").status_code == 400
    full.api("POST", f"checks/{b['uuid']}/pause")
    full.advance(200)  # a: its run outlives its grace: down, and alerted
    found = wait_for(
        full,
        lambda f: (
            f.get(("hcserver_notifications_total", (("kind", "webhook"), ("outcome", "failed")))) == 1
            and f.get(("hcserver_flushes_total", ()), 0) > 0
        ),
    )

    def one(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert one("hcserver_pings_total", kind="success") == 2
    assert one("hcserver_pings_total", kind="start") == 1
    assert one("hcserver_pings_total", kind="log") == 1
    assert one("hcserver_pings_total", kind="fail") == 1
    assert one("hcserver_ping_answers_total", code="200") == 5
    assert one("hcserver_ping_answers_total", code="404") == 1
    assert one("hcserver_ping_answers_total", code="400") == 1
    assert one("hcserver_checks", status="down") == 2
    assert one("hcserver_checks", status="paused") == 1
    assert one("hcserver_checks", status="up") == 0
    assert one("hcserver_checks", status="started") == 0  # a's run made it down
    assert one("hcserver_flips_total", status="up") == 2
    assert one("hcserver_flips_total", status="down") == 2
    assert one("hcserver_flips_total", status="paused") == 1
    assert one("hcserver_notifications_total", kind="webhook", outcome="sent") == 1
    assert one("hcserver_notifications_total", kind="webhook", outcome="failed") == 1
    assert one("hcserver_notification_attempts_failed_total", kind="webhook") == 3
    assert one("hcserver_writebehind_pending") >= 0
    assert one("hcserver_writebehind_oldest_pending_seconds") >= 0
    assert one("hcserver_flush_errors_total") == 0
    assert one("hcserver_writer_restarts_total") == 0
    assert one("hcserver_flush_duration_seconds_count") == one("hcserver_flushes_total")
    assert one("hcserver_flush_duration_seconds_bucket", le="+Inf") == one("hcserver_flushes_total")
    assert one("hcserver_commit_lag_seconds_count") > 0
    assert one("hcserver_open_connections") >= 1
    assert one("hcserver_recovery_seconds") > 0
    assert one("process_resident_memory_bytes") > 10_000_000
    assert one("hcserver_projects") == 1


def test_the_started_gauge_counts_open_runs(full):
    check = full.create(name="job", timeout=60, grace=600)
    full.ping(f"/ping/{check['uuid']}/start")
    found = wait_for(full, lambda f: True)
    assert found[("hcserver_checks", (("status", "started"),))] == 1
    assert found[("hcserver_checks", (("status", "new"),))] == 1


@pytest.mark.parametrize("path", ["/metrics", "/metrics?x=1"])
def test_the_metrics_path_is_no_ping(full, path):
    assert "Server" in full.client.get(path).headers  # answered by tornado.web, not the ping path


def test_the_dashboard_shows_the_project_uuid(full):
    from tests.dashboard.conftest import Browserless

    session = Browserless(full)
    try:
        assert session.sign_in(READONLY_KEY).status_code in (200, 302, 303)
        page = session.get("/", follow_redirects=True).text
    finally:
        session.client.close()
    code = project_id(full)
    assert f"Project uuid <code>{code}</code>" in page
    assert f"/projects/{code}/metrics/" in page
