"""HC_TRUSTED_PROXIES and HC_MAX_CONNECTIONS: parsing, defaults, and the helpers that apply them."""

from __future__ import annotations

import doctest
import resource
import subprocess
import sys

import pytest

from hcserver.app import FD_RESERVE, default_max_connections
from hcserver.config import Settings, SettingsError
from hcserver.web.ping import TrustedProxies, forwarded_scheme, origin_form


def test_trusted_proxies_default_to_loopback_and_parse_addresses_and_networks():
    assert Settings.from_env({}).trusted_proxies == ("127.0.0.0/8", "::1/128")
    env = {"HC_TRUSTED_PROXIES": " 10.1.2.3, 192.168.0.0/16,2001:db8::/32 ,10.0.0.9/8"}
    assert Settings.from_env(env).trusted_proxies == ("10.1.2.3/32", "192.168.0.0/16", "2001:db8::/32", "10.0.0.0/8")
    assert Settings.from_env({"HC_TRUSTED_PROXIES": ""}).trusted_proxies == ()


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "10.0.0.1 10.0.0.2"])
def test_a_bad_trusted_proxy_names_the_setting(value):
    with pytest.raises(SettingsError, match=r"HC_TRUSTED_PROXIES: .* is not an IP address or network"):
        Settings.from_env({"HC_TRUSTED_PROXIES": value})


def test_max_connections_is_read_and_its_default_follows_the_open_file_limit():
    assert Settings.from_env({}).max_connections == 0  # 0: worked out at startup
    assert Settings.from_env({"HC_MAX_CONNECTIONS": "500"}).max_connections == 500
    with pytest.raises(SettingsError, match="HC_MAX_CONNECTIONS must be a whole number"):
        Settings.from_env({"HC_MAX_CONNECTIONS": "many"})
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft >= 2 * FD_RESERVE:
        assert default_max_connections() == soft - FD_RESERVE


def test_help_lists_the_new_settings():
    helptext = subprocess.run([sys.executable, "-m", "hcserver", "--help"], capture_output=True, text=True,
                              timeout=30).stdout  # fmt: skip
    assert "HC_MAX_CONNECTIONS" in helptext and "HC_TRUSTED_PROXIES" in helptext


def test_forwarded_for_is_read_from_the_right():
    proxies = TrustedProxies(["127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"])
    assert proxies.client("6.6.6.6, 203.0.113.9", "127.0.0.1") == "203.0.113.9"
    assert proxies.client("203.0.113.9, 10.0.0.7, 2001:db8::1", "127.0.0.1") == "203.0.113.9"
    assert proxies.client("10.0.0.7, 10.0.0.8", "127.0.0.1") == "10.0.0.7"  # all ours: the farthest
    assert proxies.client("203.0.113.9:51000", "127.0.0.1") == "203.0.113.9"
    assert proxies.client("[2001:db8:1::5]:443, 10.0.0.1", "127.0.0.1") == "2001:db8:1::5"
    for hostile in ("unknown", "203.0.113.9, <script>", "", "x" * 10_000):
        assert proxies.client(hostile, "127.0.0.1") == "127.0.0.1"
    assert proxies.trusts("::ffff:127.0.0.1") and not proxies.trusts("::ffff:8.8.8.8")
    assert not proxies.trusts("") and not TrustedProxies([]).trusts("127.0.0.1")


def test_scheme_and_target_helpers():
    assert forwarded_scheme("HTTPS", "http") == "https" and forwarded_scheme("ws", "https") == "https"
    assert origin_form("http://h") == "/" and origin_form("http://h?x=1") == "/?x=1"
    assert origin_form("*") == "*" and origin_form("/ping/x") == "/ping/x"


def test_docstring_examples_run():
    runner = doctest.DocTestRunner()
    for obj in (TrustedProxies, origin_form):
        for test in doctest.DocTestFinder().find(obj):
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted >= 5 and results.failed == 0
