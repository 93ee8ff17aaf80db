"""The `healthchecks-io` PyPI client, unchanged, against a live hcserver (API v3 and the Pinging API)."""

from __future__ import annotations

import asyncio

import pytest
from healthchecks_io import (
    AsyncClient,
    BadAPIRequestError,
    CheckCreate,
    CheckNotFoundError,
    CheckTrap,
    CheckUpdate,
    Client,
    HCAPIAuthError,
    NonUniqueSlugError,
)

from tests.conftest import API_KEY, PING_KEY, READONLY_KEY

# The client still calls pydantic's deprecated `.dict()`: its business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:healthchecks_io.*")


def make_client(live, api_key=API_KEY, cls=Client):
    return cls(
        api_key=api_key,
        ping_key=PING_KEY,
        api_url=live.url + "/api/",
        ping_url=live.url + "/ping/",
        api_version=3,
    )


@pytest.fixture
def client(live):
    with make_client(live) as c:
        yield c


def test_create_get_list_by_tag(live, client):
    created = client.create_check(CheckCreate(name="Nightly Backup", tags="prod db", timeout=3600, grace=120))
    assert created.uuid and created.name == "Nightly Backup" and created.slug == "nightly-backup"
    assert (created.timeout, created.grace, created.status, created.n_pings) == (3600, 120, "new", 0)
    assert created.ping_url == f"http://hc.test/ping/{created.uuid}"
    client.create_check(CheckCreate(name="web", tags="prod web"))
    client.create_check(CheckCreate(name="cron", schedule="*/15 * * * *", tz="Europe/Riga"))

    assert {c.name for c in client.get_checks()} == {"Nightly Backup", "web", "cron"}
    assert {c.name for c in client.get_checks(tags=["prod"])} == {"Nightly Backup", "web"}
    assert [c.name for c in client.get_checks(tags=["prod", "db"])] == ["Nightly Backup"]
    assert client.get_checks(tags=["nope"]) == []
    assert client.get_check(created.uuid) == created


def test_update_pause_delete(live, client):
    check = client.create_check(CheckCreate(name="job", timeout=600))
    updated = client.update_check(check.uuid, CheckUpdate(name="renamed job", grace=300, desc="described"))
    assert (updated.name, updated.slug, updated.grace, updated.desc, updated.timeout) == (
        "renamed job", "renamed-job", 300, "described", 600,
    )  # fmt: skip
    client.success_ping(uuid=check.uuid)
    paused = client.pause_check(check.uuid)
    assert paused.status == "paused"
    assert client.get_check(check.uuid).status == "paused"
    deleted = client.delete_check(check.uuid)
    assert deleted.uuid == check.uuid and deleted.name == "renamed job"
    with pytest.raises(CheckNotFoundError):
        client.get_check(check.uuid)
    with pytest.raises(CheckNotFoundError):
        client.delete_check(check.uuid)


def test_upsert_with_unique(live, client):
    first = client.create_check(CheckCreate(name="unique one", timeout=600))
    again = client.create_check(CheckCreate(name="unique one", timeout=900, unique=["name"]))
    assert again.uuid == first.uuid and again.timeout == 900
    assert len(client.get_checks()) == 1


def test_pings_by_uuid_and_slug(live, client):
    check = client.create_check(CheckCreate(name="pinged", timeout=600))
    assert client.start_ping(uuid=check.uuid) == (True, "OK")
    assert client.success_ping(uuid=check.uuid, data="all good") == (True, "OK")
    assert client.get_check(check.uuid).status == "up"
    assert client.fail_ping(slug="pinged", data="broken") == (True, "OK")
    assert client.get_check(check.uuid).status == "down"
    assert client.exit_code_ping(0, slug="pinged") == (True, "OK")
    assert client.get_check(check.uuid).status == "up"
    assert client.exit_code_ping(3, uuid=check.uuid) == (True, "OK")
    assert client.get_check(check.uuid).status == "down"
    assert client.start_ping(slug="pinged") == (True, "OK")
    assert client.success_ping(slug="pinged") == (True, "OK")

    pings = client.get_check_pings(check.uuid)
    assert [p.type for p in pings] == ["success", "start", "fail", "success", "fail", "success", "start"]
    assert [p.number_of_pings for p in pings] == [7, 6, 5, 4, 3, 2, 1]
    assert all(p.method == "POST" and p.user_agent.startswith("py-healthchecks.io/") for p in pings)
    assert pings[0].duration == 0
    assert pings[5].duration == 0 and pings[4].duration is None
    assert client.get_check(check.uuid).n_pings == 7


def test_ping_errors(live, client):
    with pytest.raises(CheckNotFoundError):
        client.success_ping(uuid="00000000-0000-0000-0000-000000000000")
    with pytest.raises(CheckNotFoundError):
        client.success_ping(slug="no-such-check")
    twin = client.create_check(CheckCreate(name="twin"))
    client.create_check(CheckCreate(name="twin"))
    with pytest.raises(NonUniqueSlugError):
        client.success_ping(slug="twin")
    with pytest.raises(BadAPIRequestError):
        client.exit_code_ping(256, uuid=twin.uuid)
    assert client.get_check(twin.uuid).n_pings == 0


def test_check_trap_success(live, client):
    check = client.create_check(CheckCreate(name="trapped"))
    with CheckTrap(client, uuid=check.uuid) as trap:
        assert client.get_check(check.uuid).status == "new"
        assert live.get_check(check.uuid)["started"] is True
        trap.add_log("line one")
        trap.add_log("line two")
    after = client.get_check(check.uuid)
    assert (after.status, after.n_pings) == ("up", 2)
    start, success = reversed(live.api("GET", f"checks/{check.uuid}/pings/").json()["pings"])
    assert (start["type"], success["type"]) == ("start", "success")
    body = live.client.get(success["body_url"].removeprefix("http://hc.test"), headers={"X-Api-Key": API_KEY})
    assert body.content == b"line one\nline two"


def test_check_trap_exception(live, client):
    check = client.create_check(CheckCreate(name="trapped fail"))
    with pytest.raises(RuntimeError, match="disk on fire"), CheckTrap(client, slug="trapped-fail"):
        raise RuntimeError("disk on fire")
    assert client.get_check(check.uuid).status == "down"
    last = live.api("GET", f"checks/{check.uuid}/pings/").json()["pings"][0]
    assert last["type"] == "fail" and last["duration"] == 0
    body = live.client.get(last["body_url"].removeprefix("http://hc.test"), headers={"X-Api-Key": API_KEY})
    assert body.text.startswith("disk on fire\n<traceback object")
    # With suppress_exceptions the error stays inside the trap, and is still reported.
    with CheckTrap(client, uuid=check.uuid, suppress_exceptions=True):
        raise ValueError("quiet")
    assert client.get_check(check.uuid).n_pings == 4


def test_readonly_client(live, client):
    client.create_check(CheckCreate(name="seen", tags="t"))
    with make_client(live, READONLY_KEY) as readonly:
        (check,) = readonly.get_checks()
        assert check.uuid is None and check.unique_key and check.ping_url is None
        assert readonly.get_check(check.unique_key).name == "seen"
        assert set(readonly.get_badges()) == {"t", "*"}
        with pytest.raises(HCAPIAuthError):
            readonly.create_check(CheckCreate(name="nope"))
        with pytest.raises(HCAPIAuthError):
            readonly.get_integrations()


def test_wrong_key(live):
    with make_client(live, "x" * 32) as bad, pytest.raises(HCAPIAuthError):
        bad.get_checks()


def test_server_side_validation_reaches_the_client(live, client):
    # The client's own model lets timeout=30 through; the server refuses it.
    with pytest.raises(BadAPIRequestError, match="timeout is too small"):
        client.create_check(CheckCreate(name="short", timeout=30))


def test_integrations_and_badges(live, client):
    assert client.get_integrations() == []
    client.create_check(CheckCreate(name="b", tags="prod"))
    badges = client.get_badges()
    assert set(badges) == {"prod", "*"}
    prod = badges["prod"]
    for url in (prod.svg, prod.svg3, prod.json_url, prod.json3_url, prod.shields, prod.shields3):
        assert live.client.get(url.removeprefix("http://hc.test")).status_code == 200


def test_async_client_and_trap(live):
    async def scenario():
        async with make_client(live, cls=AsyncClient) as client:
            check = await client.create_check(CheckCreate(name="async job", timeout=600))
            async with CheckTrap(client, uuid=check.uuid) as trap:
                trap.add_log("async")
            assert (await client.get_check(check.uuid)).status == "up"
            assert [c.name for c in await client.get_checks(tags=None)] == ["async job"]
            assert (await client.exit_code_ping(1, slug="async-job"))[0] is True
            pings = await client.get_check_pings(check.uuid)
            assert [p.type for p in pings] == ["fail", "success", "start"]
            assert (await client.pause_check(check.uuid)).status == "paused"
            await client.delete_check(check.uuid)

    asyncio.run(scenario())
