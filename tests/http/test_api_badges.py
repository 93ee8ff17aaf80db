"""GET /api/v3/badges/ and the badges its URLs point to (SVG, JSON, shields.io; 2 and 3 states)."""

from __future__ import annotations

import pytest

from tests.conftest import READONLY_KEY

FORMATS = {"svg", "svg3", "json", "json3", "shields", "shields3"}


def badges(live, key=None):
    r = live.api("GET", "badges/", **({"key": key} if key else {}))
    assert r.status_code == 200, r.text
    return r.json()["badges"]


def fetch(live, url):
    """GET a badge URL the API printed (it carries SITE_ROOT, http://hc.test, not the test server)."""
    assert url.startswith("http://hc.test/badge/"), url
    return live.client.get(url.removeprefix("http://hc.test"))


def state(live, url):
    r = fetch(live, url)
    assert r.status_code == 200, (url, r.text)
    return r.json()


def test_only_the_star_without_checks(live):
    result = badges(live)
    assert list(result) == ["*"]
    assert set(result["*"]) == FORMATS
    assert state(live, result["*"]["json"]) == {"status": "up", "total": 0, "grace": 0, "down": 0}


def test_one_entry_per_tag_and_the_star(live):
    live.create(tags="prod db")
    live.create(tags="db  web")
    live.create()
    result = badges(live)
    assert set(result) == {"prod", "db", "web", "*"}
    assert all(set(urls) == FORMATS for urls in result.values())
    assert badges(live, key=READONLY_KEY) == result
    urls = [url for entry in result.values() for url in entry.values()]
    assert len(set(urls)) == len(urls)


def test_every_format_is_served(live):
    live.create(tags="prod")
    urls = badges(live)["prod"]
    svg = fetch(live, urls["svg"])
    assert svg.status_code == 200
    assert svg.headers["Content-Type"] == "image/svg+xml"
    assert svg.text.startswith("<svg") and ">prod<" in svg.text and ">up<" in svg.text
    assert fetch(live, urls["svg3"]).headers["Content-Type"] == "image/svg+xml"
    for fmt in ("json", "json3"):
        r = fetch(live, urls[fmt])
        assert r.headers["Content-Type"] == "application/json"
        assert r.json() == {"status": "up", "total": 1, "grace": 0, "down": 0}
    for fmt in ("shields", "shields3"):
        shield = state(live, urls[fmt])
        assert (shield["schemaVersion"], shield["label"], shield["message"]) == (1, "prod", "up")
        assert shield["color"]
    assert svg.headers["Access-Control-Allow-Origin"] == "*"


def test_states_two_and_three(live):
    late = live.create(tags="late", timeout=60, grace=600)["uuid"]
    down = live.create(tags="down")["uuid"]
    live.create(tags="late down fine")
    live.ping(f"/ping/{late}")
    live.ping(f"/ping/{down}/fail")
    live.clock.advance(90)
    result = badges(live)

    assert state(live, result["late"]["json"]) == {"status": "up", "total": 2, "grace": 1, "down": 0}
    assert state(live, result["late"]["json3"])["status"] == "late"
    assert state(live, result["late"]["shields3"])["message"] == "late"
    assert ">late<" in fetch(live, result["late"]["svg3"]).text
    assert ">up<" in fetch(live, result["late"]["svg"]).text
    for fmt in ("json", "json3"):
        assert state(live, result["down"][fmt]) == {"status": "down", "total": 2, "grace": 0, "down": 1}
    assert state(live, result["fine"]["json3"])["status"] == "up"
    assert state(live, result["*"]["json3"]) == {"status": "down", "total": 3, "grace": 1, "down": 1}
    assert state(live, result["*"]["shields"])["message"] == "down"

    live.ping(f"/ping/{down}")
    assert state(live, result["down"]["json"])["status"] == "up"
    live.clock.advance(600)
    assert state(live, result["late"]["json"])["status"] == "down"


@pytest.mark.parametrize("tag", ["x-3", "100%", "db#1", "a?b", "a/b", "caf\u00e9", "a.json", "<b>", "*x"])
def test_tags_with_awkward_characters(live, tag):
    uuid = live.create(tags=f"{tag} other", timeout=60, grace=600)["uuid"]
    live.create(tags="x other")
    live.ping(f"/ping/{uuid}")
    live.clock.advance(90)
    urls = badges(live)[tag]
    assert state(live, urls["json"]) == {"status": "up", "total": 1, "grace": 1, "down": 0}
    assert state(live, urls["json3"])["status"] == "late"
    assert state(live, urls["shields"])["label"] == tag
    assert fetch(live, urls["svg"]).status_code == 200


def test_badge_url_of_a_check(live):
    check = live.create(name="solo", timeout=60, grace=60)
    live.create(name="other")
    live.ping(f"/ping/{check['uuid']}/fail")
    url = check["badge_url"]
    assert state(live, url.replace(".svg", ".json")) == {"status": "down", "total": 1, "grace": 0, "down": 1}
    assert fetch(live, url).headers["Content-Type"] == "image/svg+xml"


def test_unknown_badges(live):
    live.create(tags="prod")
    url = badges(live)["prod"]["json"]
    key = url.split("/")[4]
    assert live.client.get("/badge/0123456789abcdef/prod.json").status_code == 404
    assert live.client.get(f"/badge/{key}/prod.png").status_code == 404
    # A tag no check has: nothing to report, so up.
    assert state(live, url.replace("/prod.json", "/gone.json")) == {"status": "up", "total": 0, "grace": 0, "down": 0}
