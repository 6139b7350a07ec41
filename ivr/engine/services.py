"""What the engine needs from below it, as small protocols (ports).

The engine never imports the store, AGI or any back-end: `ivr.app` wires concrete implementations
(the built-in store, the speech client...) into a `Services` bundle; flow tests wire fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ivr.engine.channel import CallInfo, Heard
from integrations.registry import OperationRegistry
from ivr.clock import Clock


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
    async def recognise(self, heard: Heard, *, phrase_hints: Sequence[str] = ()) -> Recognition:
        """Turn what the caller said into text; raises `RecognitionError` on back-end failure."""
        ...


class RecognitionError(Exception):
    """The speech back-end failed or timed out; the flow falls back to DTMF."""


class CallRecorder(Protocol):
    """Keeps the call record (start, linkedid, end state) beside the node visits."""

    async def call_started(self, protocol: str, call: CallInfo, flow: str, flow_version: str) -> None: ...

    async def call_ended(self, protocol: str, outcome: str, variables: dict[str, Any]) -> None: ...


@dataclass(slots=True)
class Services:
    operations: OperationRegistry
    events: EventSink
    protocols: ProtocolAllocator
    recognizer: Recognizer
    calls: CallRecorder
    clock: Clock  # the engine's; the operations, protocols and call records were built with the same one
