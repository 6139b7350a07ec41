"""Small in-test fakes of the engine's ports (the real ones live in ivr/store and integrations/)."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ivr.config import load_settings
from ivr.engine.flow import Flow
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.operations import Arg, OperationContext, OperationRegistry, OperationResult, OperationSpec
from ivr.engine.ports import CallbackRequest, CallInfo, CallSummary, Heard, NodeVisit, Recognition, Services
from ivr.engine.scripted import ScriptedChannel
from ivr.flows.loader import parse_flow
from ivr.protocol_number import make_call_protocol


class Events:
    def __init__(self) -> None:
        self.visits: list[NodeVisit] = []

    def emit(self, visit: NodeVisit) -> None:
        self.visits.append(visit)


class Protocols:
    def __init__(self) -> None:
        self._seq = itertools.count(1)

    async def allocate(self, call: CallInfo) -> str:
        return make_call_protocol(2026, next(self._seq))


class Recognizer:
    listens = True

    async def recognise(self, heard: Heard, *, phrase_hints: Sequence[str] = ()) -> Recognition:
        return Recognition(transcript="", confidence=0.0)


class Calls:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []
        self.ended: list[tuple[str, str, dict[str, Any]]] = []

    async def call_started(self, protocol: str, call: CallInfo, flow: str, flow_version: str) -> None:
        self.started.append((protocol, flow))

    async def call_ended(
        self,
        protocol: str,
        outcome: str,
        variables: dict[str, Any],
        *,
        customer_id: int | None = None,
        customer_name: str = "",
    ) -> None:
        self.ended.append((protocol, outcome, variables))


class Summaries:
    def __init__(self) -> None:
        self.sent: list[CallSummary] = []

    async def send(self, summary: CallSummary) -> tuple[str, ...]:
        self.sent.append(summary)
        return ("email",) if summary.customer_id is not None else ()


class Callbacks:
    def __init__(self) -> None:
        self.scheduled: list[CallbackRequest] = []

    async def schedule(self, request: CallbackRequest) -> int:
        self.scheduled.append(request)
        return len(self.scheduled)


CUSTOMERS = {"3133334444": {"customer_id": 7, "name": "Padaria Pão Quente", "confirmed": False}}


async def _by_caller(ctx: OperationContext) -> OperationResult:
    found = CUSTOMERS.get(ctx.caller_id or "")
    return OperationResult.found(**found) if found else OperationResult.not_found()


async def _open_ticket(ctx: OperationContext, kind: str, description: str = "") -> OperationResult:
    return OperationResult.found(ticket_number="800000014", ticket_kind=kind)


def registry() -> OperationRegistry:
    reg = OperationRegistry(default_timeout_s=1.0)
    reg.register(OperationSpec("customer_by_caller_id", "", (), ("customer_id", "name"), identifies=True), _by_caller)
    ticket_args = (Arg("kind", str), Arg("description", str, required=False))
    reg.register(OperationSpec("open_ticket", "", ticket_args, ("ticket_number",)), _open_ticket)
    return reg


def services(now: datetime | None = None, operations: OperationRegistry | None = None) -> Services:
    moment = now or datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    return Services(
        operations=operations or registry(),
        events=Events(),
        protocols=Protocols(),
        recognizer=Recognizer(),
        calls=Calls(),
        summaries=Summaries(),
        callbacks=Callbacks(),
        clock=lambda: moment,
    )


def flow(text: str, name: str = "test.yaml") -> Flow:
    return parse_flow(textwrap.dedent(text), Path(name))


def caller(number: str | None = "3133334444") -> CallInfo:
    return CallInfo(caller_id=number, dialled="30033336")


async def run(
    text: str,
    inputs: Sequence[str] = (),
    *,
    number: str | None = "3133334444",
    svc: Services | None = None,
    **channel: Any,
) -> tuple[CallResult, ScriptedChannel, Services]:
    """Run a call through a flow written inline, with a scripted caller."""
    services_ = svc or services()
    chan = ScriptedChannel(caller(number), list(inputs), **channel)
    result = await run_call(flow(text), chan, services_, settings=load_settings())
    return result, chan, services_
