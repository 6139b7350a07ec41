"""Node visits and call records: batched, off the call's path, surviving a store outage."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from ivr.engine.ports import CallInfo, NodeVisit
from ivr.protocol_number import make_call_protocol
from ivr.store.calls import StoreCallRecorder
from ivr.store.db import Store
from ivr.store.events import Rank, RecordKind, StoreEventSink
from ivr.store.migrate import upgrade
from ivr.store.models import Call
from ivr.store.models import NodeVisit as VisitRow

from .conftest import NOW, sqlite_url

PROTOCOL = make_call_protocol(2026, 18)


def visit(i: int, protocol: str = PROTOCOL) -> NodeVisit:
    return NodeVisit(protocol, "sac", "v3", f"node{i}", "menu", "1", "1", NOW + timedelta(seconds=i), 120)


async def count_visits(store: Store) -> int:
    return await store.read(lambda s: s.scalar(select(func.count()).select_from(VisitRow)))


async def test_visits_are_written_in_batches_and_flushed_on_close(store: Store) -> None:
    sink = StoreEventSink(store, batch_size=10, flush_interval_s=30)
    await sink.start()
    for i in range(25):
        sink.emit(visit(i))
    await asyncio.wait_for(sink.flushed(), 5)
    assert await count_visits(store) == 25 and sink.written == 25
    sink.emit(visit(99))
    await sink.aclose()  # the flush interval is long: only the close writes this one
    assert await count_visits(store) == 26 and sink.dropped == 0
    rows = await store.read(lambda s: s.scalars(select(VisitRow).order_by(VisitRow.id)).all())
    assert [r.node for r in rows[:3]] == ["node0", "node1", "node2"] and rows[0].started_at == NOW


async def test_a_store_outage_never_blocks_emit_and_events_wait_for_it(tmp_path: Path) -> None:
    path = tmp_path / "db" / "ivr.sqlite3"
    store = Store(sqlite_url(path))
    sink = StoreEventSink(store, batch_size=5, flush_interval_s=0.01, retry_max_s=0.05)
    await sink.start()
    try:
        for i in range(12):
            sink.emit(visit(i))  # synchronous: returns at once with the store down
        for _ in range(500):  # bounded wait for the writer to meet the outage
            if sink.failed_writes >= 2:
                break
            await asyncio.sleep(0.01)
        assert sink.failed_writes >= 2 and sink.pending == 12 and sink.dropped == 0
        path.parent.mkdir()
        await upgrade(store)  # the store comes back
        await asyncio.wait_for(sink.flushed(), 5)
        assert await count_visits(store) == 12 and sink.dropped == 0
    finally:
        await sink.aclose()
        await store.aclose()


async def test_a_full_buffer_drops_new_events_and_counts_them(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path / "missing" / "ivr.sqlite3"))
    sink = StoreEventSink(store, batch_size=2, flush_interval_s=0.01, max_buffer=5, retry_max_s=0.05)
    await sink.start()
    for i in range(8):
        sink.emit(visit(i))
    assert sink.pending == 5 and sink.dropped == 3
    await asyncio.wait_for(sink.aclose(timeout_s=2), 5)  # store still down: what waits is dropped
    assert sink.pending == 0 and sink.dropped == 8
    await store.aclose()


async def test_call_records_keep_linkedid_normalised_caller_and_outcome(store: Store) -> None:
    sink = StoreEventSink(store, flush_interval_s=30)
    recorder = StoreCallRecorder(sink, clock=lambda: NOW)
    await sink.start()
    info = CallInfo(
        caller_id="+55 31 3333-4444",
        dialled="30033336",
        unique_id="1.2",
        linked_id="1.1",
        channel_name="PJSIP/trunk-00000001",
    )
    await recorder.call_started(PROTOCOL, info, "sac", "v3")
    sink.emit(visit(1))
    await recorder.call_ended(PROTOCOL, "queued:technical", {"journey": "technical", "due": NOW.date()})
    await sink.aclose()
    row = await store.read(lambda s: s.scalars(select(Call).where(Call.protocol == PROTOCOL)).one())
    assert (row.caller_id, row.linked_id, row.unique_id, row.flow, row.flow_version) == (
        "3133334444",
        "1.1",
        "1.2",
        "sac",
        "v3",
    )
    assert row.outcome == "queued:technical" and row.ended_at == NOW
    assert row.variables == {"journey": "technical", "due": "2026-03-10"}


async def test_a_call_end_without_its_start_still_makes_a_row(store: Store) -> None:
    sink = StoreEventSink(store)
    await sink.start()
    await StoreCallRecorder(sink, clock=lambda: NOW).call_ended(PROTOCOL, "hangup", {})
    await sink.aclose()
    row = await store.read(lambda s: s.scalars(select(Call)).one())
    assert (row.protocol, row.outcome, row.started_at) == (PROTOCOL, "hangup", NOW)


async def test_a_record_the_store_refuses_is_counted_and_later_ones_still_written(store: Store) -> None:
    class Broken:
        kind = RecordKind("broken", Rank.VISIT, lambda dialect: insert(VisitRow))

        def row(self) -> dict[str, object]:
            raise ValueError("not a valid record")

    sink = StoreEventSink(store, batch_size=1, flush_interval_s=30)
    await sink.start()
    sink.record(Broken())
    sink.emit(visit(1))
    await sink.aclose()
    assert (sink.rejected, sink.written, sink.dropped) == (1, 1, 0)
    assert await count_visits(store) == 1


async def test_interleaved_calls_keep_each_call_start_before_its_visits_and_end(store: Store) -> None:
    sink = StoreEventSink(store, flush_interval_s=30)
    recorder = StoreCallRecorder(sink, clock=lambda: NOW)
    await sink.start()
    first, second = make_call_protocol(2026, 1), make_call_protocol(2026, 2)
    await recorder.call_started(first, CallInfo(caller_id="3133334444"), "sac", "v3")
    sink.emit(visit(1, first))
    await recorder.call_started(second, CallInfo(caller_id="3122223333"), "sac", "v3")
    await recorder.call_ended(first, "hangup", {"n": 1})
    sink.emit(visit(2, second))
    await recorder.call_ended(second, "queued:billing", {"n": 2})
    await sink.aclose()  # one batch holds all of it
    rows = await store.read(lambda s: s.scalars(select(Call).order_by(Call.protocol)).all())
    assert [(r.protocol, r.caller_id, r.outcome, r.variables, r.ended_at) for r in rows] == [
        (first, "3133334444", "hangup", {"n": 1}, NOW),
        (second, "3122223333", "queued:billing", {"n": 2}, NOW),
    ]
    assert await count_visits(store) == 2 and (sink.written, sink.dropped) == (6, 0)


async def test_the_shutdown_flush_writes_a_full_buffer_within_its_bound(store: Store) -> None:
    sink = StoreEventSink(store, flush_interval_s=30, max_buffer=20_000)
    await sink.start()
    for i in range(20_000):
        sink.emit(visit(i))
    started = asyncio.get_running_loop().time()
    await sink.aclose(timeout_s=5)
    elapsed = asyncio.get_running_loop().time() - started
    assert (sink.written, sink.dropped) == (20_000, 0) and await count_visits(store) == 20_000
    assert elapsed < 5, f"flushing 20,000 records took {elapsed:.1f} s"


async def test_a_shutdown_flush_out_of_time_counts_exactly_what_it_did_not_write(store: Store) -> None:
    sink = StoreEventSink(store, batch_size=50, flush_interval_s=30)
    await sink.start()
    for i in range(20_000):
        sink.emit(visit(i))
    await sink.aclose(timeout_s=0.05)  # too short for 400 transactions
    written = await count_visits(store)
    assert 0 < sink.dropped and sink.written == written and written + sink.dropped == 20_000
