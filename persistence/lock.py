"""One writer per store file, whatever name it is reached by: the writer process's two locks.

`lock(path)` takes two exclusive locks (flock) and the writer holds them for the life of its
process: one on `<real path>.lock` (symlinks, `..` and relative paths resolved), where it also
writes the server's pid, and one on the store file itself, which no other name of the file (a hard
link) gets around. A second hcserver on the same file is refused with StoreInUse, naming the server
that has it. A server started after one that was killed first waits for that server's writer to
exit: the writer finishes the flush it was handed even when its server dies, and a server that
loaded the file before that flush committed would never know what it wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable

from persistence.schema import StoreUnusable


class StoreInUse(RuntimeError):
    """Another hcserver's writer holds the file's lock."""


# How long `open` waits for the writer of a server that is gone (it may be finishing a big flush
# on a busy machine), and for one whose server is still running (a restart in progress, or a
# server pid reused by another process).
ORPHAN_WAIT_S = 60.0
LIVE_WAIT_S = 2.0


def lock(path: str, orphan_wait_s: float = ORPHAN_WAIT_S, live_wait_s: float = LIVE_WAIT_S) -> list[int]:
    """Open the store file (creating it if missing) and take both of the writer's locks on it: the
    lock file beside its real path (`lock_store`), then the file itself (`lock_file_itself`).
    Returns the descriptors to keep open until this process ends.

    Why two locks. A path names a file only up to hard links: two names of one file have two real
    paths, so two lock files. A flock on the store file belongs to the file itself, whatever its
    name. It is a flock and not a POSIX (fcntl) lock because SQLite takes fcntl locks on the same
    file, and those belong to the process, so the close of any descriptor of the file here would
    drop SQLite's; flocks belong to the open file description and, on Linux, are apart from fcntl
    locks. (On NFS, Linux makes flocks fcntl locks; SQLite's WAL mode does not work there anyway.)
    The descriptor stays open until the process exits, after SQLite has closed the file. The lock
    file is kept for what it carries: the server's pid, read back when a second server is refused.
    A lock file named by device and inode in a shared directory (/run/lock) would need every server
    to see the same directory, which containers and systemd's PrivateTmp do not give.
    """
    with contextlib.ExitStack() as undo:
        try:
            store = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except IsADirectoryError:
            raise StoreUnusable(
                f"{path} is a directory: --db (HC_DB) names the store file itself, such as "
                f"{os.path.join(path, 'hcserver.sqlite3')}"
            ) from None
        except OSError as exc:
            raise StoreUnusable(
                f"cannot open {path} for writing ({exc.strerror}): point --db (HC_DB) at a file in a directory "
                "this user can write to"
            ) from None
        undo.callback(os.close, store)
        fds = [store]
        named = lock_store(path, orphan_wait_s, live_wait_s)
        if named is not None:
            undo.callback(os.close, named)
            fds.append(named)
        lock_file_itself(path, store, orphan_wait_s, live_wait_s)
        undo.pop_all()
    return fds


def lock_store(path: str, orphan_wait_s: float = ORPHAN_WAIT_S, live_wait_s: float = LIVE_WAIT_S) -> int | None:
    """Take the writer's lock beside `path`'s real file, `<real path>.lock`, and write the server's pid
    (this process's parent) in it. Every name that leads to the same place (a symlink, a relative
    path, one with `..`) resolves to the same lock file. Returns the lock file's descriptor, held
    until this process ends; None when the lock file cannot be opened at all (a read-only directory:
    the lock on the store file itself still stands)."""
    lock_path = os.path.realpath(path) + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        print(f"hcserver writer: cannot open {lock_path} ({exc}); running without the lock", file=sys.stderr)
        return None
    try:
        _wait_for_lock(fd, lambda: _holder(fd), path, f"holds {lock_path}", orphan_wait_s, live_wait_s)
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getppid()}\n".encode(), 0)
    return fd


def lock_file_itself(
    path: str, fd: int, orphan_wait_s: float = ORPHAN_WAIT_S, live_wait_s: float = LIVE_WAIT_S
) -> None:
    """Take an exclusive flock on the store file open as `fd`, held as long as `fd` is open (see `lock`)."""
    st = os.fstat(fd)
    _wait_for_lock(
        fd,
        lambda: _inode_holder(st.st_dev, st.st_ino),
        path,
        "holds a lock on the file itself, reached through another name (a hard link)",
        orphan_wait_s,
        live_wait_s,
    )


def _wait_for_lock(
    fd: int, holder_of: Callable[[], int | None], path: str, held: str, orphan_wait_s: float, live_wait_s: float
) -> None:
    """flock `fd`, waiting while its holder (the server pid `holder_of` finds) is gone but its writer
    may still be finishing a flush; raise StoreInUse when the wait is over."""
    started = time.monotonic()
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = holder_of()
        alive = holder is not None and _running(holder)
        if time.monotonic() - started >= (live_wait_s if alive else orphan_wait_s):
            who = f"another hcserver (pid {holder})" if alive else "the writer process of an earlier hcserver"
            raise StoreInUse(
                f"{path} is in use by {who}: its writer {held}. Stop that server first, or point --db at another file."
            )
        if holder is not None and not alive and not told:
            told = True
            print(
                f"hcserver writer: waiting for the writer process of hcserver pid {holder} (no longer running) "
                f"to finish its last flush to {path}",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(0.05)


def _holder(fd: int) -> int | None:
    """The server pid written in the lock file by its holder."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def _inode_holder(dev: int, ino: int) -> int | None:
    """The server pid of the writer process that holds the flock on file (dev, ino), or None if it
    cannot be told. A flock does not say who holds it: /proc/locks does (Linux), by inode number;
    the pid found there is taken only if that process has the file open (its device may be printed
    differently there), and the server pid is read from that writer's own lock file."""
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; a waiter's line has "->" after the number.
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK" or not parts[4].isdigit() or parts[5].rsplit(":", 1)[-1] != str(ino):
            continue
        pid = parts[4]
        if pid == str(os.getpid()):
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        has_file, lock_file = False, None
        for n in fds:
            link = f"/proc/{pid}/fd/{n}"
            with contextlib.suppress(OSError):
                st = os.stat(link)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    has_file = True
                elif os.readlink(link).endswith(".lock"):
                    lock_file = link
        if has_file and lock_file is not None:
            with contextlib.suppress(OSError, ValueError), open(lock_file, "rb") as f:
                return int(f.read(32).decode().strip())
    return None


def _running(pid: int) -> bool:
    """True if `pid` is a process that has not ended (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) state ...": comm may hold spaces and parentheses; the state follows the last ")".
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        return True  # cannot tell: take it as running, which the message then names
    return state != b"Z"


def ensure_free(path: str) -> None:
    """Raise StoreInUse when a server's writer holds `path`'s store, naming that server's pid; for the
    offline commands, which must not open a store a running server owns. Probes the lock file and
    lets go at once; a writer that takes the lock right after still refuses the command (`lock`)."""
    try:
        fd = os.open(os.path.realpath(path) + ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return  # no lock file: no server has used this store here, or the directory is not readable
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if holder is not None and _running(holder):
                raise StoreInUse(f"{path} is in use by a running hcserver (pid {holder}); stop it first") from None
            raise StoreInUse(
                f"{path} is in use by the writer process of an hcserver that has stopped (pid {holder}); "
                "it is finishing its last write: try again in a minute"
            ) from None
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
