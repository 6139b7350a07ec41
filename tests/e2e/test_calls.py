"""Callers' journeys through the real IVR: SIPp -> Asterisk 22 -> `ivr serve` -> the demo-seeded store.

Outcomes are read from the store (calls, node visits, tickets) and from AMI, never from logs. Keys are
timed by a walk of the same call through the published flows (tests/e2e/scripts.py): one group per
question, sent once what is said before it is over. The journeys that need only a caller are placed at
once when the module starts (`in_flight`); the queue, kill and load tests run on their own after them.
When the menus change, update the key sequences below (one per journey, with the nodes they answer).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from ivr import phone
from ivr.asterisk.sipp import CallResult, CallScript, Keys, Pause
from ivr.engine.channel import CALLBACK_KEY
from ivr.protocol_number import make_ticket_number
from ivr.store.seed import KNOWN_CALLER
from tests.screenpop.conftest import SECRET, Receiver

from .ami import Ami
from .conftest import (  # fmt: skip
    AGENT_INTERFACE,
    RINGING_AGENT_INTERFACE,
    WAITING_CALLER,
    E2EAsterisk,
    RecordTiming,
    free_port,
    queue_member,
    serve_ivr,
)
from .ivr_process import IvrProcess
from .scripts import (  # fmt: skip
    HOSPITAL_CNPJ,
    OWN_TICKET,
    SERRA_AZUL_CNPJ_ROOT,
    TECHNICAL_TICKET,
    TICKET_STATUS,
    UNKNOWN_CALLER,
    Journeys,
    answered_call,
    visit_of,
)
from .store import StoredCall, StoreReader, wait_for

pytestmark = pytest.mark.e2e

# --- the journeys: keys per prompt, and the nodes (flows/sac.yaml, flows/identify.yaml) they answer ---
# Demo accounts (ivr/store/seed.py): KNOWN_CALLER is Transportes Serra Azul, CNPJ 11.222.333/0001-81;
# Hospital Vale do Aço (CNPJ 45.263.816/0001-46) has one circuit and no outage.
HANGING_UP_CALLER = "3198887777"
OTHERS_TICKET = make_ticket_number(201)  # Hospital Vale do Aço's ticket: not the known caller's
# TICKET_STATUS (tests/e2e/scripts.py) for another customer's ticket: status_not_found
TICKET_STATUS_OTHERS = ("1", "2", f"{OTHERS_TICKET}#", "1")
# main_menu 2 -> billing -> identify/ask_cnpj_root (8 digits #) -> identify/check_cnpj_root
# -> invoice_lookup -> say_overdue -> billing_menu 0 -> billing_hours (open) -> billing_queue
BILLING_AGENT = ("2", f"{SERRA_AZUL_CNPJ_ROOT}#", "0")
# main_menu 1 -> technical_entry -> technical (the technical menu): the caller hangs up there
HANG_UP_IN_MENU = ("1",)


def _event(name: str, **fields: str) -> Callable[[dict[str, str]], bool]:
    return lambda e: e.get("Event") == name and all(e.get(k) == v for k, v in fields.items())


@pytest.fixture(scope="module")
def pop_port() -> int:
    return free_port(socket.SOCK_STREAM)


@pytest.fixture(scope="module")
def ivr(asterisk: E2EAsterisk, pop_port: int) -> Iterator[IvrProcess]:
    """This module's IVR sends screen pops to a desktop on `pop_port`, up in the test that expects one (pops
    of other tests, if any, find it down and are retried in the outbox until they are too old)."""
    env = {"IVR_SCREEN_POP__URL": f"http://127.0.0.1:{pop_port}/pops", "IVR_SCREEN_POP__SECRET": SECRET}
    with serve_ivr(asterisk, env) as process:
        yield process


@pytest.fixture(scope="module")
def journeys(ivr: IvrProcess) -> Journeys:
    return Journeys(ivr)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def in_flight(
    asterisk: E2EAsterisk, journeys: Journeys, stored: StoreReader
) -> AsyncIterator[InFlight]:
    """The journeys that need nothing but a caller, all placed at once: each test awaits its own."""
    before = stored.protocols()
    scripts = {
        "own_ticket": await journeys.script(KNOWN_CALLER, *TICKET_STATUS),
        "others_ticket": await journeys.script(KNOWN_CALLER, *TICKET_STATUS_OTHERS),
        "technical_ticket": await journeys.script(UNKNOWN_CALLER, *TECHNICAL_TICKET),
        "hang_up_in_menu": await journeys.script(HANGING_UP_CALLER, *HANG_UP_IN_MENU, end="hangup"),
    }
    tasks = {
        name: asyncio.create_task(answered_call(asterisk, call, timeout_s=call.steps_s + 45))
        for name, call in scripts.items()
    }
    try:
        yield InFlight(before, tasks)
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


@dataclass
class InFlight:
    before: set[str]  # the store's protocols before these calls
    calls: dict[str, asyncio.Task[CallResult]]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_known_caller_hears_the_status_of_their_ticket_and_nothing_of_another_customers(
    in_flight: InFlight, stored: StoreReader
) -> None:
    for name in ("own_ticket", "others_ticket"):
        result = await in_flight.calls[name]
        assert result.ok and result.hung_up_by == "asterisk", result.summary()
    calls = await stored.ended_calls(in_flight.before, 2, caller=KNOWN_CALLER)
    own = next(c for c in calls if "status_not_found" not in c.path)
    other = next(c for c in calls if c is not own)

    assert own.path[:2] == ["greet", "identify_by_caller"] and "announce_protocol" in own.path, own.path
    assert visit_of(own, "ticket_status")[1] == OWN_TICKET
    assert visit_of(own, "status_lookup")[2] == "found"
    assert "status_in_progress" in own.path, own.path  # the ticket's state said to the caller
    assert own.outcome == "ended" and own.path[-1] == "goodbye", own
    # The other customer's ticket exists, but this caller hears only that it is not on their account.
    assert stored.ticket_owner(OTHERS_TICKET) is not None
    assert visit_of(other, "status_lookup")[2] == "not_found"
    assert not {"status_in_progress", "status_resolved", "status_say"} & set(other.path), other.path
    assert own.tickets == other.tickets == []


@pytest.mark.asyncio(loop_scope="module")
async def test_an_unknown_caller_gives_the_cnpj_and_opens_a_technical_ticket(
    in_flight: InFlight, stored: StoreReader
) -> None:
    result = await in_flight.calls["technical_ticket"]
    assert result.ok and result.hung_up_by == "asterisk", result.summary()
    (call,) = await stored.ended_calls(in_flight.before, 1, caller=phone.normalise(UNKNOWN_CALLER))

    assert visit_of(call, "identify_by_caller")[2] == "not_found"
    assert "identify/ask_cnpj" in call.path and visit_of(call, "identify/find_by_cnpj")[2] == "found", call.path
    assert visit_of(call, "identify/ask_cnpj")[1] != HOSPITAL_CNPJ  # caller data is masked in the store
    ((number, kind),) = call.tickets
    assert kind == "technical_failure" and len(number) == 9
    assert "open_failure" in call.path and "failure_opened" in call.path, call.path
    assert call.path[-2:] == ["anything_else", "goodbye"] and call.outcome == "ended", call


@pytest.mark.asyncio(loop_scope="module")
async def test_a_caller_who_hangs_up_in_a_menu_leaves_the_partial_call_stored(
    in_flight: InFlight, stored: StoreReader
) -> None:
    result = await in_flight.calls["hang_up_in_menu"]
    assert result.ok and result.hung_up_by == "caller", result.summary()
    (call,) = await stored.ended_calls(in_flight.before, 1, caller=phone.normalise(HANGING_UP_CALLER))

    assert call.path[:2] == ["greet", "identify_by_caller"], call.path
    assert "main_menu" in call.path and call.path[-1] == "technical", call.path  # the menu the caller left
    assert call.visits[-1][2] == "hangup"
    assert call.outcome == "hangup" and call.tickets == []


async def test_a_caller_reaches_the_billing_queue_and_the_agent_sees_the_call(
    asterisk: E2EAsterisk, ivr: IvrProcess, journeys: Journeys, stored: StoreReader, ami: Ami, pop_port: int
) -> None:
    before = stored.protocols()
    script = await journeys.script(KNOWN_CALLER, *BILLING_AGENT)
    desk = Receiver(ivr.clock, port=pop_port)  # checks the signature, and the timestamp against the IVR's clock
    await desk.start()
    try:
        async with queue_member(ami, "billing", "PJSIP/agent-bia"):  # Bia's SIP phone answers
            phone = asyncio.create_task(asterisk.answer_as_agent("bia", timeout_s=script.steps_s + 40))
            call = asyncio.create_task(answered_call(asterisk, script))
            joined = await ami.wait_event(
                _event("QueueCallerJoin", Queue="billing", CallerIDNum=KNOWN_CALLER), timeout_s=script.steps_s + 15
            )
            channel = joined["Channel"]
            called = await ami.wait_event(_event("AgentCalled", Channel=channel), timeout_s=10)
            await ami.wait_event(_event("AgentConnect", Channel=channel), timeout_s=10)
            pop = (await desk.next()).pop  # queued on AgentConnect, sent at once
            await ami.action("Hangup", Channel=channel)
            result, answered = await call, await phone
    finally:
        await desk.stop()
    assert result.hung_up_by == "asterisk", result.summary()
    assert answered.received[0].startswith("INVITE sip:bia@127.0.0.4"), answered.received
    (stored_call,) = await stored.ended_calls(before, 1)
    assert (pop["protocol"], pop["queue"], pop["caller_id"]) == (stored_call.protocol, "billing", KNOWN_CALLER)
    assert pop["customer"]["name"] == "Transportes Serra Azul Ltda" and "billing_menu" in pop["path"]
    assert pop["agent"]["interface"] == "PJSIP/agent-bia"
    assert pop["keyed"].startswith("main_menu=2 ") and SERRA_AZUL_CNPJ_ROOT not in pop["keyed"], pop["keyed"]
    assert desk.refused == []

    context = dict(line.split("=", 1) for line in called["ChanVariable"].splitlines() if "=" in line)
    assert context["IVR_PROTOCOL"] == stored_call.protocol
    assert context["IVR_CALLER_ID"] == KNOWN_CALLER
    assert context["IVR_CUSTOMER_NAME"] == "Transportes Serra Azul Ltda"  # the agent knows who calls
    assert "billing_menu" in context["IVR_PATH"].split(">")  # and what they did in the IVR
    assert stored_call.linked_id == joined["Linkedid"]  # the CDR line and the IVR record join
    assert "identify/check_cnpj_root" in stored_call.path and stored_call.path[-1] == "billing_queue"
    assert visit_of(stored_call, "billing_hours")[2] == "open"
    assert stored_call.outcome == "queue:billing", stored_call


async def test_a_caller_behind_another_hears_the_wait_and_takes_a_call_back_with_1(
    asterisk: E2EAsterisk, journeys: Journeys, stored: StoreReader, ami: Ami, record_timing: RecordTiming
) -> None:
    """The IVR reads the technical queue over AMI (one caller waiting, the one agent ringing for them), says
    the wait and the call-back key, and 1 pressed during it leads to the call back, not into the queue."""
    before = stored.protocols()
    to_agent = await journeys.script(KNOWN_CALLER, "0")  # timed by a walk that knows no queue state
    # 1 four seconds into the wait and the key (4.6 s as built for the key alone, when the queue has no
    # history yet), then a hang-up during the number read back.
    script = CallScript(caller=KNOWN_CALLER, steps=(*to_agent.steps, Pause(4.0), Keys(CALLBACK_KEY), Pause(4.0)))
    async with queue_member(ami, "technical", RINGING_AGENT_INTERFACE):
        waiting = await ami.action("Originate", Channel=WAITING_CALLER, Application="Wait", Data="30", Async="true")
        assert waiting.get("Response") == "Success", waiting
        ahead = await ami.wait_event(_event("QueueCallerJoin", Queue="technical"), timeout_s=5)
        started = time.monotonic()
        result = await answered_call(asterisk, script, timeout_s=script.steps_s + 20)
        record_timing("  queue state said and 1 taken (call)", time.monotonic() - started)
        await ami.action("Hangup", Channel=ahead["Channel"])
    assert result.hung_up_by == "caller", result.summary()
    (call,) = await stored.ended_calls(before, 1)

    assert call.path[call.path.index("agent") + 1] == "callback_offered", call.path
    assert visit_of(call, "agent")[2] == "callback:technical"
    # Taken before joining (the key was being said), not by leaving the queue with the key.
    assert not [e for e in ami.events if e.get("Event") == "QueueCallerJoin" and e.get("Channel") == call.channel]
    assert "callback_read_back" in call.path and call.outcome == "hangup", call


@pytest.mark.parametrize("ahead", [0, 1, 3])
async def test_in_the_queue_the_caller_hears_their_place_in_portuguese(
    asterisk: E2EAsterisk, journeys: Journeys, ami: Ami, ahead: int
) -> None:
    """With `ahead` callers waiting before them, the queue itself says the place as the caller joins
    (queues.conf announce-position): our pt-BR prompts around the number, and the number by Asterisk's
    Portuguese number saying over our own fragments, which the calls' language finds before Asterisk's
    English files."""
    to_agent = await journeys.script(KNOWN_CALLER, "0")
    script = CallScript(caller=KNOWN_CALLER, steps=(*to_agent.steps, Pause(40.0)), end="wait_bye")
    call = asyncio.create_task(answered_call(asterisk, script, timeout_s=script.steps_s + 20))
    caller = await ami.wait_event(lambda e: _event("Newchannel")(e) and e["Channel"].startswith("PJSIP/tester-"), 10)
    # The one agent is busy on another call: its state follows the caller's own SIP device, in use from now on.
    async with queue_member(ami, "technical", AGENT_INTERFACE, state_interface="PJSIP/tester"):
        waiting = []
        for place in range(1, ahead + 1):
            placed = await ami.action("Originate", Channel=WAITING_CALLER, Application="Wait", Data="60", Async="true")
            assert placed.get("Response") == "Success", placed
            waiting.append(await ami.wait_event(_event("QueueCallerJoin", Queue="technical", Position=str(place)), 5))
        joined = await ami.wait_event(
            _event("QueueCallerJoin", Queue="technical", Channel=caller["Channel"]), timeout_s=to_agent.steps_s + 20
        )
        assert joined["Position"] == str(ahead + 1)
        told = await wait_for(lambda: place_told(asterisk, joined["Channel"]), "the place said by the queue", 15)
        for channel in (joined["Channel"], *(w["Channel"] for w in waiting)):
            await ami.action("Hangup", Channel=channel)
        result = await call
    assert result.hung_up_by == "asterisk", result.summary()
    assert f"their queue position (which was {ahead + 1})" in told[-1]
    plays = [line for line in told if "Playing '" in line]
    played = [line.split("Playing '", 1)[1].split("' (language")[0].rsplit(".", 1)[0] for line in plays]
    prefix = asterisk.settings.agi.sound_prefix
    expected = [f"{prefix}/queue_next"] if ahead == 0 else [
        f"{prefix}/queue_position", f"digits/{ahead + 1}", f"{prefix}/queue_position_end"
    ]  # fmt: skip
    assert played == expected, told
    assert all("(language 'pt_BR')" in line for line in plays), told
    # Found in pt_BR first: our number is there (ivr.asterisk.root.install_say_files; which fragment each
    # file is, tests/asterisk/test_root.py), so Asterisk's English one is never reached.
    if ahead:
        assert asterisk.instance.host_path(f"/usr/share/asterisk/sounds/pt_BR/digits/{ahead + 1}.alaw").stat().st_size


def place_told(asterisk: E2EAsterisk, channel: str) -> list[str] | None:
    """Asterisk's log lines of `channel` from the queue's place announcement (its first prompt) up to its
    "Told ... position" line; None until that line is there."""
    lines = [line for line in asterisk.trace() if channel in line]
    told = next(
        (i for i, line in enumerate(lines) if f"Told {channel} in technical their queue position" in line), None
    )
    if told is None:
        return None
    starts = [
        i for i, line in enumerate(lines[:told])
        if "Playing 'sac/" in line and ("/queue_position." in line or "/queue_next." in line)
    ]  # fmt: skip
    return lines[starts[-1] : told + 1] if starts else None


async def test_a_killed_ivr_sends_its_caller_to_the_fallback_queue(
    asterisk: E2EAsterisk, ivr: IvrProcess, stored: StoreReader, ami: Ami, queue_agent: str,
    record_timing: RecordTiming,
) -> None:  # fmt: skip
    before = stored.protocols()
    call = asyncio.create_task(
        answered_call(asterisk, CallScript(caller=KNOWN_CALLER, steps=(Pause(40),), end="wait_bye"))
    )

    def in_menu() -> StoredCall | None:  # the announcement is over: the IVR holds the call in its menu
        calls = [stored.call(p) for p in stored.protocols() - before]
        return next((c for c in calls if "announce_protocol" in c.path), None)

    mid_call = await wait_for(in_menu, "call past its protocol announcement", timeout_s=30)
    killed = time.monotonic()
    ivr.kill()
    try:
        joined = await ami.wait_event(
            _event("QueueCallerJoin", Queue=asterisk.settings.asterisk.fallback_queue, CallerIDNum=KNOWN_CALLER),
            timeout_s=10,
        )
        latency = time.monotonic() - killed
    finally:
        record_timing("  ivr serve restart", ivr.start())  # the next tests need it
    record_timing("  IVR SIGKILL -> QueueCallerJoin (fallback)", latency)
    print(f"\nIVR killed mid-call: the caller joined the fallback queue after {latency:.3f} s")
    assert latency < 5
    assert joined["Channel"] == mid_call.channel and joined["Linkedid"] == mid_call.linked_id

    await ami.action("Hangup", Channel=joined["Channel"])
    result = await call
    assert result.hung_up_by == "asterisk", result.summary()


@pytest.mark.solo  # 1.25 of two cores for a minute, measured: beside another shard's calls, keys came late
async def test_twenty_simultaneous_calls_each_get_their_own_protocol_and_record(
    asterisk: E2EAsterisk, journeys: Journeys, stored: StoreReader, record_timing: RecordTiming
) -> None:
    script = await journeys.script(KNOWN_CALLER, *TICKET_STATUS)
    before = stored.protocols()
    started = time.monotonic()
    async with asyncio.TaskGroup() as placing:  # one call failing ends the others: none left running
        bound_s = script.steps_s + 45
        placed = [placing.create_task(answered_call(asterisk, script, timeout_s=bound_s)) for _ in range(20)]
    results = [call.result() for call in placed]
    record_timing("  20 simultaneous calls", time.monotonic() - started)
    for result in results:
        assert result.ok and result.hung_up_by == "asterisk", result.summary()
    calls = await stored.ended_calls(before, 20, timeout_s=20)

    assert len({c.protocol for c in calls}) == 20
    assert len({c.unique_id for c in calls}) == 20
    for call in calls:
        assert call.outcome == "ended" and "status_in_progress" in call.path, call
