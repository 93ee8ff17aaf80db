"""Slugs as Django's slugify makes them, and the pattern an explicit slug must match."""

from __future__ import annotations

import re
import unicodedata

SLUG_RE = re.compile(r"[a-z0-9_-]*")
_DROP = re.compile(r"[^\w\s-]")
_DASHES = re.compile(r"[-\s]+")


def slugify(value: str) -> str:
    """Django's rules: NFKD to ASCII, keep word chars, spaces and hyphens, lowercase,
    collapse runs of spaces/hyphens into one hyphen, strip leading/trailing hyphens and underscores.

    >>> slugify("Database Backup")
    'database-backup'
    """
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = _DROP.sub("", value.lower())
    return _DASHES.sub("-", value).strip("-_")


def is_valid_slug(value: str) -> bool:
    return SLUG_RE.fullmatch(value) is not None
