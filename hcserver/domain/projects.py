"""Projects own checks and three keys. Keys are never kept in clear: only their keyed hashes."""

from __future__ import annotations

import hmac
import secrets
import string
from dataclasses import dataclass

API_KEY_LENGTH = 32
PING_KEY_LENGTH = 22
_KEY_ALPHABET = string.ascii_letters + string.digits
_PING_KEY_ALPHABET = string.ascii_lowercase + string.digits


def new_api_key(readonly: bool = False) -> str:
    """`hcw_` (read-write) or `hcr_` (read-only) followed by 28 random characters: 32 in all."""
    prefix = "hcr_" if readonly else "hcw_"
    return prefix + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(API_KEY_LENGTH - 4))


def new_ping_key() -> str:
    return "".join(secrets.choice(_PING_KEY_ALPHABET) for _ in range(PING_KEY_LENGTH))


@dataclass(frozen=True, slots=True)
class KeyHasher:
    """HMAC-SHA256 of a key under the server's secret (kept in the store).

    >>> h = KeyHasher(b"secret"); h.digest("abc") == h.digest("abc")
    True
    """

    secret: bytes

    def digest(self, key: str) -> bytes:
        return hmac.digest(self.secret, key.encode("utf-8", "surrogateescape"), "sha256")


@dataclass(slots=True, eq=False)
class Project:
    id: str
    name: str
    created: float
    api_key_hash: bytes
    ping_key_hash: bytes
    api_key_readonly_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class IssuedKeys:
    """Keys in clear, shown once when a project is made, then forgotten."""

    api_key: str
    api_key_readonly: str
    ping_key: str


def make_project(project_id: str, name: str, now: float, hasher: KeyHasher, keys: IssuedKeys) -> Project:
    return Project(
        id=project_id,
        name=name,
        created=now,
        api_key_hash=hasher.digest(keys.api_key),
        ping_key_hash=hasher.digest(keys.ping_key),
        api_key_readonly_hash=hasher.digest(keys.api_key_readonly) if keys.api_key_readonly else None,
    )


def issue_keys(api_key: str | None = None, readonly: str | None = None, ping_key: str | None = None) -> IssuedKeys:
    """Use the given keys (deployments and tests fix them), generate the rest."""
    return IssuedKeys(
        api_key=api_key or new_api_key(),
        api_key_readonly=readonly or new_api_key(readonly=True),
        ping_key=ping_key or new_ping_key(),
    )
