"""The unit's live model: calls in the IVR and the node each is on, the queues, the call backs owed.

Three feeds, one model:

* **this unit's calls**, told in-process by the engine (`ivr.engine.ports.CallWatch`): protocol, caller
  (masked at once: the model never holds a raw number), flow, node, since when;
* **AMI events** folded by `LiveModel.apply` (plain mappings, Asterisk 22 field names): channels up
  (Newchannel, Hangup), callers waiting per queue (QueueCallerJoin/Leave/Abandon), members per queue
  (QueueMemberAdded/Removed/Status/Pause, AgentCalled/RingNoAnswer/Connect/Complete). An IVR call is joined
  to its queue entry by the AGI channel's Uniqueid (Queue() runs on it) or its Linkedid;
* **call backs owed** per queue, set by the wiring from the store (`set_callbacks_pending`).

Events missed while AMI is down are never trusted to be replayed: on each login the model reads
QueueStatus and CoreShowChannels afresh (`resync`). Events arriving meanwhile are folded and kept, then
folded again over the fresh state; that is safe because every fold sets or removes by key. Until the
resync is done the snapshot says ``ami.synced: false`` and since when its AMI part is stale.

`snapshot()` is plain JSON-ready data. `subscribe()` gives change notices: each subscriber holds at most
one pending notice (changes coalesce), so a slow reader costs no memory and reads the latest snapshot;
or, for the supervisor of several workers, what changed (`changes()`): the unit's state whole (it is
small) and only the calls that changed, since a worker with hundreds of calls up would otherwise
serialise them all at every node one of them visits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from ivr import phone
from ivr.ami.client import AmiClient, AmiError, AmiNotConnected, MemberState, QueueMemberState, int_field
from ivr.clock import Clock
from ivr.engine.ports import CallInfo

log = logging.getLogger(__name__)

EVENTS = (
    "Newchannel",
    "Hangup",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberStatus",
    "QueueMemberPause",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
)
#: A failed resync (AMI slow to answer) is tried again this long after, while the connection lasts.
RESYNC_RETRY_S = 2.0


class _AgentChange(TypedDict, total=False):
    """Fields of `QueueMemberState` an agent event sets (typed, so `replace` checks them)."""

    ringing: bool
    in_call: bool


#: What member events change besides the member's own state fields (which QueueMember* events carry whole).
_AGENT_EVENTS: dict[str, _AgentChange] = {
    "AgentCalled": {"ringing": True},
    "AgentRingNoAnswer": {"ringing": False},
    "AgentConnect": {"ringing": False, "in_call": True},
    "AgentComplete": {"in_call": False},
}


@dataclass(slots=True)
class _IvrCall:
    protocol: str
    unique_id: str
    linked_id: str
    caller_masked: str
    flow: str
    since: datetime
    node: str = ""
    node_since: datetime | None = None


@dataclass(slots=True)
class _Waiting:
    unique_id: str
    linked_id: str
    joined_at: datetime


@dataclass(slots=True)
class _Queue:
    members: dict[str, QueueMemberState] = field(default_factory=dict)  # by interface
    waiting: dict[str, _Waiting] = field(default_factory=dict)  # by the caller's Uniqueid


class Subscription:
    """Change notices for one subscriber; iterate it for the snapshot after each change."""

    def __init__(self, model: SnapshotSource) -> None:
        self._model = model
        self._changed = asyncio.Event()  # the one pending notice
        self._calls_changed: set[str] = set()  # the protocols of the calls changed since the last read
        self._ended = asyncio.Event()

    def notify(self, protocols: tuple[str, ...]) -> None:
        self._calls_changed.update(protocols)
        self._changed.set()

    def end(self) -> None:
        """The server is going: wakes the subscriber's handler wherever it waits."""
        self._ended.set()
        self._changed.set()

    async def pause(self, seconds: float) -> None:
        """`seconds` between two snapshots told, cut short when the subscription ends."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._ended.wait()

    async def next(self) -> dict[str, Any]:
        """The snapshot once something changed since the last one read."""
        await self._wait_change()
        return self._model.snapshot()

    async def next_changes(self) -> dict[str, Any]:
        """What changed since the last read (`SnapshotSource.changes`), once something did."""
        return self._model.changes(await self._wait_change())

    async def _wait_change(self) -> set[str]:
        await self._changed.wait()
        self._changed.clear()
        changed, self._calls_changed = self._calls_changed, set()
        return changed

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.next()


class SnapshotSource:
    """What `serve_snapshots` serves (a unit's `LiveModel`, or the `MergedSnapshots` of its workers): a
    snapshot, and subscribers notified when it changed (`_changed`)."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def changes(self, protocols: set[str]) -> dict[str, Any]:
        """What a subscriber of changes is told after the calls `protocols` (and maybe the unit) changed:
        the whole snapshot, unless the source can say less (`LiveModel.changes`)."""
        return self.snapshot()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def _changed(self, *protocols: str) -> None:
        """Something changed: the calls `protocols`, or else the unit's state."""
        for subscription in self._subscribers:
            subscription.notify(protocols)


class LiveModel(SnapshotSource):
    """The live state of one unit. Implements `ivr.engine.ports.CallWatch`."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        self._calls: dict[str, _IvrCall] = {}  # by protocol
        self._queues: dict[str, _Queue] = {}
        self._channels: dict[str, str] = {}  # Uniqueid -> Linkedid of the channels up
        self._callbacks: dict[str, int] = {}
        self._connected = False
        self._synced = False
        self._stale_since: datetime | None = clock()  # nothing read from AMI yet
        self._during_resync: list[Mapping[str, Any]] | None = None
        self._resyncing: asyncio.Task[None] | None = None
        self._flows_version: str | None = None

    def serving(self, version: str | None) -> None:
        """The published flows' version new calls take (after a start or a reload)."""
        if version != self._flows_version:
            self._flows_version = version
            self._changed()

    # --- this unit's calls (CallWatch) ------------------------------------------------------------------

    def call_started(self, protocol: str, call: CallInfo, flow: str) -> None:
        self._calls[protocol] = _IvrCall(
            protocol=protocol,
            unique_id=call.unique_id,
            linked_id=call.linked_id,
            caller_masked=phone.mask(phone.normalise(call.caller_id)),
            flow=flow,
            since=self._clock(),
        )
        self._changed(protocol)

    def node_entered(self, protocol: str, flow: str, node: str) -> None:
        call = self._calls.get(protocol)
        if call is not None:
            call.flow, call.node, call.node_since = flow, node, self._clock()
            self._changed(protocol)

    def call_ended(self, protocol: str) -> None:
        if self._calls.pop(protocol, None) is not None:
            self._changed(protocol)

    # --- call backs ---------------------------------------------------------------------------------------

    def set_callbacks_pending(self, by_queue: Mapping[str, int]) -> None:
        counts = {queue: n for queue, n in by_queue.items() if n}
        if counts != self._callbacks:
            self._callbacks = counts
            self._changed()

    # --- AMI ----------------------------------------------------------------------------------------------

    def attach(self, client: AmiClient) -> None:
        """Fold the client's events, and resynchronise on each of its logins."""
        for name in EVENTS:
            client.on_event(name, self.apply)
        client.on_connection(lambda up: self._connection(client, up))
        if client.connected:
            self._connection(client, True)

    async def aclose(self) -> None:
        if self._resyncing is not None:
            self._resyncing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resyncing
            self._resyncing = None

    def apply(self, event: Mapping[str, Any]) -> None:
        """Fold one AMI event (a mapping of header name to value)."""
        if self._during_resync is not None:
            self._during_resync.append(event)
        if self._fold(event):
            self._changed(*self._waiting_calls(event))

    def _waiting_calls(self, event: Mapping[str, Any]) -> list[str]:
        """The IVR calls whose queue a caller event may have changed: the one on its channel or call."""
        if not str(event.get("Event", "")).startswith("QueueCaller"):
            return []
        uid = str(event.get("Uniqueid", ""))
        ids = {uid, str(event.get("Linkedid") or self._channels.get(uid, uid))}
        return [c.protocol for c in self._calls.values() if c.unique_id in ids or c.linked_id in ids]

    def _fold(self, event: Mapping[str, Any]) -> bool:
        """Apply one event; whether anything changed. Every branch sets or removes by key (see the module)."""
        name = str(event.get("Event", ""))
        uid = str(event.get("Uniqueid", ""))
        queue_name = str(event.get("Queue", ""))
        if name == "Newchannel":
            self._channels[uid] = str(event.get("Linkedid") or uid)
            return True
        if name == "Hangup":
            return self._channels.pop(uid, None) is not None
        queue = self._queues.setdefault(queue_name, _Queue())
        if name == "QueueCallerJoin":
            linked = str(event.get("Linkedid") or self._channels.get(uid, uid))
            queue.waiting.setdefault(uid, _Waiting(uid, linked, self._clock()))  # a replay keeps the first join
            return True
        if name in ("QueueCallerLeave", "QueueCallerAbandon"):
            return queue.waiting.pop(uid, None) is not None
        interface = str(event.get("Interface", ""))
        if name == "QueueMemberRemoved":
            return queue.members.pop(interface, None) is not None
        if name in ("QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause"):
            queue.members[interface] = QueueMemberState.from_fields(event)
            return True
        member = queue.members.get(interface)
        if member is None or name not in _AGENT_EVENTS:
            return False
        queue.members[interface] = replace(member, **_AGENT_EVENTS[name])
        return True

    def _connection(self, client: AmiClient, up: bool) -> None:
        if self._resyncing is not None:
            self._resyncing.cancel()
            self._resyncing = None
        self._connected = up
        if not up:
            if self._synced:
                self._synced, self._stale_since = False, self._clock()
            self._during_resync = None
            self._changed()
            return
        self._resyncing = asyncio.create_task(self._resync_until_done(client), name="live-resync")
        self._changed()

    async def _resync_until_done(self, client: AmiClient) -> None:
        while True:
            try:
                await self.resync(client)
                return
            except AmiNotConnected:
                return  # the next login resynchronises
            except AmiError as exc:
                log.warning("live model: AMI resync failed (%s); again in %.0f s", exc, RESYNC_RETRY_S)
                await asyncio.sleep(RESYNC_RETRY_S)

    async def resync(self, client: AmiClient) -> None:
        """Replace what AMI told us with what it says now (queues, their members and callers, channels)."""
        self._during_resync = []
        try:
            status = await client.action({"Action": "QueueStatus"}, as_list=True)
            channels = await client.action({"Action": "CoreShowChannels"}, as_list=True)
            self._rebuild(_listed(status), _listed(channels))
            for event in self._during_resync:
                self._fold(event)
        finally:
            self._during_resync = None
        self._synced, self._stale_since = True, None
        log.info("live model: resynchronised from AMI (%d queues, %d channels)", len(self._queues), len(self._channels))
        self._changed(*self._calls)  # any call may be waiting in a queue, or no longer

    def _rebuild(self, status: list[Mapping[str, Any]], channels: list[Mapping[str, Any]]) -> None:
        now = self._clock()
        self._channels = {
            str(c.get("Uniqueid", "")): str(c.get("Linkedid") or c.get("Uniqueid", ""))
            for c in channels
            if c.get("Event") == "CoreShowChannel"
        }
        queues: dict[str, _Queue] = {}
        for msg in status:
            event, queue = msg.get("Event"), queues.setdefault(str(msg.get("Queue", "")), _Queue())
            if event == "QueueMember":
                member = QueueMemberState.from_fields(msg)
                queue.members[member.interface] = member
            elif event == "QueueEntry":
                uid = str(msg.get("Uniqueid", ""))
                joined = now - timedelta(seconds=int_field(msg.get("Wait")))
                queue.waiting[uid] = _Waiting(uid, self._channels.get(uid, uid), joined)
        queues.pop("", None)  # the reply and its Complete event name no queue
        self._queues = queues

    # --- what the console and metrics read ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data (strings, numbers, lists, dicts; moments in ISO 8601)."""
        waiting_in = self._waiting_in()
        calls = [self._call_view(c, waiting_in) for c in sorted(self._calls.values(), key=lambda c: c.since)]
        return {**self._unit_view(), "calls": calls}

    def changes(self, protocols: set[str]) -> dict[str, Any]:
        """The unit's state whole and, under ``calls_changed``, the row of each call of `protocols` (None
        for one that ended): a subscriber holding the last snapshot applies it to have the current one."""
        waiting_in = self._waiting_in()
        changed = {p: self._call_view(c, waiting_in) if (c := self._calls.get(p)) else None for p in protocols}
        return {**self._unit_view(), "calls_changed": changed}

    def _waiting_in(self) -> dict[str, str]:
        """The queue each channel or call waits in, by Uniqueid and by Linkedid."""
        return {
            key: name
            for name, q in self._queues.items()
            for w in q.waiting.values()
            for key in (w.unique_id, w.linked_id)
        }

    @staticmethod
    def _call_view(call: _IvrCall, waiting_in: Mapping[str, str]) -> dict[str, Any]:
        return {
            "protocol": call.protocol,
            "caller": call.caller_masked,
            "flow": call.flow,
            "node": call.node,
            "since": call.since.isoformat(),
            "node_since": call.node_since.isoformat() if call.node_since else None,
            "queue": waiting_in.get(call.unique_id) or waiting_in.get(call.linked_id),
        }

    def _unit_view(self) -> dict[str, Any]:
        now = self._clock()
        queues = {
            name: self._queue_view(self._queues.get(name, _Queue()), name, now)
            for name in sorted(self._queues.keys() | self._callbacks.keys())
            if name
        }
        return {
            "at": now.isoformat(),
            "ami": {
                "connected": self._connected,
                "synced": self._synced,
                "stale_since": self._stale_since.isoformat() if self._stale_since else None,
            },
            "queues": queues,
            "channels": len(self._channels),
            "flows": [self._flows_version] if self._flows_version else [],  # the versions new calls take
        }

    def _queue_view(self, queue: _Queue, name: str, now: datetime) -> dict[str, Any]:
        states = [m.state for m in queue.members.values()]
        longest = max((now - w.joined_at for w in queue.waiting.values()), default=timedelta())
        return {
            "waiting": len(queue.waiting),
            "longest_wait_s": max(0, int(longest.total_seconds())),
            "agents": {
                "logged_in": sum(s is not MemberState.LOGGED_OUT for s in states),
                "free": states.count(MemberState.FREE),
                "ringing": states.count(MemberState.RINGING),
                "busy": states.count(MemberState.BUSY),
                "paused": states.count(MemberState.PAUSED),
            },
            "callbacks_pending": self._callbacks.get(name, 0),
        }


#: What a client writes to the live socket, after the first snapshot, to be kept told of each change.
SUBSCRIBE = b'{"subscribe": true}\n'
#: ... to be told what changed instead (`LiveModel.changes`): the supervisor following its workers.
SUBSCRIBE_CHANGES = b'{"subscribe": "changes"}\n'
#: A subscriber hears at least this often (a keepalive line when nothing changed), so a hung unit shows.
KEEPALIVE_S = 5.0
#: A subscriber is told at most one snapshot per this interval; changes meanwhile are coalesced into the
#: next. Every node a call visits is a change, and a snapshot lists every call: told each change, a unit
#: with 470 calls up spent more CPU on snapshots for its supervisor than on the calls themselves.
TELL_INTERVAL_S = 0.25
#: How long the socket waits for a client to say whether it subscribes; a one-shot reader just closes.
_REQUEST_WAIT_S = 5.0
_KEEPALIVE = b'{"keepalive": true}\n'


class MergedSnapshots(SnapshotSource):
    """The snapshot of a unit run as several worker processes (``ivr serve --workers``), from what each
    worker told (`set`). Calls are each worker's own, so all are listed. Queues, channels and call backs
    owed are the unit's, read alike by every worker (its AMI connection, the store): they are taken from
    one worker, one whose AMI is synced if any, never added up."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        self._workers: dict[int, dict[str, Any]] = {}  # each one's last told, its calls by protocol

    def set(self, worker: int, told: dict[str, Any] | None) -> None:
        """What worker `worker` told: a snapshot, what changed since (`LiveModel.changes`), or None while
        it does not answer (its calls are not shown)."""
        if told is None:
            if self._workers.pop(worker, None) is None:
                return
        elif "calls_changed" in told:
            state = self._workers[worker]  # a worker's first line is its snapshot (`serve_snapshots`)
            calls: dict[str, Any] = state["calls"]
            for protocol, row in told.pop("calls_changed").items():
                if row is None:
                    calls.pop(protocol, None)
                else:
                    calls[protocol] = row
            state.update(told)
        else:
            self._workers[worker] = {**told, "calls": {c["protocol"]: c for c in told["calls"]}}
        self._changed()

    def snapshot(self) -> dict[str, Any]:
        answering = [self._workers[n] for n in sorted(self._workers)]
        if not answering:
            now = self._clock().isoformat()
            return {"at": now, "ami": {"connected": False, "synced": False, "stale_since": now}, "calls": [],
                    "queues": {}, "channels": 0, "flows": [], "workers": 0}  # fmt: skip
        unit = next((s for s in answering if s["ami"]["synced"]), answering[0])
        calls = sorted((c for s in answering for c in s["calls"].values()), key=lambda c: str(c["since"]))
        flows = sorted({version for s in answering for version in s.get("flows", [])})  # two while reloading
        return {**unit, "at": self._clock().isoformat(), "calls": calls, "flows": flows, "workers": len(answering)}


async def follow_worker(merged: MergedSnapshots, worker: int, path: Path, *, retry_s: float = 0.5) -> None:
    """Keep `merged` told of the worker answering at `path` (its ``live-<n>.sock``), through its restarts,
    until cancelled: while it does not answer, its calls are left out."""
    while True:  # until the supervisor cancels it
        try:
            async for told in watch_snapshots(path, KEEPALIVE_S * 2, changes=True):
                merged.set(worker, told)
        except (OSError, TimeoutError, ValueError):
            pass  # not started yet, restarting, or gone: said by leaving its calls out
        merged.set(worker, None)
        await asyncio.sleep(retry_s)


@asynccontextmanager
async def serve_snapshots(path: Path, live: SnapshotSource) -> AsyncIterator[bool]:
    """A Unix socket (only this user may open it) for `ivr live` and the web console; yields whether it
    listens. Each connection gets one JSON snapshot line at once; a client that then writes `SUBSCRIBE`
    gets a line after each change (coalesced: the latest state), one that writes `SUBSCRIBE_CHANGES` a line
    of what changed, and a keepalive line when quiet. Nothing on the network, and nothing in it but masked
    caller numbers."""

    connections: dict[asyncio.StreamWriter, Subscription] = {}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[writer] = live.subscribe()  # before the first snapshot, so no change falls in between
        with contextlib.suppress(ConnectionError, TimeoutError):  # a reader gone, or silent: nothing to tell
            try:
                writer.write(json.dumps(live.snapshot()).encode() + b"\n")
                await writer.drain()
                async with asyncio.timeout(_REQUEST_WAIT_S):
                    request = await reader.readline()
                if request in (SUBSCRIBE, SUBSCRIBE_CHANGES):
                    await _tell_changes(connections[writer], writer, only_changes=request == SUBSCRIBE_CHANGES)
            finally:
                live.unsubscribe(connections.pop(writer))
        writer.close()

    path.unlink(missing_ok=True)  # left by a unit that was killed
    try:
        server = await asyncio.start_unix_server(answer, path=str(path))
    except OSError as exc:
        log.warning("live snapshot socket %s: %s; `ivr live` and the console cannot reach this unit", path, exc)
        yield False
        return
    path.chmod(0o600)
    try:
        yield True
    finally:
        server.close()
        path.unlink(missing_ok=True)
        for writer, subscription in list(connections.items()):  # subscribers see the unit go, as on a restart
            writer.close()
            subscription.end()  # wakes its handler, which finds the connection closing and returns


async def _tell_changes(subscription: Subscription, writer: asyncio.StreamWriter, *, only_changes: bool) -> None:
    """Until the client or the server goes: the snapshot (or what changed) after each change, at most
    once per `TELL_INTERVAL_S`; a keepalive after `KEEPALIVE_S` of quiet."""
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                told = await (subscription.next_changes() if only_changes else subscription.next())
            line = json.dumps(told).encode() + b"\n"
        except TimeoutError:
            line = _KEEPALIVE
        if writer.is_closing():
            return
        writer.write(line)
        await writer.drain()
        if line is not _KEEPALIVE:
            await subscription.pause(TELL_INTERVAL_S)


async def read_snapshot(path: Path, timeout_s: float) -> dict[str, Any]:
    """One snapshot from the socket where a running unit serves its model (`serve_snapshots`): `ivr live`.
    Raises OSError or TimeoutError when no unit answers there in time."""
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            line = await reader.readline()
        finally:
            writer.close()
    return _snapshot(line)


async def watch_snapshots(path: Path, timeout_s: float, *, changes: bool = False) -> AsyncIterator[dict[str, Any]]:
    """The unit's snapshot now, then after each of its changes (with `changes`, what changed: see
    `MergedSnapshots.set`), for as long as the unit answers (the web console's live page). Raises OSError
    or TimeoutError when no unit answers, or it falls silent for `timeout_s` (it sends a keepalive every
    `KEEPALIVE_S`); ValueError for a line that is not a snapshot."""
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(SUBSCRIBE_CHANGES if changes else SUBSCRIBE)
        await writer.drain()
        while True:  # until the unit goes (the read fails) or the consumer stops iterating
            async with asyncio.timeout(timeout_s):
                line = await reader.readline()
            if line != _KEEPALIVE:
                yield _snapshot(line)
    finally:
        writer.close()


def _snapshot(line: bytes) -> dict[str, Any]:
    if not line:
        raise ConnectionResetError("the unit closed the live socket")
    snapshot: dict[str, Any] = json.loads(line)
    return snapshot


def _listed(reply: Any) -> list[Mapping[str, Any]]:
    return reply if isinstance(reply, list) else [reply]


def channel_variables(value: Any) -> dict[str, str]:
    """An event's ``ChanVariable`` (panoramisk gives a list when it repeats, a string when it does not;
    lines joined by newlines also read) as NAME -> value."""
    items = value if isinstance(value, list) else str(value).splitlines() if value else []
    pairs = (str(item).partition("=") for item in items)
    return {k: v for k, sep, v in pairs if sep}
