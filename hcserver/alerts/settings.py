"""Settings the transports read, with the reference's environment variable names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hcserver.config import EnvReader


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """How alerts leave the server.

    email_host: SMTP server to hand email alerts to (`EMAIL_HOST`, default "localhost").
    email_port: its port (`EMAIL_PORT`, default 25; usually 587 with `EMAIL_USE_TLS`).
    email_host_user: SMTP login name (`EMAIL_HOST_USER`); empty means no authentication.
    email_host_password: SMTP password (`EMAIL_HOST_PASSWORD`); kept out of repr().
    email_use_tls: upgrade the SMTP connection with STARTTLS (`EMAIL_USE_TLS`, default False). As in
        the reference (Django), False means plain SMTP, not "TLS if offered".
    default_from_email: the From address of email alerts (`DEFAULT_FROM_EMAIL`).
    allow_private: let webhooks and Apprise reach loopback/private/link-local addresses
        (`INTEGRATIONS_ALLOW_PRIVATE_IPS`, default False). Turn on only when every API key holder
        may reach the server's own network.
    timeout: seconds one delivery may take in all: DNS, connect, redirects, response
        (`INTEGRATIONS_TIMEOUT`, default 10).
    """

    email_host: str = "localhost"
    email_port: int = 25
    email_host_user: str = ""
    email_host_password: str = field(default="", repr=False)
    email_use_tls: bool = False
    default_from_email: str = "hcserver@localhost"
    allow_private: bool = False
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AlertSettings:
        """Read the settings from environment variables; a bad value raises SettingsError."""
        d, r = cls(), EnvReader(environ)
        return cls(
            email_host=r.text("EMAIL_HOST", "") or d.email_host,
            email_port=r.integer("EMAIL_PORT", d.email_port, 1, 65535),
            email_host_user=r.text("EMAIL_HOST_USER", ""),
            email_host_password=r.text("EMAIL_HOST_PASSWORD", ""),
            email_use_tls=r.flag("EMAIL_USE_TLS", d.email_use_tls),
            default_from_email=r.text("DEFAULT_FROM_EMAIL", "") or d.default_from_email,
            allow_private=r.flag("INTEGRATIONS_ALLOW_PRIVATE_IPS", d.allow_private),
            timeout=r.number("INTEGRATIONS_TIMEOUT", d.timeout),
        )
