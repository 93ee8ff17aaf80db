"""X-Forwarded-For / X-Forwarded-Proto: believed only from HC_TRUSTED_PROXIES, and only sane values kept.

What a ping records shows in `GET /api/v3/checks/<uuid>/pings/` as `remote_addr` and `scheme`.
"""

from __future__ import annotations

import pytest

from tests.conftest import make_settings, start_server


def recorded(live, headers: dict[str, str]) -> tuple[str, str]:
    """Ping a new check with these headers; (remote_addr, scheme) as the API shows them."""
    uuid = live.create()["uuid"]
    assert live.ping(f"/ping/{uuid}", headers=headers).status_code == 200
    [ping] = live.api("GET", f"checks/{uuid}/pings/").json()["pings"]
    return ping["remote_addr"], ping["scheme"]


def test_a_loopback_proxy_is_believed_by_default(live):
    # The proxy appends the address it saw; whatever the client sent stands to its left.
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Forwarded-Proto": "https"}
    assert recorded(live, headers) == ("203.0.113.9", "https")


def test_the_client_is_the_nearest_address_that_is_not_a_trusted_proxy(live):
    assert recorded(live, {"X-Forwarded-For": "203.0.113.9, 127.0.0.1, 127.0.0.2"})[0] == "203.0.113.9"
    assert recorded(live, {"X-Forwarded-For": "[2001:db8::7]:4711"})[0] == "2001:db8::7"


@pytest.mark.parametrize("trusted", [("192.0.2.1/32",), ("10.0.0.0/8", "2001:db8::/32"), ()])
def test_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored(clock, trusted):
    server, stop = start_server(make_settings(trusted_proxies=trusted), clock)
    try:
        headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        assert recorded(server, headers) == ("127.0.0.1", "http")
    finally:
        stop()


def test_a_network_that_holds_the_peer_is_trusted(clock):
    server, stop = start_server(make_settings(trusted_proxies=("192.0.2.1/32", "127.0.0.0/30")), clock)
    try:
        headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        assert recorded(server, headers) == ("203.0.113.9", "https")
    finally:
        stop()


@pytest.mark.parametrize("proto", ["gopher", "x" * 60_000, "https://evil", "http s", "https, javascript"])
def test_only_http_or_https_is_kept_as_the_scheme(live, proto):
    assert recorded(live, {"X-Forwarded-Proto": proto}) == ("127.0.0.1", "http")


@pytest.mark.parametrize(
    ("proto", "scheme"), [("HTTPS", "https"), ("http ,  https", "https"), ("http, https", "https")]
)
def test_the_nearest_proxys_scheme_is_kept(live, proto, scheme):
    assert recorded(live, {"X-Forwarded-Proto": proto})[1] == scheme
