"""The one seam between request handling and storage.

Use cases change the in-memory index, then tell a `Recorder` what changed (through the Context). The recorder returns at
once; `None` means "answer now", an awaitable means "answer when it is done" (durable mode, or
backpressure when too much is pending). Reads of history (pings, flips) go through it too, so a
ping is visible as soon as it is answered, flushed or not.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from hcserver.domain.checks import Check
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.projects import Project

# A notification is keyed by (check uuid, its flip's time, channel id).
NotificationKey = tuple[str, float, str]


class Recorder(Protocol):
    def check_changed(self, check: Check) -> Awaitable[None] | None: ...

    def check_deleted(self, check: Check) -> Awaitable[None] | None: ...

    def ping_recorded(self, check: Check, ping: Ping, flip: Flip | None) -> Awaitable[None] | None:
        """The check changed because of this ping (and maybe flipped): persist all three."""
        ...

    def flip_made(self, check: Check, flip: Flip) -> Awaitable[None] | None: ...

    def project_changed(self, project: Project) -> Awaitable[None] | None: ...

    def project_deleted(self, project: Project) -> Awaitable[None] | None: ...

    def channel_changed(self, record: dict[str, Any]) -> Awaitable[None] | None:
        """A channel's plain record (the alerts package makes it), with `id` and `project_id`."""
        ...

    def channel_deleted(self, channel_id: str) -> Awaitable[None] | None: ...

    def notification_changed(self, key: NotificationKey, record: dict[str, Any]) -> Awaitable[None] | None: ...

    async def recent_pings(self, check: Check, limit: int) -> list[Ping]:
        """Newest first, at most `limit`."""
        ...

    async def get_ping(self, check: Check, n: int) -> Ping | None: ...

    async def flips(self, check: Check) -> list[Flip]:
        """Oldest first."""
        ...

    def status(self) -> dict[str, Any]:
        """Figures for the verbose `/api/v3/status/`; `ok` False (with `error`) while it cannot record."""
        ...
