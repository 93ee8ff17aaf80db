"""Recovery rebuilds what `unique` upserts and the check limit look up: matching fields, counts."""

from __future__ import annotations

from hcserver.domain.index import Index
from hcserver.domain.projects import KeyHasher
from persistence.recovery import recover
from persistence.store import Store
from persistence.writebehind import WriteBehind
from tests.persistence.helpers import async_test, check, project


@async_test
async def test_recovered_index_finds_checks_by_their_matching_fields(tmp_path):
    db = tmp_path / "data.db"
    wb = WriteBehind(await Store.open(db))
    wb.project_changed(project("p1"))
    wb.project_changed(project("p2"))
    backup = check("p1", name="Backup", slug="backup", tags="prod db", timeout=600, grace=120)
    bare = check("p1", name="", slug="")
    other = check("p2", name="Backup", slug="backup")
    for c in (backup, bare, other):
        wb.check_changed(c)
    await wb.close()

    store = await Store.open(db)
    try:
        index = Index(KeyHasher(await store.secret()))
        await recover(store, index)
    finally:
        await store.close()
    find = index.find_matching
    assert find("p1", {"name": "Backup", "tags": "prod db", "timeout": 600, "grace": 120}).uuid == backup.uuid
    assert find("p1", {"slug": "backup"}).uuid == backup.uuid
    assert find("p1", {"slug": ""}).uuid == bare.uuid
    assert find("p2", {"name": "Backup"}).uuid == other.uuid
    assert find("p1", {"tags": "prod"}) is None
    assert (index.check_count("p1"), index.check_count("p2")) == (2, 1)
