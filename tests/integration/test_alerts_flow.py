"""Alerts end to end: deadlines -> flips -> notifications -> a real webhook receiver / SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import time
import urllib.parse

from tests.conftest import make_settings, start_server


def webhook(live, receiver, down="/ok/down", up="/ok/up", **extra):
    body = {
        "name": "hook",
        "kind": "webhook",
        "url_down": receiver.url(down + "?code=$CODE&name=$NAME&status=$STATUS"),
        "method_down": "POST",
        "body_down": '{"name": $NAME_JSON, "tags": "$TAGS", "tag1": "$TAG1", "body": $BODY_JSON, "exit": $EXITSTATUS}',
        "headers_down": {"Content-Type": "application/json", "X-Check": "$SLUG"},
        "url_up": receiver.url(up + "?status=$STATUS"),
        **extra,
    }
    r = live.api("POST", "channels/", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_deadline_sends_exactly_one_down_webhook_with_placeholders(full, receiver):
    channel = webhook(full, receiver)
    check = full.create(name="Nightly DB", tags="prod db", timeout=60, grace=60, channels="*")
    full.ping(f"/ping/{check['uuid']}/fail", method="POST", content=b"disk full")  # new -> down: alert
    first = receiver.wait_for(1)
    assert len(first) == 1
    receiver.hits.clear()
    full.ping(f"/ping/{check['uuid']}")  # down -> up: one up alert
    [up] = receiver.wait_for(1)
    assert up.path.startswith("/ok/up?status=up")
    receiver.hits.clear()

    full.advance(119)
    time.sleep(0.2)
    assert receiver.hits == []  # not due yet
    full.advance(2)  # past last_ping + timeout + grace
    [hit] = receiver.wait_for(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(hit.path).query)
    assert query == {"code": [check["uuid"]], "name": ["Nightly DB"], "status": ["down"]}
    assert hit.method == "POST" and hit.headers["X-Check"] == "nightly-db"
    payload = json.loads(hit.body)
    assert payload == {"name": "Nightly DB", "tags": "prod db", "tag1": "prod", "body": "", "exit": -1}
    time.sleep(0.3)
    assert len(receiver.hits) == 1  # exactly one
    assert full.get_check(check["uuid"])["status"] == "down"
    flips = full.api("GET", f"checks/{check['uuid']}/flips/").json()["flips"]
    assert [f["up"] for f in flips][:1] == [0]
    assert full.api("GET", f"channels/{channel['id']}").json()["last_error"] == ""


def test_new_to_up_and_paused_to_up_send_nothing(full, receiver):
    webhook(full, receiver)
    check = full.create(name="quiet", channels="*")
    full.ping(f"/ping/{check['uuid']}")
    full.api("POST", f"checks/{check['uuid']}/pause")
    full.ping(f"/ping/{check['uuid']}")
    time.sleep(0.3)
    assert receiver.hits == []


def test_fail_ping_body_and_exit_status_fill_the_alert(full, receiver):
    webhook(full, receiver)
    check = full.create(name="job", channels="*")
    full.ping(f"/ping/{check['uuid']}/3", method="POST", content=b"exit three\n")
    [hit] = receiver.wait_for(1)
    assert json.loads(hit.body)["body"] == "exit three\n" and json.loads(hit.body)["exit"] == 3


def test_flaky_receiver_gets_three_attempts_and_success_is_recorded(full, receiver):
    channel = webhook(full, receiver, down="/flaky/2")
    check = full.create(name="flaky", channels="*")
    full.ping(f"/ping/{check['uuid']}/fail")
    hits = receiver.wait_for(3, completed=True)
    assert [h.answered for h in hits] == [500, 500, 200]
    time.sleep(0.2)
    assert len(receiver.hits) == 3
    state = full.api("GET", f"channels/{channel['id']}").json()
    assert state["last_error"] == "" and state["last_notify"] is not None and state["disabled"] is False


def test_permanent_error_is_not_retried_and_disables_the_channel(full, receiver):
    channel = webhook(full, receiver, down="/code/404")
    check = full.create(name="p", channels="*")
    full.ping(f"/ping/{check['uuid']}/fail")
    assert [h.answered for h in receiver.wait_for(1, completed=True)] == [404]
    deadline = time.monotonic() + 10
    while not (state := full.api("GET", f"channels/{channel['id']}").json())["disabled"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert state["last_error"] == "Received status code 404"
    # a disabled channel is skipped by later flips, until the user updates it
    full.ping(f"/ping/{check['uuid']}")
    full.ping(f"/ping/{check['uuid']}/fail")
    time.sleep(0.3)
    assert len(receiver.hits) == 1


def test_hanging_receiver_delays_neither_pings_nor_the_other_channel(full, receiver):
    slow = webhook(full, receiver, down="/hang/a")
    fast = full.api("POST", "channels/", json={"name": "fast", "kind": "webhook", "url_down": receiver.url("/ok/fast")})
    check = full.create(name="two", channels=f"{slow['id']},{fast.json()['id']}")
    assert full.ping(f"/ping/{check['uuid']}/fail").status_code == 200
    hits = receiver.wait_for(2)
    assert sorted(h.path.split("?")[0] for h in hits) == ["/hang/a", "/ok/fast"]
    assert [h.path for h in receiver.wait_for(1, completed=True)] == ["/ok/fast"]
    # pings are answered while the slow delivery still hangs
    for _ in range(20):
        assert full.ping(f"/ping/{check['uuid']}/log").status_code == 200
    assert not any(h.path.startswith("/hang") for h in receiver.completed)


def test_email_arrives_with_subject_and_body(tmp_path, clock, smtp_server):
    smtp = smtp_server
    env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port), "DEFAULT_FROM_EMAIL": "hc@example.org"}
    live, stop = start_server(make_settings(db=str(tmp_path / "hc.sqlite3")), clock, alerts=env)
    try:
        r = live.api("POST", "channels/", json={"name": "mail", "kind": "email", "email": "oncall@example.org"})
        assert r.status_code == 201, r.text
        check = live.create(name="Backups", channels="*")
        live.ping(f"/ping/{check['uuid']}/fail", method="POST", content=b"tar: short read")
        deadline = time.monotonic() + 10
        while not smtp.recorder.messages and time.monotonic() < deadline:
            time.sleep(0.02)
        [envelope] = smtp.recorder.messages
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert message["Subject"] == "DOWN | Backups"
        assert envelope.rcpt_tos == ["oncall@example.org"]
        text = message.get_content()
        assert "Backups" in text and "tar: short read" in text
    finally:
        stop()
