"""Settings: one frozen dataclass, read from the environment, overridden by command-line flags.

    >>> s = Settings.from_env({"SITE_ROOT": "https://hc.example.org"})
    >>> s.ping_endpoint
    'https://hc.example.org/ping/'

Every setting is listed in SETTINGS_HELP, which `hcserver --help` prints.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from hcserver.domain.projects import API_KEY_LENGTH, PING_KEY_LENGTH


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names it."""


SETTINGS_HELP = """\
settings (environment variables; the six flags of `serve`, in brackets, override the first six):
  HC_HOST                   address to listen on (default 127.0.0.1; "::" = IPv6 and IPv4)   [--host]
  HC_PORT                   TCP port (default 8000; 0 = any free port)                       [--port]
  HC_DB                     path of the SQLite store (default ./data/hcserver.sqlite3)        [--db]
  HC_DURABLE                1 = answer a ping only after it is committed to disk (default 0) [--durable]
  HC_CERTFILE, HC_KEYFILE   serve HTTPS with this certificate and key                [--certfile/--keyfile]
  SITE_ROOT                 public base URL, used in URLs the API prints (default http://HOST:PORT)
  PING_ENDPOINT             public ping base URL (default SITE_ROOT + "/ping/")
  PING_BODY_LIMIT           bytes of each ping body stored (default 10000); the rest is dropped
  PING_LOG_LIMIT            pings kept per check (default 100)
  HC_CHECK_LIMIT            checks per project (default 10000); past it the API answers 403 and a
                            ?create=1 ping 404
  HC_MAX_REQUEST_BODY       hard cap on a ping request body, answered 413 above (default 64 MiB)
  HC_MAX_API_BODY           cap on a Management API request body (default 1 MiB)
  HC_IDLE_TIMEOUT           seconds an idle keep-alive connection stays open (default 300)
  HC_BODY_TIMEOUT           seconds a client may take to send a request body (default 60)
  HC_MAX_CONNECTIONS        connections held at once; past it a new one is closed at once
                            (default: the open-file limit, ulimit -n, minus 64 kept for the store,
                            the writer's pipes and alert deliveries)
  HC_TRUSTED_PROXIES        peers whose X-Forwarded-For/-Proto are believed: comma-separated
                            addresses or networks (default 127.0.0.0/8,::1; empty = none)
  HC_API_KEY                read-write API key of the first project (32 chars; default: generated)
  HC_API_KEY_READONLY       read-only API key of the first project (32 chars; default: generated)
  HC_PING_KEY               ping key of the first project (22 chars of a-z0-9; default: generated)
  HC_ADMIN_KEY              enables the projects API (/api/v3/projects/) and the verbose status
                            (/api/v3/status/?verbose=1) with this key (default: off)
  HC_METRICS_KEY            bearer token for the server's own metrics (/metrics), besides the admin
                            key; without either, /metrics answers 404 (default: unset)
  HC_LOG_LEVEL              DEBUG, INFO, WARNING or ERROR (default INFO); DEBUG adds a line per ping
  HC_LOG_FORMAT             text, or json for one JSON object a line (default text)
  HC_FLUSH_INTERVAL_MS      write-behind flush interval (default 100)
  HC_FLUSH_BATCH            flush as soon as this many changes are pending (default 5000)
  HC_MAX_PENDING            pending changes before new pings wait for room (default 200000)
  HC_MAX_PENDING_BYTES      bytes of pending pings before new pings wait for room (default 256 MiB)
  HC_IDLE_WRITER            1 = the SQLite writer flushes at idle CPU priority for up to 1 s per
                            flush, so it never takes a core the server wants; on a machine kept
                            busy by other work, commits (and the crash loss window) then lag by
                            up to that second (Linux; default 0; never in durable mode)
  HC_RESTART_GRACE          1 = a deadline missed while the server was down gets one grace
                            period from startup before the check goes down (default 1)
  INTEGRATIONS_ALLOW_PRIVATE_IPS  1 = webhooks may target private/loopback addresses (default 0)
  INTEGRATIONS_TIMEOUT      seconds one alert delivery attempt may take (default 10)
  EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, DEFAULT_FROM_EMAIL
                            SMTP settings for email alerts
"""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    db: str = "./data/hcserver.sqlite3"
    durable: bool = False
    certfile: str = ""
    keyfile: str = ""
    site_root: str = ""
    ping_endpoint: str = ""
    ping_body_limit: int = 10000
    ping_log_limit: int = 100
    check_limit: int = 10_000
    max_request_body: int = 64 * 1024 * 1024
    max_api_body: int = 1024 * 1024
    idle_timeout: float = 300.0
    body_timeout: float = 60.0
    max_connections: int = 0  # 0: from the open-file limit (hcserver.app.default_max_connections)
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    api_key: str = ""
    api_key_readonly: str = ""
    ping_key: str = ""
    admin_key: str = ""
    metrics_key: str = ""
    log_level: str = "INFO"
    log_format: str = "text"
    flush_interval_ms: int = 100
    flush_batch: int = 5000
    max_pending: int = 200_000
    max_pending_bytes: int = 256 << 20
    max_pending_age_ms: int = 200
    idle_writer: bool = False
    restart_grace: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        r, d = EnvReader(env), cls()
        settings = cls(
            host=r.text("HC_HOST", d.host),
            port=r.integer("HC_PORT", d.port, 0, 65535),
            db=r.text("HC_DB", d.db),
            durable=r.flag("HC_DURABLE", d.durable),
            certfile=r.text("HC_CERTFILE", ""),
            keyfile=r.text("HC_KEYFILE", ""),
            site_root=r.text("SITE_ROOT", "").rstrip("/"),
            ping_endpoint=r.text("PING_ENDPOINT", ""),
            ping_body_limit=r.integer("PING_BODY_LIMIT", d.ping_body_limit, 0, 100 * 1024 * 1024),
            ping_log_limit=r.integer("PING_LOG_LIMIT", d.ping_log_limit, 1, 100_000),
            check_limit=r.integer("HC_CHECK_LIMIT", d.check_limit, 1, 100_000_000),
            max_request_body=r.integer("HC_MAX_REQUEST_BODY", d.max_request_body, 1, 2**40),
            max_api_body=r.integer("HC_MAX_API_BODY", d.max_api_body, 1024, 2**30),
            idle_timeout=r.number("HC_IDLE_TIMEOUT", d.idle_timeout),
            body_timeout=r.number("HC_BODY_TIMEOUT", d.body_timeout),
            max_connections=r.integer("HC_MAX_CONNECTIONS", d.max_connections, 0, 10_000_000),
            trusted_proxies=r.networks("HC_TRUSTED_PROXIES", d.trusted_proxies),
            api_key=r.key("HC_API_KEY", API_KEY_LENGTH),
            api_key_readonly=r.key("HC_API_KEY_READONLY", API_KEY_LENGTH),
            ping_key=r.key("HC_PING_KEY", PING_KEY_LENGTH, alphabet="abcdefghijklmnopqrstuvwxyz0123456789"),
            admin_key=r.text("HC_ADMIN_KEY", ""),
            metrics_key=r.text("HC_METRICS_KEY", ""),
            log_level=r.choice("HC_LOG_LEVEL", d.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")),
            log_format=r.choice("HC_LOG_FORMAT", d.log_format, ("text", "json")),
            flush_interval_ms=r.integer("HC_FLUSH_INTERVAL_MS", d.flush_interval_ms, 1, 60_000),
            flush_batch=r.integer("HC_FLUSH_BATCH", d.flush_batch, 1, 10_000_000),
            max_pending=r.integer("HC_MAX_PENDING", d.max_pending, 1, 100_000_000),
            max_pending_bytes=r.integer("HC_MAX_PENDING_BYTES", d.max_pending_bytes, 1 << 20, 1 << 40),
            max_pending_age_ms=r.integer("HC_MAX_PENDING_AGE_MS", d.max_pending_age_ms, 50, 3_600_000),
            idle_writer=r.flag("HC_IDLE_WRITER", d.idle_writer),
            restart_grace=r.flag("HC_RESTART_GRACE", d.restart_grace),
        )
        if settings.admin_key and len(settings.admin_key) < 16:
            raise SettingsError("HC_ADMIN_KEY must be at least 16 characters")
        if settings.metrics_key and len(settings.metrics_key) < 16:
            raise SettingsError("HC_METRICS_KEY must be at least 16 characters")
        return settings.resolved()

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes).resolved()  # type: ignore[arg-type]

    def with_bound_port(self, port: int) -> Settings:
        """These settings once `--port 0` has been bound to `port`: SITE_ROOT and PING_ENDPOINT,
        unless they were set, follow the port.

        >>> s = Settings(port=0).resolved().with_bound_port(8123)
        >>> s.site_root, s.ping_endpoint
        ('http://127.0.0.1:8123', 'http://127.0.0.1:8123/ping/')
        >>> Settings(port=0, site_root="https://hc.example.org").resolved().with_bound_port(8123).site_root
        'https://hc.example.org'
        """
        derived = dataclasses.replace(self, site_root="", ping_endpoint="").resolved()
        return self.replace(
            port=port,
            site_root="" if self.site_root == derived.site_root else self.site_root,
            ping_endpoint="" if self.ping_endpoint == derived.ping_endpoint else self.ping_endpoint,
        )

    def resolved(self) -> Settings:
        """Fill the URLs that default to others."""
        site_root = self.site_root
        if not site_root:
            scheme = "https" if self.certfile else "http"
            host = "127.0.0.1" if self.host in ("", "::", "0.0.0.0") else self.host
            host = f"[{host}]" if ":" in host else host
            site_root = f"{scheme}://{host}:{self.port}"
        ping_endpoint = self.ping_endpoint or site_root + "/ping/"
        if not ping_endpoint.endswith("/"):
            ping_endpoint += "/"
        if (site_root, ping_endpoint) == (self.site_root, self.ping_endpoint):
            return self
        return dataclasses.replace(self, site_root=site_root, ping_endpoint=ping_endpoint)


class EnvReader:
    """Reads typed settings from an environment mapping; a bad value raises SettingsError naming it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, default)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, not {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
        if not 0 < value < 10**7:
            raise SettingsError(f"{name} must be a positive number of seconds")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of `choices`, compared without case; unset or empty gives `default`."""
        raw = self.env.get(name, "").strip()
        if raw == "":
            return default
        for choice in choices:
            if raw.lower() == choice.lower():
                return choice
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if raw == "":
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be 1 or 0 (true or false), not {raw!r}")

    def networks(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """Comma-separated IP addresses or CIDR networks; unset gives `default`, empty gives none."""
        raw = self.env.get(name)
        if raw is None:
            return default
        found = []
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                found.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise SettingsError(f"{name}: {item!r} is not an IP address or network") from None
        return tuple(found)

    def key(self, name: str, length: int, alphabet: str | None = None) -> str:
        raw = self.env.get(name, "")
        if raw == "":
            return ""
        if len(raw) != length:
            raise SettingsError(f"{name} must be {length} characters long, not {len(raw)}")
        if alphabet is not None and any(ch not in alphabet for ch in raw):
            raise SettingsError(f"{name} may only contain {alphabet}")
        if not raw.isprintable() or " " in raw:
            raise SettingsError(f"{name} must be printable and contain no spaces")
        return raw
