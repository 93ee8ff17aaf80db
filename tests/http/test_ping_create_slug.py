"""`?create=1` applies the API's slug rule: a slug the API refuses is not created by a ping either."""

from __future__ import annotations

from tests.conftest import PING_KEY


def checks(live) -> list[dict]:
    return live.api("GET", "checks/").json()["checks"]


def test_a_slug_over_100_characters_is_not_created(live):
    for length in (101, 7000):
        r = live.ping(f"/ping/{PING_KEY}/{'a' * length}?create=1")
        assert (r.status_code, r.text) == (400, "invalid url format"), length
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert checks(live) == []
    # The API refuses the same slug, in its own words: one rule for both.
    r = live.api("POST", "checks/", json={"slug": "a" * 101})
    assert r.json() == {"error": "json validation error: slug is too long"}
    # Without ?create=1 nothing is created anyway: still 404.
    assert live.ping(f"/ping/{PING_KEY}/{'a' * 7000}").status_code == 404
    # 100 characters are fine.
    slug = "a-_0" * 25
    r = live.ping(f"/ping/{PING_KEY}/{slug}/start?create=1")
    assert (r.status_code, r.text) == (201, "Created")
    assert [(c["slug"], c["name"]) for c in checks(live)] == [(slug, slug)]


def test_only_new_checks_are_refused_a_long_slug(live):
    # A name of 100 characters can slugify to more ("㎒" -> "mhz"): such a check is still pinged by
    # its slug with ?create=1, while a new slug of that length is refused.
    check = live.create(name="㎒" * 40)
    assert len(check["slug"]) == 120
    r = live.ping(f"/ping/{PING_KEY}/{check['slug']}?create=1")
    assert (r.status_code, r.text) == (200, "OK")
    assert live.get_check(check["uuid"])["n_pings"] == 1
    r = live.ping(f"/ping/{PING_KEY}/{check['slug']}-x?create=1")
    assert (r.status_code, r.text) == (400, "invalid url format")
    assert len(checks(live)) == 1
