"""How the long-running commands log: text for a terminal, JSON lines for an operator's log shipper, and
the protocol of the call being handled on every line logged while handling it.

The protocol travels in a `ContextVar`: the engine sets it once the call has its number (`in_call`), and
each call runs in its own asyncio task, whose context its subtasks copy, so two concurrent calls never
see each other's. A filter on the handler copies it onto each record as ``record.protocol`` ("" outside a
call), and both formats write it. Messages are written as the code logged them: personal data is masked
where it is logged (``ivr.phone.mask``), never here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

from ivr.text import OneLineFormatter

#: The protocol of the call the current task is handling; "" outside a call.
call_protocol: ContextVar[str] = ContextVar("call_protocol", default="")

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(in_call)s: %(message)s"


@contextmanager
def in_call(protocol: str) -> Iterator[None]:
    """Lines logged inside (by this task and the tasks it starts) carry `protocol`."""
    token = call_protocol.set(protocol)
    try:
        yield
    finally:
        call_protocol.reset(token)


class CallProtocolFilter(logging.Filter):
    """Sets ``record.protocol`` (and ``record.in_call``, the text format's `` [protocol]``) from the
    context the record was logged in; a handler's filter runs in the logging task, so the context is its."""

    def filter(self, record: logging.LogRecord) -> bool:
        protocol = call_protocol.get()
        record.protocol = protocol
        record.in_call = f" [{protocol}]" if protocol else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (the record's own, UTC, ISO 8601), level, logger, message, protocol
    when in a call, exception when one was logged."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        protocol = getattr(record, "protocol", "") or call_protocol.get()
        if protocol:
            line["protocol"] = protocol
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def handler(fmt: LogFormat) -> logging.Handler:
    """A stderr handler writing `fmt`, every record stamped with its call's protocol."""
    out = logging.StreamHandler()
    out.addFilter(CallProtocolFilter())
    # JSON escapes line breaks itself; in text, a value from outside (a customer name with a line break)
    # must not forge a second record.
    out.setFormatter(JsonFormatter() if fmt == "json" else OneLineFormatter(TEXT_FORMAT))
    return out


def configure(fmt: LogFormat, level: int | str) -> None:
    """The root logger's handler and level, as ``ivr`` commands set them once at start; a root logger that
    has a handler already (pytest's capture, when a test runs a command) is left alone, as basicConfig does."""
    logging.basicConfig(level=level, handlers=[handler(fmt)])
