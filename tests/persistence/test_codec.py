"""The snapshot codec: every type round-trips exactly, old and damaged records are handled."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcserver.domain.checks import Check
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.projects import Project
from persistence.codec import CHECK_LAYOUTS, FLIP_LAYOUTS, PING_LAYOUTS, PROJECT_LAYOUTS, Codec, DecodeError

codec = Codec()
# A GC pause on a busy 2-core machine is not a codec failure.
relaxed = settings(deadline=None)

# Text as JSON and HTTP headers can deliver it, lone surrogates included.
texts = st.text(max_size=40)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
opt_times = st.none() | times
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
runs = st.none() | st.dictionaries(st.none() | texts, times, max_size=5)

projects = st.builds(
    Project, id=texts, name=texts, created=times, api_key_hash=st.binary(max_size=32),
    ping_key_hash=st.binary(max_size=32), api_key_readonly_hash=st.none() | st.binary(max_size=32),
)  # fmt: skip
checks = st.builds(
    Check, uuid=texts, project_id=texts, created=times, name=texts, slug=texts, slug_explicit=st.booleans(),
    tags=texts, desc=st.text(max_size=500), kind=st.sampled_from(["simple", "cron", "oncalendar"]),
    timeout=ints, grace=ints, schedule=texts, tz=texts, manual_resume=st.booleans(), methods=texts,
    start_kw=texts, success_kw=texts, failure_kw=texts, filter_subject=st.booleans(),
    filter_body=st.booleans(), filter_http_body=st.booleans(), filter_default_fail=st.booleans(),
    channels=st.lists(texts, max_size=4).map(tuple), status=texts, n_pings=ints, last_ping=opt_times,
    last_duration=opt_times, last_exitstatus=st.none() | st.integers(0, 255), runs=runs, held_until=opt_times,
)  # fmt: skip
pings = st.builds(
    Ping, n=ints, created=times, kind=texts, scheme=texts, remote_addr=texts, method=texts, ua=texts,
    body=st.none() | st.binary(max_size=300), rid=st.none() | texts, exitstatus=st.none() | st.integers(0, 255),
    duration=opt_times,
)  # fmt: skip
flips = st.builds(Flip, check=texts, created=times, old_status=texts, new_status=texts, reason=texts)


def fields_of(obj: object) -> dict[str, object]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


@relaxed
@given(projects)
def test_project_round_trip(project: Project) -> None:
    assert fields_of(codec.decode_project(codec.encode_project(project))) == fields_of(project)


@relaxed
@given(checks)
def test_check_round_trip(check: Check) -> None:
    back = codec.decode_check(codec.encode_check(check))
    assert fields_of(back) == fields_of(check)
    assert type(back.channels) is tuple
    # Open runs are evicted oldest first, so their order is part of the state.
    assert list((back.runs or {}).items()) == list((check.runs or {}).items())


@relaxed
@given(pings)
def test_ping_round_trip(ping: Ping) -> None:
    back = codec.decode_ping(codec.encode_ping(ping))
    assert fields_of(back) == fields_of(ping)


@relaxed
@given(flips)
def test_flip_round_trip(flip: Flip) -> None:
    assert codec.decode_flip(codec.encode_flip(flip)) == flip


@relaxed
@given(st.dictionaries(texts, st.none() | texts | ints | st.binary() | st.lists(texts), max_size=6))
def test_record_round_trip(record: dict[str, object]) -> None:
    assert codec.decode_record(codec.encode_record(record)) == record


def test_non_utf8_body_is_kept_byte_for_byte() -> None:
    body = bytes(range(256)) + b"\xff\xfe\x80 caf\xe9"
    assert codec.decode_ping(codec.encode_ping(Ping(7, 1.5, "fail", body=body))).body == body


def test_runs_with_a_none_key() -> None:
    check = Check(uuid="u", project_id="p", created=1.0, runs={None: 5.0, "rid-1": 6.0})
    assert codec.decode_check(codec.encode_check(check)).runs == {None: 5.0, "rid-1": 6.0}


@pytest.mark.parametrize(
    ("layouts", "cls"), [(PROJECT_LAYOUTS, Project), (CHECK_LAYOUTS, Check), (PING_LAYOUTS, Ping), (FLIP_LAYOUTS, Flip)]
)
def test_current_layout_stores_every_field(layouts: dict[int, tuple[str, ...]], cls: type) -> None:
    # A field added to a domain class without being added here would be silently lost on restart.
    assert set(layouts[max(layouts)]) == {f.name for f in dataclasses.fields(cls)}


def test_a_record_written_before_newer_fields_existed_gets_their_defaults() -> None:
    # The first eight fields of version 1, as a writer that knew only those would have stored them.
    old = msgpack.packb([1, "uuid-1", "p1", 10.0, "Backup", "backup", True, "prod", "nightly"])
    check = codec.decode_check(old)
    assert (check.uuid, check.name, check.slug_explicit, check.desc) == ("uuid-1", "Backup", True, "nightly")
    assert (check.status, check.n_pings, check.runs, check.channels, check.held_until) == ("new", 0, None, (), None)
    ping = codec.decode_ping(msgpack.packb([1, 3, 10.0, "start"]))
    assert (ping.n, ping.kind, ping.body, ping.method) == (3, "start", None, "GET")


def test_every_version_of_every_layout_decodes() -> None:
    minimal = {"uuid": "u", "project_id": "p", "created": 1.0, "id": "p", "name": "n", "api_key_hash": b"k",
               "ping_key_hash": b"k", "n": 1, "kind": "success", "check": "u", "old_status": "new",
               "new_status": "up"}  # fmt: skip
    decoders = [(PROJECT_LAYOUTS, codec.decode_project), (CHECK_LAYOUTS, codec.decode_check),
                (PING_LAYOUTS, codec.decode_ping), (FLIP_LAYOUTS, codec.decode_flip)]  # fmt: skip
    for layouts, decode in decoders:
        for version, names in layouts.items():
            values = list(itertools.takewhile(lambda v: v is not None, (minimal.get(n) for n in names)))
            assert decode(msgpack.packb([version, *values])) is not None


def test_values_from_a_newer_writer_of_the_same_version_are_ignored() -> None:
    data = codec.encode_flip(Flip("u", 1.0, "new", "up", "success"))
    longer = msgpack.packb([*msgpack.unpackb(data), "some future field"])
    assert codec.decode_flip(longer) == Flip("u", 1.0, "new", "up", "success")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x93\x01\x02",  # truncated array
        msgpack.packb(42),
        msgpack.packb([]),
        msgpack.packb([99, "u", "p", 1.0]),  # unknown version
        msgpack.packb([1, 12, "p", 1.0]),  # uuid of the wrong type
        msgpack.packb([1, "u"]),  # required fields missing
        msgpack.packb(["1", "u", "p", 1.0]),
    ],
)
def test_damaged_check_rows_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode_check(data)


@relaxed
@given(st.binary(max_size=64))
def test_garbage_never_raises_anything_but_decode_error(data: bytes) -> None:
    for decode in (codec.decode_project, codec.decode_check, codec.decode_ping, codec.decode_flip, codec.decode_record):
        with contextlib.suppress(DecodeError):
            decode(data)


def test_one_packer_is_reused_and_survives_an_unencodable_string() -> None:
    c = Codec()
    weird = Check(uuid="u", project_id="p", created=1.0, name="lone \ud800 surrogate")
    assert c.decode_check(c.encode_check(weird)).name == "lone \ud800 surrogate"
    # The strict packer is still clean after the fallback.
    assert c.decode_flip(c.encode_flip(Flip("u", 2.0, "up", "down"))) == Flip("u", 2.0, "up", "down")
