"""A `Channel` driven by a script of caller actions: the simulator and the flow tests are built on it.

Each script item is one thing the caller does when the IVR next waits for them:

    "1", "12345678000195#"   keys pressed after the prompt ends
    "barge:1"                a key pressed *during* the next prompt (DTMF barge-in; ignored if that
                             prompt cannot be interrupted, like the protocol announcement)
    "say:quero segunda via"  words spoken (already a transcript)
    "silence"                the caller says and presses nothing
    "hangup"                 the caller hangs up (at the very next thing the IVR does)

Everything the caller hears is kept in `heard` (prompt ids, in order). When the script runs out,
`more` is asked for items (the interactive simulator reads the terminal); without it the caller hangs up.

`StatedQueues` is the queues' live state the simulator or a flow test states (``waiting=3,agents=2``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields

from ivr.engine.channel import DTMF_KEYS, CallerHangup, Digits, DigitsEnd, QueueOutcome, TransferOutcome
from ivr.engine.ports import CallInfo, Heard, QueueLoad


class ScriptError(ValueError):
    """A script item the channel does not understand."""


def parse_item(item: str) -> str:
    """Check one script item; returns it stripped."""
    text = item.strip()
    if text in ("hangup", "silence") or text.startswith("say:"):
        return text
    keys = text.removeprefix("barge:")
    if keys and all(ch in DTMF_KEYS for ch in keys):
        return text
    raise ScriptError(
        f"'{item}' is not a caller action (keys like 1 or 123#, barge:1, say:<words>, silence, hangup)"
    )


@dataclass(frozen=True, slots=True)
class StatedQueues:
    """A `QueueWatch` answering what was stated; a queue not stated is not known, as when AMI is down
    (the caller joins, told nothing)."""

    loads: Mapping[str, QueueLoad] = field(default_factory=dict)

    async def load(self, queue: str) -> QueueLoad | None:
        return self.loads.get(queue)


def parse_queue_load(text: str) -> QueueLoad:
    """ "waiting=3,agents=2,talk_s=240" -> a `QueueLoad` (its field names; whole numbers)."""
    names = [f.name for f in fields(QueueLoad)]
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name.strip() not in names or not value.strip().isdigit():
            raise ScriptError(f"'{part}' is not a queue's state (name=number, names: {', '.join(names)})")
        values[name.strip()] = int(value)
    try:
        return QueueLoad(**values)
    except TypeError as exc:
        raise ScriptError(f"'{text}': waiting= and agents= are needed") from exc


@dataclass(slots=True)
class Event:
    """Something that happened on the call, for the simulator's display and the flow-test report."""

    kind: str  # play | keys | say | silence | queue | transfer | hangup | variable
    detail: str
    prompt_ids: tuple[str, ...] = ()


@dataclass
class ScriptedChannel:
    info: CallInfo
    script: Iterable[str] = ()
    queue_outcomes: Mapping[str, QueueOutcome] = field(default_factory=dict)  # default: answered
    transfer_outcome: TransferOutcome = TransferOutcome.ANSWERED
    more: Callable[[], Awaitable[list[str]]] | None = None  # asked when the script runs out
    on_event: Callable[[Event], None] | None = None
    events: list[Event] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    agent_context: dict[str, str] = field(default_factory=dict)  # given to the last queue joined
    hung_up: bool = False
    hears_words: bool = True  # "say:<words>" items are already transcripts
    line_cause: int = 16  # the Q.850 cause a scripted hang-up reports (16: the caller hung up normally)

    def __post_init__(self) -> None:
        self._items: deque[str] = deque(parse_item(i) for i in self.script)

    def _record(self, event: Event) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    async def _peek(self) -> str:
        if not self._items and self.more is not None:
            self._items.extend(parse_item(i) for i in await self.more())
        if not self._items or self._items[0] == "hangup":
            self.hung_up = True
            self._record(Event("hangup", "caller hung up"))
            raise CallerHangup()
        return self._items[0]

    def _take(self, count: int | None = None) -> str:
        """Consume the whole first item, or `count` keys of it (the rest stays for later)."""
        item = self._items[0]
        prefix = "barge:" if item.startswith("barge:") else ""
        keys = item.removeprefix(prefix)
        if count is None or count >= len(keys):
            self._items.popleft()
            return keys
        self._items[0] = prefix + keys[count:]
        return keys[:count]

    async def answer(self) -> None:
        await self._hangup_if_next()

    async def _hangup_if_next(self) -> None:
        if self._items and self._items[0] == "hangup":
            await self._peek()

    async def play(self, prompt_ids: Sequence[str], *, interruptible: bool = True) -> str:
        await self._hangup_if_next()
        self.heard.extend(prompt_ids)
        self._record(Event("play", "", tuple(prompt_ids)))
        if self._items and self._items[0].startswith("barge:"):
            key = self._take(1)
            if interruptible:
                self._record(Event("keys", f"{key} (during the prompt)"))
                return key
            self._record(Event("keys", f"{key} (ignored: this prompt cannot be interrupted)"))
        return ""

    async def read_digits(
        self, *, max_digits: int, first_timeout_s: float, inter_digit_timeout_s: float, terminator: str = "#"
    ) -> Digits:
        item = await self._peek()
        if item == "silence" or item.startswith("say:"):
            self._items.popleft()
            self._record(Event("silence", "no keys"))
            return Digits("", DigitsEnd.TIMEOUT)
        keys = item.removeprefix("barge:")
        ends = [i for i, key in enumerate(keys[: max_digits + 1]) if key in terminator] if terminator else []
        if ends:
            taken = self._take(ends[0] + 1)
            self._record(Event("keys", taken))
            return Digits(taken[:-1], DigitsEnd.TERMINATOR, taken[-1])
        taken = self._take(max_digits)
        self._record(Event("keys", taken))
        return Digits(taken, DigitsEnd.MAX_LENGTH if len(taken) == max_digits else DigitsEnd.TIMEOUT)

    async def late_key(self, expected: str, *, within_s: float) -> str:
        item = self._items[0] if self._items else ""
        if not item.removeprefix("barge:").startswith(expected):
            return ""
        key = self._take(1)
        self._record(Event("keys", key))
        return key

    async def listen(self, *, max_seconds: float, silence_seconds: float, beep: bool = False) -> Heard:
        item = await self._peek()
        if item == "silence":
            self._items.popleft()
            self._record(Event("silence", "said nothing"))
            return Heard(duration_s=silence_seconds)
        if item.startswith("say:"):
            self._items.popleft()
            words = item.removeprefix("say:").strip()
            self._record(Event("say", words))
            return Heard(transcript=words, duration_s=min(max_seconds, 0.4 * len(words.split()) + 1))
        key = self._take(1)
        self._record(Event("keys", key))
        return Heard(interrupted_by=key)

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value
        self._record(Event("variable", f"{name}={value}"))

    async def queue(self, queue: str, *, context: Mapping[str, str], timeout_s: float) -> QueueOutcome:
        await self._hangup_if_next()
        self.agent_context = dict(context)  # what the agent who answers is shown
        outcome = self.queue_outcomes.get(queue, QueueOutcome.ANSWERED)
        self._record(Event("queue", f"{queue}: {outcome.value}"))
        return outcome

    async def transfer(self, number: str, *, timeout_s: float) -> TransferOutcome:
        await self._hangup_if_next()
        self._record(Event("transfer", f"{number}: {self.transfer_outcome.value}"))
        return self.transfer_outcome

    async def hangup(self) -> None:
        if not self.hung_up:
            self.hung_up = True
            self._record(Event("hangup", "the IVR hung up"))

    async def hangup_cause(self) -> int | None:
        return self.line_cause if self.hung_up else None

