"""The source side of `hcserver import-healthchecks`: a Healthchecks server's Management API v3.

    source = HealthchecksSource("https://healthchecks.example.org", "hcw_...", timeout=30)
    snapshot = source.fetch(progress=print_progress)   # checks, their pings (with bodies) and flips

Everything is read before anything is written: a source that fails halfway costs nothing but the
time. Each failure is a SourceError whose message is the one line the command prints.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hcserver.metrics import version

# What the importer needs from each check it lists; the read-only key gives `unique_key` instead of
# `uuid` (see the API's documentation), with which a ping URL cannot be kept.
_NEEDED = ("uuid", "name", "status")


class SourceError(RuntimeError):
    """The source did not give what the import needs; the message says what and what to do."""


@dataclass
class SourceCheck:
    """One check as the source's API shows it, with its ping log (newest first), the bodies of those
    pings by number, and its flips."""

    data: dict[str, Any]
    pings: list[dict[str, Any]] = field(default_factory=list)
    bodies: dict[int, bytes] = field(default_factory=dict)
    flips: list[dict[str, Any]] = field(default_factory=list)

    @property
    def uuid(self) -> str:
        return str(self.data["uuid"])

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))


@dataclass
class Snapshot:
    checks: list[SourceCheck]
    channels: list[dict[str, Any]]


class HealthchecksSource:
    def __init__(self, url: str, api_key: str, *, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SourceError(
                f"--url {url!r} is not an http(s) URL: give the source's site root, such as https://healthchecks.io"
            )
        self.root = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.api_key = api_key
        self.timeout = timeout

    def api_url(self, path: str) -> str:
        return f"{self.root}/api/v3/{path}"

    def fetch(self, progress: Callable[[int, int, SourceCheck], None] | None = None) -> Snapshot:
        """Every check with its pings, their bodies and its flips, then the channels."""
        listed = self.get_json("checks/", "checks")
        for item in listed:
            if not isinstance(item, dict) or any(name not in item for name in _NEEDED):
                if isinstance(item, dict) and "unique_key" in item:
                    raise SourceError(
                        "the source shows no check UUIDs with this API key: it is a read-only key; give the "
                        "project's read-write key (Settings > API Access on the source's dashboard)"
                    )
                raise SourceError(f"{self.api_url('checks/')} lists a check without {', '.join(_NEEDED)}")
        checks = [SourceCheck(item) for item in listed]
        for done, check in enumerate(checks, 1):
            uuid = urllib.parse.quote(check.uuid, safe="")
            check.pings = [p for p in self.get_json(f"checks/{uuid}/pings/", "pings") if isinstance(p, dict)]
            for ping in check.pings:
                n, body_url = ping.get("n"), ping.get("body_url")
                if isinstance(n, int) and isinstance(body_url, str) and body_url:
                    body = self.get_body(body_url)
                    if body is not None:
                        check.bodies[n] = body
            check.flips = [f for f in self.get_json(f"checks/{uuid}/flips/", "flips") if isinstance(f, dict)]
            if progress is not None:
                progress(done, len(checks), check)
        channels = [c for c in self.get_json("channels/", "channels") if isinstance(c, dict)]
        return Snapshot(checks, channels)

    # -- HTTP ---------------------------------------------------------------------------------------

    def get_json(self, path: str, key: str) -> list[Any]:
        """The list under `key` in the JSON answer to GET /api/v3/<path>."""
        url = self.api_url(path)
        data = self._get(url)
        try:
            value = json.loads(data)
        except ValueError:
            start = data[:40].decode("utf-8", "replace").split("\n")[0]
            raise SourceError(
                f"{url} answered with something that is not JSON ({start!r}...): is --url the site root of a "
                "Healthchecks server, and not a login page or a proxy's error page?"
            ) from None
        if not isinstance(value, dict) or not isinstance(value.get(key), list):
            raise SourceError(f"{url} answered JSON without a {key!r} list: is --url a Healthchecks server?")
        items: list[Any] = value[key]
        return items

    def get_body(self, body_url: str) -> bytes | None:
        """A ping's body. The URL's path is taken under --url (the source's own SITE_ROOT may name a
        host this machine does not reach); None when the ping has left the source's log since."""
        parts = urllib.parse.urlsplit(body_url)
        root = urllib.parse.urlsplit(self.root)
        url = urllib.parse.urlunsplit((root.scheme, root.netloc, parts.path, parts.query, ""))
        try:
            return self._get(url)
        except _NotFound:
            return None

    def _get(self, url: str) -> bytes:
        request = urllib.request.Request(
            url, headers={"X-Api-Key": self.api_key, "User-Agent": f"hcserver-import/{version()}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and "/pings/" in url and url.endswith("/body"):
                raise _NotFound() from None
            raise SourceError(_http_error(url, exc.code)) from None
        except TimeoutError:
            raise SourceError(f"{url} did not answer within {self.timeout:g} s (--timeout)") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                raise SourceError(f"{url} did not answer within {self.timeout:g} s (--timeout)") from None
            why = getattr(reason, "strerror", None) or str(reason)
            raise SourceError(f"cannot reach {url}: {why}") from None
        except OSError as exc:
            raise SourceError(f"cannot read {url}: {exc.strerror or exc}") from None


class _NotFound(Exception):
    pass


def _http_error(url: str, code: int) -> str:
    if code in (401, 403):
        return (
            f"{url} answered {code}: the source refused the API key; give the project's read-write API key "
            "(Settings > API Access on the source's dashboard)"
        )
    if code == 404:
        return (
            f"{url} answered 404: --url must be the source's site root (the API lives at <url>/api/v3/), such "
            "as https://healthchecks.io"
        )
    return f"{url} answered HTTP {code}: the source failed; try again later"
