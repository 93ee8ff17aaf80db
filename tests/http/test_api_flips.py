"""GET /api/v3/checks/<uuid or unique_key>/flips/ with ?seconds= ?start= ?end=."""

from __future__ import annotations

import pytest

from tests.conftest import READONLY_KEY, T0


@pytest.fixture
def flipped(live):
    """A check that went up at T0, down at T0+100, up at T0+200; the clock is at T0+300."""
    uuid = live.create()["uuid"]
    for path in ("", "/fail", ""):
        live.ping(f"/ping/{uuid}{path}")
        live.clock.advance(100)
    return uuid


def flips(live, code, query="", key=None):
    r = live.api("GET", f"checks/{code}/flips/{query}", **({"key": key} if key else {}))
    assert r.status_code == 200, r.text
    return r.json()["flips"]


UP_1 = {"timestamp": "2023-11-14T22:13:20+00:00", "up": 1}
DOWN_2 = {"timestamp": "2023-11-14T22:15:00+00:00", "up": 0}
UP_3 = {"timestamp": "2023-11-14T22:16:40+00:00", "up": 1}


def test_no_flips(live):
    uuid = live.create()["uuid"]
    r = live.api("GET", f"checks/{uuid}/flips/")
    assert (r.status_code, r.json()) == (200, {"flips": []})
    live.ping(f"/ping/{uuid}/start")
    live.ping(f"/ping/{uuid}/log")
    assert flips(live, uuid) == []


def test_newest_first(live, flipped):
    assert flips(live, flipped) == [UP_3, DOWN_2, UP_1]


def test_repeated_status_makes_no_flip(live):
    uuid = live.create()["uuid"]
    for path in ("", "", "/0", "/fail", "/1", "/fail"):
        live.ping(f"/ping/{uuid}{path}")
    assert [f["up"] for f in flips(live, uuid)] == [0, 1]


def test_by_unique_key_and_readonly_key(live, flipped):
    unique = live.api("GET", f"checks/{flipped}", key=READONLY_KEY).json()["unique_key"]
    assert flips(live, unique, key=READONLY_KEY) == [UP_3, DOWN_2, UP_1]
    assert flips(live, unique) == [UP_3, DOWN_2, UP_1]
    assert flips(live, flipped, key=READONLY_KEY) == [UP_3, DOWN_2, UP_1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?seconds=150", [UP_3]),
        ("?seconds=200", [UP_3, DOWN_2]),
        ("?seconds=300", [UP_3, DOWN_2, UP_1]),
        ("?seconds=0", [UP_3, DOWN_2, UP_1]),
        ("?seconds=31536000", [UP_3, DOWN_2, UP_1]),
        (f"?start={int(T0) + 100}", [UP_3, DOWN_2]),
        (f"?start={int(T0) + 101}", [UP_3]),
        (f"?end={int(T0) + 100}", [UP_1]),
        (f"?end={int(T0) + 101}", [DOWN_2, UP_1]),
        (f"?start={int(T0) + 1}&end={int(T0) + 200}", [DOWN_2]),
        (f"?start={int(T0) + 300}", []),
        ("?start=0", [UP_3, DOWN_2, UP_1]),
        ("?end=0", []),
        ("?start=10000000000", []),
        # All the filters given apply together.
        (f"?seconds=250&end={int(T0) + 200}", [DOWN_2]),
        (f"?seconds=300&start={int(T0) + 150}", [UP_3]),
    ],
)
def test_filters(live, flipped, query, expected):
    assert flips(live, flipped, query) == expected


@pytest.mark.parametrize(
    "query",
    ["?seconds=abc", "?seconds=-1", "?seconds=1.5", "?seconds=31536001", "?seconds=99999999999999999999",
     "?start=x", "?start=-5", "?start=10000000001", "?end=1e9", "?end=%C2%B9", "?seconds=%EF%BC%91"],
)  # fmt: skip
def test_bad_filters(live, flipped, query):
    r = live.api("GET", f"checks/{flipped}/flips/{query}")
    assert r.status_code == 400
    assert r.json()["error"].startswith("invalid query: ")


def test_pause_and_resume_are_not_listed(live):
    uuid = live.create()["uuid"]
    live.ping(f"/ping/{uuid}")
    live.api("POST", f"checks/{uuid}/pause")
    live.api("POST", f"checks/{uuid}/resume")
    live.clock.advance(5)
    live.ping(f"/ping/{uuid}/fail")
    assert flips(live, uuid) == [{"timestamp": "2023-11-14T22:13:25+00:00", "up": 0}, UP_1]
