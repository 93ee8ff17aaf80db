"""The in-memory index: every lookup a request needs, each one dict access.

    >>> from hcserver.domain.checks import Check
    >>> from hcserver.domain.projects import Project
    >>> index = Index(KeyHasher(b"s"))
    >>> project = Project("p1", "Ops", 0.0, b"a" * 32, b"b" * 32)
    >>> check = Check(uuid="5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278", project_id="p1", created=0.0, slug="backup")
    >>> index.add_project(project); index.add_check(check)
    >>> index.checks[check.uuid] is check, index.by_slug(project.id, check.slug) == [check]
    (True, True)

All changes to a check's project, slug, name, tags, timeout or grace go through the index
(`add_check`, `remove_check`, `set_slug`, `set_fields`) so the lookups stay true.
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


# The fields a `unique` upsert may match on, besides a non-empty slug (found through `by_slug`).
MATCHED_FIELDS = ("name", "tags", "timeout", "grace")


class _Shared(list[Check]):
    """The checks sharing one value of a field, in the order they took it.

    100,000 checks may share the default timeout: a dict keyed by uuid would cost ~40 bytes a
    check, a list entry 8. A check that leaves the value is only counted out of `live`; its entry
    stays until the dead outnumber the live, then the list is rebuilt, so leaving costs O(1)
    amortized. Readers check each entry (see `Index.find_matching`).
    """

    __slots__ = ("live",)

    def __init__(self, checks: list[Check]) -> None:
        super().__init__(checks)
        self.live = len(checks)


Bucket = Check | _Shared


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
        # What a `unique` upsert matches on: project id -> field -> value -> its check, or the
        # checks sharing it. Fields: MATCHED_FIELDS, and "slug" for the empty slug only.
        self._matched: dict[str, dict[str, dict[Any, Bucket]]] = {}
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
        self._matched.setdefault(project.id, {field: {} for field in (*MATCHED_FIELDS, "slug")})
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
        if not check.slug:
            _put(matched["slug"], "", check)

    def remove_check(self, check: Check) -> None:
        self.checks.pop(check.uuid, None)
        self._project_checks.get(check.project_id, {}).pop(check.uuid, None)
        self._unique.pop(_short(check.unique_key), None)
        self._unlink_slug(check)
        for field in MATCHED_FIELDS:
            self._drop(check, field, getattr(check, field))
        if not check.slug:
            self._drop(check, "slug", "")

    def check_count(self, project_id: str) -> int:
        return len(self._project_checks.get(project_id, ()))

    def set_slug(self, check: Check, slug: str) -> None:
        old = check.slug
        if slug == old:
            return
        self._unlink_slug(check)
        check.slug = slug
        self._link_slug(check)
        if not old:
            self._drop(check, "slug", "")
        elif not slug:
            _put(self._matched[check.project_id]["slug"], "", check)

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
            setattr(check, field, value)
            self._drop(check, field, old)  # after the change: a rebuild keeps who still has `old`
            _put(self._matched[check.project_id][field], value, check)

    def find_matching(self, project_id: str, wanted: Mapping[str, Any]) -> Check | None:
        """The earliest created check of the project whose fields equal every value in `wanted`
        (any of slug, name, tags, timeout, grace), or None.

        Only the checks sharing the least shared of the wanted values are looked at: with a
        100,000-check project, a `unique: ["name"]` upsert looks at the checks of that name.
        """
        unknown = [field for field in wanted if field != "slug" and field not in MATCHED_FIELDS]
        if unknown:
            raise ValueError(f"{unknown[0]} is not a field the index follows")
        matched = self._matched.get(project_id)
        if not wanted or matched is None:
            return None
        fewest: list[Check] | None = None
        for field, value in wanted.items():
            found: Check | list[Check] | None
            if field == "slug" and value:
                found = self._slugs.get(project_id, {}).get(value)
            else:
                found = matched[field].get(value)
            if found is None:
                return None
            if isinstance(found, Check):
                found = [found]
            if fewest is None or len(found) < len(fewest):
                fewest = found
        assert fewest is not None
        members = self._project_checks.get(project_id, {})
        best: Check | None = None
        for check in fewest:
            # A shared list may hold checks that have left the value, or the project.
            if (
                (best is None or check.created < best.created)
                and all(getattr(check, field) == value for field, value in wanted.items())
                and members.get(check.uuid) is check
            ):
                best = check
        return best

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

    def _drop(self, check: Check, field: str, value: object) -> None:
        """`check` no longer has `value` in `field` (it changed, or the check left the project)."""
        values = self._matched.get(check.project_id, {}).get(field)
        found = None if values is None else values.get(value)
        if found is None or values is None:
            return
        if found is check:
            del values[value]
            return
        if not isinstance(found, _Shared):
            return
        found.live -= 1
        if found.live <= 1 or len(found) > 2 * found.live + 8:
            members = self._project_checks.get(check.project_id, {})
            kept: dict[int, Check] = {}
            for c in found:
                if members.get(c.uuid) is c and getattr(c, field) == value:
                    kept.setdefault(id(c), c)
            if len(kept) > 1:
                found[:] = kept.values()
                found.live = len(kept)
            elif kept:
                values[value] = next(iter(kept.values()))
            else:
                del values[value]

    def _link_slug(self, check: Check) -> None:
        if not check.slug:
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
        slugs = self._slugs.get(check.project_id)
        if not check.slug or slugs is None:
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


def _put(values: dict[Any, Bucket], value: object, check: Check) -> None:
    found = values.get(value)
    if found is None:
        values[value] = check
    elif isinstance(found, _Shared):
        found.append(check)
        found.live += 1
    else:
        values[value] = _Shared([found, check])


def _short(unique_key: str) -> int:
    return int(unique_key[:16], 16)
