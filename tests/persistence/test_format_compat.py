"""A store written in schema version 1 with version-1 records, as hcserver has written them, opens,
recovers and carries on: built here with plain sqlite3 and msgpack, so no code of today's writer,
protocol or codec takes part in making it."""

from __future__ import annotations

import sqlite3

import msgpack

from hcserver.alerts.channels import Channel
from hcserver.domain.index import Index
from hcserver.domain.projects import KeyHasher
from persistence.recovery import load_notifications, recover
from persistence.store import Store
from persistence.writebehind import WriteBehind
from tests.persistence.helpers import async_test, ping, rows

# The tables of schema version 1, as its migration has created them: a copy kept apart from
# persistence/schema.py on purpose, so that a change to a released migration fails here.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE projects (id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE checks (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE channels (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE pings (id INTEGER PRIMARY KEY, check_id TEXT NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE UNIQUE INDEX pings_by_check ON pings (check_id, n);
CREATE TABLE flips (
    seq INTEGER PRIMARY KEY, check_id TEXT NOT NULL, created REAL NOT NULL, data BLOB NOT NULL
);
CREATE INDEX flips_by_check ON flips (check_id, seq);
CREATE TABLE notifications (
    check_id TEXT NOT NULL, flip_created REAL NOT NULL, channel_id TEXT NOT NULL,
    status TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (check_id, flip_created, channel_id)
) WITHOUT ROWID;
"""
# Schema version 2: version 1 with each check's pings in a ring of slots (the table made under
# another name, then renamed, which is how SQLite then records it).
SCHEMA_V2 = SCHEMA_V1.replace(
    """CREATE TABLE pings (id INTEGER PRIMARY KEY, check_id TEXT NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE UNIQUE INDEX pings_by_check ON pings (check_id, n);""",
    """CREATE TABLE "pings" (
    check_id TEXT NOT NULL, slot INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (check_id, slot)
) WITHOUT ROWID;""",
)
SECRET = bytes(range(32))
UUID = "5bf66975-1c4c-4d2a-9c4e-000000000001"
T0 = 1_700_000_000.0


def pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def ping_v1(n: int) -> bytes:
    # n, created, kind, scheme, remote_addr, method, ua, body, rid, exitstatus, duration
    return pack(
        [1, n, T0 + n, "success", "https", "10.0.0.1", "POST", "curl/8.5.0", b"run %d \xff" % n, None, None, None]
    )


def write_v1_store(path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA_V1)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", 1), ("secret", SECRET)])
    # id, name, created, api_key_hash, ping_key_hash, api_key_readonly_hash
    conn.execute("INSERT INTO projects VALUES ('p1', ?)", (pack([1, "p1", "Ops", T0, b"a" * 32, b"b" * 32, None]),))
    check = [
        1, UUID, "p1", T0, "Backup", "backup", False, "prod db", "nightly", "simple", 3600, 600, "* * * * *",
        "UTC", False, "", "", "", "", False, False, False, False, ["ch1"], "down", 3, T0 + 3, None, None, None, None,
    ]  # fmt: skip
    conn.execute("INSERT INTO checks VALUES (?, 'p1', ?)", (UUID, pack(check)))
    channel = {"v": 1, "id": "ch1", "project_id": "p1", "name": "On call", "kind": "email",
               "spec": {"email": "oncall@example.org"}, "created": T0, "last_notify": None, "last_error": "",
               "disabled": False}  # fmt: skip
    conn.execute("INSERT INTO channels VALUES ('ch1', 'p1', ?)", (pack([1, channel]),))
    conn.executemany(
        "INSERT INTO pings (check_id, n, data) VALUES (?, ?, ?)", [(UUID, n, ping_v1(n)) for n in (1, 2, 3)]
    )
    flips = [(1, UUID, T0 + 1, pack([1, UUID, T0 + 1, "new", "up", "success"])),
             (2, UUID, T0 + 2, pack([1, UUID, T0 + 2, "up", "down", "fail"]))]  # fmt: skip
    conn.executemany("INSERT INTO flips VALUES (?, ?, ?, ?)", flips)
    notification = {"check": UUID, "flip_created": T0 + 2, "channel_id": "ch1", "direction": "down", "ping_n": 2,
                    "status": "pending", "attempts": 0, "error": ""}  # fmt: skip
    conn.execute(
        "INSERT INTO notifications VALUES (?, ?, 'ch1', 'pending', ?)", (UUID, T0 + 2, pack([1, notification]))
    )
    conn.close()


def schema_of(path) -> list[tuple[str, str, str]]:
    return sorted(
        (t, name, " ".join(sql.split()))
        for t, name, sql in rows(path, "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    )


@async_test
async def test_a_version_1_store_opens_recovers_and_carries_on(tmp_path):
    db = tmp_path / "v1.db"
    write_v1_store(db)

    store = await Store.open(db)
    assert await store.secret() == SECRET and store.flip_seq == 2
    index = Index(KeyHasher(SECRET))
    report = await recover(store, index)
    assert (report.projects, report.checks, report.pings, report.skipped) == (1, 1, 3, 0)
    check = index.checks[UUID]
    assert (check.name, check.slug, check.tags, check.desc, check.channels) == (
        "Backup",
        "backup",
        "prod db",
        "nightly",
        ("ch1",),
    )
    assert (check.status, check.n_pings, check.last_ping, check.timeout, check.grace) == ("down", 3, T0 + 3, 3600, 600)
    assert index.projects["p1"].api_key_hash == b"a" * 32
    [record] = report.channels
    channel = Channel.from_record(record)
    assert (channel.name, channel.kind, channel.spec.to_record()) == (
        "On call",
        "email",
        {"email": "oncall@example.org"},
    )
    [(key, notification)] = await load_notifications(store, "pending")
    assert key == (UUID, T0 + 2, "ch1") and notification["ping_n"] == 2

    wb = WriteBehind(store)
    assert [(p.n, p.body, p.method, p.remote_addr) for p in await wb.recent_pings(check, 10)] == [
        (3, b"run 3 \xff", "POST", "10.0.0.1"), (2, b"run 2 \xff", "POST", "10.0.0.1"), (1, b"run 1 \xff", "POST", "10.0.0.1"),
    ]  # fmt: skip
    assert [(f.old_status, f.new_status) for f in await wb.flips(check)] == [("new", "up"), ("up", "down")]

    # Carrying on: the next ping, its flip and the check are written as version-1 records beside the old ones.
    wb.ping_recorded(check, *ping(check, T0 + 10, action="fail"))
    wb.ping_recorded(check, *ping(check, T0 + 11))
    await wb.close()
    assert [n for (n,) in rows(db, "SELECT n FROM pings ORDER BY n")] == [1, 2, 3, 4, 5]
    (data,) = rows(db, "SELECT data FROM pings WHERE n = 5")[0]
    assert msgpack.unpackb(data)[:4] == [1, 5, T0 + 11, "success"]
    assert [(seq, msgpack.unpackb(d)[3:5]) for seq, d in rows(db, "SELECT seq, data FROM flips ORDER BY seq")][2:] == [
        (3, ["down", "up"])
    ]
    (data,) = rows(db, "SELECT data FROM checks")[0]
    assert msgpack.unpackb(data, strict_map_key=False)[:3] == [1, UUID, "p1"]
    assert schema_of(db) == schema_of_a_new_store(tmp_path)


def schema_of_a_new_store(tmp_path) -> list[tuple[str, str, str]]:
    fresh = tmp_path / "v2-schema.db"
    conn = sqlite3.connect(fresh)
    conn.executescript(SCHEMA_V2)
    conn.close()
    return schema_of(fresh)


@async_test
async def test_a_new_store_has_the_tables_of_schema_version_2(tmp_path):
    store = await Store.open(tmp_path / "new.db")
    await store.close()
    assert schema_of(tmp_path / "new.db") == schema_of_a_new_store(tmp_path)
    assert rows(tmp_path / "new.db", "SELECT key, value FROM meta WHERE key != 'secret' ORDER BY key") == [
        ("ping_slots", 100),
        ("schema_version", 2),
    ]


@async_test
async def test_a_version_1_store_keeps_each_checks_newest_pings_in_its_ring(tmp_path):
    db = tmp_path / "v1.db"
    write_v1_store(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executemany(
        "INSERT INTO pings (check_id, n, data) VALUES (?, ?, ?)",
        [(UUID, n, ping_v1(n)) for n in range(4, 131)] + [("another-check", n, ping_v1(n)) for n in (7, 8)],
    )
    conn.close()

    store = await Store.open(db)
    await store.close()
    kept = rows(db, "SELECT check_id, slot, n FROM pings ORDER BY check_id, n")
    assert kept == [(UUID, n % 100, n) for n in range(31, 131)] + [("another-check", 7, 7), ("another-check", 8, 8)]
