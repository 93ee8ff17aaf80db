"""Settings from the environment: defaults, derived URLs, and clear errors for bad values."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys

import pytest

from hcserver.__main__ import parse_args
from hcserver.alerts.settings import AlertSettings
from hcserver.config import SETTINGS_HELP, Settings, SettingsError

NUMBERS = {4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def test_defaults_and_derived_urls():
    s = Settings.from_env({})
    assert (s.host, s.port, s.ping_body_limit, s.ping_log_limit) == ("127.0.0.1", 8000, 10000, 100)
    assert s.idle_writer is False and Settings.from_env({"HC_IDLE_WRITER": "1"}).idle_writer is True
    assert s.site_root == "http://127.0.0.1:8000" and s.ping_endpoint == "http://127.0.0.1:8000/ping/"
    s = Settings.from_env({"SITE_ROOT": "https://hc.example.org/", "PING_ENDPOINT": "https://ping.example.org"})
    assert s.site_root == "https://hc.example.org" and s.ping_endpoint == "https://ping.example.org/"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HC_PORT": "http"}, "HC_PORT must be a whole number"),
        ({"PING_BODY_LIMIT": "-1"}, "PING_BODY_LIMIT must be between"),
        ({"HC_DURABLE": "perhaps"}, "HC_DURABLE must be 1 or 0"),
        ({"HC_IDLE_WRITER": "yes please"}, "HC_IDLE_WRITER must be 1 or 0"),
        ({"HC_API_KEY": "short"}, "HC_API_KEY must be 32 characters long"),
        ({"HC_PING_KEY": "UPPERCASEUPPERCASEUPPE"}, "HC_PING_KEY may only contain"),
        ({"HC_ADMIN_KEY": "tiny"}, "HC_ADMIN_KEY must be at least 16 characters"),
        ({"HC_IDLE_TIMEOUT": "0"}, "HC_IDLE_TIMEOUT must be a positive number of seconds"),
    ],
)
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_bad_alert_setting_is_a_settings_error():
    with pytest.raises(SettingsError, match="EMAIL_PORT"):
        AlertSettings.from_env({"EMAIL_PORT": "smtp"})


def test_cli_exits_2_with_the_message_and_documents_every_setting():
    bad = subprocess.run([sys.executable, "-m", "hcserver", "serve"], env={"HC_PORT": "x", "PATH": ""},
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert bad.returncode == 2 and "hcserver: HC_PORT must be a whole number" in bad.stderr
    helptext = subprocess.run([sys.executable, "-m", "hcserver", "--help"], capture_output=True, text=True,
                              timeout=30).stdout  # fmt: skip
    for name in ("HC_DB", "SITE_ROOT", "PING_ENDPOINT", "PING_BODY_LIMIT", "HC_MAX_REQUEST_BODY", "HC_API_KEY",
                 "HC_ADMIN_KEY", "HC_FLUSH_INTERVAL_MS", "HC_DURABLE", "HC_RESTART_GRACE", "HC_IDLE_WRITER",
                 "EMAIL_HOST"):  # fmt: skip
        assert name in helptext


def test_the_help_names_each_flag_of_serve_beside_the_setting_it_overrides():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parse_args(["serve", "--help"])
    options = out.getvalue().split(SETTINGS_HELP.splitlines()[0])[0]
    flags = sorted(set(re.findall(r"--(?!help)[a-z]+", options)))
    lines = SETTINGS_HELP.splitlines()[1:]
    bracketed = [re.findall(r"--[a-z]+", line.rsplit("[", 1)[1]) if line.endswith("]") else [] for line in lines]
    # the bracketed flags are serve's, one a setting, on the first lines; the heading counts them
    assert sorted(f for found in bracketed for f in found) == flags
    with_flags = [found for found in bracketed if found]
    assert bracketed[: len(with_flags)] == with_flags
    word = NUMBERS[len(flags)]
    assert f"the {word} flags of `serve`, in brackets, override the first {word}" in SETTINGS_HELP
