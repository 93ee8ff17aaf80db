"""GET /api/v*/checks/ of a large project is streamed in pieces: the same bytes, and pings are
answered while it streams."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest

from hcserver.services import new_check
from hcserver.views import check_to_json
from hcserver.web.api import LISTING_PIECE
from tests.conftest import API_KEY, READONLY_KEY, LiveServer


def add_checks(live: LiveServer, count: int, **fields: Any) -> list[str]:
    """`count` checks made on the server's loop (the API would take seconds for 20,000)."""
    ctx = live.ctx
    project_id = next(iter(ctx.index.projects))

    def make() -> list[str]:
        made = []
        for i in range(count):
            check = new_check(project_id, ctx.clock(), name=f"check {i:05d}")
            for name, value in fields.items():
                setattr(check, name, value(i) if callable(value) else value)
            ctx.index.add_check(check)
            ctx.check_changed(check)
            made.append(check.uuid)
        return made

    return live.call(make)


def old_listing(live: LiveServer, version: int, readonly: bool, tags: set[str], slug: str = "") -> bytes:
    """The body as one json.dumps of every check, the way listings were made before streaming."""
    ctx = live.ctx
    project_id = next(iter(ctx.index.projects))

    def build() -> bytes:
        result = [
            check_to_json(check, ctx.clock(), ctx.settings, version, readonly, ctx.index.badge_key(project_id))
            for check in ctx.index.project_checks(project_id)
            if (not slug or check.slug == slug) and (not tags or tags.issubset(check.tag_list()))
        ]
        return json.dumps({"checks": result}).encode()

    return live.call(build)


@pytest.mark.parametrize(
    ("version", "key", "query", "tags", "slug"),
    [
        (3, API_KEY, "", set(), ""),
        (1, API_KEY, "", set(), ""),
        (2, READONLY_KEY, "", set(), ""),
        (3, API_KEY, "?tag=even", {"even"}, ""),
        (3, API_KEY, "?tag=even&tag=x", {"even", "x"}, ""),
        (3, API_KEY, "?slug=check-00007", set(), "check-00007"),
        (3, API_KEY, "?tag=nothing", {"nothing"}, ""),
    ],
)
def test_listings_have_the_bytes_of_one_json_dumps(live, version, key, query, tags, slug):
    def tagged(i: int) -> str:
        return "even x" if i % 2 == 0 else "odd"

    path, headers = f"/api/v{version}/checks/{query}", {"X-Api-Key": key}
    # A small project: one answer, with its Content-Length, as before.
    add_checks(live, 9, tags=tagged)
    r = live.client.get(path, headers=headers)
    assert r.content == old_listing(live, version, key == READONLY_KEY, tags, slug)
    assert r.headers["Content-Length"] == str(len(r.content)) and "Transfer-Encoding" not in r.headers
    # A large one: streamed in pieces, the same bytes.
    add_checks(live, 2 * LISTING_PIECE, tags=tagged)
    r = live.client.get(path, headers=headers)
    assert r.status_code == 200
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    expected = old_listing(live, version, key == READONLY_KEY, tags, slug)
    assert json.loads(r.content) == json.loads(expected)
    assert r.content == expected


def test_pings_are_answered_while_a_large_listing_streams(live):
    """The listing's client reads its first bytes, then stops reading. The last check of the listing
    is pinged meanwhile: if the ping is answered before that check is serialized, the listing shows
    it pinged. Serialized all at once, the listing would be complete before the ping was read."""
    uuids = add_checks(live, 20_000)
    conn = http.client.HTTPConnection("127.0.0.1", live.server.port, timeout=30)
    conn.connect()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    conn.request("GET", "/api/v3/checks/", headers={"X-Api-Key": API_KEY})
    response = conn.getresponse()
    assert response.status == 200
    start = response.read(100)
    assert start.startswith(b'{"checks": [{')
    for uuid in (uuids[0], uuids[-1]):
        assert live.ping(f"/ping/{uuid}").status_code == 200
    checks = json.loads(start + response.read())["checks"]
    conn.close()
    assert len(checks) == 20_000
    first, last = checks[0], checks[-1]
    assert (first["uuid"], last["uuid"]) == (uuids[0], uuids[-1])
    assert first["n_pings"] == 0  # serialized before the ping
    assert last["n_pings"] == 1  # serialized after it: the ping did not wait for the listing
