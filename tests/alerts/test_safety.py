from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import threading
import time
from urllib.parse import quote

import pytest

from hcserver.alerts.safety import (
    FetchError,
    PinnedResolver,
    RefusedConnection,
    check_address,
    guarded_connections,
    is_public,
    resolve_checked,
    safe_fetch,
)
from tests.alerts.helpers import Receiver, free_port, run

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "2002:c0a8:101::1",
        "64:ff9b::a00:1",
        "64:ff9b::7f00:1",
        "2001:db8::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
)
def test_non_public_addresses(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public(ip)
    with pytest.raises(FetchError) as info:
        check_address(ip, allow_private=False)
    assert info.value.message == f"Refusing to connect to a private address {ip}"
    assert info.value.permanent
    check_address(ip, allow_private=True)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert is_public(ip)
    check_address(ip, allow_private=False)


def test_allowed_networks_exempt_only_themselves() -> None:
    check_address(ipaddress.ip_address("127.0.0.1"), False, LOOPBACK)
    with pytest.raises(FetchError):
        check_address(ipaddress.ip_address("127.0.0.2"), False, LOOPBACK)
    with pytest.raises(FetchError):
        check_address(ipaddress.ip_address("::1"), False, LOOPBACK)


def test_resolve_refuses_localhost_unless_allowed() -> None:
    async def scenario() -> None:
        with pytest.raises(FetchError, match=re.escape("Refusing to connect to a private address 127.0.0.1")) as info:
            await resolve_checked("localhost", 80, allow_private=False, timeout=1.0)
        assert info.value.permanent
        allowed = await resolve_checked("127.0.0.1", 8080, allow_private=True, timeout=1.0)
        assert allowed == [(socket.AF_INET, ("127.0.0.1", 8080))]

    run(scenario())


def test_pinned_resolver_answers_only_the_checked_host() -> None:
    async def scenario() -> None:
        resolver = PinnedResolver(
            "Hook.Example.org", [(socket.AF_INET, ("203.0.113.5", 0)), (socket.AF_INET6, ("2001:db8::5", 0, 0, 0))]
        )
        assert await resolver.resolve("hook.example.org", 443) == [
            (socket.AF_INET, ("203.0.113.5", 443)),
            (socket.AF_INET6, ("2001:db8::5", 443, 0, 0)),
        ]
        assert await resolver.resolve("hook.example.org", 80, socket.AF_INET) == [(socket.AF_INET, ("203.0.113.5", 80))]
        with pytest.raises(OSError, match="not resolved and checked"):
            await resolver.resolve("other.example.org", 443)

    run(scenario())


def test_private_target_is_refused_before_any_request() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            with pytest.raises(FetchError) as info:
                await safe_fetch("GET", rx.url("/status/200"), allow_private=False, timeout=1.0)
            assert (info.value.message, info.value.permanent) == (
                "Refusing to connect to a private address 127.0.0.1",
                True,
            )
            assert rx.requests == []
            ok = await safe_fetch("GET", rx.url("/status/200"), allow_private=True, timeout=1.0)
            assert ok.code == 200 and len(rx.requests) == 1

    run(scenario())


def test_every_redirect_hop_is_checked_again() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            # The first hop's address is exempt; the hop it redirects to (127.0.0.2) is not.
            target = f"http://127.0.0.2:{rx.port}/status/200"
            with pytest.raises(FetchError, match=re.escape("private address 127.0.0.2")) as info:
                await safe_fetch(
                    "GET",
                    rx.url("/goto?url=" + quote(target)),
                    allow_private=False,
                    timeout=1.0,
                    allow_networks=LOOPBACK,
                )
            assert info.value.permanent
            assert [r.path for r in rx.requests] == ["/goto"]

    run(scenario())


def test_at_most_three_redirects() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            three = await safe_fetch("GET", rx.url("/redirect/3"), allow_private=True, timeout=1.0)
            assert (three.code, three.body, three.redirects) == (200, b"arrived", 3)
            assert three.url == rx.url("/redirect/0")
            rx.requests.clear()
            with pytest.raises(FetchError, match="Too many redirects") as info:
                await safe_fetch("GET", rx.url("/redirect/5"), allow_private=True, timeout=1.0)
            assert not info.value.permanent
            assert [r.path for r in rx.requests] == ["/redirect/5", "/redirect/4", "/redirect/3", "/redirect/2"]

    run(scenario())


def test_redirect_to_another_scheme_is_refused() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            with pytest.raises(FetchError, match="Redirect to an unsupported URL"):
                await safe_fetch(
                    "GET", rx.url("/goto?url=" + quote("file:///etc/passwd")), allow_private=True, timeout=1.0
                )

    run(scenario())


def test_redirects_drop_headers_across_origins_and_post_becomes_get() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            other_origin = rx.url("/status/200", host="localhost")
            await safe_fetch(
                "POST",
                rx.url("/goto?url=" + quote(other_origin)),
                headers={"Authorization": "Bearer secret"},
                body=b"payload",
                allow_private=True,
                timeout=1.0,
            )
            first, second = rx.requests
            assert (first.method, first.headers["Authorization"], first.body) == ("POST", "Bearer secret", b"payload")
            assert (second.method, second.body) == ("GET", b"")
            assert "Authorization" not in second.headers
            # The connection went to the pinned address, but the request still names the host.
            assert second.headers["Host"] == f"localhost:{rx.port}"
            rx.requests.clear()
            await safe_fetch(
                "PUT", rx.url("/redirect/1"), headers={"X-Key": "k"}, body=b"b", allow_private=True, timeout=1.0
            )
            assert [(r.method, r.headers.get("X-Key"), r.body) for r in rx.requests] == [("PUT", "k", b"b")] * 2
            rx.requests.clear()
            await safe_fetch("PUT", rx.url("/see-other"), body=b"b", allow_private=True, timeout=1.0)
            assert [r.method for r in rx.requests] == ["PUT", "GET"]

    run(scenario())


def test_response_body_is_read_only_up_to_the_cap() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            result = await safe_fetch("GET", rx.url("/big"), allow_private=True, timeout=2.0)
            assert (result.code, result.body) == (200, b"x" * 4096)
            small = await safe_fetch("GET", rx.url("/big"), allow_private=True, timeout=2.0, body_cap=10)
            assert small.body == b"x" * 10

    run(scenario())


def test_hanging_server_times_out_within_the_timeout() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            started = time.monotonic()
            with pytest.raises(FetchError, match="Connection timed out") as info:
                await safe_fetch("GET", rx.url("/hang"), allow_private=True, timeout=0.3)
            assert time.monotonic() - started < 1.0
            assert not info.value.permanent

    run(scenario())


def test_nobody_listening() -> None:
    async def scenario() -> None:
        with pytest.raises(FetchError, match="Connection failed") as info:
            await safe_fetch("GET", f"http://127.0.0.1:{free_port()}/", allow_private=True, timeout=1.0)
        assert not info.value.permanent

    run(scenario())


def test_redirect_to_a_broken_url_is_permanent() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            with pytest.raises(FetchError, match="Invalid URL") as info:
                await safe_fetch(
                    "GET", rx.url("/goto?url=" + quote("http://e.org:bad/")), allow_private=True, timeout=1.0
                )
            assert info.value.permanent

    run(scenario())


@pytest.mark.parametrize("url", ["ftp://example.org/", "http:///x", "http://e.org:http/", "mailto:a@example.org"])
def test_invalid_urls_are_permanent(url: str) -> None:
    async def scenario() -> None:
        with pytest.raises(FetchError, match="Invalid URL") as info:
            await safe_fetch("GET", url, allow_private=True, timeout=1.0)
        assert info.value.permanent

    run(scenario())


# -- connections made inside other libraries ---------------------------------------------------------


def test_guarded_connections_refuse_private_addresses_before_connecting() -> None:
    async def scenario() -> None:
        accepted: list[object] = []

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, family=socket.AF_INET)
        port = server.sockets[0].getsockname()[1]

        def connect(address: tuple[str, int]) -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(2.0)
                sock.connect(address)

        def guarded() -> object:
            # In a thread, as Apprise runs. A name is resolved and its addresses checked too.
            with guarded_connections() as guard:
                with pytest.raises(RefusedConnection, match=re.escape("private address 127.0.0.1")):
                    connect(("127.0.0.1", port))
                with pytest.raises(RefusedConnection):
                    connect(("localhost", port))
                # A thread started without a copy of this context is not guarded.
                other = threading.Thread(target=connect, args=(("127.0.0.1", port),))
                other.start()
                other.join()
            return guard.refused

        assert await asyncio.to_thread(guarded) == ipaddress.ip_address("127.0.0.1")
        await asyncio.sleep(0.05)
        assert len(accepted) == 1  # only the unguarded thread's
        await asyncio.to_thread(connect, ("127.0.0.1", port))  # after the block: not guarded
        await asyncio.sleep(0.05)
        assert len(accepted) == 2
        server.close()
        await server.wait_closed()

    run(scenario())
