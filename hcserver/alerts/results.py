"""The outcome of one delivery attempt. In its own module so channels and transports can both use it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """`ok` when the target accepted the alert (or there was nothing to send).

    `permanent` marks a failure that retrying cannot fix (a 4xx other than 408/429, a refused private
    address, an address the mail server rejects with 5xx, a missing optional package): the caller
    should not retry, and disables the channel. `error` is a short human-readable reason, "" when ok.
    """

    ok: bool
    permanent: bool = False
    error: str = ""

    @classmethod
    def success(cls) -> DeliveryResult:
        return cls(ok=True)

    @classmethod
    def failure(cls, error: str, permanent: bool = False) -> DeliveryResult:
        return cls(ok=False, permanent=permanent, error=error)
