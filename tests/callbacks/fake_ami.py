"""An object with the `AmiClient` interface the dialer uses: queues with members, an Originate that is
queued, refused or whose reply is lost, OriginateResponse events sent when the test says, channels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk.message import Message

from ivr.ami.client import AmiActionError, AmiNotConnected, AmiTimeout, QueueMemberState, QueueState

WAIT_S = 5.0


class FakeAmi:
    def __init__(self) -> None:
        self.connected = True
        self.free_agents: dict[str, int] = {}
        self.waiting: dict[str, int] = {}
        self.originate_reply = "queued"  # or "error", "lost", "not_connected"
        self.channels: list[dict[str, str]] = []  # as CoreShowChannel events
        self.channels_shown = asyncio.Event()  # CoreShowChannels answers once set (a test can hold it)
        self.channels_shown.set()
        self.originated: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self._handlers: list[tuple[str, Callable[[Any], Any]]] = []

    async def wait_logged_in(self, timeout_s: float) -> None:
        if not self.connected:
            raise AmiNotConnected(f"no AMI login within {timeout_s:g} s")

    def on_event(self, pattern: str, callback: Callable[[Any], Any]) -> None:
        self._handlers.append((pattern, callback))

    def emit(self, event: dict[str, str]) -> None:
        for pattern, callback in self._handlers:
            if pattern == event["Event"]:
                callback(Message(event))

    def answer(
        self,
        originate: Mapping[str, Any],
        *,
        response: str = "Success",
        reason: str = "4",
        joins: bool = True,
        dial_status: str = "",
    ) -> None:
        """The customer's phone answers (or not: `dial_status` as Asterisk 22's DialEnd, which comes after
        a Reason 0); an answered customer then joins the queue (`joins`)."""
        self.emit(
            {"Event": "OriginateResponse", "ActionID": originate["ActionID"], "Response": response, "Reason": reason}
        )
        if dial_status:
            self.emit({"Event": "DialEnd", "DestUniqueid": originate["ChannelId"], "DialStatus": dial_status})
        if response == "Success" and joins:
            self.join(originate)

    def join(self, originate: Mapping[str, Any]) -> None:
        self.emit({"Event": "QueueCallerJoin", "Uniqueid": originate["ChannelId"], "Queue": "technical"})

    async def next_originate(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.originated.get(), WAIT_S)

    async def queue_status(self, queue: str) -> QueueState:
        free = self.free_agents.get(queue, 0)
        members = tuple(QueueMemberState(f"agent{i}", f"PJSIP/agent{i}", False, True, False) for i in range(free))
        return QueueState(queue, members, self.waiting.get(queue, 0), 0, 0)

    async def action(
        self, fields: Mapping[str, Any], *, timeout_s: float | None = None, as_list: bool = False
    ) -> Any:
        name = fields["Action"]
        if name == "CoreShowChannels":
            await asyncio.wait_for(self.channels_shown.wait(), WAIT_S)
            return [
                Message({"Response": "Success"}),
                *(Message({"Event": "CoreShowChannel", **c}) for c in self.channels),
            ]
        assert name == "Originate", name
        if self.originate_reply == "not_connected":
            raise AmiNotConnected("AMI Originate: not connected")
        self.sent.append(dict(fields))
        self.originated.put_nowait(dict(fields))
        if self.originate_reply == "error":
            raise AmiActionError("Originate", Message({"Response": "Error", "Message": "Permission denied"}))
        if self.originate_reply == "lost":
            raise AmiTimeout("AMI Originate: no reply within 5 s")
        return Message({"Response": "Success", "Message": "Originate successfully queued"})
