"""The writer's lock on its file, held here by the test itself through a real flock."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence.lock import StoreInUse, lock_store


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A lock file held by another open file description, as another writer process would hold it."""
    path = str(tmp_path / "hc.sqlite3")
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield path, fd
    os.close(fd)


def _holder_is(fd: int, pid: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{pid}\n".encode(), 0)


def test_a_free_lock_is_taken_and_names_the_server(tmp_path: Path) -> None:
    path = str(tmp_path / "hc.sqlite3")
    fd = lock_store(path)
    assert fd is not None
    try:
        assert Path(path + ".lock").read_text() == f"{os.getppid()}\n"
        with pytest.raises(BlockingIOError):  # held: nobody else gets it
            other = os.open(path + ".lock", os.O_RDWR)
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(other)
    finally:
        os.close(fd)


def test_a_lock_held_for_a_running_server_is_refused_with_its_pid(held: tuple[str, int]) -> None:
    path, fd = held
    _holder_is(fd, os.getpid())
    with pytest.raises(StoreInUse, match=rf"in use by another hcserver \(pid {os.getpid()}\).*--db"):
        lock_store(path, live_wait_s=0.1)


def test_the_writer_of_a_gone_server_is_waited_for_then_named(
    held: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    path, fd = held
    gone = _dead_pid()
    _holder_is(fd, gone)
    with pytest.raises(StoreInUse, match="in use by the writer process of an earlier hcserver"):
        lock_store(path, orphan_wait_s=0.2)
    waited = capsys.readouterr().err
    assert f"waiting for the writer process of hcserver pid {gone} (no longer running)" in waited
    assert waited.count("waiting") == 1  # said once, not at every try


def test_the_lock_is_taken_once_the_old_writer_lets_go(tmp_path: Path) -> None:
    path = str(tmp_path / "hc.sqlite3")
    # A real other process holds the lock for a moment, as a dead server's writer finishing up would.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({path + '.lock'!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, b'1\\n')\nprint('held', flush=True)\ntime.sleep(0.3)\n"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    fd = lock_store(path, orphan_wait_s=10, live_wait_s=10)
    try:
        assert holder.wait(timeout=10) == 0
        assert Path(path + ".lock").read_text() == f"{os.getppid()}\n"
    finally:
        assert fd is not None
        os.close(fd)


def test_an_unopenable_lock_file_is_reported_and_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lock_store(str(tmp_path / "missing-dir" / "hc.sqlite3")) is None
    assert "running without the lock" in capsys.readouterr().err
