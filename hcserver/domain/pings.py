"""Pings and flips: the immutable records a check leaves behind."""

from __future__ import annotations

from dataclasses import dataclass

# Ping kinds as the API reports them.
SUCCESS, START, FAIL, LOG, IGN = "success", "start", "fail", "log", "ign"


# Ping and PingRequest are made on every ping, so they are not frozen: a frozen dataclass pays an
# object.__setattr__ per field (1.5 us against 0.26 us here). Treat them as immutable all the same.


@dataclass(slots=True)
class Ping:
    """One recorded ping. `n` is the check's sequence number (1-based), `created` epoch seconds."""

    n: int
    created: float
    kind: str
    scheme: str = "http"
    remote_addr: str = ""
    method: str = "GET"
    ua: str = ""
    body: bytes | None = None
    rid: str | None = None
    exitstatus: int | None = None
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class Flip:
    """A status change of one check: the only thing alerts are made from."""

    check: str
    created: float
    old_status: str
    new_status: str
    reason: str = ""

    @property
    def up(self) -> bool:
        return self.new_status == "up"


@dataclass(slots=True)
class PingRequest:
    """What the web layer parsed out of a ping request, before the check decides what it means."""

    action: str
    method: str
    scheme: str = "http"
    remote_addr: str = ""
    ua: str = ""
    body: bytes | None = None
    rid: str | None = None
    exitstatus: int | None = None
