"""What a caller about to join a queue is told: an honest estimate of the wait.

The estimate comes from the queue's live state (`QueueLoad`): a caller joining now is behind every caller
already waiting; the free agents take the first of them at once, and each agent then frees up about once
per recent conversation (Asterisk's TalkTime). So with ``n`` callers left to serve before this one and
``k`` agents, the wait is about ``n * talk / k`` (the expected wait of the n-th in line with k agents whose
calls end at random). Without a recent conversation to go by, the recent average wait (Holdtime) is the
honest figure; without either, only the position is said.

It is said rounded the way a person would ("cerca de cinco minutos"), never "zero minutos": under a minute
is "menos de um minuto", beyond an hour "mais de uma hora".

    75 s         O tempo estimado de espera é de cerca de um minuto.
    13 min       O tempo estimado de espera é de cerca de quinze minutos.

The caller's place in line is said by the queue itself (Asterisk's announce-position, queues.conf) as they
join and whenever it changes while they wait: said here too, the caller would hear it twice in a row.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.engine.ports import QueueLoad
from ivr.voice.speak import cardinal_ids

#: From this many minutes the estimate is rounded to five: a precise "treze minutos" would promise too much.
ROUND_TO_FIVE_FROM_MIN = 10
LONGEST_SAID_MIN = 60


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    position: int  # 1: the next caller an agent takes
    seconds: float | None  # the expected wait; None when nothing recent tells it
    agent_free: bool  # an agent is free for this caller now: the call rings at once

    def over(self, threshold_s: float) -> bool:
        return self.seconds is not None and self.seconds > threshold_s


def estimate(load: QueueLoad) -> WaitEstimate:
    position = load.waiting + 1
    if load.available >= position:
        return WaitEstimate(position, 0.0, agent_free=True)
    if load.talk_s > 0 and load.agents > 0:
        seconds: float | None = (position - load.available) * load.talk_s / load.agents
    else:
        seconds = float(load.hold_s) if load.hold_s > 0 else None
    return WaitEstimate(position, seconds, agent_free=False)


def said_minutes(seconds: float) -> int | None:
    """The minutes said for a wait: 0 means "menos de um minuto", None "mais de uma hora"."""
    if seconds < 60:
        return 0
    minutes = seconds / 60
    if minutes > LONGEST_SAID_MIN:
        return None
    if minutes < ROUND_TO_FIVE_FROM_MIN:
        return max(1, int(minutes + 0.5))
    return min(LONGEST_SAID_MIN, 5 * int(minutes / 5 + 0.5))


def wait_ids(seconds: float) -> list[str]:
    minutes = said_minutes(seconds)
    if minutes == 0:
        return ["queue/wait_under_a_minute"]
    if minutes is None:
        return ["queue/wait_over_an_hour"]
    return ["queue/wait_about", *cardinal_ids(minutes), "time/minuto" if minutes == 1 else "time/minutos"]


def announcement_ids(wait: WaitEstimate) -> list[str]:
    """The wait, when it can be told."""
    return wait_ids(wait.seconds) if wait.seconds is not None else []
