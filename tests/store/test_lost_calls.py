"""Calls a crash left open are marked lost at start-up, never a call another unit sharing the store may carry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from ivr.app import close_lost_calls
from ivr.config import load_settings
from ivr.store.calls import LOST, mark_lost_calls
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import Call

from .conftest import NOW, sqlite_url

MAX_CALL = timedelta(hours=1)


def _call(protocol: str, started: timedelta, *, ended: bool = False, outcome: str = "") -> Call:
    return Call(
        protocol=protocol,
        started_at=NOW - started,
        ended_at=NOW - started + timedelta(minutes=1) if ended else None,
        outcome=outcome,
    )


async def _outcomes(store: Store) -> dict[str, str]:
    rows = await store.read(lambda s: s.execute(select(Call.protocol, Call.outcome)).all())
    return dict(rows)  # type: ignore[arg-type]


async def test_only_calls_no_unit_can_still_carry_are_marked_lost(store: Store) -> None:
    await store.write(
        lambda s: s.add_all(
            [
                _call("202600000001", MAX_CALL + timedelta(minutes=5)),  # open past Asterisk's bound: lost
                _call("202600000002", MAX_CALL - timedelta(minutes=5)),  # may be another unit's call in progress
                _call("202600000003", MAX_CALL * 2, ended=True, outcome="ended"),
                _call("202600000004", MAX_CALL * 3, outcome=LOST),  # marked at an earlier start
            ]
        )
    )
    assert await mark_lost_calls(store, started_before=NOW - MAX_CALL) == 1
    assert await _outcomes(store) == {
        "202600000001": LOST,
        "202600000002": "",
        "202600000003": "ended",
        "202600000004": LOST,
    }
    assert await mark_lost_calls(store, started_before=NOW - MAX_CALL) == 0  # nothing twice


async def test_ivr_serve_start_marks_them_by_the_max_call_setting(tmp_path: Path) -> None:
    settings = load_settings(database_url=sqlite_url(tmp_path / "ivr.sqlite3"), asterisk={"max_call_s": 600})
    store = Store(settings.database_url)
    try:
        await upgrade(store)
        past, within = _call("202600000011", timedelta(minutes=11)), _call("202600000012", timedelta(minutes=9))
        await store.write(lambda s: s.add_all([past, within]))
        assert await close_lost_calls(settings, clock=lambda: NOW) == 1
        assert await _outcomes(store) == {"202600000011": LOST, "202600000012": ""}
    finally:
        await store.aclose()


async def test_a_store_that_does_not_answer_does_not_stop_the_start(tmp_path: Path) -> None:
    settings = load_settings(database_url=sqlite_url(tmp_path / "missing" / "ivr.sqlite3"))
    assert await close_lost_calls(settings, clock=lambda: NOW) == 0
