"""Callers as they really behave, through Asterisk 22 and the real IVR (what issue 8 found on real calls):

- one who only listens, keying and saying nothing, ends where the flows send them (a person), never in
  the dialplan's fallback: no AGI command may be cut short of what it does (a 30 s menu prompt);
- an agent who hangs up first leaves the call answered, with the caller queued once;
- a caller ID with a line break in it (an escaped %0A in the SIP From) still gets the greeting, the
  protocol and a call row;
- the "#" asked for after a full-length number ends the number and cuts nothing that follows;
- a caller silent at a spoken question moves on within seconds, whether their phone sends silence or
  no audio at all; and no call leaves a recording behind.

Every call is placed when the module starts (`in_flight`), with an agent in every queue who answers and
hangs up first, and a recogniser (the loopback Speech fake), so that menus listen as they do in service.
Each test awaits its own call. Where a call goes and what it hears come from the flows the IVR publishes
(the keys that lead to a node, a walk of the flows with a silent caller), so the tests hold when menus are
reworded or renumbered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from ivr import phone
from ivr.asterisk.conf import QUEUES
from ivr.asterisk.sipp import CallResult, CallScript, Speech
from ivr.engine.verbs.collect import Collect
from ivr.engine.verbs.hangup import Hangup
from ivr.engine.verbs.menu import Menu
from ivr.engine.verbs.play import Play
from ivr.protocol_number import make_call_protocol, make_ticket_number
from ivr.store.seed import KNOWN_CALLER
from ivr.voice.build import total_duration

from .ami import Ami, Message
from .conftest import BRIEF_AGENT_INTERFACE, E2EAsterisk, ami_session, queue_member, serve_ivr
from .ivr_process import IvrProcess
from .loopback import Loopback, loopback_servers
from .scripts import Journeys, Walk, answered_call, visit_of, walk_silent
from .store import StoredCall, StoreReader

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LISTENER = "3197770001"  # keys nothing, says nothing
HUMAN_FIRST = "3197770002"  # asks for a person at the first menu
BROKEN_CALLER_ID = "31977%0A70003"  # a line break inside the number, escaped in the From URI
SILENT_NO_AUDIO = "3197770004"  # silent at a spoken question, sending no RTP (SIPp, a VAD phone)
SILENT_WITH_AUDIO = "3197770005"  # silent at a spoken question, sending RTP silence (most phones)
OWN_TICKET_SEQUENCE = 102  # the known caller's ticket in progress (ivr/store/seed.py)
TICKET_STATUS = "ticket_status"  # the collect of J6: a full-length number of it, then "#"
STATUS_SAID = "status_in_progress"  # the ticket's state, said after the number
NEXT_QUESTION = "anything_else"
# The spoken question of an unknown caller who keys no CNPJ and no customer code (J3: "diga o CNPJ"),
# on the way of a failure report (J4).
SPOKEN_QUESTION_JOURNEY = "failure"
SPOKEN_QUESTION = "identify/say_cnpj"
#: The bound of this module's IVR on commands Asterisk answers at once: far shorter than any menu.
INSTANT_COMMAND_S = 3.0
#: A silent caller moves on within the silence bound (2 s), the grace for no audio (1 s) and a margin.
SILENCE_NOTICED_S = 4.5
SILENT_CALL_S = 150.0  # silent callers' calls end on their own after the spoken question and a queue


@dataclass
class InFlight:
    before: set[str]  # the store's protocols before these calls
    recordings_before: set[Path]
    listener: Walk  # the listener's call, as the engine walks it
    ticket_entry: str  # the full-length number keyed, before its "#"
    calls: dict[str, asyncio.Task[CallResult]]


@pytest.fixture(scope="module")
def loopback() -> Iterator[Loopback]:
    with loopback_servers("") as servers:  # nobody here says a word
        yield servers


@pytest.fixture(scope="module")
def ivr(asterisk: E2EAsterisk, loopback: Loopback) -> Iterator[IvrProcess]:
    """This module's IVR has a recogniser: its menus and questions listen, as in service. Its bound on
    the commands Asterisk answers at once is short: every other command (a prompt, a wait, a recording,
    a queue) is bounded by what it does, whatever the length of the menus."""
    env = {**loopback.ivr_env(), "IVR_AGI__COMMAND_TIMEOUT_S": str(INSTANT_COMMAND_S)}
    with serve_ivr(asterisk, env) as process:
        yield process


@pytest.fixture(scope="module")
def journeys(ivr: IvrProcess) -> Journeys:
    return Journeys(ivr)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def events(asterisk: E2EAsterisk) -> AsyncIterator[Ami]:
    """AMI for the whole module, so no event of a call in flight is missed."""
    async with ami_session(asterisk) as ami:
        yield ami


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def brief_agents(events: Ami) -> AsyncIterator[None]:
    """In every queue, an agent who answers and hangs up first."""
    async with AsyncExitStack() as agents:
        for queue in QUEUES:
            await agents.enter_async_context(queue_member(events, queue, BRIEF_AGENT_INTERFACE))
        yield


def _silence(folder: Path, seconds: float) -> Speech:
    """What a phone sends while its caller says nothing: RTP carrying mu-law silence."""
    path = folder / "silence.ulaw"
    path.write_bytes(b"\xff" * round(8000 * seconds))
    return Speech(path, seconds)


def _goodbye_key(journeys: Journeys) -> str:
    """The key of the question after the status that ends the call."""
    verb = journeys.flow.nodes[NEXT_QUESTION].verb
    assert isinstance(verb, Menu), f"{NEXT_QUESTION} is no `menu` node"
    return next(k for k, option in verb.options.items() if isinstance(journeys.flow.nodes[option.go].verb, Hangup))


def _ticket_entry(journeys: Journeys, ivr: IvrProcess) -> str:
    """A number of the known caller's ticket in progress as long as the question takes (a ticket has 9
    digits, the call protocol it was opened in 12): a full-length entry."""
    verb = journeys.flow.nodes[TICKET_STATUS].verb
    assert isinstance(verb, Collect), f"{TICKET_STATUS} is no `collect` node"
    numbers = [make_ticket_number(OWN_TICKET_SEQUENCE),
               make_call_protocol(ivr.moment.year - 1, 9_000 + OWN_TICKET_SEQUENCE)]  # fmt: skip
    full = [number for number in numbers if len(number) == verb.max_digits]
    assert full, f"{TICKET_STATUS} takes up to {verb.max_digits} digits: no number of ticket 102 is that long"
    return full[0]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def in_flight(
    asterisk: E2EAsterisk, ivr: IvrProcess, journeys: Journeys, stored: StoreReader, brief_agents: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[InFlight]:  # fmt: skip
    before = stored.protocols()
    recordings_before = set(asterisk.settings.recordings_path.glob("*"))
    listener = await walk_silent(ivr, LISTENER)
    # Bounded by what the walk hears, plus every wait at its longest: the call then ends on its own.
    listening_s = total_duration(listener.heard, journeys.audio) + listener.waits * 10.0 + 60.0
    entry = _ticket_entry(journeys, ivr)
    full_number = (*journeys.keys_to(TICKET_STATUS), f"{entry}#", _goodbye_key(journeys))
    to_spoken_question = journeys.keys_to(SPOKEN_QUESTION_JOURNEY)
    silence = _silence(tmp_path_factory.mktemp("silence"), SILENT_CALL_S)
    with_audio = await journeys.script(SILENT_WITH_AUDIO, *to_spoken_question)
    broken = BROKEN_CALLER_ID.replace("%0A", "")
    scripts = {
        "listener": (CallScript(caller=LISTENER, end="wait_bye"), listening_s),
        "human_first": (await journeys.script(HUMAN_FIRST, journeys.human_key(journeys.first_menu)), 60.0),
        "broken_caller_id": (await journeys.script(broken, end="hangup", sent_as=BROKEN_CALLER_ID), 60.0),
        "full_number": (await journeys.script(KNOWN_CALLER, *full_number), 120.0),
        "silent_no_audio": (await journeys.script(SILENT_NO_AUDIO, *to_spoken_question), SILENT_CALL_S),
        "silent_with_audio": (
            CallScript(caller=SILENT_WITH_AUDIO, steps=(*with_audio.steps, silence), end="wait_bye"), SILENT_CALL_S
        ),
    }  # fmt: skip
    tasks = {
        name: asyncio.create_task(answered_call(asterisk, call, timeout_s=timeout_s))
        for name, (call, timeout_s) in scripts.items()
    }
    try:
        yield InFlight(before, recordings_before, listener, entry, tasks)
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def _the_call(in_flight: InFlight, stored: StoreReader, name: str, caller: str) -> StoredCall:
    """The call `name` from `caller`, once SIPp is done with it and the store has it ended."""
    result = await in_flight.calls[name]
    assert result.ok, result.summary()
    (call,) = await stored.ended_calls(in_flight.before, 1, caller=phone.normalise(caller))
    return call


def _of_channel(name: str, channel: str) -> Callable[[Message], bool]:
    return lambda e: e.get("Event") == name and e.get("Channel") == channel


async def test_a_caller_who_only_listens_ends_where_the_flows_send_them_not_in_the_fallback(
    in_flight: InFlight, stored: StoreReader, events: Ami
) -> None:
    walked = in_flight.listener.result
    assert walked.outcome.value == "queue", f"the flows leave a silent caller with no one: {walked.summary}"
    call = await _the_call(in_flight, stored, "listener", LISTENER)

    # Every prompt played to its end, through every retry, to the person the flows promise.
    assert call.outcome == walked.summary, call  # e.g. queue:technical, not failed
    assert call.path == walked.path
    joins = [e for e in events.events if _of_channel("QueueCallerJoin", call.channel)(e)]
    assert [e["Queue"] for e in joins] == [walked.target]  # once, by the IVR; never the fallback
    assert not [e for e in events.events if _of_channel("Newexten", call.channel)(e)
                and e.get("Context") == "sac-fallback"]  # fmt: skip


async def test_an_agent_who_hangs_up_first_leaves_the_call_answered_and_the_caller_queued_once(
    in_flight: InFlight, stored: StoreReader, events: Ami, journeys: Journeys
) -> None:
    call = await _the_call(in_flight, stored, "human_first", HUMAN_FIRST)
    assert in_flight.calls["human_first"].result().hung_up_by == "asterisk"  # the IVR ended the call

    completed = await events.wait_event(_of_channel("AgentComplete", call.channel), timeout_s=5)
    assert completed["Reason"] == "agent"  # the agent hung up first
    joins = [e for e in events.events if _of_channel("QueueCallerJoin", call.channel)(e)]
    assert len(joins) == 1, [e["Queue"] for e in joins]
    assert call.outcome == f"queue:{joins[0]['Queue']}", call


async def test_a_caller_id_with_a_line_break_still_gets_the_greeting_the_protocol_and_a_call_row(
    in_flight: InFlight, stored: StoreReader, journeys: Journeys
) -> None:
    number = BROKEN_CALLER_ID.replace("%0A", "")  # what is left once the dialplan filters it
    call = await _the_call(in_flight, stored, "broken_caller_id", number)

    # Filtered before AGI(): neither a broken agi_* block nor a number dropped as malformed.
    assert call.caller_id == phone.normalise(number)
    assert call.path[0] == journeys.flow.start and journeys.first_menu in call.path, call.path
    assert "announce_protocol" in call.path, call.path
    assert call.outcome == "hangup", call  # the caller hung up in the first menu: no failure, no fallback


async def test_the_hash_after_a_full_length_number_ends_it_and_cuts_nothing(
    in_flight: InFlight, stored: StoreReader, journeys: Journeys
) -> None:
    call = await _the_call(in_flight, stored, "full_number", KNOWN_CALLER)
    assert visit_of(call, TICKET_STATUS)[1] == in_flight.ticket_entry
    status = journeys.flow.nodes[STATUS_SAID].verb
    assert isinstance(status, Play), f"{STATUS_SAID} is no `play` node"
    said_s = total_duration(status.prompts, journeys.audio)
    spent_s = next(seconds for node, _, seconds in stored.timeline(call.protocol) if node == STATUS_SAID)
    print(f"\nstatus said in {spent_s:.2f} s (its prompts last {said_s:.2f} s)")
    assert spent_s >= 0.95 * said_s, f"the status was cut after {spent_s:.1f} s of {said_s:.1f} s"
    key = _goodbye_key(journeys)
    assert visit_of(call, NEXT_QUESTION)[1:] == (key, key), call.visits  # answered by the caller's key, not "#"
    assert call.outcome == "ended", call


@pytest.mark.parametrize(
    ("name", "caller"), [("silent_no_audio", SILENT_NO_AUDIO), ("silent_with_audio", SILENT_WITH_AUDIO)]
)
async def test_a_caller_silent_at_a_spoken_question_moves_on_within_seconds(
    in_flight: InFlight, stored: StoreReader, journeys: Journeys, name: str, caller: str
) -> None:
    call = await _the_call(in_flight, stored, name, caller)
    assert visit_of(call, SPOKEN_QUESTION)[2] == "no_input", call.visits
    flow, node = SPOKEN_QUESTION.split("/")
    verb = journeys.flows[flow].nodes[node].verb
    assert isinstance(verb, Collect) and verb.speech, f"{SPOKEN_QUESTION} is no spoken question"
    asked_s = total_duration(verb.prompt, journeys.audio)
    spent_s = next(seconds for visited, _, seconds in stored.timeline(call.protocol) if visited == SPOKEN_QUESTION)
    print(f"\n{name}: the spoken question took {spent_s:.2f} s, its prompt {asked_s:.2f} s")
    assert spent_s - asked_s < SILENCE_NOTICED_S, f"silence noticed after {spent_s - asked_s:.1f} s"


async def test_no_call_leaves_a_recording_behind(
    in_flight: InFlight, stored: StoreReader, asterisk: E2EAsterisk
) -> None:
    for result in await asyncio.gather(*in_flight.calls.values()):
        assert result.ok, result.summary()
    await stored.ended_calls(in_flight.before, len(in_flight.calls))  # the IVR is done with each of them
    left = set(asterisk.settings.recordings_path.glob("*")) - in_flight.recordings_before
    assert not left, sorted(path.name for path in left)
