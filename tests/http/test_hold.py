"""A slow operation: the caller hears the hold prompt once while it goes on, never two channel commands
at once, and the operation's own deadline still bounds the wait."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ivr.config import load_settings
from ivr.engine.channel import CallerHangup
from ivr.engine.context import Outcome
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.operations import OperationContext, OperationRegistry, OperationResult, OperationSpec
from ivr.engine.scripted import ScriptedChannel
from tests.engine.fakes import caller, flow, services

HOLD = "one_moment"
MARGIN_S = 0.5
FLOW = """
flow: t
start: find
nodes:
  find:
    lookup: {operation: slow_lookup, into: me, found: known, not_found: bye, error: bye, timeout: late,
             within_s: WITHIN}
  known:
    play: main_menu
    next: bye
  late:
    play: sorry_unavailable
    next: bye
  bye:
    hangup: goodbye
"""


class Watched:
    """A scripted channel that counts commands overlapping each other; `on_hold` runs while the hold
    prompt is playing."""

    def __init__(self, on_hold: Callable[[], Awaitable[None]] | None = None) -> None:
        self.inner = ScriptedChannel(caller(), [])
        self.info = self.inner.info
        self.on_hold = on_hold
        self.busy = False
        self.overlaps = 0

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        command = getattr(self.inner, name)

        async def watched(*args: Any, **kwargs: Any) -> Any:
            self.overlaps += self.busy
            self.busy = True
            try:
                if name == "play" and list(args[0]) == [HOLD] and self.on_hold is not None:
                    await self.on_hold()
                return await command(*args, **kwargs)
            finally:
                self.busy = False

        return watched


class SlowLookup:
    """An operation that answers only when `finish` is set; it notes whether it was cancelled."""

    def __init__(self) -> None:
        self.finish = asyncio.Event()
        self.finished = asyncio.Event()
        self.cancelled = False

    async def __call__(self, ctx: OperationContext) -> OperationResult:
        try:
            await self.finish.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished.set()
        return OperationResult.found(name="Padaria")

    def registry(self) -> OperationRegistry:
        registry = OperationRegistry()
        registry.register(OperationSpec("slow_lookup", "", (), ("name",)), self)
        return registry


async def call(channel: Watched, lookup: SlowLookup, within_s: float = 5.0) -> CallResult:
    settings = load_settings(hold={"prompt": HOLD, "after_s": 0.05})
    text = FLOW.replace("WITHIN", str(within_s))
    svc = services(operations=lookup.registry())
    return await run_call(flow(text), channel, svc, settings=settings)  # type: ignore[arg-type]


async def test_a_slow_lookup_plays_the_hold_prompt_once_and_nothing_overlaps() -> None:
    lookup = SlowLookup()

    async def answer_during_the_prompt() -> None:
        lookup.finish.set()
        await lookup.finished.wait()  # the result is ready while the prompt still plays
        for _ in range(10):  # give an engine that did not wait for the prompt the chance to move on
            await asyncio.sleep(0)

    channel = Watched(on_hold=answer_during_the_prompt)
    result = await call(channel, lookup)
    assert result.variables["me"]["status"] == "found"
    heard = channel.inner.heard
    assert heard.count(HOLD) == 1
    assert heard.index(HOLD) < heard.index("main_menu")  # the result is used after the prompt ends
    assert channel.overlaps == 0


async def test_a_quick_lookup_plays_no_hold_prompt() -> None:
    lookup = SlowLookup()
    lookup.finish.set()
    channel = Watched()
    result = await call(channel, lookup)
    assert result.variables["me"]["status"] == "found"
    assert HOLD not in channel.inner.heard


async def test_the_operations_deadline_still_bounds_the_wait() -> None:
    lookup = SlowLookup()  # never answers
    channel = Watched()
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await call(channel, lookup, within_s=0.3)
    elapsed = loop.time() - started
    assert result.variables["me"]["status"] == "timeout" and "late" in result.path
    assert channel.inner.heard.count(HOLD) == 1
    assert elapsed < 0.3 + MARGIN_S
    assert lookup.cancelled


async def test_a_hang_up_during_the_hold_prompt_stops_the_operation() -> None:
    lookup = SlowLookup()

    async def hang_up() -> None:
        raise CallerHangup()

    result = await call(Watched(on_hold=hang_up), lookup)
    assert result.outcome is Outcome.HANGUP
    assert lookup.cancelled


async def test_the_registry_bounds_an_operation_in_the_task_that_calls_it() -> None:
    # asyncio.wait_for made a task of its own for each operation: more turns of the event loop a call.
    ran_in: list[asyncio.Task[Any] | None] = []

    async def answer(ctx: OperationContext) -> OperationResult:
        ran_in.append(asyncio.current_task())
        return OperationResult.found(name="Padaria")

    registry = OperationRegistry()
    registry.register(OperationSpec("quick_lookup", "", (), ("name",)), answer)
    ctx = OperationContext(call_protocol="1", caller_id="", customer_id=None, account_confirmed=False)
    result = await registry.call("quick_lookup", {}, ctx, timeout_s=1)
    assert result.data["name"] == "Padaria"
    assert ran_in == [asyncio.current_task()]
