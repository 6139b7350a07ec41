"""Call scripts for the e2e journeys, timed against the flows the IVR serves and their built prompts.

SIPp cannot hear, so a script is timed by a walk of the same call: the published flows, walked in-process
by the engine with the same inputs, over the same demo data and at the same moment as the IVR (`walk`).
Each key group is sent once everything said before its question is over (an announcement such as a
ticket number cannot be interrupted, and keys pressed during it are lost), a margin into the question's
own prompt, which the keys interrupt.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from integrations.catalog import declared_registry
from ivr.app import demo_services
from ivr.asterisk.sipp import CallResult, CallScript, Keys, Pause, Speech, Step
from ivr.asterisk.timing import MARGIN_S
from ivr.clock import ManualClock
from ivr.engine import interpreter
from ivr.engine.flow import Flow
from ivr.engine.ports import CallInfo, QueueLoad
from ivr.engine.scripted import ScriptedChannel, StatedQueues
from ivr.engine.verbs.menu import Menu
from ivr.engine.verbs.queue import Queue
from ivr.flows.library import FlowLibrary
from ivr.protocol_number import make_ticket_number
from ivr.voice.build import AUDIO_SUBDIR, prompt_duration, total_duration

from .conftest import E2EAsterisk
from .ivr_process import IvrProcess
from .store import StoredCall

SERRA_AZUL_CNPJ_ROOT = "11222333"  # the known caller's account (ivr/store/seed.py)
UNKNOWN_CALLER = "3199990000"
OWN_TICKET = make_ticket_number(102)  # Serra Azul's ticket in progress
HOSPITAL_CNPJ = "45263816000146"  # Hospital Vale do Aço: one circuit, no outage

# Journeys placed by the e2e tests and by bench/capacity_calls.py (keys per prompt, with the nodes of
# flows/sac.yaml and flows/identify.yaml they answer). When the menus change, update them here.
# main_menu 1 -> technical_entry (a known caller hears their open ticket first) -> technical 2 ->
# ticket_status (number #) -> status_who -> status_lookup -> status_in_progress (status_not_found for
# another customer's ticket) -> ... -> anything_else 1 -> goodbye
TICKET_STATUS = ("1", "2", f"{OWN_TICKET}#", "1")
# main_menu 1 -> technical 1 -> failure -> identify/ask_cnpj (14 digits #) -> identify/find_by_cnpj
# -> suspension_lookup -> failure_check (no outage) -> failure_symptom 1 -> open_failure -> failure_opened
# -> ... -> anything_else 1 -> goodbye
TECHNICAL_TICKET = ("1", "1", f"{HOSPITAL_CNPJ}#", "1", "1")


# main_menu 2 -> billing -> identify/ask_cnpj_root (#) -> say_overdue -> billing_menu 1
# -> copies 1 -> boleto_copy -> document_month 2 -> ask_month (MM #) -> send_document -> document_sent
# -> line_offer 2 -> anything_else 1 -> goodbye
def boleto_of(month: date) -> tuple[str, ...]:
    return ("2", f"{SERRA_AZUL_CNPJ_ROOT}#", "1", "1", "2", f"{month:%m}#", "2", "1")


def month_before(day: date) -> date:
    """The first of the month before `day`'s: the demo accounts' overdue boleto (ivr/store/seed.py)."""
    first = day.replace(day=1)
    return first.replace(year=first.year - 1, month=12) if first.month == 1 else first.replace(month=first.month - 1)
#: More waits than any flow makes of a caller who never answers (each question gives up after a few).
SILENT_WAITS = 100
#: The tone RECORD FILE plays before it records (ivr/asterisk/root.py install_beep).
BEEP_S = 0.25
_ANSWERS = ("keys", "say", "silence")  # what a scripted caller's input is recorded as

Plays = list[tuple[str, ...]]  # the prompt ids of each play, in order


@dataclass(frozen=True)
class Spoken:
    """Words streamed into the call as audio, and the same words as the walk hears them."""

    speech: Speech
    words: str


#: A script's inputs: keys, spoken words, or an extra wait in seconds on SIPp's timeline.
Input = str | Spoken | float


@dataclass(frozen=True)
class Walk:
    """A call through the published flows, walked in-process by the engine with a scripted caller."""

    result: interpreter.CallResult
    stretches: list[Plays]  # what is said before each input, then after the last one

    @property
    def heard(self) -> list[str]:
        return [prompt for plays in self.stretches for ids in plays for prompt in ids]

    @property
    def waits(self) -> int:
        """How often the IVR waited for the caller."""
        return len(self.stretches) - 1


def published(ivr: IvrProcess) -> dict[str, Flow]:
    """The flows `ivr serve` published on its start, by name."""
    library = FlowLibrary(
        ivr.var_dir / "published",
        catalogue=ivr.settings.prompts_dir,
        registry=declared_registry(),
        clock=ManualClock(ivr.moment),
    )
    library.reload()
    return dict(library.snapshot().flows)


async def walk(
    ivr: IvrProcess, caller: str | None, inputs: Sequence[str], queues: Mapping[str, QueueLoad] | None = None
) -> Walk:
    """The call `caller` makes with `inputs` (ivr.engine.scripted's forms; once they run out, the caller
    hangs up at the next question), over a fresh demo store seeded as the IVR's, at the IVR's moment. With
    `queues`, the queues stand so when the call reaches them (else: unknown, as with AMI down)."""
    flows = published(ivr)
    with tempfile.TemporaryDirectory(prefix="sac-e2e-walk-") as directory:
        async with demo_services(ivr.settings, Path(directory), clock=ManualClock(ivr.moment)) as services:
            if queues is not None:
                services = dataclasses.replace(services, queues=StatedQueues(dict(queues)))
            channel = ScriptedChannel(CallInfo(caller_id=caller, dialled="30033336"), list(inputs))
            result = await interpreter.run_call(flows["sac"], channel, services, flows=flows, settings=ivr.settings)
    stretches: list[Plays] = [[]]
    for event in channel.events:
        if event.kind == "play":
            stretches[-1].append(event.prompt_ids)
        elif event.kind in _ANSWERS:
            stretches.append([])
    return Walk(result, stretches)


async def walk_silent(ivr: IvrProcess, caller: str | None) -> Walk:
    """Where the published flows take a caller who keys nothing and says nothing."""
    silent = await walk(ivr, caller, ["silence"] * SILENT_WAITS)
    assert silent.waits < SILENT_WAITS, f"a silent caller's call did not end within {SILENT_WAITS} waits"
    return silent


def said_s(plays: Plays, audio: Path) -> float:
    """How long `plays` last at most, as built in `audio`: a digit (of a number the walk cannot know, such
    as the call's protocol) is counted as the slowest digit."""
    slowest = max(prompt_duration(f"digit/{d}", audio) for d in "0123456789")
    prompts = [prompt for ids in plays for prompt in ids]
    digits = sum(prompt.startswith("digit/") for prompt in prompts)
    return total_duration([p for p in prompts if not p.startswith("digit/")], audio) + digits * slowest


class Journeys:
    """Call scripts timed against the flows the IVR serves and their built prompts."""

    def __init__(self, ivr: IvrProcess) -> None:
        self.ivr = ivr
        self.flows = published(ivr)
        self.flow = self.flows["sac"]
        self.audio = ivr.settings.prompts_dir / AUDIO_SUBDIR  # the prompts `ivr serve` plays

    async def script(
        self,
        caller: str | None,
        *inputs: Input,
        end: Literal["hangup", "wait_bye"] = "wait_bye",
        sent_as: str | None = None,
        queues: Mapping[str, QueueLoad] | None = None,
    ) -> CallScript:
        """The call `caller` makes with `inputs`, timed by its walk (`queues` as `walk` takes them). With
        ``end="hangup"`` the caller hangs up once everything after the last input is said, up to the next
        question's prompt. `sent_as` is the From's number when it is not `caller` as written (URI escapes)."""
        answers = [i if isinstance(i, str) else f"say:{i.words}" for i in inputs if not isinstance(i, float)]
        stretches = iter((await walk(self.ivr, caller, answers, queues)).stretches)
        steps: list[Step] = []
        for given in inputs:
            if isinstance(given, float):
                steps.append(Pause(given))
            elif isinstance(given, Spoken):  # after the prompt (not interruptible) and the beep
                steps += [Pause(said_s(next(stretches), self.audio) + BEEP_S + MARGIN_S), given.speech]
            else:  # into the question's own prompt, which the keys interrupt
                steps += [Pause(said_s(next(stretches)[:-1], self.audio) + MARGIN_S), Keys(given)]
        if end == "hangup":
            steps.append(Pause(said_s(next(stretches), self.audio) + MARGIN_S))
        return CallScript(caller=sent_as or caller, steps=tuple(steps), end=end)

    @property
    def first_menu(self) -> str:
        """The first menu a caller meets (the nodes before it ask nothing)."""
        seen: set[str] = set()
        ahead = [self.flow.start]
        while ahead:  # breadth first: the nearest menu
            name = ahead.pop(0)
            verb = self.flow.nodes[name].verb
            if isinstance(verb, Menu):
                return name
            seen.add(name)
            ahead += [target for _, target in verb.targets() if target not in seen and target in self.flow.nodes]
        raise AssertionError(f"{self.flow.source}: no menu reachable from {self.flow.start}")

    def keys_to(self, target: str) -> tuple[str, ...]:
        """The keys that lead from the first menu to node `target`, menu after menu (through the nodes
        between them that ask nothing): the menus' keys change, the nodes stay."""
        ahead: list[tuple[str, tuple[str, ...]]] = [(self.first_menu, ())]
        seen = {self.first_menu}
        while ahead:  # breadth first: the fewest keys
            name, keys = ahead.pop(0)
            verb = self.flow.nodes[name].verb
            if isinstance(verb, Menu):
                edges = [(option.go, (*keys, key)) for key, option in verb.options.items()]
            elif verb.waits_for_caller:
                continue
            else:
                edges = [(node, keys) for _, node in verb.targets()]
            for node, path in edges:
                if node == target:
                    return path
                if node not in seen and node in self.flow.nodes:
                    seen.add(node)
                    ahead.append((node, path))
        raise AssertionError(f"{self.flow.source}: no way from {self.first_menu} to {target} by menus alone")

    def human_key(self, menu: str) -> str:
        """The key of `menu` that goes straight to a queue: its way to a person."""
        verb = self.flow.nodes[menu].verb
        assert isinstance(verb, Menu), f"{self.flow.source}: {menu} is no `menu` node"
        return next(key for key, option in verb.options.items() if isinstance(self.flow.nodes[option.go].verb, Queue))


async def answered_call(asterisk: E2EAsterisk, call: CallScript, timeout_s: float = 60.0) -> CallResult:
    result = await asterisk.call(call, timeout_s=timeout_s)
    assert result.answered, result.summary()
    return result


def visit_of(call: StoredCall, node: str) -> tuple[str, str, str]:
    found = [v for v in call.visits if v[0] == node]
    assert found, f"call {call.protocol} never visited {node}: {call.path}"
    return found[0]
