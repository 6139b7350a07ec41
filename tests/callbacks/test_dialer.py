"""The dialer's decisions against a fake AMI: dial only with an agent free, the customer first with the
inbound call's context, each outcome from OriginateResponse, a lost reply reconciled and never re-sent,
a restarted IVR resuming what was pending and reconciling what was in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from ivr.ami.client import check_fields
from ivr.clock import ManualClock
from ivr.dialer import Dialer
from ivr.store.callbacks import Dial, StoreCallbackBook
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import AttemptOutcome, Callback, CallbackState

from .conftest import CONF, request
from .fake_ami import FakeAmi


@pytest.fixture
def ami() -> FakeAmi:
    return FakeAmi()


def dialer(book: StoreCallbackBook, ami: FakeAmi, unit: str = "unit-a", trunk: str = "national") -> Dialer:
    return Dialer(
        book, ami, conf=CONF, caller_id="3130033336", trunk_number_format=trunk, reply_timeout_s=0.1, unit=unit
    )


@pytest.fixture
async def unit(book: StoreCallbackBook, ami: FakeAmi) -> AsyncIterator[Dialer]:
    one = dialer(book, ami)
    yield one
    await one.aclose()


async def state_of(store: Store, callback_id: int) -> tuple[CallbackState, int, str]:
    row = await store.read(lambda s: s.get_one(Callback, callback_id))
    return row.state, row.attempts, row.last_outcome


async def test_nobody_is_dialled_without_a_free_agent_then_the_customer_first_with_the_call_context(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, unit: Dialer
) -> None:
    callback_id = await book.schedule(request())
    assert await unit.turn() == 0 and ami.sent == []  # nobody logged in
    ami.free_agents["technical"] = 1
    ami.waiting["technical"] = 1
    assert await unit.turn() == 0  # the free agent is for the caller already waiting
    ami.waiting["technical"] = 0
    assert await unit.turn() == 1

    originate = await ami.next_originate()
    assert originate["Channel"] == "PJSIP/31988776655@carrier"
    assert (originate["Context"], originate["Exten"], originate["Async"]) == ("sac-callback", "s", "true")
    assert originate["CallerID"] == "3130033336" and originate["Timeout"] == 300
    assert originate["ChannelId"] == originate["ActionID"]
    assert set(originate["Variable"]) == {
        "IVR_PROTOCOL=202600000017",
        "IVR_CALLER_ID=3133334444",
        "IVR_CUSTOMER=7",
        "IVR_CUSTOMER_NAME=Padaria Pão Quente",
        "IVR_PATH=start>main_menu>technical>callback_request",
        "IVR_TICKETS=800000013\\,800000014",
        "IVR_CALLBACK_QUEUE=technical",
        f"IVR_CALLBACK_ID={callback_id}",
    }
    assert await unit.turn() == 0  # the agent is kept for the customer being dialled
    ami.answer(originate)
    await unit.settle()
    assert await state_of(store, callback_id) == (CallbackState.ANSWERED, 1, "answered")


async def test_a_customer_name_with_a_line_break_is_dialled_cleaned_not_refused(
    book: StoreCallbackBook, ami: FakeAmi, unit: Dialer
) -> None:
    await book.schedule(replace(request(), customer_name="Padaria\r\nAction: Hangup\0"))
    ami.free_agents["technical"] = 1
    assert await unit.turn() == 1
    originate = await ami.next_originate()
    assert "IVR_CUSTOMER_NAME=Padaria\ufffd\ufffdAction: Hangup\ufffd" in originate["Variable"]
    check_fields(originate)  # what the real client checks before writing: nothing left to refuse


async def test_the_free_agent_stays_for_the_answered_customer_until_they_join_the_queue(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, unit: Dialer
) -> None:
    first = await book.schedule(request(protocol="202600000017"))
    second = await book.schedule(request(protocol="202600000018", number="31977665544"))
    ami.free_agents["technical"] = 1
    assert await unit.turn() == 1
    originate = await ami.next_originate()
    ami.answer(originate, joins=False)  # hearing who calls and the protocol
    assert await unit.turn() == 0 and len(ami.sent) == 1
    ami.join(originate)
    await unit.settle()
    assert (await state_of(store, first))[0] is CallbackState.ANSWERED
    ami.waiting["technical"] = 1  # the customer now waits for that agent
    assert await unit.turn() == 0
    ami.free_agents["technical"], ami.waiting["technical"] = 2, 1  # another agent logs in
    assert await unit.turn() == 1
    ami.answer(await ami.next_originate())
    await unit.settle()
    assert (await state_of(store, second))[0] is CallbackState.ANSWERED


async def test_an_e164_trunk_gets_the_number_in_e164(book: StoreCallbackBook, ami: FakeAmi) -> None:
    await book.schedule(request())
    ami.free_agents["technical"] = 1
    e164 = dialer(book, ami, trunk="e164")
    try:
        await e164.turn()
        originate = await ami.next_originate()
        assert originate["Channel"] == "PJSIP/+5531988776655@carrier"
        ami.answer(originate, response="Failure", reason="5")
        await e164.settle()
    finally:
        await e164.aclose()


async def test_each_outcome_is_stored_attempts_are_spaced_then_given_up(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, unit: Dialer, clock: ManualClock
) -> None:
    callback_id = await book.schedule(request())
    ami.free_agents["technical"] = 1
    replies = [("5", "", "busy"), ("0", "NOANSWER", "no_answer"), ("0", "CHANUNAVAIL", "failed")]
    for attempt, (reason, dial_status, outcome) in enumerate(replies, start=1):
        assert await unit.turn() == 1
        ami.answer(await ami.next_originate(), response="Failure", reason=reason, dial_status=dial_status)
        await unit.settle()
        assert (await state_of(store, callback_id))[1:] == (attempt, outcome)
        assert await unit.turn() == 0  # spaced
        clock.set(clock() + timedelta(seconds=CONF.spacing_s))
    assert (await state_of(store, callback_id))[0] is CallbackState.GIVEN_UP
    assert await unit.turn() == 0 and len(ami.sent) == 3
    assert [o for _, o, _ in await book.attempts(callback_id)] == [
        AttemptOutcome.BUSY, AttemptOutcome.NO_ANSWER, AttemptOutcome.FAILED,
    ]  # fmt: skip


async def test_a_refused_originate_is_a_failed_attempt(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, unit: Dialer
) -> None:
    callback_id = await book.schedule(request())
    ami.free_agents["technical"] = 1
    ami.originate_reply = "error"
    await unit.turn()
    await unit.settle()
    assert await state_of(store, callback_id) == (CallbackState.PENDING, 1, "failed")
    assert (await book.attempts(callback_id))[0][2] == "AMI Originate: Permission denied"


async def test_an_originate_never_sent_costs_no_attempt(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, unit: Dialer
) -> None:
    callback_id = await book.schedule(request())
    ami.free_agents["technical"] = 1
    ami.originate_reply = "not_connected"
    await unit.turn()
    await unit.settle()
    assert await state_of(store, callback_id) == (CallbackState.PENDING, 0, "")
    assert await book.attempts(callback_id) == []


async def test_a_lost_reply_is_reconciled_by_its_channel_and_never_re_sent(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, unit: Dialer
) -> None:
    gone = await book.schedule(request(protocol="202600000017"))
    up = await book.schedule(request(protocol="202600000018", number="31977665544"))
    ami.free_agents["technical"] = 2
    ami.originate_reply = "lost"
    ami.channels_shown.clear()
    assert await unit.turn() == 2
    first, second = await ami.next_originate(), await ami.next_originate()
    answered = second if "IVR_PROTOCOL=202600000018" in second["Variable"] else first
    ami.channels = [{"Uniqueid": answered["ChannelId"], "ChannelState": "6", "Channel": "PJSIP/carrier-0001"}]
    ami.channels_shown.set()
    ami.join(answered)
    await unit.settle()  # no OriginateResponse: each attempt looks for its channel
    assert await state_of(store, gone) == (CallbackState.PENDING, 1, "unknown")
    assert await state_of(store, up) == (CallbackState.ANSWERED, 1, "answered")
    assert await unit.turn() == 0 and len(ami.sent) == 2  # nothing sent again


async def test_a_lost_reply_of_a_call_that_joined_the_queue_and_ended_is_answered_not_dialled_again(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, unit: Dialer
) -> None:
    callback_id = await book.schedule(request())
    ami.free_agents["technical"] = 1
    ami.originate_reply = "lost"  # and its OriginateResponse with the dropped connection
    await unit.turn()
    originate = await ami.next_originate()
    ami.join(originate)  # seen after the reconnect: the customer answered, heard the protocol, queued
    ami.emit({"Event": "Hangup", "Uniqueid": originate["ChannelId"], "Cause": "16"})  # a short conversation
    await unit.settle()
    assert await state_of(store, callback_id) == (CallbackState.ANSWERED, 1, "answered")
    assert await unit.turn() == 0 and len(ami.sent) == 1


async def test_a_lost_reply_whose_event_still_comes_takes_the_event(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, unit: Dialer
) -> None:
    callback_id = await book.schedule(request())
    ami.free_agents["technical"] = 1
    ami.originate_reply = "lost"
    ami.channels_shown.clear()
    await unit.turn()
    originate = await ami.next_originate()
    ami.channels = [{"Uniqueid": originate["ChannelId"], "ChannelState": "5", "Channel": "PJSIP/carrier-0001"}]
    ami.channels_shown.set()  # ringing when looked at; then the busy customer's event comes after all
    ami.answer(originate, response="Failure", reason="5")
    await unit.settle()
    assert await state_of(store, callback_id) == (CallbackState.PENDING, 1, "busy")


async def test_a_restarted_ivr_resumes_pending_call_backs_and_reconciles_the_one_in_flight(
    book: StoreCallbackBook, store: Store, ami: FakeAmi, clock: ManualClock
) -> None:
    in_flight = await book.schedule(request(protocol="202600000017"))
    ami.free_agents["technical"] = 1
    before = dialer(book, ami, unit="before-restart")
    await before.turn()
    await ami.next_originate()
    await before.aclose()  # the IVR stops while the customer's phone rings
    waiting = await book.schedule(request(protocol="202600000018", number="31977665544"))

    after = dialer(book, ami, unit="after-restart")
    try:
        assert await after.turn() == 1  # the pending one; the one in flight is still leased
        ami.answer(await ami.next_originate())
        await after.settle()
        assert await state_of(store, waiting) == (CallbackState.ANSWERED, 1, "answered")
        assert (await state_of(store, in_flight))[0] is CallbackState.DIALLING

        clock.set(clock() + timedelta(seconds=CONF.lease_s))
        assert await after.turn() == 0  # reconciled, not dialled: its channel is gone
        await after.settle()
        assert await state_of(store, in_flight) == (CallbackState.PENDING, 1, "unknown")
        assert len(ami.sent) == 2
        clock.set(clock() + timedelta(seconds=CONF.spacing_s))
        assert await after.turn() == 1  # its second attempt, after the spacing
        ami.answer(await ami.next_originate())
        await after.settle()
        assert await state_of(store, in_flight) == (CallbackState.ANSWERED, 2, "answered")
    finally:
        await after.aclose()


async def test_a_second_unit_on_the_same_database_does_not_dial_it_again(
    database_url: str, book: StoreCallbackBook, store: Store, ami: FakeAmi, clock: ManualClock
) -> None:
    callback_id = await book.schedule(request())
    other_store = Store(database_url, busy_timeout_s=10)
    other_ami = FakeAmi()
    ami.free_agents["technical"] = other_ami.free_agents["technical"] = 1
    one = dialer(book, ami, unit="unit-1")
    two = dialer(
        StoreCallbackBook(other_store, clock=clock, conf=CONF, timezone="America/Sao_Paulo"), other_ami, "unit-2"
    )
    try:
        assert sorted([await one.turn(), await two.turn()]) == [0, 1]
        ami.answer(await ami.next_originate())
        await one.settle()
        assert other_ami.sent == []
        assert await state_of(store, callback_id) == (CallbackState.ANSWERED, 1, "answered")
    finally:
        await one.aclose()
        await two.aclose()
        await other_store.aclose()


class StoreDownOnce(StoreCallbackBook):
    """The store is down when the first outcome is written."""

    down = True

    async def finish(self, dial: Dial, outcome: AttemptOutcome, detail: str, *, unit: str) -> CallbackState:
        if self.down:
            self.down = False
            raise StoreUnavailable("store unavailable: database is locked")
        return await super().finish(dial, outcome, detail, unit=unit)


async def test_an_outcome_the_store_could_not_take_is_written_once_it_is_back(
    store: Store, ami: FakeAmi, clock: ManualClock
) -> None:
    conf = CONF.model_copy(update={"lease_s": 1.0})  # its retries come within half a lease
    book = StoreDownOnce(store, clock=clock, conf=conf, timezone="America/Sao_Paulo")
    callback_id = await book.schedule(request())
    ami.free_agents["technical"] = 1
    one = Dialer(book, ami, conf=conf, caller_id="3130033336", trunk_number_format="national", reply_timeout_s=0.1)
    try:
        await one.turn()
        ami.answer(await ami.next_originate())
        await one.settle()
        assert not book.down and await state_of(store, callback_id) == (CallbackState.ANSWERED, 1, "answered")
    finally:
        await one.aclose()
