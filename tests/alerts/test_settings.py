from __future__ import annotations

import pytest

from hcserver.alerts.settings import AlertSettings


def test_defaults() -> None:
    s = AlertSettings.from_env({})
    assert s == AlertSettings()
    assert (s.email_host, s.email_port, s.email_use_tls, s.allow_private, s.timeout) == (
        "localhost",
        25,
        False,
        False,
        10.0,
    )


def test_from_env() -> None:
    s = AlertSettings.from_env(
        {
            "EMAIL_HOST": "smtp.example.org",
            "EMAIL_PORT": "587",
            "EMAIL_HOST_USER": "mailer",
            "EMAIL_HOST_PASSWORD": "s3cret",
            "EMAIL_USE_TLS": "True",
            "DEFAULT_FROM_EMAIL": "hc@example.org",
            "INTEGRATIONS_ALLOW_PRIVATE_IPS": "true",
            "INTEGRATIONS_TIMEOUT": "2.5",
        }
    )
    assert s == AlertSettings(
        email_host="smtp.example.org",
        email_port=587,
        email_host_user="mailer",
        email_host_password="s3cret",
        email_use_tls=True,
        default_from_email="hc@example.org",
        allow_private=True,
        timeout=2.5,
    )
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT must be a whole number, not 'smtp'"),
        ({"EMAIL_PORT": "70000"}, "EMAIL_PORT must be between 1 and 65535, not 70000"),
        ({"EMAIL_USE_TLS": "maybe"}, r"EMAIL_USE_TLS must be 1 or 0 \(true or false\), not 'maybe'"),
        ({"INTEGRATIONS_ALLOW_PRIVATE_IPS": "2"}, r"INTEGRATIONS_ALLOW_PRIVATE_IPS must be 1 or 0 \(true or false\)"),
        ({"INTEGRATIONS_TIMEOUT": "soon"}, "INTEGRATIONS_TIMEOUT must be a number of seconds, not 'soon'"),
        ({"INTEGRATIONS_TIMEOUT": "0"}, "INTEGRATIONS_TIMEOUT must be a positive number of seconds"),
    ],
)
def test_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertSettings.from_env(env)
