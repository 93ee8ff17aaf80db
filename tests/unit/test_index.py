from __future__ import annotations

from hcserver.domain.checks import Check
from hcserver.domain.index import Index
from hcserver.domain.projects import KeyHasher, issue_keys, make_project


def setup():
    index = Index(KeyHasher(b"s"))
    keys_a, keys_b = issue_keys(), issue_keys()
    a = make_project("a", "A", 0, index.hasher, keys_a)
    b = make_project("b", "B", 0, index.hasher, keys_b)
    index.add_project(a)
    index.add_project(b)
    return index, a, b, keys_a, keys_b


def test_keys_resolve_and_readonly_flag():
    index, a, b, keys_a, keys_b = setup()
    assert index.project_by_api_key(keys_a.api_key) == (a, False)
    assert index.project_by_api_key(keys_a.api_key_readonly) == (a, True)
    assert index.project_by_ping_key(keys_b.ping_key) is b
    assert index.project_by_api_key("hcw_" + "x" * 28) is None
    # keys are stored hashed only
    assert keys_a.api_key.encode() not in repr(a).encode()


def test_slug_index_through_create_rename_move_delete():
    index, a, b, *_ = setup()
    one = Check(uuid="1", project_id="a", created=0, slug="job")
    two = Check(uuid="2", project_id="a", created=0, slug="job")
    index.add_check(one)
    index.add_check(two)
    assert index.by_slug("a", "job") == [one, two]
    index.set_slug(two, "other")
    assert index.by_slug("a", "job") == [one] and index.by_slug("a", "other") == [two]
    move_check(index, one, "b")
    assert index.by_slug("a", "job") == [] and index.by_slug("b", "job") == [one]
    assert list(index.project_checks("b")) == [one]
    index.remove_check(one)
    assert index.by_slug("b", "job") == [] and "1" not in index.checks
    assert index.by_unique_key(two.unique_key) is two


def test_remove_project_removes_its_checks():
    index, a, b, keys_a, _ = setup()
    index.add_check(Check(uuid="1", project_id="a", created=0, slug="x"))
    removed = index.remove_project("a")
    assert [c.uuid for c in removed] == ["1"]
    assert index.checks == {} and index.project_by_api_key(keys_a.api_key) is None


def test_shared_slug_grows_and_shrinks():
    index, *_ = setup()
    checks = [Check(uuid=str(i), project_id="a", created=0, slug="same") for i in range(3)]
    for check in checks:
        index.add_check(check)
    assert index.by_slug("a", "same") == checks
    index.remove_check(checks[1])
    assert index.by_slug("a", "same") == [checks[0], checks[2]]
    index.set_slug(checks[0], "own")
    assert index.by_slug("a", "same") == [checks[2]] and index.by_slug("a", "own") == [checks[0]]
    index.remove_check(checks[2])
    assert index.by_slug("a", "same") == []


def test_unique_key_lookup_needs_the_whole_key():
    index, *_ = setup()
    check = Check(uuid="11111111-2222-3333-4444-555555555555", project_id="a", created=0)
    index.add_check(check)
    key = check.unique_key
    assert index.by_unique_key(key) is check
    assert index.by_unique_key(key[:16] + "0" * 24) is None  # same first 64 bits, another key
    assert index.by_unique_key("zz" + key[2:]) is None
    assert index.by_unique_key(key[:39]) is None


def move_check(index: Index, check: Check, project_id: str) -> None:
    """Give a check to another project, as a delete and a create would."""
    index.remove_check(check)
    check.project_id = project_id
    index.add_check(check)
