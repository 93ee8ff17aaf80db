"""The dashboard in Chromium: sign-in, the checks page, live updates, a check's page, read-only
sessions, XSRF and markup in names. Every wait is bounded (WAIT_MS, or less where said)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import API_KEY, READONLY_KEY
from tests.dashboard.conftest import sign_in

XSS = "<img src=x onerror=alert(1)>"


def row(page, uuid):
    return page.locator(f"#c-{uuid}")


def test_a_wrong_key_gets_the_form_again_with_an_error(live, page):
    sign_in(page, live, "hcw_" + "z" * 28)
    assert page.locator("[role=alert]").inner_text() == "That key does not sign in here."
    assert page.locator("input[name=api_key]").is_visible()
    sign_in(page, live, "short")
    assert page.locator("[role=alert]").inner_text() == "That key does not sign in here."


def test_the_read_write_key_signs_in_with_full_control(live, page):
    sign_in(page, live, API_KEY)
    assert page.locator("h1").inner_text() == "Checks"
    assert page.locator("#new-check").is_visible()
    page.click("#new-check")
    page.wait_for_url("**/checks/*")
    assert page.locator("#save").is_visible()
    assert len(live.api("GET", "checks/").json()["checks"]) == 1


def test_statuses_new_up_down_paused_and_the_title(live, page):
    new = live.create(name="fresh")["uuid"]
    up = live.create(name="healthy")["uuid"]
    down = live.create(name="broken")["uuid"]
    paused = live.create(name="resting")["uuid"]
    live.ping(f"/ping/{up}")
    live.ping(f"/ping/{down}/fail")
    live.api("POST", f"checks/{paused}/pause")
    sign_in(page, live, API_KEY)
    for uuid, status in ((new, "new"), (up, "up"), (down, "down"), (paused, "paused")):
        assert row(page, uuid).get_attribute("data-status") == status
        assert row(page, uuid).locator(".word").inner_text() == status
        assert row(page, uuid).locator(".icon").inner_text() != ""
    assert page.title() == "1 down - hcserver"
    assert row(page, up).locator("td.schedule").inner_text() == "every 1 day, grace 1 hour"
    assert row(page, up).locator("time").inner_text() == "just now"


def test_a_ping_turns_a_row_up_without_a_reload(live, page):
    uuid = live.create(name="nightly")["uuid"]
    other = live.create(name="other")["uuid"]
    sign_in(page, live, API_KEY)
    page.wait_for_function("document.getElementById('live').textContent === 'Live.'", timeout=5000)
    page.evaluate("window.notReloaded = true")
    live.ping(f"/ping/{uuid}")
    page.wait_for_function(f"document.getElementById('c-{uuid}').dataset.status === 'up'", timeout=2000)
    live.ping(f"/ping/{other}/fail")
    page.wait_for_function("document.title === '1 down - hcserver'", timeout=2000)
    assert row(page, other).locator(".word").inner_text() == "down"
    # A check made and one deleted elsewhere appear and go without a reload too.
    made = live.create(name="made elsewhere")["uuid"]
    live.api("DELETE", f"checks/{other}")
    page.wait_for_selector(f"#c-{made}", timeout=2000)
    page.wait_for_selector(f"#c-{other}", state="detached", timeout=2000)
    assert page.title() == "hcserver"
    assert page.evaluate("window.notReloaded") is True


def test_filter_by_tag_and_text(live, page):
    live.create(name="db backup", tags="prod db")
    live.create(name="web ping", tags="prod web")
    live.create(name="laptop sync", tags="home")
    sign_in(page, live, API_KEY)
    page.locator("td.tags a[data-tag=db]").first.click()
    page.wait_for_url("**/?tag=db")
    assert page.locator("#checks tbody tr:visible").count() == 1
    page.goto(live.url + "/")
    page.fill("#q", "ping")
    assert page.locator("#checks tbody tr:visible td.name a").all_inner_texts() == ["web ping"]


def test_editing_a_check_in_the_page_changes_what_the_api_returns(live, page):
    uuid = live.create(name="old name")["uuid"]
    sign_in(page, live, API_KEY)
    page.click(f"#c-{uuid} td.name a")
    page.fill("#f-name", "New name")
    page.fill("#f-tags", "prod nightly")
    page.fill("#f-desc", "Backs up the database")
    page.fill("#f-timeout", "7200")
    page.fill("#f-grace", "600")
    page.click("#save")
    page.wait_for_selector(".notice")
    check = live.get_check(uuid)
    assert (check["name"], check["slug"], check["tags"], check["desc"]) == (
        "New name",
        "new-name",
        "prod nightly",
        "Backs up the database",
    )
    assert (check["timeout"], check["grace"]) == (7200, 600)
    page.check("#f-kind-cron")
    page.fill("#f-schedule", "0 3 * * *")
    page.fill("#f-tz", "Europe/Riga")
    page.click("#save")
    page.wait_for_selector(".notice")
    check = live.get_check(uuid)
    assert (check["schedule"], check["tz"]) == ("0 3 * * *", "Europe/Riga")
    assert "0 3 * * * (Europe/Riga), grace 10 minutes" in page.locator(".facts").inner_text()


def test_a_validation_error_is_shown_in_the_form(live, page):
    uuid = live.create(name="strict", grace=3600)["uuid"]
    sign_in(page, live, API_KEY)
    page.goto(f"{live.url}/checks/{uuid}")
    page.fill("#f-grace", "10")
    page.fill("#f-name", "changed")
    page.click("#save")
    assert page.locator("#form-error").inner_text() == "json validation error: grace is too small"
    assert page.locator("#f-grace").input_value() == "10"  # the form keeps what was typed
    assert live.get_check(uuid)["name"] == "strict"  # nothing changed
    page.check("#f-kind-cron")
    page.fill("#f-grace", "60")
    page.fill("#f-schedule", "not a schedule")
    page.click("#save")
    assert page.locator("#form-error").inner_text() == (
        "json validation error: schedule is not a valid cron or OnCalendar expression"
    )


def test_pause_resume_and_delete(live, page):
    uuid = live.create(name="pausable")["uuid"]
    sign_in(page, live, API_KEY)
    page.goto(f"{live.url}/checks/{uuid}")
    page.click("#pause")
    page.wait_for_selector("#resume")
    assert page.locator("#status .word").inner_text() == "paused"
    assert live.get_check(uuid)["status"] == "paused"
    page.click("#resume")
    page.wait_for_selector("#pause")
    assert live.get_check(uuid)["status"] == "new"
    page.click("#delete")
    page.wait_for_url(live.url + "/")
    assert ("confirm", "Delete this check and its ping log?") in page.dialogs
    assert live.api("GET", f"checks/{uuid}").status_code == 404


def test_read_only_sees_no_controls_and_its_forged_posts_are_refused(live, page):
    uuid = live.create(name="watched")["uuid"]
    live.ping(f"/ping/{uuid}", method="POST", content=b"hello")
    sign_in(page, live, READONLY_KEY)
    assert page.locator(".badge", has_text="read-only").is_visible()
    assert page.locator("#new-check").count() == 0
    assert page.locator("a[href='/channels/']").count() == 0
    assert uuid not in page.content()  # read-only keys are never shown a check's UUID
    page.locator("td.name a").first.click()
    page.wait_for_selector("#log-h")
    assert page.locator("form.edit, #pause, #delete, #ping-url").count() == 0
    assert "hello" in page.locator("table.pings").inner_text()
    key = page.url.rsplit("/", 1)[1]
    token = page.locator("input[name=_xsrf]").first.input_value()  # from the sign-out form
    for path in (f"/checks/{uuid}/pause", f"/checks/{key}/delete", f"/checks/{key}", "/checks/", "/channels/"):
        status = page.evaluate(
            """async ([path, token]) => (await fetch(path, {method: "POST",
                 headers: {"Content-Type": "application/x-www-form-urlencoded"},
                 body: "name=x&_xsrf=" + encodeURIComponent(token)})).status""",
            [path, token],
        )
        assert status == 403, path
    assert live.get_check(uuid)["status"] == "up"


def test_a_post_without_the_xsrf_token_is_refused(live, page):
    uuid = live.create(name="guarded")["uuid"]
    sign_in(page, live, API_KEY)
    page.goto(f"{live.url}/checks/{uuid}")
    page.evaluate(
        "document.querySelectorAll('#pause ~ input[name=_xsrf], form input[name=_xsrf]').forEach(e => e.remove())"
    )
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("#pause")
    assert answer.value.status == 403
    assert live.get_check(uuid)["status"] == "new"


def test_markup_in_a_name_or_body_is_shown_as_text(live, page):
    uuid = live.create(name=XSS, tags="x", desc=XSS)["uuid"]
    live.ping(f"/ping/{uuid}", method="POST", content=XSS.encode())
    sign_in(page, live, API_KEY)
    assert row(page, uuid).locator("td.name a").inner_text() == XSS
    assert page.locator("#checks img").count() == 0
    page.click(f"#c-{uuid} td.name a")
    page.wait_for_selector("#log-h")
    assert page.locator("h1").inner_text() == XSS
    assert page.locator("td.body code").inner_text() == XSS
    assert page.locator("main img").count() == 0
    # A row that arrives by the live stream is escaped as well.
    page.goto(live.url + "/")
    page.wait_for_function("document.getElementById('live').textContent === 'Live.'", timeout=5000)
    other = live.create(name=XSS + "2")["uuid"]
    page.wait_for_selector(f"#c-{other}", timeout=2000)
    assert row(page, other).locator("td.name a").inner_text() == XSS + "2"
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_sign_out(live, page):
    sign_in(page, live, API_KEY)
    page.click("header .signout button")
    page.wait_for_selector("input[name=api_key]")
    page.goto(live.url + "/")
    assert page.locator("input[name=api_key]").is_visible()


def test_screenshots(live, page, tmp_path):
    """The README's pictures; written to HC_SCREENSHOTS (e.g. `docs`) when set, else only checked."""
    out = Path(os.environ.get("HC_SCREENSHOTS") or tmp_path)
    nightly = live.create(name="Nightly backup", tags="prod db", desc="pg_dump of the main database")["uuid"]
    for name, tags in (("Web frontend", "prod web"), ("Certificate renewal", "prod"), ("Laptop sync", "home")):
        live.create(name=name, tags=tags, timeout=3600)
    cron = live.create(name="Weekly report", tags="reports", schedule="0 6 * * 1", tz="Europe/Riga")["uuid"]
    checks = live.api("GET", "checks/").json()["checks"]
    live.ping(
        f"/ping/{nightly}/start",
        headers={"User-Agent": "curl/8.5.0"},
        params={"rid": "6f1c2b1e-0000-4000-8000-000000000001"},
    )
    live.advance(42)
    live.ping(
        f"/ping/{nightly}",
        method="POST",
        content=b"dumped 1.2 GB in 42 s",
        headers={"User-Agent": "curl/8.5.0"},
        params={"rid": "6f1c2b1e-0000-4000-8000-000000000001"},
    )
    live.ping(f"/ping/{checks[1]['uuid']}")
    live.ping(f"/ping/{checks[2]['uuid']}/1")
    live.api("POST", f"checks/{checks[3]['uuid']}/pause")
    live.ping(f"/ping/{cron}/start")
    live.advance(180)
    sign_in(page, live, API_KEY)
    page.screenshot(path=str(out / "dashboard-checks.png"), full_page=True)
    page.goto(f"{live.url}/checks/{nightly}")
    page.screenshot(path=str(out / "dashboard-check.png"), full_page=True)
    for name in ("dashboard-checks.png", "dashboard-check.png"):
        assert (out / name).stat().st_size > 10_000
