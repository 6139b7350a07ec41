"""`ivr report`'s figures on a known day: how calls ended, tickets per kind, average time to outcome,
drop-off per node, and days that are São Paulo's, not UTC's."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.store.db import Store
from ivr.store.reports import DropOff, local_days, report, roll_up

from .calls_data import DAY, NEGOTIATION, write_day

ZONE = "America/Sao_Paulo"


@pytest.fixture
async def day(store: Store) -> Store:
    await write_day(store)
    return store


async def test_a_day_is_counted_by_how_its_calls_ended(day: Store) -> None:
    figures = await report(day, *local_days(DAY, 1, ZONE))
    assert (figures.calls, figures.contained, figures.abandoned, figures.failed, figures.in_progress) == (7, 2, 2, 1, 0)
    assert figures.transferred == (("queue:technical", 1), (f"transfer:{NEGOTIATION}", 1))
    assert figures.transferred_total == 2
    assert figures.tickets == (("technical_failure", 1),)
    assert figures.average_s == pytest.approx((120 + 30 + 60 + 90 + 45 + 15 + 5) / 7, abs=0.01)


async def test_drop_off_is_per_node_with_its_share_of_the_visits(day: Store) -> None:
    figures = await report(day, *local_days(DAY, 1, ZONE))
    assert figures.drop_off == (
        DropOff("sac", "cnpj", visits=2, hung_up=1, input_failed=1, failed=0),
        DropOff("sac", "greet", visits=6, hung_up=0, input_failed=0, failed=1),
        DropOff("sac", "menu", visits=5, hung_up=1, input_failed=0, failed=0),
    )
    assert [round(node.share * 100) for node in figures.drop_off] == [100, 17, 20]


async def test_one_flow_alone(day: Store) -> None:
    figures = await report(day, *local_days(DAY, 1, ZONE), flow="sac")
    assert (figures.calls, figures.contained, figures.flow) == (6, 1, "sac")
    assert figures.average_s == pytest.approx(60.0, abs=0.01)


async def test_a_call_at_23_30_in_sao_paulo_is_that_day_s_though_utc_says_the_next(day: Store) -> None:
    since, until = local_days(DAY, 1, ZONE)
    assert (since.utcoffset(), until - since) == (timedelta(hours=-3), timedelta(days=1))
    assert (await report(day, since, until, flow="sac")).failed == 1  # call F, 02:30 UTC the next day
    next_day = await report(day, *local_days(DAY + timedelta(days=1), 1, ZONE))
    assert (next_day.calls, next_day.failed, next_day.average_s, next_day.drop_off) == (0, 0, None, ())


async def test_a_week_holds_its_seven_days(day: Store) -> None:
    figures = await report(day, *local_days(DAY - timedelta(days=1), 7, ZONE))
    assert (figures.calls, figures.contained) == (8, 3)


async def test_the_hours_rolled_up_give_the_same_drop_off_as_the_visits(day: Store) -> None:
    local = ZoneInfo(ZONE)
    spans = [
        local_days(DAY, 1, ZONE),
        local_days(DAY - timedelta(days=1), 7, ZONE),
        (datetime.combine(DAY, time(8, 30), local), datetime.combine(DAY, time(23, 45), local)),
    ]
    wanted = [await report(day, *span, flow=flow) for span in spans for flow in (None, "sac", "test")]
    assert await roll_up(day, before=datetime.combine(DAY, time(9, 45), local)) > 0  # part of the day
    assert [await report(day, *span, flow=flow) for span in spans for flow in (None, "sac", "test")] == wanted
    assert await roll_up(day, before=datetime.combine(DAY + timedelta(days=2), time(), local)) > 0  # all of it
    assert [await report(day, *span, flow=flow) for span in spans for flow in (None, "sac", "test")] == wanted
    assert await roll_up(day, before=datetime.combine(DAY + timedelta(days=2), time(), local)) == 0
