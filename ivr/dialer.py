"""The call back dialer: places the call backs of the book (ivr.store.callbacks) over AMI, inside `ivr serve`.

Each turn it looks at the teams with a call back due and, for each, at its queue over AMI; while an agent
is free (not counting the callers already waiting, nor the customers this unit is ringing or telling who
calls before they join the queue), it claims one due
call back inside the team's hours and sends an asynchronous ``Originate`` to the customer's number
through the carrier trunk. The customer is dialled first: only when they answer does the dialplan
(``sac-callback`` in asterisk_conf/extensions.conf.j2) tell them who is calling and the protocol, then put
them in the team's queue with the channel variables an inbound call carries. An agent never holds a
ring-no-answer.

The outcome comes from the ``OriginateResponse`` event with our ActionID (Reason: answered, busy, no
answer, failed). When the reply or the event is lost (AMI dropped, a slow Asterisk), nothing is sent
again: the attempt is reconciled by looking for its channel (we name it with Originate's ``ChannelId``)
among Asterisk's channels as soon as AMI answers again; found up, it was answered; gone after we saw it
join the queue (a short conversation over before we looked), answered too; gone otherwise, the attempt is
``unknown`` and the call back waits its spacing like any failed attempt. panoramisk never re-sends an
Originate (it is among `ivr.ami.client.FORGETTABLE_ACTIONS`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ivr import phone
from ivr.ami.client import AmiActionError, AmiError, AmiNotConnected, QueueState
from ivr.config import CallbackSettings
from ivr.store.callbacks import Dial, StoreCallbackBook
from ivr.store.db import StoreUnavailable
from ivr.store.models import AttemptOutcome, CallbackState
from ivr.text import replace_controls

log = logging.getLogger(__name__)

#: The dialplan context the answered customer runs (asterisk_conf/extensions.conf.j2).
CALLBACK_CONTEXT = "sac-callback"
#: OriginateResponse's Reason (Asterisk's control frame that ended the dial) for a call not answered.
_REASONS = {"1": AttemptOutcome.NO_ANSWER, "3": AttemptOutcome.NO_ANSWER, "5": AttemptOutcome.BUSY}
#: Asterisk 22 answers Reason 0 to a busy customer too: the dial's end says why, by DialEnd's DialStatus
#: or the customer channel's Hangup cause (Q.850: 17 busy, 18/19 no answer, 21 rejected).
_DIAL_ENDS = {
    "DialStatus BUSY": AttemptOutcome.BUSY,
    "DialStatus NOANSWER": AttemptOutcome.NO_ANSWER,
    "Cause 17": AttemptOutcome.BUSY,
    "Cause 18": AttemptOutcome.NO_ANSWER,
    "Cause 19": AttemptOutcome.NO_ANSWER,
    "Cause 21": AttemptOutcome.NO_ANSWER,
}
_UP = "6"  # CoreShowChannel's ChannelState for an answered channel
_RECONCILE_LOOKS = 10  # a call back's channel still ringing is looked at this many times, ring_s apart at most
#: An answered customer hears who is calling and the protocol before joining the queue: the agent stays
#: counted for them until they join (or hang up), at most this long.
JOIN_BOUND_S = 60.0
_STORE_TRIES = 5  # an attempt's outcome is written this many times at most, within half its lease


class Ami(Protocol):
    """What the dialer uses of `ivr.ami.client.AmiClient` (tests give a fake)."""

    @property
    def connected(self) -> bool: ...

    async def wait_logged_in(self, timeout_s: float) -> None: ...

    def on_event(self, pattern: str, callback: Callable[[Any], Any]) -> None: ...

    async def queue_status(self, queue: str) -> QueueState: ...

    async def action(
        self, fields: Mapping[str, Any], *, timeout_s: float | None = None, as_list: bool = False
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Watch:
    """What this unit hears of one of its attempts over AMI."""

    response: asyncio.Future[Mapping[str, str]]  # OriginateResponse with our ActionID
    joined: asyncio.Future[str]  # QueueCallerJoin of its channel, or its Hangup before joining
    dial_end: asyncio.Future[str]  # how its dial ended (DialEnd's status or Hangup's cause)


def unit_name() -> str:
    """Who leases a call back: this host and process, unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dialer:
    def __init__(
        self,
        book: StoreCallbackBook,
        ami: Ami,
        *,
        conf: CallbackSettings,
        caller_id: str,
        trunk_number_format: str,
        reply_timeout_s: float,
        unit: str | None = None,
    ) -> None:
        self._book = book
        self._ami = ami
        self._conf = conf
        self._caller_id = caller_id  # the SAC's number, as the trunk presents it
        self._trunk_format = trunk_number_format
        self._reply_timeout_s = reply_timeout_s  # Originate's own reply (it is queued at once)
        self.unit = unit or unit_name()
        self._responses: dict[str, asyncio.Future[Mapping[str, str]]] = {}
        self._ringing: dict[str, int] = {}  # team -> attempts of this unit in flight (until the customer queues)
        self._joined: dict[str, asyncio.Future[str]] = {}  # channel id -> QueueCallerJoin, or Hangup before it
        self._dial_ends: dict[str, asyncio.Future[str]] = {}  # channel id -> how its dial ended
        self._attempts: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        ami.on_event("OriginateResponse", self._originate_response)
        ami.on_event("QueueCallerJoin", self._left_announcements)
        ami.on_event("Hangup", self._left_announcements)
        ami.on_event("DialEnd", self._dial_ended)
        ami.on_event("Hangup", self._dial_ended)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="callback-dialer")

    async def aclose(self) -> None:
        """Stop dialling; attempts in flight are cut short and reconciled after their lease."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
        for attempt in list(self._attempts):
            attempt.cancel()
        if self._attempts:
            await asyncio.wait(self._attempts)

    async def settle(self) -> None:
        """Wait for the attempts in flight to end (tests)."""
        while self._attempts:  # bounded: attempts end within ring_s plus the reconcile looks
            await asyncio.wait(set(self._attempts))

    async def _run(self) -> None:
        while True:  # until aclose() cancels it
            try:
                await self.turn()
            except StoreUnavailable as exc:
                log.warning(
                    "call back dialer: store unavailable (%s); next turn in %.0f s", exc, self._conf.poll_interval_s
                )
            except Exception:  # a bug must not stop call backs for good: logged, next turn
                log.exception("call back dialer: turn failed")
            await asyncio.sleep(self._conf.poll_interval_s)

    async def turn(self) -> int:
        """One look at the book and the queues; the attempts started."""
        if not self._ami.connected:
            return 0
        for dial in await self._book.take_over_expired(unit=self.unit):
            log.info("call back #%d: attempt %d of a unit that stopped; reconciling", dial.callback_id, dial.attempt)
            self._spawn(self._reconcile_then_finish(dial), dial.team)
        started = 0
        for team in await self._book.due_teams():
            try:
                queue = await self._ami.queue_status(team)
            except AmiError as exc:
                log.warning("call back dialer: queue %s not read (%s)", team, exc)
                continue
            free = queue.available - queue.callers_waiting - self._ringing.get(team, 0)
            for _ in range(max(free, 0)):
                claimed = await self._book.claim(team, unit=self.unit)
                if claimed is None:
                    break
                self._spawn(self._attempt(claimed), team)
                started += 1
        return started

    def _spawn(self, work: Any, team: str) -> None:
        self._ringing[team] = self._ringing.get(team, 0) + 1
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._attempts.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._attempts.discard(finished)
            self._ringing[team] -= 1
            if not finished.cancelled() and finished.exception() is not None:
                log.error("call back dialer: an attempt failed", exc_info=finished.exception())

        task.add_done_callback(done)

    async def _attempt(self, dial: Dial) -> None:
        who = f"call back #{dial.callback_id} (call {dial.protocol}, {phone.mask(dial.number)}) attempt {dial.attempt}"
        loop = asyncio.get_running_loop()
        watch = _Watch(loop.create_future(), loop.create_future(), loop.create_future())
        self._responses[dial.action_id] = watch.response  # before sending: the event may beat the reply
        self._joined[dial.channel_id] = watch.joined
        self._dial_ends[dial.channel_id] = watch.dial_end
        try:
            try:
                await self._ami.action(self._originate(dial), timeout_s=self._reply_timeout_s)
            except AmiNotConnected:  # refused before sending: nothing was dialled
                log.warning("%s: AMI not connected; back to the book", who)
                await self._book.release(dial, unit=self.unit)
                return
            except AmiActionError as exc:
                await self._finish(dial, AttemptOutcome.FAILED, str(exc), who)
                return
            except AmiError as exc:
                # The reply was lost, and with a dropped connection the events too: the customer may be
                # ringing, or talking already. Their channel tells, as soon as AMI answers again.
                log.warning("%s: Originate's reply lost (%s); looking for its channel", who, exc)
                decided = await self._reconcile(dial, watch)
            else:
                try:
                    event = await asyncio.wait_for(
                        asyncio.shield(watch.response), self._conf.ring_s + self._reply_timeout_s
                    )
                except TimeoutError:
                    log.warning("%s: no OriginateResponse; looking for its channel", who)
                    decided = await self._reconcile(dial, watch)
                else:
                    decided = await self._response_outcome(event, watch.dial_end)
            if decided is None:
                return  # undecided: its lease runs out and a unit with AMI reconciles it
            await self._finish(dial, *decided, who)
            if decided[0] is AttemptOutcome.ANSWERED:
                await asyncio.wait({watch.joined}, timeout=JOIN_BOUND_S)  # the free agent is theirs meanwhile
        finally:
            self._responses.pop(dial.action_id, None)
            self._joined.pop(dial.channel_id, None)
            self._dial_ends.pop(dial.channel_id, None)

    async def _response_outcome(
        self, event: Mapping[str, str], dial_end: asyncio.Future[str]
    ) -> tuple[AttemptOutcome, str]:
        outcome = _outcome(event)
        detail = f"Reason {event.get('Reason', '?')}: {event.get('Response', '')}"
        if outcome is AttemptOutcome.FAILED:  # the Reason may not say why: the dial's end does
            try:
                ended = await asyncio.wait_for(asyncio.shield(dial_end), self._reply_timeout_s)
                outcome, detail = _DIAL_ENDS.get(ended, outcome), f"{detail}; {ended}"
            except TimeoutError:
                pass
        return outcome, detail

    def _originate(self, dial: Dial) -> dict[str, Any]:
        number = phone.for_trunk(f"+55{dial.number}", self._trunk_format)
        variables = {  # what an inbound call gives agents (ivr.engine.state.CallState.queue_context)
            "IVR_PROTOCOL": dial.protocol,
            "IVR_CALLER_ID": dial.caller_id or "",
            "IVR_CUSTOMER": str(dial.customer_id or ""),
            "IVR_CUSTOMER_NAME": dial.customer_name,
            "IVR_PATH": dial.path,
            "IVR_TICKETS": dial.tickets,
            "IVR_CALLBACK_QUEUE": dial.team,
            "IVR_CALLBACK_ID": str(dial.callback_id),
        }
        return {
            "Action": "Originate",
            "ActionID": dial.action_id,
            "ChannelId": dial.channel_id,
            "Channel": f"PJSIP/{number}@carrier",
            "Context": CALLBACK_CONTEXT,
            "Exten": "s",
            "Priority": 1,
            "CallerID": self._caller_id,
            "Timeout": round(self._conf.ring_s * 1000),
            "Async": "true",  # a reply at once, the OriginateResponse event when answered or failed
            "Variable": [f"{name}={_escaped(value)}" for name, value in variables.items() if value],
        }

    def _originate_response(self, event: Mapping[str, str]) -> None:
        future = self._responses.get(str(event.get("ActionID", "")))
        if future is not None and not future.done():
            future.set_result(event)

    def _dial_ended(self, event: Mapping[str, str]) -> None:
        if event.get("Event") == "DialEnd":
            channel, ended = event.get("DestUniqueid", ""), f"DialStatus {event.get('DialStatus', '')}"
        else:
            channel, ended = event.get("Uniqueid", ""), f"Cause {event.get('Cause', '')}"
        future = self._dial_ends.get(str(channel))
        if future is not None and not future.done():
            future.set_result(ended)

    def _left_announcements(self, event: Mapping[str, str]) -> None:
        future = self._joined.get(str(event.get("Uniqueid", "")))
        if future is not None and not future.done():
            future.set_result(str(event.get("Event", "")))

    async def _reconcile_then_finish(self, dial: Dial) -> None:
        """An attempt of a unit that stopped mid-dial: decided by its channel, never by dialling."""
        decided = await self._reconcile(dial)
        if decided is not None:
            await self._finish(dial, *decided, f"call back #{dial.callback_id} attempt {dial.attempt}")

    async def _reconcile(self, dial: Dial, watch: _Watch | None = None) -> tuple[AttemptOutcome, str] | None:
        """The outcome of an attempt we lost track of, from its channel (and from the events of this unit's
        own attempt, `watch`, when they come after all); None when AMI cannot tell before the lease ends."""
        who = f"call back #{dial.callback_id} attempt {dial.attempt}"
        for _ in range(_RECONCILE_LOOKS):
            if watch is not None and watch.response.done():
                return await self._response_outcome(watch.response.result(), watch.dial_end)
            try:
                await self._ami.wait_logged_in(self._conf.ring_s)
                state = await self._channel_state(dial.channel_id)
            except AmiError as exc:
                log.warning("%s: channels not read (%s); kept for the next unit after its lease", who, exc)
                return None
            if state == _UP:
                return AttemptOutcome.ANSWERED, "reply lost; channel up"
            if state is None:
                if watch is not None and watch.joined.done() and watch.joined.result() == "QueueCallerJoin":
                    return AttemptOutcome.ANSWERED, "reply lost; channel joined the queue, then ended"
                return AttemptOutcome.UNKNOWN, "reply lost; channel gone"
            if not await self._book.hold(dial, unit=self.unit):
                return None  # cancelled, or another unit has it
            pause = min(self._conf.ring_s, self._conf.poll_interval_s)
            if watch is None:
                await asyncio.sleep(pause)
            else:
                await asyncio.wait({watch.response}, timeout=pause)  # its event may still come
        return AttemptOutcome.UNKNOWN, "reply lost; channel never answered"

    async def _channel_state(self, channel_id: str) -> str | None:
        """The ChannelState of the channel with this uniqueid, None when it does not exist."""
        reply = await self._ami.action({"Action": "CoreShowChannels"}, as_list=True)
        for message in reply if isinstance(reply, list) else [reply]:
            if message.get("Event") == "CoreShowChannel" and message.get("Uniqueid") == channel_id:
                return str(message.get("ChannelState", ""))
        return None

    async def _finish(self, dial: Dial, outcome: AttemptOutcome, detail: str, who: str) -> None:
        """Store the outcome; a store outage is waited out (within the lease): an answered call back whose
        outcome is lost would be reconciled as unknown and dialled again."""
        for _ in range(_STORE_TRIES - 1):
            try:
                state = await self._book.finish(dial, outcome, detail, unit=self.unit)
                break
            except StoreUnavailable as exc:
                log.warning("%s: %s not stored yet (%s)", who, outcome.value, exc)
                await asyncio.sleep(self._conf.lease_s / (2 * _STORE_TRIES))
        else:
            state = await self._book.finish(dial, outcome, detail, unit=self.unit)
        level = logging.INFO if state in (CallbackState.ANSWERED, CallbackState.PENDING) else logging.WARNING
        log.log(level, "%s: %s (%s); call back %s", who, outcome.value, detail, state.value)


def _escaped(value: str) -> str:
    """Asterisk splits an Originate Variable header on unescaped commas: the tickets' list keeps its own.
    A control character (a customer name from the back-end with a line break) is replaced, not fatal."""
    return replace_controls(value).replace(",", "\\,")


def _outcome(event: Mapping[str, str]) -> AttemptOutcome:
    if event.get("Response") == "Success":
        return AttemptOutcome.ANSWERED
    return _REASONS.get(str(event.get("Reason", "")), AttemptOutcome.FAILED)
