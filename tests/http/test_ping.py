"""The Pinging API over real HTTP: every route form (UUID and ping key + slug, under /ping/ and at the
root, each action), methods and the CORS preflight, status codes and bodies of the answers and of
the errors, the answer headers, ?create=1 and ?rid=, bodies stored raw and cut at the limit, the
recorded fields, the state changes pings cause (runs, grace, pause, keyword filters), and the
connection itself (HTTP/1.0, HEAD, a garbage request line, IPv6 loopback)."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import PING_KEY

RID = "123e4567-e89b-12d3-a456-426614174000"
RID2 = "223e4567-e89b-12d3-a456-426614174000"


@pytest.fixture
def check(live):
    return live.create(name="Database Backup", timeout=3600, grace=600)


def pings(live, uuid):
    return live.api("GET", f"checks/{uuid}/pings/").json()["pings"]


@pytest.mark.parametrize("prefix", ["/ping/", "/"])
@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize(
    ("suffix", "kind"), [("", "success"), ("/start", "start"), ("/fail", "fail"), ("/log", "log"), ("/0", "success"),
                         ("/7", "fail")]
)  # fmt: skip
def test_uuid_routes(live, check, prefix, slash, suffix, kind):
    r = live.ping(prefix + check["uuid"] + suffix + slash)
    assert r.status_code == 200
    assert r.text == "OK"
    assert pings(live, check["uuid"])[0]["type"] == kind


@pytest.mark.parametrize("prefix", ["/ping/", "/"])
@pytest.mark.parametrize(("suffix", "kind"), [("", "success"), ("/start", "start"), ("/fail", "fail"),
                                              ("/log", "log"), ("/0", "success"), ("/255", "fail")])  # fmt: skip
def test_slug_routes(live, check, prefix, suffix, kind):
    r = live.ping(f"{prefix}{PING_KEY}/database-backup{suffix}/")
    assert r.status_code == 200, r.text
    assert pings(live, check["uuid"])[0]["type"] == kind


def test_answer_headers(live, check):
    r = live.ping(f"/ping/{check['uuid']}")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["ping-body-limit"] == "10000"
    assert r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "HEAD"])
def test_methods(live, check, method):
    r = live.ping(f"/ping/{check['uuid']}", method=method)
    assert r.status_code == 200
    assert r.content == (b"" if method == "HEAD" else b"OK")
    assert r.headers["content-length"] == "2"
    assert pings(live, check["uuid"])[0]["method"] == method


def test_options_preflight(live, check):
    r = live.ping(f"/ping/{check['uuid']}", method="OPTIONS")
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert live.get_check(check["uuid"])["n_pings"] == 0


def test_other_method_refused(live, check):
    r = live.ping(f"/ping/{check['uuid']}", method="DELETE")
    assert r.status_code == 405
    assert live.get_check(check["uuid"])["n_pings"] == 0


def test_unknown_uuid_404_before_exit_status(live):
    unknown = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"
    assert (live.ping(f"/ping/{unknown}").status_code, live.ping(f"/ping/{unknown}").text) == (404, "not found")
    assert live.ping(f"/ping/{unknown}/256").status_code == 404


def test_exit_status_over_255(live, check):
    for code in ("256", "999", "99999999999999999999999999"):
        r = live.ping(f"/ping/{check['uuid']}/{code}")
        assert (r.status_code, r.text) == (400, "invalid url format")
    assert live.get_check(check["uuid"])["n_pings"] == 0


@pytest.mark.parametrize("rid", ["", "nope", "123e4567e89b12d3a456426614174000", RID + "0"])
def test_bad_rid(live, check, rid):
    r = live.ping(f"/ping/{check['uuid']}?rid={rid}")
    assert (r.status_code, r.text) == (400, "invalid uuid format")
    assert live.get_check(check["uuid"])["n_pings"] == 0


def test_rid_is_case_insensitive(live, check):
    assert live.ping(f"/ping/{check['uuid']}/start?rid={RID.upper()}").status_code == 200
    assert live.ping(f"/ping/{check['uuid']}?rid={RID}").status_code == 200
    latest = pings(live, check["uuid"])[0]
    assert latest["rid"] == RID and "duration" in latest


def test_uppercase_slug_400_before_lookup(live):
    r = live.ping("/ping/unknown-ping-key/Database-Backup")
    assert (r.status_code, r.text) == (400, "invalid url format")


def test_slug_not_found_and_unknown_key(live, check):
    assert live.ping(f"/ping/{PING_KEY}/nothing-here").status_code == 404
    assert live.ping("/ping/abcdefghijklmnopqrstuv/database-backup").status_code == 404


def test_ambiguous_slug_409(live):
    live.create(name="Same")
    live.create(name="Same")
    r = live.ping(f"/ping/{PING_KEY}/same")
    assert (r.status_code, r.text) == (409, "ambiguous slug")
    assert live.ping(f"/ping/{PING_KEY}/same?create=1").status_code == 409


def test_create_on_slug(live):
    r = live.ping(f"/ping/{PING_KEY}/new-job?create=1")
    assert (r.status_code, r.text) == (201, "Created")
    assert r.headers["ping-body-limit"] == "10000"
    [created] = live.api("GET", "checks/?slug=new-job").json()["checks"]
    assert created["name"] == "new-job" and created["n_pings"] == 1 and created["status"] == "up"
    # a second ping finds it: 200, not another check
    assert live.ping(f"/ping/{PING_KEY}/new-job?create=1").status_code == 200
    assert len(live.api("GET", "checks/").json()["checks"]) == 1


@pytest.mark.parametrize("value", ["0", "true", "", "11"])
def test_create_other_values_are_off(live, value):
    assert live.ping(f"/ping/{PING_KEY}/new-job?create={value}").status_code == 404


def test_create_with_bad_rid_creates_nothing(live):
    assert live.ping(f"/ping/{PING_KEY}/new-job?create=1&rid=bad").status_code == 400
    assert live.api("GET", "checks/").json()["checks"] == []


def test_body_stored_raw_and_truncated(live, check):
    raw = bytes(range(256)) * 50  # 12,800 bytes, not UTF-8
    assert live.ping(f"/ping/{check['uuid']}/fail", method="POST", content=raw).status_code == 200
    [ping] = pings(live, check["uuid"])
    body = live.api("GET", f"checks/{check['uuid']}/pings/{ping['n']}/body")
    assert body.status_code == 200
    assert body.content == raw[:10000]


def test_huge_body_is_counted_not_lost(live, check):
    big = b"x" * (3 * 1024 * 1024)  # above the reference's 2.5 MB refusal
    r = live.ping(f"/ping/{check['uuid']}", method="POST", content=big)
    assert r.status_code == 200
    assert live.get_check(check["uuid"])["n_pings"] == 1


def test_body_over_hard_cap_413(clock):
    from tests.conftest import make_settings, start_server

    server, stop = start_server(make_settings(max_request_body=100_000), clock)
    try:
        uuid = server.create(name="x")["uuid"]
        r = server.ping(f"/ping/{uuid}", method="POST", content=b"y" * 200_000)
        assert r.status_code == 413
        # chunked, no Content-Length: refused as it streams past the cap
        r = server.ping(f"/ping/{uuid}", method="POST", content=iter([b"z" * 60_000] * 4))
        assert r.status_code == 413
        assert server.get_check(uuid)["n_pings"] == 0
    finally:
        stop()


def test_recorded_fields(live, check):
    live.ping(
        f"/ping/{check['uuid']}",
        headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Proto": "https",
                 "User-Agent": "u" * 300},
    )  # fmt: skip
    [ping] = pings(live, check["uuid"])
    assert ping["remote_addr"] == "203.0.113.9"
    assert ping["scheme"] == "https"
    assert ping["ua"] == "u" * 200
    assert ping["n"] == 1 and ping["body_url"] is None


def test_hostile_forwarded_for_falls_back_to_peer(live, check):
    live.ping(f"/ping/{check['uuid']}", headers={"X-Forwarded-For": "1.2.3.4, <script>"})
    assert pings(live, check["uuid"])[0]["remote_addr"] == "127.0.0.1"


def test_state_changes(live, check):
    uuid = check["uuid"]
    live.ping(f"/ping/{uuid}/start")
    c = live.get_check(uuid)
    assert (c["status"], c["started"]) == ("new", True)
    live.clock.advance(42)
    live.ping(f"/ping/{uuid}")
    c = live.get_check(uuid)
    assert (c["status"], c["started"], c["last_duration"]) == ("up", False, 42)
    live.ping(f"/ping/{uuid}/fail")
    assert live.get_check(uuid)["status"] == "down"
    live.ping(f"/ping/{uuid}/log", method="POST", content=b"just a log line")
    c = live.get_check(uuid)
    assert (c["status"], c["n_pings"]) == ("down", 4)


def test_post_only_check_ignores_get(live):
    uuid = live.create(name="p", methods="POST")["uuid"]
    assert live.ping(f"/ping/{uuid}").status_code == 200
    c = live.get_check(uuid)
    assert (c["status"], c["n_pings"]) == ("new", 1)
    assert pings(live, uuid)[0]["type"] == "ign"
    live.ping(f"/ping/{uuid}", method="POST")
    assert live.get_check(uuid)["status"] == "up"


def test_paused_manual_resume_ignores(live):
    uuid = live.create(name="m", manual_resume=True)["uuid"]
    live.api("POST", f"checks/{uuid}/pause")
    live.ping(f"/ping/{uuid}")
    assert live.get_check(uuid)["status"] == "paused"
    assert pings(live, uuid)[0]["type"] == "ign"


def test_paused_without_manual_resume_unpauses(live, check):
    live.api("POST", f"checks/{check['uuid']}/pause")
    live.ping(f"/ping/{check['uuid']}/fail")
    assert live.get_check(check["uuid"])["status"] == "down"


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"all FAILED here", "fail"), (b"SUCCESS!", "success"), (b"STARTING", "start"), (b"nothing", "ign"),
     (b"SUCCESS but FAILED", "fail")],
)  # fmt: skip
def test_keyword_filter(live, body, kind):
    uuid = live.create(name="k", filter_http_body=True, success_kw="SUCCESS, OK", failure_kw="FAILED",
                       start_kw="STARTING")["uuid"]  # fmt: skip
    live.ping(f"/ping/{uuid}", method="POST", content=body)
    assert pings(live, uuid)[0]["type"] == kind


def test_keyword_filter_default_fail(live):
    uuid = live.create(name="k", filter_http_body=True, success_kw="OK", filter_default_fail=True)["uuid"]
    live.ping(f"/ping/{uuid}", method="POST", content=b"nothing matches")
    assert pings(live, uuid)[0]["type"] == "fail"


def test_overlapping_runs_keep_their_durations(live, check):
    uuid = check["uuid"]
    live.ping(f"/ping/{uuid}/start?rid={RID}")
    live.clock.advance(10)
    live.ping(f"/ping/{uuid}/start?rid={RID2}")
    live.clock.advance(5)
    live.ping(f"/ping/{uuid}?rid={RID}")  # run 1 ends after 15 s; run 2 still open
    assert live.get_check(uuid)["started"] is True
    live.clock.advance(20)
    live.ping(f"/ping/{uuid}/fail?rid={RID2}")  # run 2 ends after 25 s
    got = {p["rid"]: p.get("duration") for p in pings(live, uuid) if p["type"] in ("success", "fail")}
    assert got == {RID: 15.0, RID2: 25.0}
    assert live.get_check(uuid)["started"] is False


def test_run_past_grace_is_down(live, check):
    uuid = check["uuid"]
    live.ping(f"/ping/{uuid}")
    live.ping(f"/ping/{uuid}/start?rid={RID}")
    live.clock.advance(601)
    assert live.get_check(uuid)["status"] == "down"


def test_every_ping_counts(live, check):
    uuid = check["uuid"]
    for suffix in ("", "/start", "/log", "/fail"):
        live.ping(f"/ping/{uuid}{suffix}")
    live.api("POST", f"checks/{uuid}", json={"methods": "POST"})
    live.ping(f"/ping/{uuid}")  # ign
    assert live.get_check(uuid)["n_pings"] == 5


def raw_request(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((host, port))
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_http_1_0(live, check):
    answer = raw_request(live.server.port, f"GET /{check['uuid']} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == b"OK"


def test_head_over_raw_socket_has_no_body(live, check):
    answer = raw_request(live.server.port, f"HEAD /{check['uuid']} HTTP/1.0\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Length: 2" in head and body == b""


def test_garbage_request_line_does_not_kill_server(live, check):
    raw_request(live.server.port, b"\x00\xff garbage \r\n\r\n")
    raw_request(live.server.port, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n")
    assert live.ping(f"/ping/{check['uuid']}").status_code == 200


def test_ipv6_loopback(clock):
    from tests.conftest import make_settings, start_server

    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server, stop = start_server(make_settings(host="::1"), clock)
    try:
        uuid = server.create(name="six")["uuid"]
        assert server.ping(f"/ping/{uuid}").status_code == 200
        assert server.get_check(uuid)["n_pings"] == 1
    finally:
        stop()


def test_repeated_forwarded_for_lines_form_one_list(live, check):
    answer = raw_request(
        live.server.port,
        f"GET /{check['uuid']} HTTP/1.0\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-For: 127.0.0.5\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert pings(live, check["uuid"])[0]["remote_addr"] == "198.51.100.7"
