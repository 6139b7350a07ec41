"""panoramisk 1.4's AMI `Manager`, wrapped with what it lacks for us.

panoramisk already matches replies to requests by ActionID (``AMIProtocol.responses``) and
reconnects when the socket drops. What this wrapper adds:

* **our own timeout on every action**: panoramisk's futures never time out, and an action pending
  when the connection drops is re-sent after the reconnect (``awaiting_actions``, flushed on
  ``FullyBooted``) even if nobody waits for it any more. `AmiClient.action` cancels the future on
  timeout, and panoramisk skips cancelled futures when re-sending.
* **Originate is never re-sent**: it is listed in ``forgetable_actions`` (compared lower-case), so
  a reconnect never places a second call.
* **a ping watchdog**: panoramisk's own pinger sends ``Ping`` and never looks at the reply, so a
  silent Asterisk (hung, or a half-open TCP connection) goes unnoticed. Ours awaits each Pong within
  ``ami.action_timeout_s`` and reconnects when it does not come.
* **login that fails loudly**: `connect` returns once logged in, or raises `AmiLoginError` /
  `AmiNotConnected` with a message naming the settings to check.

Errors::

    AmiError
     ├── AmiTimeout          + TimeoutError: no reply within the action's timeout
     ├── AmiActionError      Asterisk answered "Response: Error" (.response holds the message)
     ├── AmiNotConnected     + ConnectionError: not logged in (yet, or any more)
     └── AmiLoginError       Asterisk refused our username/secret
    ValueError               a header name or value holds CR, LF or another control character (nothing sent)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

from ivr.config import AmiSettings
from ivr.text import has_control

log = logging.getLogger(__name__)

#: panoramisk compares ``action['action'].lower()`` against this list after a reconnect.
FORGETTABLE_ACTIONS = ("ping", "login", "logoff", "originate")
# A queue member's device state (Asterisk's ast_device_state, the ``Status`` field), by what it means here.
_DEVICE_ABSENT = {"4", "5"}  # INVALID, UNAVAILABLE: cannot take a call at all
_DEVICE_TALKING = {"2", "3", "8"}  # INUSE, BUSY, ONHOLD
_DEVICE_RINGING = {"6", "7"}  # RINGING, RINGINUSE

EventCallback = Callable[[Message], Any]
#: Told True after each login (the first and every reconnect) and False when the connection is lost.
ConnectionCallback = Callable[[bool], Any]


class AmiError(Exception):
    """Base of the AMI client errors."""


class AmiTimeout(AmiError, TimeoutError):
    """Asterisk did not answer an action in time."""


class AmiActionError(AmiError):
    """Asterisk answered an action with an error."""

    def __init__(self, action: str, response: Message) -> None:
        super().__init__(f"AMI {action}: {response.get('Message') or response.get('Response')}")
        self.response = response


class AmiNotConnected(AmiError, ConnectionError):
    """No logged-in AMI connection."""


class AmiLoginError(AmiError):
    """Asterisk refused the login."""


class MemberState(StrEnum):
    """What a queue member can do now; the first that applies, in this order."""

    LOGGED_OUT = "logged_out"  # device unregistered or invalid
    PAUSED = "paused"
    BUSY = "busy"  # on a call (a queue's, or any other)
    RINGING = "ringing"  # offered a call: not free for another
    FREE = "free"


@dataclass(frozen=True, slots=True)
class QueueMemberState:
    name: str
    interface: str
    paused: bool
    logged_in: bool  # registered device (not UNAVAILABLE/INVALID)
    in_call: bool
    ringing: bool = False

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> QueueMemberState:
        """From QueueStatus's QueueMember (``Name``, ``Location``) or a QueueMember* event (``MemberName``,
        ``Interface``); ``Status`` is the device state, ``InCall`` a queue call."""
        status = str(fields.get("Status", "5"))
        return cls(
            name=str(fields.get("Name") or fields.get("MemberName") or ""),
            # The member's identity in the queue (what QueueRemove/QueuePause and AgentCalled name).
            interface=str(fields.get("Interface") or fields.get("Location") or ""),
            paused=fields.get("Paused") == "1",
            logged_in=status not in _DEVICE_ABSENT,
            in_call=fields.get("InCall") == "1" or status in _DEVICE_TALKING,
            ringing=status in _DEVICE_RINGING,
        )

    @property
    def state(self) -> MemberState:
        if not self.logged_in:
            return MemberState.LOGGED_OUT
        if self.paused:
            return MemberState.PAUSED
        if self.in_call:
            return MemberState.BUSY
        return MemberState.RINGING if self.ringing else MemberState.FREE


@dataclass(frozen=True, slots=True)
class QueueState:
    """One queue as QueueStatus reports it."""

    queue: str
    members: tuple[QueueMemberState, ...]
    callers_waiting: int
    average_hold_s: int
    longest_wait_s: int
    average_talk_s: int = 0  # QueueParams TalkTime: a recent conversation's length (the wait estimate)

    @property
    def logged_in(self) -> int:
        return sum(m.logged_in for m in self.members)

    @property
    def paused(self) -> int:
        return sum(m.logged_in and m.paused for m in self.members)

    @property
    def available(self) -> int:
        """Members who could take a call now (logged in, not paused, not on a call, not ringing)."""
        return sum(m.state is MemberState.FREE for m in self.members)


class _Manager(Manager):
    """panoramisk's Manager, telling the client how each login ended."""

    def __init__(self, on_login_result: Callable[[bool, Message], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_login_result = on_login_result
        self.stopped = False

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        # panoramisk schedules reconnects with call_later and keeps no handle: after our close(), a
        # pending one must not open a connection nobody owns.
        return None if self.stopped else super().connect(*args, **kwargs)

    def login(self, future: asyncio.Future[Message]) -> bool:
        ok = bool(super().login(future))
        self._on_login_result(ok, future.result())
        return ok


class AmiClient:
    """A logged-in AMI connection with timeouts, a watchdog and typed queue helpers."""

    def __init__(self, settings: AmiSettings) -> None:
        self._settings = settings
        self._manager: _Manager | None = None
        self._logged_in = asyncio.Event()
        self._login_failure: Message | None = None
        self._login_changed = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self._events: list[tuple[str, EventCallback]] = []
        self._connection_callbacks: list[ConnectionCallback] = []
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    def on_event(self, pattern: str, callback: EventCallback) -> None:
        """Call ``callback(message)`` for each event whose name matches ``pattern`` (fnmatch)."""
        self._events.append((pattern, callback))
        if self._manager is not None:
            self._manager.register_event(pattern, _drop_manager_arg(callback))

    def on_connection(self, callback: ConnectionCallback) -> None:
        """Call ``callback(True)`` after each login and ``callback(False)`` when a logged-in connection is
        lost: what was learnt from events before a drop is stale, and events sent meanwhile are gone."""
        self._connection_callbacks.append(callback)

    async def connect(self) -> None:
        """Connect and log in; returns once logged in (bounded by ``action_timeout_s``)."""
        s = self._settings
        self._manager = _Manager(
            self._login_result,
            loop=asyncio.get_running_loop(),
            host=s.host,
            port=s.port,
            username=s.username,
            secret=s.secret.get_secret_value(),
            events="on",
            ping_delay=10**9,  # panoramisk's fire-and-forget pinger: replaced by our watchdog
            reconnect_timeout=1,
            forgetable_actions=FORGETTABLE_ACTIONS,
            on_disconnect=self._disconnected,
        )
        for pattern, callback in self._events:
            self._manager.register_event(pattern, _drop_manager_arg(callback))
        self._manager.connect()
        await self.wait_logged_in(s.action_timeout_s)
        self._watchdog = asyncio.create_task(self._watch(), name="ami-watchdog")

    async def wait_logged_in(self, timeout_s: float) -> None:
        """Wait until logged in (after a connect or a reconnect)."""
        try:
            async with asyncio.timeout(timeout_s):
                while not self._logged_in.is_set():  # each turn waits for a login attempt to end
                    await self._login_changed.wait()
                    self._login_changed.clear()
                    if self._login_failure is not None:
                        reason = self._login_failure.get("Message") or "refused"
                        raise AmiLoginError(
                            f"AMI login as {self._settings.username!r} refused: {reason}"
                            " (check ami.username / ami.secret)"
                        )
        except TimeoutError as exc:
            raise AmiNotConnected(
                f"no AMI login at {self._settings.host}:{self._settings.port} within {timeout_s:g} s"
            ) from exc

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._manager is not None:
            self._manager.stopped = True
            self._manager.close()  # a close we start does not trigger panoramisk's reconnect
            self._manager = None
        self._logged_in.clear()

    async def action(
        self, fields: Mapping[str, Any], *, timeout_s: float | None = None, as_list: bool = False
    ) -> Message | list[Message]:
        """Send one action; its reply, or with ``as_list`` the reply and its events up to the
        ``...Complete`` event, within the timeout.

        ``as_list`` is always given to panoramisk: its guess from the reply text reads Asterisk's
        "Added interface to queue" (QueueAdd) as the start of a list and would wait forever.
        """
        check_fields(fields)  # before anything else: a bad header is a bug to see, connected or not
        if self._manager is None or not self._logged_in.is_set():
            raise AmiNotConnected(f"AMI {fields.get('Action')}: not connected")
        timeout_s = self._settings.action_timeout_s if timeout_s is None else timeout_s
        future = self._manager.send_action(dict(fields), as_list=as_list)
        try:
            reply = await asyncio.wait_for(future, timeout_s)  # cancels the future: never re-sent
        except TimeoutError as exc:
            raise AmiTimeout(f"AMI {fields.get('Action')}: no reply within {timeout_s:g} s") from exc
        first = reply[0] if isinstance(reply, list) else reply
        if first.get("Response") in ("Error", "Failure", "Fail"):
            raise AmiActionError(str(fields.get("Action")), first)
        return reply

    async def ping(self) -> None:
        await self.action({"Action": "Ping"})

    async def queue_status(self, queue: str) -> QueueState:
        """Members logged in / paused, callers waiting and hold time of one queue."""
        reply = await self.action({"Action": "QueueStatus", "Queue": queue}, as_list=True)
        messages = reply if isinstance(reply, list) else [reply]
        members: list[QueueMemberState] = []
        waits: list[int] = []
        params: Mapping[str, str] = {}
        for msg in messages:
            if msg.get("Queue") != queue:
                continue
            event = msg.get("Event")
            if event == "QueueParams":
                params = msg
            elif event == "QueueMember":
                members.append(QueueMemberState.from_fields(msg))
            elif event == "QueueEntry":
                waits.append(int_field(msg.get("Wait")))
        if not params:
            raise AmiActionError("QueueStatus", Message({"Response": "Error", "Message": f"no such queue: {queue}"}))
        return QueueState(
            queue=queue,
            members=tuple(members),
            callers_waiting=int_field(params.get("Calls")),
            average_hold_s=int_field(params.get("Holdtime")),
            longest_wait_s=max(waits, default=0),
            average_talk_s=int_field(params.get("TalkTime")),
        )

    async def queue_add(
        self, queue: str, interface: str, *, member_name: str = "", paused: bool = False, penalty: int = 0
    ) -> None:
        fields: dict[str, Any] = {
            "Action": "QueueAdd",
            "Queue": queue,
            "Interface": interface,
            "Penalty": penalty,
            "Paused": str(paused).lower(),
        }
        if member_name:
            fields["MemberName"] = member_name
        await self.action(fields)

    async def queue_remove(self, queue: str, interface: str) -> None:
        await self.action({"Action": "QueueRemove", "Queue": queue, "Interface": interface})

    async def queue_pause(self, queue: str, interface: str, *, paused: bool, reason: str = "") -> None:
        fields = {"Action": "QueuePause", "Queue": queue, "Interface": interface, "Paused": str(paused).lower()}
        await self.action({**fields, "Reason": reason})

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        variables: Mapping[str, str] | None = None,
        timeout_s: float = 30,
    ) -> Message:
        """Place a call (tests, callbacks). Synchronous Originate: the reply says whether it was answered;
        never re-sent after a reconnect, so a lost reply can never place the call twice."""
        fields: dict[str, Any] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": priority,
            "Timeout": round(timeout_s * 1000),
            "Async": "false",  # one reply, once the call is answered or has failed
        }
        if variables:
            fields["Variable"] = [f"{k}={v}" for k, v in variables.items()]
        reply = await self.action(fields, timeout_s=timeout_s + self._settings.action_timeout_s)
        return reply[0] if isinstance(reply, list) else reply

    def _login_result(self, ok: bool, response: Message) -> None:
        self._login_failure = None if ok else response
        if ok:
            self._logged_in.set()
            log.info("AMI logged in at %s:%d", self._settings.host, self._settings.port)
            self._tell_connection(True)
        self._login_changed.set()

    def _disconnected(self, manager: Manager, exc: BaseException | None) -> None:
        log.warning("AMI connection lost (%s); panoramisk reconnects", exc)
        self._lost()

    def _lost(self) -> None:
        if self._logged_in.is_set():  # once per connection: a watchdog's close is also seen by panoramisk
            self._logged_in.clear()
            self._tell_connection(False)

    def _tell_connection(self, up: bool) -> None:
        for callback in self._connection_callbacks:
            callback(up)

    async def _watch(self) -> None:
        """Ping every ``ping_interval_s``; no Pong within ``action_timeout_s`` means a silent Asterisk."""
        while True:  # runs until close() cancels it
            await asyncio.sleep(self._settings.ping_interval_s)
            if not self._logged_in.is_set():
                continue  # a reconnect is already under way
            try:
                await self.ping()
            except (AmiTimeout, AmiNotConnected) as exc:
                log.warning("AMI watchdog: %s; reconnecting", exc)
                self._reconnect()

    def _reconnect(self) -> None:
        assert self._manager is not None
        self.reconnects += 1
        self._lost()
        self._manager.close()  # panoramisk keeps unanswered, non-forgettable actions to re-send
        self._manager.connect()


def check_fields(fields: Mapping[str, Any]) -> None:
    """Refuse a header name or value holding CR, LF or another control character, before anything is sent.

    An AMI action is ``Name: value`` lines ended by a blank line: a line break in a value would start a
    header of the sender's choosing, or a second action. Callers clean data they pass on
    (`ivr.text.replace_controls`); reaching here with one is a bug, so it fails loudly, naming the header
    (never its value, which may be personal data).
    """
    for name, value in fields.items():
        if has_control(str(name)) or not str(name):
            raise ValueError(f"AMI {fields.get('Action')}: header name {name!r} is empty or holds a control character")
        for item in value if isinstance(value, list | tuple) else [value]:
            if has_control(str(item)):
                raise ValueError(
                    f"AMI {fields.get('Action')}: header {name} holds CR, LF or another control character; not sent"
                )


def _drop_manager_arg(callback: EventCallback) -> Callable[[Manager, Message], Any]:
    return lambda manager, message: callback(message)


def int_field(value: Any) -> int:
    """A numeric AMI field; 0 when missing or not a number."""
    try:
        return int(value or 0)
    except ValueError:
        return 0
