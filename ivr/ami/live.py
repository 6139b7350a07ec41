"""AMI events folded into live state: calls in progress, who waits in which queue, who talks to whom.

`LiveState.apply` is a pure fold over event mappings (header name -> value), so it is tested with
plain dicts and fed by `attach` from a live `AmiClient`. Events it reads (Asterisk 22 field names):
Newchannel, Hangup, QueueCallerJoin, QueueCallerLeave, AgentCalled, AgentConnect. Channel variables
set by the IVR (``IVR_*``) arrive in AgentCalled as ``ChanVariable: NAME=value`` when manager.conf
lists them in ``channelvars``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.ami.client import AmiClient
from ivr.clock import Clock

EVENTS = ("Newchannel", "Hangup", "QueueCallerJoin", "QueueCallerLeave", "AgentCalled", "AgentConnect")


@dataclass(slots=True)
class LiveCall:
    unique_id: str
    linked_id: str
    channel: str
    caller_id: str
    started_at: datetime
    queue: str = ""
    queued_at: datetime | None = None
    ringing: set[str] = field(default_factory=set)  # member interfaces being rung
    agent: str = ""  # member interface that answered
    answered_at: datetime | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class LiveState:
    """Channels known to be up, keyed by Uniqueid."""

    clock: Clock
    calls: dict[str, LiveCall] = field(default_factory=dict)

    def apply(self, event: Mapping[str, Any]) -> None:
        name = event.get("Event", "")
        uid = str(event.get("Uniqueid", ""))
        if name == "Newchannel":
            self.calls[uid] = LiveCall(
                unique_id=uid,
                linked_id=str(event.get("Linkedid", uid)),
                channel=str(event.get("Channel", "")),
                caller_id=str(event.get("CallerIDNum", "")),
                started_at=self.clock(),
            )
            return
        if name == "Hangup":
            self.calls.pop(uid, None)
            return
        call = self.calls.get(uid)
        if call is None:
            return  # a channel that existed before we connected: nothing to update
        if name == "QueueCallerJoin":
            call.queue, call.queued_at = str(event.get("Queue", "")), self.clock()
        elif name == "QueueCallerLeave":
            call.queue, call.queued_at = "", None
            call.ringing.clear()
        elif name == "AgentCalled":
            call.ringing.add(str(event.get("Interface", "")))
            call.variables.update(channel_variables(event.get("ChanVariable")))
        elif name == "AgentConnect":
            call.agent, call.answered_at = str(event.get("Interface", "")), self.clock()
            call.ringing.clear()

    def waiting(self, queue: str) -> list[LiveCall]:
        """Callers waiting in ``queue``, longest wait first."""
        waiting = [c for c in self.calls.values() if c.queue == queue and c.queued_at is not None]
        return sorted(waiting, key=lambda c: c.queued_at or c.started_at)

    def with_agents(self) -> list[LiveCall]:
        return [c for c in self.calls.values() if c.agent]


def attach(client: AmiClient, state: LiveState) -> None:
    """Feed ``state`` with the client's events."""
    for name in EVENTS:
        client.on_event(name, state.apply)


def channel_variables(value: Any) -> dict[str, str]:
    """An event's ``ChanVariable`` (panoramisk gives a list when it repeats, a string when it does not;
    lines joined by newlines also read) as NAME -> value."""
    items = value if isinstance(value, list) else str(value).splitlines() if value else []
    pairs = (str(item).partition("=") for item in items)
    return {k: v for k, sep, v in pairs if sep}
