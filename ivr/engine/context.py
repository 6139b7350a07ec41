"""What a verb works with on a live call.

Three objects, each with one job: the `Caller` (what they hear, the keys they pressed ahead, what they
say), the `CallState` (who is calling, the variables gathered, the tickets opened; templates read it)
and the `OperationGateway` (the back-end operations, with the hold prompt, keeping what they find).
The call's clock, the queues' live state, the supervisors' announcements and the settings a verb decides
with complete them. A verb returns what happens next (`ivr.engine.steps`); the interpreter walks the flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from zoneinfo import ZoneInfo

from ivr.clock import Clock
from ivr.config import QueueWaitSettings
from ivr.engine.caller import Caller
from ivr.engine.gateway import OperationGateway
from ivr.engine.ports import Announcements, NoAnnouncements, QueueWatch
from ivr.engine.state import CallState


class Outcome(str, Enum):
    QUEUE = "queue"  # an agent of a queue took the call
    TRANSFER = "transfer"  # the call went to an outside number
    HANGUP = "hangup"  # the caller left
    ENDED = "ended"  # the flow said goodbye and hung up
    FAILED = "failed"  # the engine could not go on; the dialplan sends the call to the fallback queue


@dataclass(frozen=True, slots=True)
class CallContext:
    caller: Caller
    state: CallState
    operations: OperationGateway
    clock: Clock
    timezone: ZoneInfo  # settings.timezone: opening hours and months are local time
    due_days: tuple[int, ...]  # settings.billing.due_days: the days an invoice may fall due
    queues: QueueWatch  # how a queue stands before the caller joins it
    queue_wait: QueueWaitSettings  # settings.queue_wait: what a caller about to wait is told and offered
    announcements: Announcements = field(default_factory=NoAnnouncements)  # what supervisors posted

    def now(self) -> datetime:
        """The call's local time."""
        return self.clock().astimezone(self.timezone)
