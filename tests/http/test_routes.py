"""One route table: every route of it reaches tornado.web, and no ping path does."""

from __future__ import annotations

import doctest
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcserver.web import routes
from hcserver.web.ping import parse_ping_path
from hcserver.web.routes import app_paths, route_table

PATTERNS = [pattern for pattern, _ in route_table()]
# Characters a client can put in a path as they are.
_URL_SAFE = string.ascii_letters + string.digits + "-_.~*"

route_paths = st.sampled_from(PATTERNS).flatmap(
    lambda pattern: st.from_regex(pattern, fullmatch=True, alphabet=_URL_SAFE + "/")
)
uuids = st.uuids().map(str)
ping_keys = st.text(string.ascii_lowercase + string.digits, min_size=22, max_size=22)
slugs = st.text(string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=20)
suffixes = st.sampled_from(["", "/start", "/fail", "/log", "/0", "/1", "/255", "/"])
ping_paths = st.one_of(
    st.tuples(st.sampled_from(["/ping/", "/"]), uuids, suffixes).map("".join),
    st.tuples(st.sampled_from(["/ping/", "/"]), ping_keys, st.just("/"), slugs, suffixes).map("".join),
)


def test_examples_in_docstrings():
    assert doctest.testmod(routes).failed == 0


@given(route_paths, st.sampled_from(["", "?x=1"]))
def test_every_route_is_the_applications(path, query):
    assert app_paths().owns(path + query)


@given(ping_paths, st.sampled_from(["", "?create=1"]))
def test_no_ping_path_is_the_applications(path, query):
    assert parse_ping_path(path) is not None
    assert not app_paths().owns(path + query)


def test_a_route_must_start_with_a_directory():
    with pytest.raises(ValueError, match="fixed directory"):
        app_paths([(r"/(?P<key>[0-9a-f]{16})\.svg", None)])


# tornado.web's RequestHandler sends a Server header; ping answers do not.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=route_paths)
def test_every_route_reaches_tornado_web(live, path):
    assert live.client.get(path).headers.get("Server", "").startswith("TornadoServer")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=ping_paths)
def test_a_ping_path_never_reaches_tornado_web(live, path):
    r = live.client.get(path)
    assert "Server" not in r.headers
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
