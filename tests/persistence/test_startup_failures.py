"""Starts that cannot succeed: each exits at once with status 2 and one line that says what is wrong
and what to do, and leaves no process behind. And what a start that succeeds says about its file,
its keys and its address.

Every test runs `python -m hcserver serve` as a real process on real files.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.persistence.serve_process import (
    API_KEY,
    PING_KEY,
    assert_refused,
    leftovers,
    spawn,
    start,
    wait_exit,
)

pytestmark = pytest.mark.slow

CHECKS = 120
PINGS_PER_CHECK = 3


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store written by a real server: a project, CHECKS checks, PINGS_PER_CHECK pings each."""
    where = tmp_path_factory.mktemp("real-store")
    db = where / "hc.sqlite3"
    server = start(db, where)
    try:
        for i in range(CHECKS):
            status, body = server.request("POST", "/api/v3/checks/", {"name": f"check {i}", "timeout": 3600})
            assert status == 201, body
            uuid = body.decode().split('"uuid": "')[1].split('"')[0]
            for n in range(PINGS_PER_CHECK):
                assert server.request("POST", f"/ping/{uuid}", {"run": n})[0] == 200
    finally:
        server.stop()
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    return db


@pytest.fixture
def store_copy(real_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "hc.sqlite3"
    shutil.copyfile(real_store, copy)
    return copy


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _projects(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM projects").fetchone()[0])
    finally:
        conn.close()


def test_a_port_in_use_is_one_line_and_nothing_is_kept(tmp_path: Path, taken_port: int) -> None:
    db = tmp_path / "hc.sqlite3"
    server = spawn(db, tmp_path, "--port", str(taken_port))
    assert_refused(wait_exit(server), server, says=f"cannot listen on 127.0.0.1 port {taken_port}")
    # The project made for that start was never shown, so it was not written either: the next start
    # makes one and shows its keys.
    assert _projects(db) == 0
    again = start(db, tmp_path)
    try:
        assert "Created a project" in again.stdout
    finally:
        again.stop()


def test_a_store_with_damaged_pages_is_one_line(store_copy: Path, tmp_path: Path) -> None:
    # Overwrite the middle third of the pages that hold checks: the file opens, loading fails.
    conn = sqlite3.connect(store_copy)
    try:
        pages = [
            row[0] for row in conn.execute("SELECT pageno FROM dbstat WHERE name = 'checks' AND pagetype = 'leaf'")
        ]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    assert len(pages) >= 3
    with store_copy.open("r+b") as f:
        for page in pages[len(pages) // 3 : 2 * len(pages) // 3]:
            f.seek((page - 1) * page_size + 100)
            f.write(b"\xde\xad\xbe\xef" * 500)
    server = spawn(store_copy, tmp_path)
    assert_refused(wait_exit(server), server, says=f"{store_copy} is damaged")


def test_a_truncated_store_is_one_line(store_copy: Path, tmp_path: Path) -> None:
    with store_copy.open("r+b") as f:
        f.truncate(store_copy.stat().st_size // 2)
    server = spawn(store_copy, tmp_path)
    assert_refused(wait_exit(server), server, says=f"{store_copy} is damaged")


def test_a_file_that_is_not_sqlite_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("these are not the checks you are looking for\n" * 20)
    server = spawn(db, tmp_path)
    assert_refused(wait_exit(server), server, says=f"{db} is not an SQLite file")
    assert db.read_text().startswith("these are not")


def test_a_directory_given_as_the_store_is_one_line(tmp_path: Path) -> None:
    server = spawn(tmp_path, tmp_path)
    assert_refused(wait_exit(server), server, says=f"{tmp_path} is a directory")


def test_a_store_under_a_regular_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file, not a directory")
    server = spawn(tmp_path / "data" / "hc.sqlite3", tmp_path)
    assert_refused(wait_exit(server), server, says="cannot make the directory")


def test_a_store_in_a_read_only_directory_is_one_line(store_copy: Path, tmp_path: Path) -> None:
    # Root writes through permission bits, so the directory is made read-only by a read-only bind
    # mount, in a mount namespace of the server's own (nothing changes outside it).
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--mount", "true"], check=False).returncode:
        pytest.skip("needs unshare --mount, as root")
    directory = str(store_copy.parent)
    wrap = ("unshare", "--mount", "sh", "-c", f'mount --bind -o ro "{directory}" "{directory}" && exec "$0" "$@"')
    server = spawn(store_copy, tmp_path, wrap=wrap)
    assert_refused(wait_exit(server), server, says=f"cannot open {store_copy} for writing (Read-only file system)")


def test_a_missing_tls_certificate_is_one_line(tmp_path: Path) -> None:
    server = spawn(tmp_path / "hc.sqlite3", tmp_path, "--certfile", str(tmp_path / "missing.pem"))
    assert_refused(wait_exit(server), server, says="cannot load the TLS certificate")


def test_an_empty_file_starts_a_new_store_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "hc.sqlite3"
    db.touch()
    server = start(db, tmp_path)
    try:
        assert "Created a project" in server.stdout
        # What the refusals count on: a running server and its writer are found by their mark.
        running = leftovers(server)
        assert len(running) == 2 and any("persistence.writer" in line for line in running), running
    finally:
        server.stop()
    assert leftovers(server) == []
    log = server.log.read_text()
    assert f"WARNING persistence.store: {db} was an empty file (0 bytes): it starts as a new, empty store" in log
    # Once written, it is not empty any more: no warning at the next start.
    server = start(db, tmp_path)
    server.stop()
    assert "empty file" not in server.log.read_text()


def test_key_settings_a_store_already_has_keys_for_are_reported_as_ignored(tmp_path: Path) -> None:
    db = tmp_path / "hc.sqlite3"
    first = start(db, tmp_path)
    first.stop()
    assert "ignored" not in first.log.read_text()

    # The same keys again: they are the project's, nothing to say.
    same = start(db, tmp_path)
    same.stop()
    assert "ignored" not in same.log.read_text()

    other_keys = {"HC_API_KEY": "hcw_" + "o" * 28, "HC_PING_KEY": "other00000000000000000"}
    other = start(db, tmp_path, environ=other_keys)
    try:
        # As the warning says: the API knows the first keys only.
        assert other.request("GET", "/api/v3/checks/")[0] == 200
    finally:
        other.stop()
    [warning] = [line for line in other.log.read_text().splitlines() if "ignored" in line]
    assert "WARNING hcserver: HC_API_KEY, HC_PING_KEY ignored: this store already has a project" in warning
    assert "hcserver keys --rotate" in warning
    assert "new --db file" in warning and "projects API (HC_ADMIN_KEY)" in warning
    assert API_KEY not in warning and PING_KEY not in warning and other_keys["HC_API_KEY"] not in warning


def test_listening_is_said_once(tmp_path: Path) -> None:
    server = start(tmp_path / "hc.sqlite3", tmp_path)
    server.stop()
    assert server.proc.stdout is not None
    out = server.stdout + server.proc.stdout.read().decode()
    said = [line for line in (out + server.log.read_text()).splitlines() if "listening on" in line]
    assert len(said) == 1, said
    assert said[0].startswith(f"hcserver listening on port {server.port}; ")
    assert said[0].endswith("(bound to 127.0.0.1)")
