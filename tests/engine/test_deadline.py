"""StepLimit: each step bounded as asyncio.timeout would bound it, on one timer moved lazily."""

from __future__ import annotations

import asyncio

import pytest

from ivr.engine.deadline import StepLimit

#: Far enough apart that a loaded machine cannot blur them.
SHORT_S = 0.05
LONG_S = 5.0


async def test_a_short_limit_after_a_long_one_ends_its_step_on_time() -> None:
    limit = StepLimit()
    async with limit(LONG_S):
        await asyncio.sleep(0)  # the timer is set for the long step's end...
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with limit(SHORT_S):  # ...and must be moved earlier for this one
            await asyncio.Event().wait()
    assert limit.expired
    assert loop.time() - started < LONG_S / 2
    limit.stop()


async def test_a_long_step_outlives_the_short_one_before_it() -> None:
    limit = StepLimit()
    async with limit(SHORT_S):  # the timer is set for this end...
        pass
    async with limit(SHORT_S * 6):  # ...fires inside this step, which goes on to its own end
        await asyncio.sleep(SHORT_S * 3)
    assert not limit.expired
    limit.stop()


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    limit = StepLimit()
    entered = asyncio.Event()

    async def step() -> None:
        async with limit(LONG_S):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(step())
    await entered.wait()
    task.cancel()  # a hang-up, say: not the step's limit
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not limit.expired
    limit.stop()


async def test_a_step_without_a_limit_is_not_cut() -> None:
    limit = StepLimit()
    async with limit(SHORT_S):
        pass
    async with limit(None):
        await asyncio.sleep(SHORT_S * 3)  # past the earlier step's end, which set the timer
    assert not limit.expired
    limit.stop()
