"""What the IVR stored about a scripted call (`ivr call`): its protocol, node path, outcome, tickets.

SIPp never learns Asterisk's ids, so the call is found by its caller and the time it was placed: the
first call from that number (or from a withheld one) that started after the SIPp call did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr import phone
from ivr.store.db import Store
from ivr.store.models import Call, NodeVisit, Ticket

#: Clocks of the caller's machine and the IVR's may differ a little; a call started this much
#: before the SIPp call is still taken as it.
CLOCK_SLACK = timedelta(seconds=2)
POLL_S = 0.2


@dataclass(frozen=True)
class CallReport:
    protocol: str
    linked_id: str
    outcome: str  # "queue:billing", "transfer:3195-8012", "hangup", "ended", "failed"; "" while running
    path: list[str]  # node names in visit order; subflow nodes as "flow/node"
    tickets: list[tuple[str, str]]  # (number, kind)

    def render(self) -> str:
        lines = [
            f"protocol {self.protocol} (Asterisk linkedid {self.linked_id or 'unknown'})",
            f"outcome  {self.outcome or 'not recorded (the IVR did not finish the call)'}",
            f"path     {' > '.join(self.path) or '(no node visited)'}",
        ]
        opened = ", ".join(f"{number} ({kind})" for number, kind in self.tickets)
        lines.append(f"tickets  {opened or 'none opened'}")
        return "\n".join(lines)


def _find(session: Session, caller: str | None, since: datetime) -> CallReport | None:
    number = phone.normalise(caller)
    query = select(Call).where(Call.started_at >= since - CLOCK_SLACK)
    query = query.where(Call.caller_id == number if number else Call.caller_id.is_(None))
    call = session.scalars(query.order_by(Call.started_at).limit(1)).first()
    if call is None:
        return None
    visits = session.scalars(
        select(NodeVisit).where(NodeVisit.call_protocol == call.protocol).order_by(NodeVisit.id)
    ).all()
    tickets = session.scalars(select(Ticket).where(Ticket.call_protocol == call.protocol).order_by(Ticket.id))
    return CallReport(
        protocol=call.protocol,
        linked_id=call.linked_id,
        outcome=call.outcome if call.ended_at is not None else "",
        path=[v.node if v.flow == call.flow else f"{v.flow}/{v.node}" for v in visits],
        tickets=[(t.number, t.kind.value) for t in tickets],
    )


async def find_call(store: Store, caller: str | None, since: datetime, wait_s: float = 5.0) -> CallReport | None:
    """The call from `caller` placed at `since`, once its end is stored (node visits and the call's
    end reach the store in batches); what is known so far after `wait_s`, None if nothing is."""
    report = None
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:  # bounded by wait_s
        report = await store.read(lambda session: _find(session, caller, since))
        if (report is not None and report.outcome) or asyncio.get_running_loop().time() >= deadline:
            return report
        await asyncio.sleep(POLL_S)
