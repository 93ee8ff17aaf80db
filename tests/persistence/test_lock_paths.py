"""One server per store, whatever name the store is given: a second server on the same file is
refused while the first runs, through a symlink, a relative path, a path with `..` or a hard link.

In each case the first server is started through a name whose `<name>.lock` is another file than
the second's, so that a lock named after the path string alone would let both run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.persistence.serve_process import assert_refused, spawn, start, wait_exit

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Names:
    """Names of one store file: `real` is the file; the others lead to it."""

    real: Path
    symlink: Path  # a symlink to the file
    through_dir_link: Path  # `..` after a symlinked directory: only the real path resolves it right
    hard_link: Path


@pytest.fixture
def names(tmp_path: Path) -> Names:
    real = tmp_path / "var" / "data" / "hc.sqlite3"
    real.parent.mkdir(parents=True)
    start(real, tmp_path).stop()  # a real store, made by a server
    symlink = tmp_path / "link.sqlite3"
    symlink.symlink_to(real)
    # tmp/alias -> tmp/var/data, so tmp/alias/../data is tmp/var/data (not tmp/data, which is not there).
    (tmp_path / "alias").symlink_to(real.parent)
    through_dir_link = tmp_path / "alias" / ".." / "data" / "hc.sqlite3"
    hard_link = tmp_path / "hard.sqlite3"
    os.link(real, hard_link)
    return Names(real, symlink, through_dir_link, hard_link)


def _second_is_refused(first_db: Path, second_db: Path | str, tmp_path: Path, cwd: Path | None = None) -> None:
    first = start(first_db, tmp_path)
    try:
        second = spawn(second_db, tmp_path, cwd=cwd)
        assert_refused(wait_exit(second), second, says=f"is in use by another hcserver (pid {first.proc.pid})")
        # The first one is untouched.
        status, body = first.request("POST", "/api/v3/checks/", {"name": "still mine"})
        assert status == 201, body
    finally:
        first.stop()


def test_a_second_server_through_a_symlink_is_refused(names: Names, tmp_path: Path) -> None:
    _second_is_refused(names.real, names.symlink, tmp_path)


def test_a_second_server_through_the_real_path_is_refused_when_the_first_came_by_a_symlink(
    names: Names, tmp_path: Path
) -> None:
    _second_is_refused(names.symlink, names.real, tmp_path)


def test_a_second_server_through_a_relative_path_from_another_directory_is_refused(
    names: Names, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    relative = os.path.relpath(names.real, elsewhere)
    assert relative.startswith("..")
    _second_is_refused(names.symlink, relative, tmp_path, cwd=elsewhere)


def test_a_second_server_through_a_path_with_dotdot_is_refused(names: Names, tmp_path: Path) -> None:
    assert names.through_dir_link.samefile(names.real)
    _second_is_refused(names.symlink, names.through_dir_link, tmp_path)


def test_a_second_server_through_a_hard_link_is_refused(names: Names, tmp_path: Path) -> None:
    assert names.hard_link.stat().st_ino == names.real.stat().st_ino
    _second_is_refused(names.real, names.hard_link, tmp_path)
    # Once the first has stopped, the link serves the same store: the project made at first is there.
    server = start(names.hard_link, tmp_path)
    try:
        assert "Created a project" not in server.stdout
        assert server.request("GET", "/api/v3/checks/")[0] == 200
    finally:
        server.stop()
