"""``ivr flow simulate``: walk a flow in the terminal, hearing the prompts as text.

    ivr flow simulate flows/sac.yaml --caller 3133334444 --input "1,2,#"

With ``--input`` the caller's actions come from the list (see `ivr.engine.scripted` for the forms:
keys, ``barge:1``, ``say:quero segunda via``, ``silence``, ``hangup``); without it they are read from
the terminal, one per line, whenever the IVR waits. Numbers, money and dates are spoken as pt-BR words;
the supervisors' announcements in force in the store (`ivr announce`) are said as posted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TextIO

from ivr.config import Settings
from ivr.engine.channel import QueueOutcome, TransferOutcome
from ivr.engine.flow import Flow
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.ports import CallInfo, QueueLoad, Services
from ivr.engine.scripted import Event, ScriptedChannel, ScriptError, StatedQueues, parse_item
from ivr.voice.build import AUDIO_SUBDIR, announcement_texts
from ivr.voice.catalogue import Catalogue


def split_inputs(text: str) -> list[str]:
    """ "1, 2,#, say:quero segunda via" -> ["1", "2", "#", "say:quero segunda via"] (checked)."""
    return [parse_item(part) for part in text.split(",") if part.strip()]


class Printer:
    """Shows the call as a dialogue: what the IVR says (catalogue text, announcements' words) and what the
    caller does."""

    def __init__(self, catalogue: Catalogue, out: TextIO, audio_dir: Path) -> None:
        self.catalogue = catalogue
        self.out = out
        self.audio_dir = audio_dir  # where the announcements' audio, and their words, are

    def __call__(self, event: Event) -> None:
        if event.kind == "play":
            words = announcement_texts(self.audio_dir, event.prompt_ids)
            self.out.write(f"  IVR: {self.catalogue.render_text(event.prompt_ids, words)}\n")
        elif event.kind in ("keys", "say", "silence"):
            self.out.write(f"  caller ({event.kind}): {event.detail}\n")
        else:
            self.out.write(f"  [{event.kind}] {event.detail}\n")
        self.out.flush()


def terminal_reader(out: TextIO) -> Callable[[], Awaitable[list[str]]]:
    """Ask the person at the terminal for the caller's next action (end of input hangs up)."""

    async def more() -> list[str]:
        for _ in range(10):  # a few chances to type a valid action, then the caller "hangs up"
            line = await asyncio.to_thread(_read_line, out)
            if line is None:
                return ["hangup"]
            try:
                return split_inputs(line) or ["silence"]
            except ScriptError as exc:
                out.write(f"  ({exc})\n")
        return ["hangup"]

    return more


def _read_line(out: TextIO) -> str | None:
    out.write("  your move (keys, say:<words>, silence, hangup)> ")
    out.flush()
    line = sys.stdin.readline()
    return line.strip() if line else None


async def simulate(
    flow: Flow,
    services: Services,
    settings: Settings,
    *,
    caller: str | None,
    inputs: list[str] | None,
    flows: Mapping[str, Flow] = {},
    queues: Mapping[str, QueueOutcome] = {},
    queue_loads: Mapping[str, QueueLoad] = {},
    transfer: TransferOutcome = TransferOutcome.ANSWERED,
    out: TextIO | None = None,
) -> CallResult:
    """One call, shown on `out` (the terminal's stdout as it is when the call starts); `queue_loads` is how
    the queues stand before the caller joins (not stated: not known)."""
    out = out or sys.stdout
    services = dataclasses.replace(services, queues=StatedQueues(queue_loads))
    catalogue = Catalogue.load(Path(settings.prompts_dir))
    channel = ScriptedChannel(
        CallInfo(caller_id=caller, dialled=settings.page.sac_number, unique_id="simulator"),
        inputs or [],
        queue_outcomes=queues,
        transfer_outcome=transfer,
        more=None if inputs is not None else terminal_reader(out),
        on_event=Printer(catalogue, out, Path(settings.prompts_dir) / AUDIO_SUBDIR),
    )
    out.write(f"call from {caller or 'a withheld number'} to flow '{flow.name}' ({flow.source})\n")
    result = await run_call(flow, channel, services, flows=flows, settings=settings)
    out.write(f"\nprotocol {result.protocol}: {result.summary}\n")
    out.write(f"path: {' > '.join(result.path)}\n")
    for ticket in result.tickets:
        out.write(f"ticket opened: {ticket.number} ({ticket.type})\n")
    if result.reason:
        out.write(f"why it failed: {result.reason}\n")
    return result
