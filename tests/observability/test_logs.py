"""Every line logged while a call is handled carries the call's protocol, in text and in JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from ivr import logs
from ivr.engine.operations import OperationContext, OperationResult

from ..engine.fakes import registry, run, services

op_log = logging.getLogger("tests.observability.operation")

FLOW = """
flow: l
start: who
nodes:
  who:
    lookup: {operation: customer_by_caller_id, into: me, found: ask, not_found: ask, error: ask}
  ask:
    lookup: {operation: no_such_operation, into: x, found: ask, not_found: ask, error: ask}
"""  # the second node fails the call: the interpreter logs it


class Kept(logging.Handler):
    """Keeps the records as the production handler sees them: through the protocol filter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(logs.CallProtocolFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Kept]:
    handler, root = Kept(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _logging_operation(ctx: OperationContext) -> OperationResult:
    op_log.info("looking up the caller of call %s", ctx.call_protocol)
    await asyncio.sleep(0)  # let the other call run between the two lines
    op_log.warning("not found for call %s", ctx.call_protocol)
    return OperationResult.not_found()


async def test_every_line_logged_in_a_call_carries_its_protocol(kept: Kept) -> None:
    logging.getLogger("tests.observability").info("before the call")
    svc = services(operations=registry().with_handlers({"customer_by_caller_id": _logging_operation}))
    result, _, _ = await run(FLOW, svc=svc)
    logging.getLogger("tests.observability").info("after the call")
    messages = [r.getMessage() for r in kept.records]
    before, after = messages.index("before the call"), messages.index("after the call")
    inside = kept.records[before + 1 : after]
    assert {r.name for r in inside} >= {"tests.observability.operation", "ivr.engine.interpreter"}  # failed call
    assert [r.protocol for r in inside] == [result.protocol] * len(inside)  # type: ignore[attr-defined]
    assert kept.records[before].protocol == kept.records[after].protocol == ""  # type: ignore[attr-defined]


async def test_concurrent_calls_each_log_their_own_protocol(kept: Kept) -> None:
    svc = services(operations=registry().with_handlers({"customer_by_caller_id": _logging_operation}))
    results = await asyncio.gather(*(run(FLOW, svc=svc) for _ in range(3)))
    protocols = {result.protocol for result, _, _ in results}
    assert len(protocols) == 3
    ours = [r for r in kept.records if r.name == "tests.observability.operation"]
    assert len(ours) == 6
    assert [r.args[0] for r in ours] != sorted(r.args[0] for r in ours)  # type: ignore[index]  # interleaved
    assert all(r.protocol == r.args[0] for r in ours)  # type: ignore[attr-defined,index]
    assert {r.protocol for r in kept.records} - {""} == protocols  # type: ignore[attr-defined]


def _formatted(fmt: logs.LogFormat, record: logging.LogRecord) -> str:
    out = io.StringIO()
    handler = logs.handler(fmt)
    handler.setStream(out)  # type: ignore[attr-defined]
    handler.handle(record)
    return out.getvalue()


def _record(message: str, *args: object, exc_info: bool = False) -> logging.LogRecord:
    if not exc_info:
        return op_log.makeRecord(op_log.name, logging.INFO, __file__, 1, message, args, None)
    try:
        raise ValueError("boom")
    except ValueError:
        return op_log.makeRecord(op_log.name, logging.ERROR, __file__, 1, message, args, sys.exc_info())


def test_a_json_line_parses_with_time_level_logger_message_and_protocol() -> None:
    with logs.in_call("2026000001234"):
        line = _formatted("json", _record("queued %s for %s", "email", "a***@example.com"))
    assert line.endswith("\n") and line.count("\n") == 1
    parsed = json.loads(line)
    assert set(parsed) == {"time", "level", "logger", "message", "protocol"}
    assert parsed["level"] == "INFO" and parsed["logger"] == op_log.name
    assert parsed["message"] == "queued email for a***@example.com"
    assert parsed["protocol"] == "2026000001234"
    assert parsed["time"].endswith("+00:00") and "T" in parsed["time"]


def test_a_json_line_outside_a_call_has_no_protocol_and_keeps_a_traceback_on_one_line() -> None:
    line = _formatted("json", _record("failed", exc_info=True))
    parsed = json.loads(line)
    assert "protocol" not in parsed
    assert parsed["level"] == "ERROR" and "ValueError: boom" in parsed["exception"]
    assert line.count("\n") == 1


def test_the_text_format_shows_the_protocol_after_the_logger() -> None:
    with logs.in_call("2026000001234"):
        line = _formatted("text", _record("hello"))
    assert line.rstrip().endswith(f"INFO {op_log.name} [2026000001234]: hello")
    assert _formatted("text", _record("hello")).rstrip().endswith(f"INFO {op_log.name}: hello")
