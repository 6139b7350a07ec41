"""Call backs placed exactly once through the real Asterisk 22 when things go wrong: two IVR units on one
store, the AMI connection dropped just after the `Originate`, Asterisk restarted with a call back pending.

Each test schedules a call back in the store of a running `ivr serve` (its dialer looks twice a second),
logs an agent in, answers on the carrier trunk as the customer, and counts the dials to the customer's
number that Asterisk reports (AMI `DialBegin` on the trunk) until the agent has the call.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ivr.clock import ManualClock
from ivr.engine.ports import CallbackRequest
from ivr.store.callbacks import StoreCallbackBook
from ivr.store.db import Store
from ivr.store.models import AttemptOutcome, Callback, CallbackState

from .ami import Ami, Message
from .ami_relay import ami_relay
from .conftest import BRIEF_AGENT_INTERFACE, E2EAsterisk, ami_session, free_port, queue_member, serve_ivr
from .ivr_process import IvrProcess
from .test_callbacks import book_conf

pytestmark = pytest.mark.e2e

CUSTOMER = "31988776655"
POLL = {"IVR_CALLBACKS__POLL_INTERVAL_S": "0.5"}
#: After the agent has the call, how long a second dial would have had to show up: several dialer turns.
SECOND_DIAL_WINDOW_S = 3.0
#: An attempt whose Originate reply was lost is decided once AMI is back and its channel looked at.
DECIDED_WITHIN_S = 20.0
#: The live model's view after Asterisk is back: a reconnect, a resync, the call backs owed read every 5 s.
LIVE_WITHIN_S = 20.0


@asynccontextmanager
async def unit(
    asterisk: E2EAsterisk, env: Mapping[str, str], database: Path | None = None
) -> AsyncIterator[IvrProcess]:
    """`ivr serve`, started and stopped off the event loop (the loop keeps serving what the test runs)."""
    serving = serve_ivr(asterisk, {**POLL, **env}, database)
    process = await asyncio.to_thread(serving.__enter__)
    try:
        yield process
    finally:
        await asyncio.to_thread(serving.__exit__, None, None, None)


async def schedule(process: IvrProcess, asterisk: E2EAsterisk, protocol: str) -> int:
    store = Store(process.database_url)
    book = StoreCallbackBook(store, clock=ManualClock(process.moment), conf=book_conf(asterisk), timezone="UTC")
    try:
        return await book.schedule(
            CallbackRequest(
                protocol=protocol, ticket_number="800000014", number=CUSTOMER, team="technical", customer_id=7,
                customer_name="Padaria", caller_id="3133334444", path="start>callback", tickets="800000014",
            )  # fmt: skip
        )
    finally:
        await store.aclose()


async def outcome(process: IvrProcess, asterisk: E2EAsterisk, callback_id: int) -> tuple[object, ...]:
    """The call back's state, attempts and their outcomes, once its attempt is decided (bounded)."""
    store = Store(process.database_url)
    book = StoreCallbackBook(store, clock=ManualClock(process.moment), conf=book_conf(asterisk), timezone="UTC")
    try:
        async with asyncio.timeout(DECIDED_WITHIN_S):
            while (row := await store.read(lambda s: s.get_one(Callback, callback_id))).state is CallbackState.DIALLING:
                await asyncio.sleep(0.2)
        return row.state, row.attempts, [o for _, o, _ in await book.attempts(callback_id)]
    finally:
        await store.aclose()


async def live_until(process: IvrProcess, ready: Callable[[dict[str, Any]], object]) -> None:
    """`ivr live` of the unit, asked again until `ready` accepts what it prints; fails after LIVE_WITHIN_S."""
    snapshot: dict[str, Any] = {}
    try:
        async with asyncio.timeout(LIVE_WITHIN_S):
            while not ready(snapshot := await process.live()):
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(f"the live model never showed it within {LIVE_WITHIN_S} s; last: {snapshot}") from None


def dials_to_customer(events: list[Message]) -> int:
    """Asterisk's dials to the customer's number (an `Originate` dials through the `ast_dial` API too)."""
    return sum(1 for e in events if e.get("Event") == "DialBegin" and e.get("DialString", "").startswith(CUSTOMER))


async def agent_gets_the_call(asterisk: E2EAsterisk, ami: Ami, protocol: str) -> None:
    """An agent logs in; the customer answers the call back on the trunk; the agent is connected to them."""
    async with queue_member(ami, "technical", BRIEF_AGENT_INTERFACE):
        customer = asyncio.create_task(asterisk.answer_on_trunk(timeout_s=40))
        await ami.wait_event(
            lambda e: e.get("Event") == "AgentConnect" and f"IVR_PROTOCOL={protocol}" in e.get("ChanVariable", ""),
            timeout_s=35,
        )
        assert (await customer).received[0].startswith(f"INVITE sip:{CUSTOMER}@")
    dials = 0

    def second_dial(event: Message) -> bool:
        nonlocal dials
        dials += dials_to_customer([event])
        return dials > 1

    with pytest.raises(TimeoutError):  # nobody dials the customer again
        await ami.wait_event(second_dial, SECOND_DIAL_WINDOW_S)


async def test_two_ivr_units_on_one_store_place_a_call_back_once(asterisk: E2EAsterisk, ami: Ami) -> None:
    async with unit(asterisk, {}) as first, unit(
        asterisk, {"IVR_AGI__PORT": str(free_port(socket.SOCK_STREAM))}, database=first.database
    ):
        callback_id = await schedule(first, asterisk, "202600000031")
        await agent_gets_the_call(asterisk, ami, "202600000031")
        assert dials_to_customer(ami.events) == 1
        assert await outcome(first, asterisk, callback_id) == (CallbackState.ANSWERED, 1, [AttemptOutcome.ANSWERED])


async def test_an_originate_whose_reply_is_lost_is_not_sent_again(asterisk: E2EAsterisk, ami: Ami) -> None:
    ami_address = (asterisk.settings.ami.host, asterisk.settings.ami.port)
    async with ami_relay(ami_address, cut_after="Originate") as (relay, port), unit(
        asterisk, {"IVR_AMI__PORT": str(port)}
    ) as process:
        callback_id = await schedule(process, asterisk, "202600000037")
        await agent_gets_the_call(asterisk, ami, "202600000037")
        assert relay.cut.is_set() and relay.connections >= 2  # dropped mid-dial, and the IVR came back
        assert relay.actions.count("originate") == 1
        assert dials_to_customer(ami.events) == 1
        # Its channel was found up among Asterisk's channels: the attempt counts as answered.
        assert await outcome(process, asterisk, callback_id) == (
            CallbackState.ANSWERED, 1, [AttemptOutcome.ANSWERED],
        )  # fmt: skip


async def test_a_call_back_pending_across_an_asterisk_restart_is_placed_once(asterisk: E2EAsterisk) -> None:
    async with unit(asterisk, {}) as process:
        callback_id = await schedule(process, asterisk, "202600000041")  # nobody logged in: it waits
        await asyncio.to_thread(asterisk.instance.stop)
        await asyncio.to_thread(asterisk.instance.start)
        # The IVR reconnects to the new Asterisk by itself: its live model is read afresh and shows the call
        # back still owed to the technical team.
        await live_until(
            process,
            lambda s: s["ami"]["connected"] and s["ami"]["synced"]
            and s["queues"].get("technical", {}).get("callbacks_pending") == 1,
        )  # fmt: skip
        async with ami_session(asterisk) as ami:
            await agent_gets_the_call(asterisk, ami, "202600000041")
            assert dials_to_customer(ami.events) == 1
        assert await outcome(process, asterisk, callback_id) == (CallbackState.ANSWERED, 1, [AttemptOutcome.ANSWERED])
