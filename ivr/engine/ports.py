"""What the engine shares with what is below it (its ports): the data a call carries across the seam
(`CallInfo`, `Heard`, `NodeVisit`, `Recognition`, `Ticket`, `CallSummary`, `QueueLoad`, `CallbackRequest`,
`Scope`, `Announcement`) and the small protocols the store and the integrations implement (`EventSink`,
`ProtocolAllocator`, `Recognizer`, `CallRecorder`, `SummarySender`, `QueueWatch`, `CallbackBook`,
`CallWatch`, `Announcements`, `Metrics`), bundled in `Services`.

The engine never imports the store, AGI or any back-end: `ivr.app` wires concrete implementations into
`Services`; flow tests and the simulator wire the store's or fakes. The caller's line is the other port
(`ivr.engine.channel`), the operation contract the third (`ivr.engine.operations`). `QueueWatch` tells
the `queue` verb how a queue stands before the caller joins it (AMI in production, stated in flow tests).
`Announcements` tells the `announce` verb what supervisors posted for this caller (`ivr announce add`).
`Metrics` counts what a call did for ``ivr serve``'s Prometheus endpoint; elsewhere it counts nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from ivr.clock import Clock
from ivr.engine.operations import OperationRegistry


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What is known about a call when it arrives."""

    caller_id: str | None  # as received; normalise with ivr.phone before matching
    caller_name: str | None = None
    dialled: str = ""
    unique_id: str = ""
    linked_id: str = ""
    channel_name: str = ""
    params: Mapping[str, str] = field(default_factory=dict)  # request-path query, e.g. lang=pt_BR


@dataclass(frozen=True, slots=True)
class Heard:
    """What the caller said after a prompt.

    A real call gives audio (a file Asterisk recorded); the simulator and flow tests give the text the
    tester typed, already a transcript. The engine sends audio to the speech back-end.
    """

    audio: Path | None = None
    transcript: str | None = None
    duration_s: float = 0.0
    interrupted_by: str = ""  # a DTMF key pressed instead of speaking


@dataclass(frozen=True, slots=True)
class NodeVisit:
    """One node visited on one call: the raw material of the analytics."""

    call_protocol: str
    flow: str
    flow_version: str
    node: str
    verb: str
    input: str  # keys or transcript given at this node ("" if none); never raw CNPJ/e-mail (masked)
    outcome: str  # e.g. "1", "no_input", "found", "queued:technical", "hangup"
    started_at: datetime
    duration_ms: int
    prompts: tuple[str, ...] = ()  # the prompt ids played at this node, spelled digits masked (Caller.heard)


class EventSink(Protocol):
    def emit(self, visit: NodeVisit) -> None:
        """Buffer one visit; never blocks the call and never raises (a store outage is counted)."""
        ...


class ProtocolAllocator(Protocol):
    async def allocate(self, call: CallInfo) -> str:
        """The call's attendance protocol number (with check digit). The one write a call waits for."""
        ...


@dataclass(frozen=True, slots=True)
class Recognition:
    transcript: str
    confidence: float  # 0..1


class Recognizer(Protocol):
    #: False when no speech back-end is configured: questions then wait for keys and record nothing.
    listens: bool

    async def recognise(self, heard: Heard, *, phrase_hints: Sequence[str] = ()) -> Recognition:
        """Turn what the caller said into text; raises `RecognitionError` on back-end failure."""
        ...


class RecognitionError(Exception):
    """The speech back-end failed or timed out; the flow falls back to DTMF."""


class CallRecorder(Protocol):
    """Keeps the call record (start, linkedid, end state) beside the node visits."""

    async def call_started(self, protocol: str, call: CallInfo, flow: str, flow_version: str) -> None: ...

    async def call_ended(
        self,
        protocol: str,
        outcome: str,
        variables: dict[str, Any],
        *,
        customer_id: int | None = None,
        customer_name: str = "",
    ) -> None:
        """The call's end, with the customer it was identified as (its calls are listed and shown by it)."""
        ...


class CallWatch(Protocol):
    """Follows the unit's calls as they happen (the live model of ``ivr serve``). A node's visit is
    recorded when the node ends, so the node a call is on now is told when it is entered. Never blocks,
    never raises."""

    def call_started(self, protocol: str, call: CallInfo, flow: str) -> None: ...

    def node_entered(self, protocol: str, flow: str, node: str) -> None: ...

    def call_ended(self, protocol: str) -> None: ...


class UnwatchedCalls:
    """A `CallWatch` nobody reads: flow tests, the simulator, a unit without a live model."""

    def call_started(self, protocol: str, call: CallInfo, flow: str) -> None:
        pass

    def node_entered(self, protocol: str, flow: str, node: str) -> None:
        pass

    def call_ended(self, protocol: str) -> None:
        pass


class Metrics(Protocol):
    """What calls did, counted for the unit's metrics (``ivr.metrics`` in ``ivr serve``). Label values are
    bounded (flow, node and operation names, outcomes), never a protocol or a caller. Never blocks, never
    raises; each method costs a counter increment or two."""

    def call_started(self) -> None: ...

    def call_ended(self, outcome: str) -> None:
        """An `Outcome`'s value: ended (the flow finished it), hangup, failed, queue or transfer."""
        ...

    def node_visited(self, flow: str, node: str, outcome: str) -> None:
        """One node left, with its visit's outcome (an input failure is no_input, no_match or invalid)."""
        ...

    def operation_done(self, operation: str, status: str, seconds: float) -> None:
        """One operation answered with an `OperationStatus` value after `seconds`."""
        ...

    def protocol_allocated(self, seconds: float) -> None: ...

    def protocol_fell_back(self) -> None:
        """A protocol came from the local fallback range (the store did not answer in time)."""
        ...


class NoMetrics:
    """`Metrics` nobody reads: flow tests, the simulator, the replays of the impact of a draft."""

    def call_started(self) -> None:
        pass

    def call_ended(self, outcome: str) -> None:
        pass

    def node_visited(self, flow: str, node: str, outcome: str) -> None:
        pass

    def operation_done(self, operation: str, status: str, seconds: float) -> None:
        pass

    def protocol_allocated(self, seconds: float) -> None:
        pass

    def protocol_fell_back(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket opened on the call: its kind (technical_failure, complaint, cancellation...) and number."""

    type: str
    number: str


@dataclass(frozen=True, slots=True)
class CallSummary:
    """What a call opened, sent in writing when it ends (whatever the ending: goodbye, queue, transfer or
    hang-up)."""

    protocol: str
    customer_id: int | None  # the identified account: the summary goes to its registered contacts
    caller_id: str | None  # the national number calling; None when withheld
    tickets: tuple[Ticket, ...]  # the tickets, requests, complaints... opened on the call
    to_caller_by_whatsapp: bool  # an unidentified mobile caller accepted it by WhatsApp on that number


class SummarySender(Protocol):
    async def send(self, summary: CallSummary) -> tuple[str, ...]:
        """Queue the summary (through the durable outbox); the channels it went by ("email",
        "whatsapp"), empty when there was nowhere to send it. A back-end failure raises `BackendError`,
        which the engine logs: the call is over either way."""
        ...


@dataclass(frozen=True, slots=True)
class QueueLoad:
    """How a queue stands just before a caller joins it."""

    waiting: int  # callers already waiting: all of them are ahead of a caller joining now
    agents: int  # logged in and not paused: those who take calls from the queue
    available: int = 0  # of those, free right now
    hold_s: int = 0  # recent average wait before an agent answered (Asterisk's Holdtime); 0 unknown
    talk_s: int = 0  # recent average conversation (Asterisk's TalkTime); 0 unknown


class QueueWatch(Protocol):
    async def load(self, queue: str) -> QueueLoad | None:
        """The queue's live state, or None when it cannot be known in time (AMI down or slow, no such
        queue): the caller then joins the queue and hears nothing about it. Never raises."""
        ...


class UnknownQueues:
    """A `QueueWatch` that knows nothing: callers just join (a unit without AMI, engine unit tests)."""

    async def load(self, queue: str) -> QueueLoad | None:
        return None


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A call back the IVR owes: who to dial, which team takes them, and the call's context for the agent
    (the same as an inbound call's, see `CallState.queue_context`)."""

    protocol: str  # the call's protocol: the call back is announced and worked under it
    ticket_number: str  # the back-end's callback request ("" when none was opened)
    number: str  # confirmed national number (ivr.phone.callback_number)
    team: str  # technical, billing or commercial: the queue the customer goes to
    customer_id: int | None
    customer_name: str
    caller_id: str | None
    path: str  # as agents see it ("start>menu>...")
    tickets: str  # the numbers opened on the call, comma-separated
    reason: str = "requested"  # or "dropped": the call fell while the caller was being served


class CallbackBook(Protocol):
    async def schedule(self, request: CallbackRequest) -> int:
        """Keep the call back durably for the dialer; its id. Raises `BackendError` when it cannot."""
        ...


class ScopeKind(str, Enum):
    ALL = "all"  # every caller, identified or not
    CITY = "city"  # callers identified as a customer with a circuit in this city
    CIRCUIT = "circuit"  # callers identified as the customer of this circuit


class AnnouncementRefused(ValueError):
    """A supervisor's announcement that cannot be posted or ended; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Who hears an announcement: ``all``, ``city:Belo Horizonte`` or ``circuit:BHZ-FO-10021``."""

    kind: ScopeKind
    value: str = ""  # the city or the circuit's designation; "" for all

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, _, value = text.partition(":")
        try:
            scope_kind = ScopeKind(kind.strip().lower())
        except ValueError:
            raise AnnouncementRefused(
                f"scope {text!r}: write all, city:<city> (city:Belo Horizonte) or circuit:<designation>"
            ) from None
        value = " ".join(value.split())
        if (scope_kind is ScopeKind.ALL) != (not value):
            what = "takes nothing after it" if scope_kind is ScopeKind.ALL else "needs a name after the colon"
            raise AnnouncementRefused(f"scope {text!r}: {scope_kind.value} {what}")
        return cls(scope_kind, value)

    def covers(self, cities: Collection[str], circuits: Collection[str]) -> bool:
        """Whether a caller whose account has circuits `circuits` in `cities` is in this scope (none for a
        caller not identified: they are only in `all`). Names compare without regard to case."""
        if self.kind is ScopeKind.ALL:
            return True
        names = cities if self.kind is ScopeKind.CITY else circuits
        return self.value.casefold() in {name.casefold() for name in names}

    def __str__(self) -> str:
        return self.kind.value if self.kind is ScopeKind.ALL else f"{self.kind.value}:{self.value}"


@dataclass(frozen=True, slots=True)
class Announcement:
    """An announcement in force, ready to play: its audio is built like a prompt's, under `prompt_id`."""

    id: int
    text: str
    scope: Scope
    until: datetime
    prompt_id: str  # "announce/<audio name>" (ivr.voice.build.ANNOUNCE_NAMESPACE)
    duration_s: float


class Announcements(Protocol):
    async def in_force(self, customer_id: int | None, now: datetime) -> list[Announcement]:
        """What callers of this account (None: not identified) hear at `now`, oldest first, one per text,
        each with its audio built. Never raises: when it cannot be known, the caller hears none."""
        ...

    async def post(
        self, text: str, scope: Scope, until: datetime, *, by: str, starts_at: datetime | None = None
    ) -> Announcement:
        """Keep a supervisor's announcement, its audio built at once; in force from `starts_at` (now unless
        given) until `until`. Raises `AnnouncementRefused` (nothing kept) for an empty or too long text, an
        unknown city or circuit, an `until` not after its start, or the same text already in force there."""
        ...

    async def end(self, announcement_id: int) -> Announcement:
        """End one at once (callers stop hearing it); raises `AnnouncementRefused` when there is no such
        announcement in force."""
        ...


class NoAnnouncements:
    """`Announcements` with nothing posted (engine unit tests); posting is refused."""

    async def in_force(self, customer_id: int | None, now: datetime) -> list[Announcement]:
        return []

    async def post(
        self, text: str, scope: Scope, until: datetime, *, by: str, starts_at: datetime | None = None
    ) -> Announcement:
        raise AnnouncementRefused("announcements are not kept here")

    async def end(self, announcement_id: int) -> Announcement:
        raise AnnouncementRefused(f"no announcement {announcement_id} in force")


@dataclass(slots=True)
class Services:
    operations: OperationRegistry
    events: EventSink
    protocols: ProtocolAllocator
    recognizer: Recognizer
    calls: CallRecorder
    summaries: SummarySender
    callbacks: CallbackBook
    clock: Clock  # the engine's; the operations, protocols and call records were built with the same one
    queues: QueueWatch = field(default_factory=UnknownQueues)  # the queues' live state (`queue` verb)
    watch: CallWatch = field(default_factory=UnwatchedCalls)  # who follows calls live (the live model)
    announcements: Announcements = field(default_factory=NoAnnouncements)  # supervisors' (`announce` verb)
    metrics: Metrics = field(default_factory=NoMetrics)  # counted for `ivr serve`'s /metrics
