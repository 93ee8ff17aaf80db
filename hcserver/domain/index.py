"""The in-memory index: every lookup a request needs, each one dict access.

    >>> index = Index(KeyHasher(b"s"))
    >>> index.add_project(project); index.add_check(check)
    >>> index.checks[check.uuid] is check, index.by_slug(project.id, check.slug) == [check]

All changes to a check's project, slug, name, tags, timeout or grace go through the index
(`set_slug`, `set_fields`, `move_check`) so the lookups stay true.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from hcserver.domain.checks import Check
from hcserver.domain.projects import KeyHasher, Project


class ChannelLike(Protocol):
    """What the index needs of an integration (the alerts package defines the entity)."""

    @property
    def id(self) -> str: ...

    @property
    def project_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...


# The fields a `unique` upsert may match on, besides the slug (which has its own lookup).
MATCHED_FIELDS = ("name", "tags", "timeout", "grace")


class Index:
    def __init__(self, hasher: KeyHasher) -> None:
        self.hasher = hasher
        self.checks: dict[str, Check] = {}
        self.projects: dict[str, Project] = {}
        self._by_ping_key: dict[bytes, Project] = {}
        # api key hash -> (project, read-only?)
        self._by_api_key: dict[bytes, tuple[Project, bool]] = {}
        # project id -> uuid -> check, in creation order
        self._project_checks: dict[str, dict[str, Check]] = {}
        # project id -> slug -> its check, or the list of checks that share it (a ping answers 409).
        # Most slugs are unique: a list for each would cost ~90 bytes a check.
        self._slugs: dict[str, dict[str, Check | list[Check]]] = {}
        # project id -> uuid -> check, for checks without a slug (a `unique` upsert may ask for "").
        self._unslugged: dict[str, dict[str, Check]] = {}
        # What a `unique` upsert matches on besides the slug: project id -> field -> value -> its
        # check, or the checks sharing it by uuid (a dict: removing one of 100,000 checks that share
        # the default timeout must not scan them). ~38 bytes a field a check.
        self._matched: dict[str, dict[str, dict[Any, Check | dict[str, Check]]]] = {}
        # project id -> when the server last logged that the project is at its check limit.
        self.limit_logged: dict[str, float] = {}
        # The first 64 bits of a check's unique key -> the check (an int key is ~50 bytes smaller
        # than the 40-character string); a hit is confirmed against the full key.
        self._unique: dict[int, Check] = {}
        self.channels: dict[str, ChannelLike] = {}
        self._badge_keys: dict[str, str] = {}  # badge key -> project id

    # -- projects ---------------------------------------------------------------------------------

    def add_project(self, project: Project) -> None:
        self.projects[project.id] = project
        self._by_ping_key[project.ping_key_hash] = project
        self._by_api_key[project.api_key_hash] = (project, False)
        if project.api_key_readonly_hash:
            self._by_api_key[project.api_key_readonly_hash] = (project, True)
        self._project_checks.setdefault(project.id, {})
        self._slugs.setdefault(project.id, {})
        self._unslugged.setdefault(project.id, {})
        self._matched.setdefault(project.id, {field: {} for field in MATCHED_FIELDS})
        self._badge_keys[self.badge_key(project.id)] = project.id

    def remove_project(self, project_id: str) -> list[Check]:
        """Forget a project and every check in it; return the checks removed."""
        project = self.projects.pop(project_id)
        self._by_ping_key.pop(project.ping_key_hash, None)
        self._by_api_key.pop(project.api_key_hash, None)
        if project.api_key_readonly_hash:
            self._by_api_key.pop(project.api_key_readonly_hash, None)
        self._badge_keys.pop(self.badge_key(project_id), None)
        removed = list(self._project_checks.get(project_id, {}).values())
        for check in removed:
            self.remove_check(check)
        self._project_checks.pop(project_id, None)
        self._slugs.pop(project_id, None)
        self._unslugged.pop(project_id, None)
        self._matched.pop(project_id, None)
        self.limit_logged.pop(project_id, None)
        return removed

    def project_by_ping_key(self, ping_key: str) -> Project | None:
        project = self._by_ping_key.get(self.hasher.digest(ping_key))
        return project

    def badge_key(self, project_id: str) -> str:
        """A public id for badge URLs: derived from the secret, so it can't be guessed or reversed."""
        return self.hasher.digest("badge:" + project_id).hex()[:16]

    def project_by_badge_key(self, key: str) -> str | None:
        return self._badge_keys.get(key)

    def project_by_api_key(self, api_key: str) -> tuple[Project, bool] | None:
        """(project, read_only) for a key, or None. The final comparison is constant-time."""
        digest = self.hasher.digest(api_key)
        found = self._by_api_key.get(digest)
        if found is None:
            return None
        project, readonly = found
        expected = project.api_key_readonly_hash if readonly else project.api_key_hash
        if expected is None or not hmac.compare_digest(expected, digest):
            return None
        return found

    def project_channels(self, project_id: str) -> list[ChannelLike]:
        return [c for c in self.channels.values() if c.project_id == project_id]

    # -- checks -----------------------------------------------------------------------------------

    def add_check(self, check: Check) -> None:
        self.checks[check.uuid] = check
        self._project_checks[check.project_id][check.uuid] = check
        self._unique[_short(check.unique_key)] = check
        self._link_slug(check)
        matched = self._matched[check.project_id]
        for field in MATCHED_FIELDS:
            _put(matched[field], getattr(check, field), check)

    def remove_check(self, check: Check) -> None:
        self.checks.pop(check.uuid, None)
        self._project_checks.get(check.project_id, {}).pop(check.uuid, None)
        self._unique.pop(_short(check.unique_key), None)
        self._unlink_slug(check)
        matched = self._matched.get(check.project_id)
        if matched is not None:
            for field in MATCHED_FIELDS:
                _drop(matched[field], getattr(check, field), check)

    def check_count(self, project_id: str) -> int:
        return len(self._project_checks.get(project_id, ()))

    def set_slug(self, check: Check, slug: str) -> None:
        if slug == check.slug:
            return
        self._unlink_slug(check)
        check.slug = slug
        self._link_slug(check)

    def set_fields(self, check: Check, values: Mapping[str, Any]) -> None:
        """Change a check's slug, name, tags, timeout or grace (the fields `unique` matches on)."""
        for field, value in values.items():
            if field == "slug":
                self.set_slug(check, value)
                continue
            if field not in MATCHED_FIELDS:
                raise ValueError(f"{field} is not a field the index follows")
            old = getattr(check, field)
            if old == value:
                continue
            matched = self._matched[check.project_id][field]
            _drop(matched, old, check)
            setattr(check, field, value)
            _put(matched, value, check)

    def find_matching(self, project_id: str, wanted: Mapping[str, Any]) -> Check | None:
        """The earliest created check of the project whose fields equal every value in `wanted`
        (any of slug, name, tags, timeout, grace), or None.

        Only the checks sharing the least shared of the wanted values are looked at: with a
        100,000-check project, a `unique: ["name"]` upsert looks at the checks of that name.
        """
        if not wanted:
            return None
        fewest: list[Check] | dict[str, Check] | None = None
        for field, value in wanted.items():
            found: Check | list[Check] | dict[str, Check] | None
            if field == "slug":
                found = self._slugs.get(project_id, {}).get(value) if value else self._unslugged.get(project_id)
            elif field in MATCHED_FIELDS:
                found = self._matched.get(project_id, {}).get(field, {}).get(value)
            else:
                raise ValueError(f"{field} is not a field the index follows")
            if not found:
                return None
            if isinstance(found, Check):
                found = [found]
            if fewest is None or len(found) < len(fewest):
                fewest = found
        assert fewest is not None
        candidates = fewest.values() if isinstance(fewest, dict) else fewest
        best: Check | None = None
        for check in candidates:
            if (best is None or check.created < best.created) and all(
                getattr(check, field) == value for field, value in wanted.items()
            ):
                best = check
        return best

    def move_check(self, check: Check, project_id: str) -> None:
        """Give a check to another project: its slug now resolves under that project's ping key."""
        self.remove_check(check)
        check.project_id = project_id
        self.add_check(check)

    def by_slug(self, project_id: str, slug: str) -> list[Check]:
        found = self._slugs.get(project_id, {}).get(slug)
        if found is None:
            return []
        return found if isinstance(found, list) else [found]

    def by_unique_key(self, unique_key: str) -> Check | None:
        if len(unique_key) != 40:
            return None
        try:
            check = self._unique.get(_short(unique_key))
        except ValueError:
            return None
        return check if check is not None and check.unique_key == unique_key else None

    def project_checks(self, project_id: str) -> Iterator[Check]:
        return iter(list(self._project_checks.get(project_id, {}).values()))

    def _link_slug(self, check: Check) -> None:
        if not check.slug:
            self._unslugged[check.project_id][check.uuid] = check
            return
        slugs = self._slugs[check.project_id]
        found = slugs.get(check.slug)
        if found is None:
            slugs[check.slug] = check
        elif isinstance(found, list):
            found.append(check)
        else:
            slugs[check.slug] = [found, check]

    def _unlink_slug(self, check: Check) -> None:
        if not check.slug:
            self._unslugged.get(check.project_id, {}).pop(check.uuid, None)
            return
        slugs = self._slugs.get(check.project_id)
        if slugs is None:
            return
        found = slugs.get(check.slug)
        if found is check:
            del slugs[check.slug]
        elif isinstance(found, list):
            rest = [c for c in found if c is not check]
            if len(rest) == 1:
                slugs[check.slug] = rest[0]
            elif rest:
                slugs[check.slug] = rest
            else:
                del slugs[check.slug]


def _put(values: dict[Any, Check | dict[str, Check]], value: object, check: Check) -> None:
    found = values.get(value)
    if found is None:
        values[value] = check
    elif isinstance(found, dict):
        found[check.uuid] = check
    else:
        values[value] = {found.uuid: found, check.uuid: check}


def _drop(values: dict[Any, Check | dict[str, Check]], value: object, check: Check) -> None:
    found = values.get(value)
    if found is check:
        del values[value]
    elif isinstance(found, dict):
        found.pop(check.uuid, None)
        if len(found) == 1:
            values[value] = next(iter(found.values()))
        elif not found:
            del values[value]


def _short(unique_key: str) -> int:
    return int(unique_key[:16], 16)
