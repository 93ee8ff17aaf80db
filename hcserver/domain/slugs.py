"""Slugs as Django's slugify makes them, and the rule a slug a client chooses must follow."""

from __future__ import annotations

import re
import unicodedata

SLUG_RE = re.compile(r"[a-z0-9_-]*")
SLUG_MAX_LENGTH = 100
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


def slug_problem(slug: str) -> str | None:
    """Why a check cannot have this slug ("is too long", "does not match pattern"), or None.

    The one rule for slugs a client chooses: the API's `slug` field and `?create=1` pings.
    """
    if len(slug) > SLUG_MAX_LENGTH:
        return "is too long"
    # fullmatch: "$" alone would let a trailing newline through.
    if not is_valid_slug(slug):
        return "does not match pattern"
    return None
