"""The dashboard over plain HTTP: what the browser tests do not look at."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY, READONLY_KEY, make_settings, start_server
from tests.dashboard.conftest import HTML, Browserless

ADMIN_KEY = "admin-key-0123456789"


def test_api_clients_still_get_the_text_answer_at_the_root(live):
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        r = live.client.get("/", headers=headers)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert r.text.startswith("hcserver: Healthchecks-compatible ping server.")
        assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_the_sign_in_form_has_one_key_field_and_an_xsrf_token(live):
    r = live.client.get("/", headers=HTML)
    assert r.status_code == 200
    assert r.text.count("<input") == 2  # _xsrf and api_key
    assert 'name="api_key"' in r.text and 'name="_xsrf"' in r.text
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]


def test_the_session_cookie_is_httponly_and_samesite(http):
    r = http.sign_in(API_KEY)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("hc_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_the_session_cookie_is_secure_behind_an_https_proxy(http):
    token = http.xsrf()
    r = http.client.post("/signin", data={"api_key": API_KEY, "_xsrf": token}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in r.headers["Set-Cookie"]


def test_a_tampered_session_is_no_session(http):
    http.sign_in(API_KEY)
    value = http.client.cookies["hc_session"]
    http.client.cookies.set("hc_session", value[:-2] + ("00" if not value.endswith("00") else "11"))
    assert 'name="api_key"' in http.get("/").text


def test_sessions_outlive_a_restart(live):
    """The cookie secret is derived from the store's secret alone (the same after a restart)."""
    from hcserver.web.dashboard import cookie_secret

    assert cookie_secret(live.ctx) == cookie_secret(live.ctx)
    assert cookie_secret(live.ctx) != live.ctx.index.hasher.secret


def test_a_post_without_the_xsrf_token_is_refused(http):
    r = http.client.post("/signin", data={"api_key": API_KEY})
    assert r.status_code == 403
    assert "_xsrf" in r.text


def test_read_only_sessions_cannot_see_channels_or_change_anything(live, http):
    uuid = live.create(name="c")["uuid"]
    http.sign_in(READONLY_KEY)
    assert http.get("/channels/").status_code == 403
    assert http.post(f"/checks/{uuid}/pause").status_code == 403
    assert http.post("/checks/").status_code == 403
    assert live.get_check(uuid)["status"] == "new"


def test_pages_need_a_session(live):
    uuid = live.create(name="c")["uuid"]
    for path in (f"/checks/{uuid}", "/channels/", "/events"):
        r = live.client.get(path, headers=HTML)
        assert r.status_code == 302 and r.headers["Location"] == "/", path


def test_a_ping_body_is_served_as_text(live, http):
    uuid = live.create(name="c")["uuid"]
    live.ping(f"/ping/{uuid}", method="POST", content=b"<script>alert(1)</script>")
    http.sign_in(API_KEY)
    r = http.get(f"/checks/{uuid}/pings/1/body")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.content == b"<script>alert(1)</script>"
    assert http.get(f"/checks/{uuid}/pings/2/body").status_code == 404


def test_a_check_of_another_project_is_not_found(live, http):
    http.sign_in(API_KEY)
    assert http.get("/checks/00000000-0000-4000-8000-000000000000").status_code == 404


def test_the_check_page_shows_ping_urls_and_a_crontab_line(live, http):
    uuid = live.create(name="Nightly", schedule="0 3 * * *", tz="UTC")["uuid"]
    http.sign_in(API_KEY)
    text = http.get(f"/checks/{uuid}").text
    assert f"http://hc.test/ping/{uuid}" in text
    assert "http://hc.test/ping/&lt;ping-key&gt;/nightly" in text
    assert f"0 3 * * * curl -fsS -m 10 --retry 5 -o /dev/null http://hc.test/ping/{uuid}/start;" in text


def test_the_new_check_button_respects_the_check_limit(settings, clock):
    live, stop = start_server(make_settings(check_limit=1), clock)
    try:
        session = Browserless(live)
        session.sign_in(API_KEY)
        assert session.post("/checks/").status_code == 303
        r = session.post("/checks/")
        assert r.status_code == 403 and "check limit reached" in r.text
    finally:
        stop()


def test_an_unknown_event_token_asks_the_page_to_reload(http):
    http.sign_in(API_KEY)
    r = http.get("/events?token=nope")
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert r.text == "event: reload\ndata: {}\n\n"


# -- channels ----------------------------------------------------------------------------------------


def test_channels_are_added_with_the_apis_checks(live, http):
    http.sign_in(API_KEY)
    r = http.post("/channels/", name="hook", kind="webhook", url_down="", url_up="", method_down="GET",
                  method_up="GET", body_down="", body_up="", headers_down="", headers_up="")  # fmt: skip
    assert r.status_code == 400
    assert "json validation error: url_down and url_up are both empty" in r.text
    r = http.post("/channels/", name="hook", kind="webhook", url_down="http://127.0.0.1:9/x", method_down="POST",
                  method_up="GET", body_down="", body_up="", headers_down="", headers_up="", url_up="")  # fmt: skip
    assert r.status_code == 400
    assert "json validation error: url_down points to a private address 127.0.0.1" in r.text
    r = http.post("/channels/", name="Ops <b>", kind="email", email="ops@example.org")
    assert r.status_code == 303
    channels = live.api("GET", "channels/").json()["channels"]
    assert [(c["name"], c["kind"]) for c in channels] == [("Ops <b>", "email")]
    page = http.get("/channels/").text
    assert "Ops &lt;b&gt;" in page and "ops@example.org" in page


def test_a_channel_is_edited_tested_and_deleted(live, http):
    http.sign_in(API_KEY)
    http.post("/channels/", name="Ops", kind="email", email="ops@example.org")
    channel_id = live.api("GET", "channels/").json()["channels"][0]["id"]
    r = http.post(f"/channels/{channel_id}", name="Ops", kind="email", email="not an address")
    assert r.status_code == 400 and "json validation error: email is not a valid email address" in r.text
    r = http.post(f"/channels/{channel_id}", name="On call", kind="email", email="oncall@example.org")
    assert r.status_code == 303
    assert live.api("GET", f"channels/{channel_id}").json()["email"] == "oncall@example.org"
    # No mail server listens on this machine's port 25 in the tests: the test fails, and says so.
    r = http.post(f"/channels/{channel_id}/test")
    assert r.status_code == 303
    page = http.get(r.headers["Location"]).text
    assert "The test notification failed" in page or "Test notification sent." in page
    assert live.api("GET", f"channels/{channel_id}").json()["last_notify"] is not None
    assert http.post(f"/channels/{channel_id}/delete").status_code == 303
    assert live.api("GET", "channels/").json()["channels"] == []


# -- the admin key -----------------------------------------------------------------------------------


@pytest.fixture
def admin_live(clock):
    live, stop = start_server(make_settings(admin_key=ADMIN_KEY), clock)
    try:
        yield live
    finally:
        stop()


def test_the_admin_key_signs_in_to_a_project_picker(admin_live):
    r = admin_live.client.post("/api/v3/projects/", json={"name": "Team B"}, headers={"X-Api-Key": ADMIN_KEY})
    team_b = r.json()["id"]
    session = Browserless(admin_live)
    r = session.sign_in(ADMIN_KEY)
    assert r.status_code == 303 and r.headers["Location"] == "/projects/"
    assert session.get("/").headers["Location"] == "/projects/"
    picker = session.get("/projects/").text
    assert "Default" in picker and "Team B" in picker
    r = session.post("/projects/", project=team_b)
    assert r.status_code == 303
    page = session.get("/").text
    assert "Team B" in page and "New check" in page


def test_the_project_picker_is_the_admins_only(admin_live):
    session = Browserless(admin_live)
    session.sign_in(API_KEY)
    assert session.get("/projects/").status_code == 403


def test_an_open_event_stream_does_not_hold_up_a_stop(settings, clock):
    import re
    import threading
    import time

    live, stop = start_server(settings, clock)
    session = Browserless(live)
    session.sign_in(API_KEY)
    token = re.search(r'data-token="([^"]+)"', session.get("/").text).group(1)
    opened = threading.Event()
    lines = []

    def listen():
        with session.client.stream("GET", f"/events?token={token}") as r:
            opened.set()
            lines.extend(r.iter_lines())

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(5)
    started = time.monotonic()
    stop()  # gives open connections up to 1 s before closing them
    took = time.monotonic() - started
    reader.join(5)
    assert took < 0.9
    assert lines[0] == "retry: 1000"
