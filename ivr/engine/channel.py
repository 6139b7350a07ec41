"""The one seam between the flow engine and a call.

The engine speaks to a call only through `Channel`. Three classes implement it: `AgiChannel` (a real
Asterisk call over FastAGI), the terminal simulator and the flow-test channel. Prompts travel as
*prompt ids* (``"welcome"``, ``"num/20"``, ``"digit/7"``): each channel renders an id its own way (an
Asterisk sound file, or the catalogue's text). Any method may raise `CallerHangup` when the caller leaves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from ivr.engine.ports import CallInfo, Heard

#: Keys a caller may press; all of them interrupt an interruptible prompt (DTMF barge-in).
DTMF_KEYS = "0123456789*#"
#: The key that asks for a call back instead of waiting in a queue, before joining or while waiting
#: (the queues' exit context in asterisk_conf/extensions.conf has this extension).
CALLBACK_KEY = "1"


class CallerHangup(Exception):
    """The caller left the call; the engine stops the flow and keeps what was gathered."""


class ChannelError(Exception):
    """The channel could not carry out a command (e.g. Asterisk answered 510/520)."""


class DigitsEnd(str, Enum):
    TERMINATOR = "terminator"  # the caller pressed a terminator key (in `Digits.key`, not in digits)
    MAX_LENGTH = "max_length"
    TIMEOUT = "timeout"  # inter-digit or first-digit timeout


@dataclass(frozen=True, slots=True)
class Digits:
    digits: str
    ended_by: DigitsEnd
    key: str = ""  # the terminator pressed, when ended_by is TERMINATOR


class QueueOutcome(str, Enum):
    ANSWERED = "answered"  # an agent took the call (it may have ended since)
    NO_AGENTS = "no_agents"  # nobody logged in: the caller must be told, never left waiting
    TIMEOUT = "timeout"
    FULL = "full"
    FAILED = "failed"
    CALLBACK = "callback"  # the caller pressed CALLBACK_KEY while waiting: they left for a call back


class TransferOutcome(str, Enum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"


@runtime_checkable
class Channel(Protocol):
    info: CallInfo
    #: The caller's words arrive as text (the simulator, flow tests): no recogniser is needed to hear them.
    hears_words: bool

    async def answer(self) -> None: ...

    async def play(self, prompt_ids: Sequence[str], *, interruptible: bool = True) -> str:
        """Play prompts in order. Returns the key that interrupted them ("" if none); the key is kept
        as type-ahead by the caller of this method. A non-interruptible play ignores keys."""
        ...

    async def read_digits(
        self, *, max_digits: int, first_timeout_s: float, inter_digit_timeout_s: float, terminator: str = "#"
    ) -> Digits:
        """Wait for keys (no prompt playing); any key of `terminator` ends the entry ("" for none)."""
        ...

    async def late_key(self, expected: str, *, within_s: float) -> str:
        """A key pressed within `within_s` (e.g. the "#" a caller adds after a full-length number), or
        "". A scripted caller presses it only when its next action starts with `expected`."""
        ...

    async def listen(self, *, max_seconds: float, silence_seconds: float, beep: bool = False) -> Heard:
        """Capture what the caller says after a prompt."""
        ...

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable (agents see the call's context this way)."""
        ...

    async def queue(self, queue: str, *, context: Mapping[str, str], timeout_s: float) -> QueueOutcome: ...

    async def transfer(self, number: str, *, timeout_s: float) -> TransferOutcome: ...

    async def hangup(self) -> None: ...

    async def hangup_cause(self) -> int | None:
        """After the caller left: the Q.850 cause their line ended with (16 is a normal hang-up), None
        when unknown. Tells a dropped call from a caller who hung up."""
        ...
