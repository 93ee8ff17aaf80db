"""The pacer's slices: half a millisecond on a quiet loop, a quarter of a busy one (clock injected)."""

from __future__ import annotations

import asyncio

import pytest

from persistence.pacing import MAX_SLICE_S, SLICE_S, LoopLoad, Pacer
from tests.fakes import FakeClock
from tests.persistence.helpers import async_test


def busy_for(clock: FakeClock, seconds: float) -> None:
    """What another callback of the loop does during the next rest: take `seconds` of its time."""
    asyncio.get_running_loop().call_soon(clock.advance, seconds)


async def rest_while_busy(pacer: Pacer, clock: FakeClock, seconds: float, times: int = 1) -> None:
    for _ in range(times):
        busy_for(clock, seconds)
        await pacer.rest()


@async_test
async def test_a_slice_lasts_half_a_millisecond_on_a_quiet_loop() -> None:
    clock = FakeClock(100.0)
    pacer = Pacer(clock=clock, load=LoopLoad())
    assert pacer.slice_s == SLICE_S
    clock.now += SLICE_S * 0.9
    assert not pacer.due()
    clock.now += SLICE_S * 0.2
    assert pacer.due()

    await pacer.rest()  # nothing else ran meanwhile
    assert pacer.slice_s == SLICE_S
    assert not pacer.due()


@async_test
async def test_on_a_loop_that_stays_busy_the_work_gets_a_quarter_of_its_time() -> None:
    clock = FakeClock(100.0)
    pacer = Pacer(clock=clock, load=LoopLoad(smoothing=1.0))
    await rest_while_busy(pacer, clock, 0.012)  # a saturated turn of the loop: 12 ms of requests

    assert pacer.slice_s == pytest.approx(0.004)
    clock.now += 0.0039
    assert not pacer.due()
    clock.now += 0.0002
    assert pacer.due()

    # Once the loop is quiet again, so are the slices.
    await pacer.rest()
    assert pacer.slice_s == SLICE_S


@async_test
async def test_one_burst_barely_lengthens_a_slice_but_a_lasting_load_does() -> None:
    clock = FakeClock(100.0)
    load = LoopLoad()
    pacer = Pacer(clock=clock, load=load)
    await rest_while_busy(pacer, clock, 0.004)
    assert pacer.slice_s == SLICE_S  # a third of a quarter of 4 ms: still the minimum
    await rest_while_busy(pacer, clock, 0.0, times=10)
    assert pacer.slice_s == SLICE_S

    await rest_while_busy(pacer, clock, 0.012, times=20)
    assert pacer.slice_s == pytest.approx(0.004, rel=0.01)


@async_test
async def test_a_new_pacer_starts_from_the_load_seen_before() -> None:
    clock = FakeClock(100.0)
    load = LoopLoad(smoothing=1.0)
    await rest_while_busy(Pacer(clock=clock, load=load), clock, 0.009)
    assert Pacer(clock=clock, load=load).slice_s == pytest.approx(0.003)


@async_test
async def test_a_slice_never_exceeds_the_cap() -> None:
    clock = FakeClock(100.0)
    pacer = Pacer(clock=clock, load=LoopLoad(smoothing=1.0))
    await rest_while_busy(pacer, clock, 30.0)  # the process was stopped, or the machine swapped
    assert pacer.slice_s == MAX_SLICE_S


@async_test
async def test_a_longer_base_slice_is_kept_as_the_floor() -> None:
    clock = FakeClock(100.0)
    pacer = Pacer(slice_s=0.002, clock=clock, load=LoopLoad(smoothing=1.0))
    await rest_while_busy(pacer, clock, 0.003)
    assert pacer.slice_s == 0.002
