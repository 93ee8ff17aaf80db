"""DELETE /api/v3/checks/<uuid>: answers the check as it was, then it is gone everywhere."""

from __future__ import annotations

from tests.conftest import PING_KEY


def test_delete_answers_the_check_and_removes_it(live):
    check = live.create(name="Doomed", tags="t", timeout=600)
    uuid = check["uuid"]
    live.ping(f"/ping/{uuid}", method="POST", content=b"last words")
    before = live.get_check(uuid)

    r = live.api("DELETE", f"checks/{uuid}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == before

    assert live.api("GET", f"checks/{uuid}").json() == {"error": "not found"}
    assert live.api("GET", "checks/").json() == {"checks": []}
    assert live.api("GET", f"checks/{uuid}/pings/").status_code == 404
    assert live.api("GET", f"checks/{uuid}/pings/1/body").status_code == 404
    assert live.api("GET", f"checks/{uuid}/flips/").status_code == 404
    assert live.ping(f"/ping/{uuid}").status_code == 404
    assert live.ping(f"/ping/{PING_KEY}/doomed").status_code == 404
    assert live.api("DELETE", f"checks/{uuid}").status_code == 404
    # Its tag no longer has a badge.
    assert list(live.api("GET", "badges/").json()["badges"]) == ["*"]


def test_delete_leaves_other_checks(live):
    a = live.create(name="same")
    b = live.create(name="same")
    # Two checks share the slug: ambiguous until one is deleted.
    assert live.ping(f"/ping/{PING_KEY}/same").status_code == 409
    live.api("DELETE", f"checks/{a['uuid']}")
    assert live.ping(f"/ping/{PING_KEY}/same").status_code == 200
    assert live.get_check(b["uuid"])["n_pings"] == 1
    assert [c["uuid"] for c in live.api("GET", "checks/").json()["checks"]] == [b["uuid"]]


def test_deleted_slug_can_be_created_again(live):
    uuid = live.create(name="job")["uuid"]
    live.api("DELETE", f"checks/{uuid}")
    r = live.ping(f"/ping/{PING_KEY}/job?create=1")
    assert (r.status_code, r.text) == (201, "Created")
    (check,) = live.api("GET", "checks/").json()["checks"]
    assert check["uuid"] != uuid and check["n_pings"] == 1
