"""Settings the transports read, with the reference's environment variable names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be True or False, not {raw!r}")


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


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
        """Read the settings from environment variables (pass `os.environ`); raise ValueError on junk."""
        defaults = cls()
        port_raw = environ.get("EMAIL_PORT", "").strip()
        try:
            port = int(port_raw) if port_raw else defaults.email_port
        except ValueError:
            raise ValueError(f"EMAIL_PORT must be a port number, not {port_raw!r}") from None
        if not 0 < port < 65536:
            raise ValueError(f"EMAIL_PORT must be a port number, not {port_raw!r}")
        return cls(
            email_host=environ.get("EMAIL_HOST", defaults.email_host) or defaults.email_host,
            email_port=port,
            email_host_user=environ.get("EMAIL_HOST_USER", ""),
            email_host_password=environ.get("EMAIL_HOST_PASSWORD", ""),
            email_use_tls=_bool(environ, "EMAIL_USE_TLS", defaults.email_use_tls),
            default_from_email=environ.get("DEFAULT_FROM_EMAIL", "") or defaults.default_from_email,
            allow_private=_bool(environ, "INTEGRATIONS_ALLOW_PRIVATE_IPS", defaults.allow_private),
            timeout=_number(environ, "INTEGRATIONS_TIMEOUT", defaults.timeout),
        )
