"""Index.find_matching, what a `unique` upsert looks up: right through every change, and no scan."""

from __future__ import annotations

import gc
import random
import sys
from collections.abc import Callable
from typing import Any

import pytest

from hcserver.domain.checks import Check
from hcserver.domain.index import Index
from hcserver.domain.projects import KeyHasher, issue_keys, make_project


def make_index() -> Index:
    index = Index(KeyHasher(b"s"))
    for pid in ("a", "b"):
        index.add_project(make_project(pid, pid.upper(), 0, index.hasher, issue_keys()))
    return index


def add(index: Index, uuid: str, project: str = "a", created: float = 0.0, **fields: Any) -> Check:
    check = Check(uuid=uuid, project_id=project, created=created, **fields)
    index.add_check(check)
    return check


def test_each_field_and_combinations():
    index = make_index()
    one = add(index, "1", name="db", slug="db", tags="prod", timeout=600, grace=60)
    two = add(index, "2", name="web", slug="web", tags="prod", timeout=600, grace=120)
    find = index.find_matching
    assert find("a", {"name": "db"}) is one
    assert find("a", {"slug": "web"}) is two
    assert find("a", {"tags": "prod"}) is one  # both match: the earlier created
    assert find("a", {"timeout": 600, "grace": 120}) is two
    assert find("a", {"name": "db", "tags": "prod", "timeout": 600, "grace": 60, "slug": "db"}) is one
    assert find("a", {"name": "db", "grace": 120}) is None
    assert find("a", {"name": "nope"}) is None
    assert find("a", {"tags": "prod "}) is None  # whole-string equality, as the reference
    assert find("b", {"name": "db"}) is None  # another project's checks never match
    assert find("a", {}) is None
    with pytest.raises(ValueError):
        find("a", {"desc": ""})


def test_earliest_created_wins_among_duplicates():
    index = make_index()
    late = add(index, "1", created=20.0, name="dup")
    early = add(index, "2", created=10.0, name="dup")
    add(index, "3", created=30.0, name="dup")
    assert index.find_matching("a", {"name": "dup"}) is early
    index.remove_check(early)
    assert index.find_matching("a", {"name": "dup"}) is late


def test_updates_move_a_check_between_values():
    index = make_index()
    check = add(index, "1", name="old", slug="old", tags="x", timeout=600, grace=60)
    add(index, "2", name="other", slug="other", tags="x", timeout=600, grace=60)
    index.set_fields(check, {"name": "new", "slug": "new", "tags": "y", "timeout": 900, "grace": 90})
    assert (check.name, check.slug, check.tags, check.timeout, check.grace) == ("new", "new", "y", 900, 90)
    for field, old in (("name", "old"), ("slug", "old"), ("tags", "x"), ("timeout", 600), ("grace", 60)):
        found = index.find_matching("a", {field: old})
        assert found is None or found.uuid == "2", field
    for field, new in (("name", "new"), ("slug", "new"), ("tags", "y"), ("timeout", 900), ("grace", 90)):
        assert index.find_matching("a", {field: new}) is check, field
    assert index.by_slug("a", "new") == [check] and index.by_slug("a", "old") == []
    with pytest.raises(ValueError):
        index.set_fields(check, {"desc": "not followed"})


def test_empty_slug_matches_checks_without_one():
    index = make_index()
    assert index.find_matching("a", {"slug": ""}) is None
    bare = add(index, "1", name="")
    named = add(index, "2", name="n", slug="n")
    assert index.find_matching("a", {"slug": ""}) is bare
    index.set_slug(bare, "now-set")
    assert index.find_matching("a", {"slug": ""}) is None
    index.set_slug(named, "")
    assert index.find_matching("a", {"slug": ""}) is named and index.by_slug("a", "") == []


def test_shared_values_shrink_back_to_one_and_to_none():
    index = make_index()
    checks = [add(index, str(i), created=float(i), tags="shared") for i in range(3)]
    index.remove_check(checks[0])
    assert index.find_matching("a", {"tags": "shared"}) is checks[1]
    index.set_fields(checks[1], {"tags": "own"})
    assert index.find_matching("a", {"tags": "shared"}) is checks[2]
    index.remove_check(checks[2])
    assert index.find_matching("a", {"tags": "shared"}) is None
    assert index.find_matching("a", {"tags": "own"}) is checks[1]


def test_move_and_project_removal():
    index = make_index()
    check = add(index, "1", name="mover", slug="")
    move_check(index, check, "b")
    assert index.find_matching("a", {"name": "mover"}) is None
    assert index.find_matching("b", {"name": "mover"}) is check
    assert index.find_matching("b", {"slug": ""}) is check
    index.remove_project("b")
    assert index.find_matching("b", {"name": "mover"}) is None
    index.add_project(make_project("b", "B again", 0, index.hasher, issue_keys()))
    assert index.find_matching("b", {"name": "mover"}) is None and index.check_count("b") == 0


def test_check_count():
    index = make_index()
    for i in range(3):
        add(index, str(i))
    add(index, "x", project="b")
    assert (index.check_count("a"), index.check_count("b"), index.check_count("gone")) == (3, 1, 0)
    index.remove_check(index.checks["0"])
    assert index.check_count("a") == 2


def lines_run(fn: Callable[[], object]) -> int:
    """How many lines of Python `fn` runs: the work it does, counted instead of timed."""
    count = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    # A garbage collection in the middle could run finalizers of objects other tests left behind,
    # whose lines would count too.
    gc.collect()
    gc.disable()
    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(None)
        gc.enable()
    return count


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ({"name": "target"}, "t"),
        ({"slug": "target"}, "t"),
        ({"name": "target", "tags": "prod", "timeout": 600, "grace": 60}, "t"),
        ({"tags": "rare"}, "r"),
        ({"timeout": 900}, "r"),
        ({"name": "missing"}, None),
    ],
)
def test_lookup_work_does_not_grow_with_the_project(wanted, expected):
    """With 10 or 5,000 other checks (same tags, timeout and grace), the lookup runs the same lines."""
    counts = []
    for others in (10, 5000):
        index = make_index()
        for i in range(others):
            add(index, f"other-{i}", name=f"n{i}", slug=f"n{i}", tags="prod", timeout=600, grace=60)
        add(index, "t", created=1.0, name="target", slug="target", tags="prod", timeout=600, grace=60)
        add(index, "r", created=2.0, name="r", slug="r", tags="rare", timeout=900, grace=60)
        found: list[Check | None] = []
        counts.append(lines_run(lambda index=index, found=found: found.append(index.find_matching("a", wanted))))
        assert found == [index.checks[expected] if expected else None]
    assert counts[0] == counts[1] > 0


def test_a_value_left_and_taken_again_counts_once():
    index = make_index()
    a = add(index, "a", created=1.0, tags="x")
    b = add(index, "b", created=2.0, tags="x")
    for _ in range(3):
        index.set_fields(a, {"tags": "y"})
        index.set_fields(a, {"tags": "x"})
    assert index.find_matching("a", {"tags": "x"}) is a
    index.set_fields(a, {"tags": "y"})
    assert index.find_matching("a", {"tags": "x"}) is b
    index.remove_check(b)
    assert index.find_matching("a", {"tags": "x"}) is None
    assert index.find_matching("a", {"tags": "y"}) is a


def test_random_changes_agree_with_a_scan():
    """Adds, updates, slug changes, moves and removals in a random order: after each, every
    lookup gives what a scan gives: the earliest created of the project's checks that match."""
    rng = random.Random(7)
    index = make_index()
    values = {
        "name": ["", "a", "b"],
        "slug": ["", "s", "t"],
        "tags": ["", "prod", "db"],
        "timeout": [60, 600],
        "grace": [60, 120],
    }
    created = 0.0

    def scan(project_id: str, wanted: dict[str, Any]) -> Check | None:
        found = [c for c in index.project_checks(project_id) if all(getattr(c, f) == v for f, v in wanted.items())]
        return min(found, key=lambda c: c.created, default=None)

    for step in range(3000):
        live = list(index.checks.values())
        op = rng.random()
        if op < 0.35 or not live:
            created += 1.0
            fields = {f: rng.choice(v) for f, v in values.items()}
            add(index, f"c{step}", project=rng.choice("ab"), created=created, **fields)
        elif op < 0.7:
            check = rng.choice(live)
            field = rng.choice(list(values))
            index.set_fields(check, {field: rng.choice(values[field])})
        elif op < 0.8:
            check = rng.choice(live)
            move_check(index, check, "b" if check.project_id == "a" else "a")
        else:
            index.remove_check(rng.choice(live))
        for _ in range(3):
            project_id = rng.choice("ab")
            fields = rng.sample(list(values), rng.randint(1, 3))
            wanted = {f: rng.choice(values[f]) for f in fields}
            assert index.find_matching(project_id, wanted) is scan(project_id, wanted), (step, wanted)


def test_removing_checks_that_share_values_costs_constant_work_each():
    """Each removal from values shared by every check: the total grows with the count, not its square."""
    totals = []
    for count in (500, 5000):
        index = make_index()
        checks = [add(index, str(i), created=float(i), tags="t") for i in range(count)]
        rng = random.Random(1)
        rng.shuffle(checks)

        def remove_all(index: Index = index, checks: list[Check] = checks) -> None:
            for check in checks:
                index.remove_check(check)

        totals.append(lines_run(remove_all))
        assert index.find_matching("a", {"tags": "t"}) is None
    assert totals[1] < 20 * totals[0]


def move_check(index: Index, check: Check, project_id: str) -> None:
    """Give a check to another project, as a delete and a create would."""
    index.remove_check(check)
    check.project_id = project_id
    index.add_check(check)
