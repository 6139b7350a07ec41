"""A small known day of calls for the history and report tests, written straight into the store: DAY is
the day before the tests' moment (NOW, 10:00 in São Paulo), times are local.

    A  08:00 local  3133334444  Serra Azul  sac  greet > menu > tech > queue     queue:technical  ticket, 2 messages,
                                                                                                  a call back
    B  09:00 local  11987654321 -           sac  greet > menu(hangup)            hangup
    C  09:30 local  3133334444  Serra Azul  sac  greet > menu > status           ended (contained)
    D  09:40 local  withheld    -           sac  greet > menu > cnpj(invalid) > cnpj(hangup)  hangup
    E  09:50 local  11987654321 -           sac  greet > menu > negotiation      transfer:+553131958012
    F  23:30 local  3122223333  -           sac  greet(error)                    failed        (02:30 UTC, the next day)
    G  the day before, 12:00 local          sac  greet > menu > status           ended
    H  09:55 local  3133334444  -           test greet                           ended (another flow)
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ivr.domain import TicketKind
from ivr.protocol_number import make_call_protocol, make_ticket_number
from ivr.store.db import Store
from ivr.store.models import (
    AttemptOutcome,
    Call,
    Callback,
    CallbackAttempt,
    CallbackState,
    NodeVisit,
    OutboxChannel,
    OutboxMessage,
    OutboxState,
    Ticket,
)

from .conftest import NOW

LOCAL = ZoneInfo("America/Sao_Paulo")
DAY = NOW.astimezone(LOCAL).date() - timedelta(days=1)


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), LOCAL)

A, B, C, D, E, F, G, H = (make_call_protocol(2026, n) for n in range(1, 9))
TICKET = make_ticket_number(7)
NEGOTIATION = "+553131958012"
#: What every call heard at `greet`, as a visit stores it: the protocol's digits masked.
GREETING = ("welcome", "your_protocol_is", "digit/*", "digit/*")

# protocol: (local start, seconds to outcome, caller, customer, outcome, flow, [(node, verb, input, outcome)])
CALLS: dict[str, tuple[datetime, int, str | None, tuple[int, str] | None, str, str, list[tuple[str, ...]]]] = {
    A: (at(8, 0), 120, "3133334444", (1, "Serra Azul Ltda"), "queue:technical", "sac",
        [("greet", "play", "", "menu"), ("menu", "menu", "1", "1"), ("tech", "action", "", "found"),
         ("queue_tech", "queue", "", "queue")]),
    B: (at(9, 0), 30, "11987654321", None, "hangup", "sac",
        [("greet", "play", "", "menu"), ("menu", "menu", "", "hangup")]),
    C: (at(9, 30), 60, "3133334444", (1, "Serra Azul Ltda"), "ended", "sac",
        [("greet", "play", "", "menu"), ("menu", "menu", "2", "2"), ("status", "say", "", "end")]),
    D: (at(9, 40), 90, None, None, "hangup", "sac",
        [("greet", "play", "", "menu"), ("menu", "menu", "3", "3"),
         ("cnpj", "collect", "12.***.***/0001-**", "invalid"),
         ("cnpj", "collect", "", "hangup")]),
    E: (at(9, 50), 45, "11987654321", None, f"transfer:{NEGOTIATION}", "sac",
        [("greet", "play", "", "menu"), ("menu", "menu", "4", "4"), ("negotiation", "transfer", "", "transfer")]),
    F: (at(23, 30), 15, "3122223333", None, "failed", "sac",
        [("greet", "play", "", "error")]),
    G: (at(12, 0, DAY - timedelta(days=1)), 60, "3133334444", (1, "Serra Azul Ltda"), "ended", "sac",
        [("greet", "play", "", "menu"), ("menu", "menu", "2", "2"), ("status", "say", "", "end")]),
    H: (at(9, 55), 5, "3133334444", None, "ended", "test",
        [("greet", "play", "", "end")]),
}  # fmt: skip


def insert_call(
    session: Session,
    protocol: str,
    start: datetime,
    seconds: int,
    caller: str | None,
    customer: tuple[int, str] | None,
    outcome: str,
    flow: str,
    visits: list[tuple[str, ...]],
    flow_version: str = "v7",
) -> None:
    """One call and its node visits (node, verb, input, outcome), a second apart from its start."""
    session.execute(
        insert(Call).values(
            protocol=protocol,
            caller_id=caller,
            dialled="30033336",
            unique_id=f"{protocol}.2",
            linked_id=f"{protocol}.1",
            channel="PJSIP/trunk-1",
            flow=flow,
            flow_version=flow_version,
            started_at=start,
            ended_at=start + timedelta(seconds=seconds),
            outcome=outcome,
            variables={},
            customer_id=customer[0] if customer else None,
            customer_name=customer[1] if customer else "",
        )
    )
    if visits:
        session.execute(
            insert(NodeVisit),
            [
                dict(call_protocol=protocol, flow=flow, flow_version=flow_version, node=node, verb=verb, input=given,
                     outcome=result, started_at=start + timedelta(seconds=i), duration_ms=1000,
                     prompts=list(GREETING) if node == "greet" else [])
                for i, (node, verb, given, result) in enumerate(visits)
            ],
        )  # fmt: skip


def _rows(session: Session) -> None:
    for protocol, spec in CALLS.items():
        insert_call(session, protocol, *spec)
    start = CALLS[A][0]
    session.execute(
        insert(Ticket).values(
            number=TICKET,
            customer_id=None,
            kind=TicketKind.TECHNICAL_FAILURE,
            call_protocol=A,
            created_at=start,
            updated_at=start,
        )
    )
    message: dict[str, Any] = dict(template="call_summary", body="...", call_protocol=A, next_attempt_at=start,
                                   created_at=start)  # fmt: skip
    session.execute(
        insert(OutboxMessage),
        [
            dict(message, channel=OutboxChannel.EMAIL, recipient="financeiro@serraazul.com.br",
                 state=OutboxState.SENT, attempts=1, sent_at=start + timedelta(minutes=3)),
            dict(message, channel=OutboxChannel.WHATSAPP, recipient="31987651234", state=OutboxState.PENDING,
                 attempts=0, sent_at=None),
        ],
    )  # fmt: skip
    callback = session.execute(
        insert(Callback)
        .values(call_protocol=A, number="3133334444", team="technical", reason="dropped",
                state=CallbackState.ANSWERED, attempts=2, next_attempt_at=start, created_at=start, updated_at=start)
        .returning(Callback.id)
    ).scalar_one()  # fmt: skip
    session.execute(
        insert(CallbackAttempt),
        [
            dict(callback_id=callback, number=n, unit="unit-1", action_id=f"a{n}", channel_id=f"c{n}",
                 started_at=start + timedelta(minutes=10 * n), outcome=outcome)
            for n, outcome in ((1, AttemptOutcome.NO_ANSWER), (2, AttemptOutcome.ANSWERED))
        ],
    )  # fmt: skip


async def write_day(store: Store) -> None:
    await store.write(_rows)
