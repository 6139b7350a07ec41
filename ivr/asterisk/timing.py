"""How long a scripted caller must wait before keys count, from the built prompts' measured durations.

SIPp cannot hear: a key sent during a prompt that cannot be interrupted (the protocol announcements)
is lost, so a script waits for the announcement's length (DECISIONS: "SIPp runs on its own timeline").
The length is computed from the prompt ids the engine plays (`say_ids`, the same rendering), with the
slowest digit in every digit position, since a script is written before the call knows its numbers.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.config import Settings
from ivr.engine.flow import Flow
from ivr.engine.verbs.say import Say
from ivr.voice.build import AUDIO_SUBDIR, prompt_duration, total_duration
from ivr.voice.speak import say_ids


def _slowest_digit(audio_dir: Path) -> str:
    return max("0123456789", key=lambda d: prompt_duration(f"digit/{d}", audio_dir))


def said_s(say: Say, digits: int, audio_dir: Path, year: int | None = None) -> float:
    """Seconds a protocol-like `say` node lasts, as built in `audio_dir`, for the slowest number of that
    many digits (a call protocol starts with its year)."""
    slow = _slowest_digit(audio_dir)
    value = f"{year}{slow * (digits - 4)}" if year is not None else slow * digits
    return total_duration([*say.before, *say_ids(say.what, value, **say.options), *say.after], audio_dir)


def until_protocol_said_s(flow: Flow, year: int, audio_dir: Path) -> float:
    """Seconds from the answer to the end of the call protocol's announcement, as built in `audio_dir`:
    every prompt of the nodes before it (keyed through by nobody) and the announcement itself."""
    node = flow.start_node
    before: list[str] = []
    for _ in range(len(flow.nodes)):  # bounded: each node at most once on the way
        verb = node.verb
        if isinstance(verb, Say) and verb.announces_protocol:
            return total_duration(before, audio_dir) + said_s(verb, 12, audio_dir, year)
        # Before the announcement the caller is asked nothing: every way out of a node leads on to the
        # same next node (a caller-ID lookup, say).
        ways = {target for _, target in verb.targets()}
        if len(ways) != 1:
            raise AssertionError(f"{flow.source}: node {node.name} ({verb.kind}) branches before the protocol")
        before += verb.prompt_ids()
        node = flow.nodes[ways.pop()]
    raise AssertionError(f"{flow.source}: no announcement of the call protocol from {flow.start}")


#: Past a measured announcement: protocol allocation, lookups, a busy machine.
MARGIN_S = 1.5


def first_keys_s(settings: Settings, now: datetime, flow_name: str = "sac") -> float:
    """When a scripted call to the SAC number, placed `now`, may send its first keys: the served flow's
    greeting and protocol announcement (as built now, for the protocol of `now`'s year), plus a margin."""
    from ivr.flows.loader import load_flow

    flow = load_flow(settings.flows_dir / f"{flow_name}.yaml")
    year = now.astimezone(ZoneInfo(settings.timezone)).year
    return until_protocol_said_s(flow, year, settings.prompts_dir / AUDIO_SUBDIR) + MARGIN_S
