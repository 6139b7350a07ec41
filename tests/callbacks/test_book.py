"""The call back book: kept with the call's context, claimed by exactly one unit, attempts and outcomes,
given up after the last attempt, a unit's expired lease taken over for reconciliation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ivr.clock import ManualClock
from ivr.engine.operations import BackendError
from ivr.store.callbacks import CallbackRefused, StoreCallbackBook, inside
from ivr.store.db import Store
from ivr.store.models import AttemptOutcome, Callback, CallbackState

from .conftest import CONF, NOW, ZONE, request


async def row(store: Store, callback_id: int) -> Callback:
    return await store.read(lambda s: s.get_one(Callback, callback_id))


async def test_a_call_back_is_kept_with_the_call_context_and_the_team_window(
    book: StoreCallbackBook, store: Store
) -> None:
    technical = await book.schedule(request("technical"))
    billing = await book.schedule(request("billing", number="(31) 3333-4444"))

    kept = await row(store, technical)
    assert (kept.call_protocol, kept.ticket_number, kept.number, kept.team) == (
        "202600000017", "800000014", "31988776655", "technical",
    )  # fmt: skip
    assert (kept.customer_id, kept.customer_name, kept.caller_id) == (7, "Padaria Pão Quente", "3133334444")
    assert kept.path == "start>main_menu>technical>callback_request" and kept.tickets == "800000013,800000014"
    assert kept.state is CallbackState.PENDING and kept.next_attempt_at == NOW and kept.reason == "requested"
    assert kept.window == {}  # technical support is 24x7
    assert (await row(store, billing)).window == {"schedule": {"weekdays": "08:00-18:00"}, "holidays": True}
    assert (await row(store, billing)).number == "3133334444"


async def test_a_number_nobody_can_call_back_is_refused(book: StoreCallbackBook) -> None:
    with pytest.raises(BackendError):
        await book.schedule(request(number="08007771234"))


async def test_call_backs_owed_are_counted_per_team(book: StoreCallbackBook) -> None:
    await book.schedule(request("technical"))
    await book.schedule(request("technical", protocol="202600000025"))
    cancelled = await book.schedule(request("billing", protocol="202600000033"))
    assert await book.claim("technical", unit="a") is not None  # being dialled: still owed
    await book.cancel(cancelled)
    assert await book.owed_by_team() == {"technical": 2}


@pytest.mark.parametrize(
    ("local", "open_"),
    [
        (datetime(2026, 3, 10, 10, 0), True),  # Tuesday morning
        (datetime(2026, 3, 10, 18, 0), False),  # closes at 18:00
        (datetime(2026, 3, 14, 10, 0), False),  # Saturday
        (datetime(2026, 12, 25, 10, 0), False),  # Christmas, a Friday
    ],
)
def test_the_window_follows_the_team_hours_and_holidays(local: datetime, open_: bool) -> None:
    window = {"schedule": {"weekdays": "08:00-18:00"}, "holidays": True}
    assert inside(window, local) is open_
    assert inside({}, local)  # 24x7


async def test_outside_its_window_a_call_back_waits(book: StoreCallbackBook, clock: ManualClock) -> None:
    await book.schedule(request("billing"))
    clock.set(datetime(2026, 3, 10, 23, 30, tzinfo=UTC))  # 20:30 in São Paulo
    assert await book.due_teams() == ["billing"]
    assert await book.claim("billing", unit="a") is None
    clock.set(NOW + timedelta(days=1))
    assert (await book.claim("billing", unit="a")) is not None


async def test_two_units_on_one_database_never_claim_the_same_call_back(
    database_url: str, clock: ManualClock
) -> None:
    stores = [Store(database_url, busy_timeout_s=10) for _ in range(2)]
    books = [StoreCallbackBook(s, clock=clock, conf=CONF, timezone=ZONE) for s in stores]
    try:
        ids = [await books[0].schedule(request(protocol=f"2026000000{n:02d}")) for n in range(12)]

        async def claim_all(unit: str, book: StoreCallbackBook) -> list[int]:
            won = []
            for _ in range(len(ids)):  # bounded: never more rows than were scheduled
                dial = await book.claim("technical", unit=unit)
                if dial is None:
                    break
                won.append(dial.callback_id)
            return won

        first, second = await asyncio.gather(claim_all("unit-1", books[0]), claim_all("unit-2", books[1]))
        assert sorted(first + second) == ids  # each exactly once
        assert not set(first) & set(second)

        one = await books[0].schedule(request(protocol="202600000099"))
        race = await asyncio.gather(*(b.claim("technical", unit=f"u{i}") for i, b in enumerate(books * 3)))
        assert [d.callback_id for d in race if d is not None] == [one]
    finally:
        for store in stores:
            await store.aclose()


async def test_attempts_are_spaced_then_given_up_and_the_row_stays_listed(
    book: StoreCallbackBook, clock: ManualClock
) -> None:
    callback_id = await book.schedule(request())
    outcomes = (AttemptOutcome.BUSY, AttemptOutcome.NO_ANSWER, AttemptOutcome.FAILED)
    for number, outcome in enumerate(outcomes, start=1):
        dial = await book.claim("technical", unit="a")
        assert dial is not None and dial.attempt == number
        state = await book.finish(dial, outcome, "Reason 5", unit="a")
        if number < len(outcomes):
            assert state is CallbackState.PENDING
            assert await book.claim("technical", unit="a") is None  # spaced
            clock.set(clock() + timedelta(seconds=CONF.spacing_s))
    assert state is CallbackState.GIVEN_UP
    [listed] = await book.listed([CallbackState.GIVEN_UP])
    assert (listed.id, listed.attempts, listed.last_outcome, listed.number_masked) == (
        callback_id, 3, "failed", "31*******55",
    )  # fmt: skip
    assert [(n, o) for n, o, _ in await book.attempts(callback_id)] == list(zip((1, 2, 3), outcomes, strict=True))


async def test_an_answered_call_back_is_done(book: StoreCallbackBook) -> None:
    await book.schedule(request())
    dial = await book.claim("technical", unit="a")
    assert dial is not None
    assert await book.finish(dial, AttemptOutcome.ANSWERED, "Reason 4", unit="a") is CallbackState.ANSWERED
    assert await book.due_teams() == []


async def test_a_unit_that_stopped_mid_dial_leaves_its_attempt_to_reconcile_not_to_redial(
    book: StoreCallbackBook, clock: ManualClock
) -> None:
    await book.schedule(request())
    dial = await book.claim("technical", unit="dead")
    assert dial is not None
    assert await book.take_over_expired(unit="b") == []  # its lease still runs
    clock.set(clock() + timedelta(seconds=CONF.lease_s))
    assert await book.claim("technical", unit="b") is None  # never claimed as if nothing was sent
    [taken] = await book.take_over_expired(unit="b")
    assert (taken.attempt_id, taken.action_id, taken.channel_id) == (dial.attempt_id, dial.action_id, dial.channel_id)
    assert await book.finish(dial, AttemptOutcome.BUSY, "", unit="dead") is CallbackState.DIALLING  # not its own now
    assert await book.finish(taken, AttemptOutcome.UNKNOWN, "channel gone", unit="b") is CallbackState.PENDING


async def test_operators_cancel_and_retry(book: StoreCallbackBook, clock: ManualClock) -> None:
    callback_id = await book.schedule(request())
    await book.cancel(callback_id)
    assert await book.claim("technical", unit="a") is None
    with pytest.raises(CallbackRefused, match="is cancelled"):
        await book.cancel(callback_id)
    await book.retry(callback_id)
    dial = await book.claim("technical", unit="a")
    assert dial is not None and dial.attempt == 1
    await book.finish(dial, AttemptOutcome.ANSWERED, "", unit="a")
    with pytest.raises(CallbackRefused, match="is answered"):
        await book.retry(callback_id)
    with pytest.raises(CallbackRefused, match="no call back #999"):
        await book.retry(999)
