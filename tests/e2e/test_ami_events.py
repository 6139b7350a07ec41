"""The IVR's manager user is sent only the AMI events the IVR uses (asterisk_conf/manager.conf.j2's
eventfilter lines), decided by the real Asterisk 22 on a real call through the IVR to an agent.

A harness session that reads every class hears the same call: its events of the classes the IVR's user
reads (``Privilege`` within call,agent) are what that user would be sent without the filters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ivr.store.seed import KNOWN_CALLER
from tests.asterisk.test_manager_privileges import events_consumed, granted

from .ami import Ami, Message
from .conftest import E2EAsterisk, ami_session, queue_member
from .ivr_process import IvrProcess
from .scripts import Journeys, answered_call

pytestmark = pytest.mark.e2e

#: Events this call raises that the IVR folds or waits for: the filter must let each through.
NEEDED = {
    "Newchannel", "Hangup", "DialEnd", "OriginateResponse", "QueueCallerJoin", "QueueCallerLeave",
    "AgentCalled", "AgentConnect", "AgentComplete",
}  # fmt: skip


def _event(name: str, **fields: str) -> Callable[[Message], bool]:
    return lambda e: e.get("Event") == name and all(e.get(k) == v for k, v in fields.items())


def _all_hung_up() -> Callable[[Message], bool]:
    """Matches the Hangup that leaves none of the channels created since login up (fed events in order)."""
    up: set[str] = set()

    def match(event: Message) -> bool:
        if event.get("Event") == "Newchannel":
            up.add(event["Uniqueid"])
        elif event.get("Event") == "Hangup":
            up.discard(event["Uniqueid"])
            return not up
        return False

    return match


def _until(events: list[Message], match: Callable[[Message], bool]) -> list[Message]:
    """`events` up to the first that `match` accepts, included."""
    end = next(i for i, e in enumerate(events) if match(e))
    return events[: end + 1]


def _classes(event: Message) -> set[str]:
    return set(event.get("Privilege", "").split(",")) - {"all"}


async def test_the_ivrs_manager_user_hears_only_the_events_the_ivr_uses(
    asterisk: E2EAsterisk, ivr: IvrProcess, ami: Ami
) -> None:
    s = asterisk.settings.ami
    script = await Journeys(ivr).script(KNOWN_CALLER, "0")  # main_menu 0: the technical queue
    async with ami_session(asterisk) as everything:
        ivr_user = await Ami.connect(s.host, s.port, s.username, s.secret.get_secret_value())
        try:
            async with queue_member(ami, "technical", "PJSIP/agent-bia"):  # Bia's SIP phone answers
                phone = asyncio.create_task(asterisk.answer_as_agent("bia", timeout_s=script.steps_s + 40))
                call = asyncio.create_task(answered_call(asterisk, script))
                joined = await ivr_user.wait_event(
                    _event("QueueCallerJoin", Queue="technical", CallerIDNum=KNOWN_CALLER),
                    timeout_s=script.steps_s + 15,
                )
                await ivr_user.wait_event(_event("AgentConnect", Channel=joined["Channel"]), timeout_s=10)
                # While the call is up: a call back's Originate, and the lists the live model resyncs from.
                placed = await ivr_user.action(
                    "Originate", Channel="Local/brief@sac-test-agent/n", Context="sac-test-agent", Exten="brief",
                    Priority="1", Async="true",
                )  # fmt: skip
                status = await ivr_user.action("QueueStatus", Queue="technical")
                channels = await ivr_user.action("CoreShowChannels")
                await ivr_user.wait_event(_event("OriginateResponse", ActionID=placed["ActionID"]), timeout_s=10)
                await ami.action("Hangup", Channel=joined["Channel"])
                await call, await phone
                last = await ivr_user.wait_event(_all_hung_up(), timeout_s=10)
                # The same moment in the harness's stream: both windows end on this Hangup.
                await everything.wait_event(_event("Hangup", Uniqueid=last["Uniqueid"]), timeout_s=10)
        finally:
            await ivr_user.close()

    read = granted("read")  # an event is sent to the IVR's user when all its classes are among these
    lists = {status["ActionID"], channels["ActionID"]}
    # An action's list is part of its reply, which filters never touch: it arrives whole.
    listed = {e["Event"] for e in ivr_user.events if e.get("ActionID") in lists}
    assert {"QueueParams", "QueueMember", "QueueStatusComplete", "CoreShowChannel"} <= listed, listed
    # Both windows end on the same Hangup (the queue member's removal comes after it).
    ended = _event("Hangup", Uniqueid=last["Uniqueid"])
    heard = [e["Event"] for e in _until(ivr_user.events, ended) if e.get("ActionID") not in lists]
    unfiltered = [e["Event"] for e in _until(everything.events, ended) if _classes(e) and _classes(e) <= read]
    consumed = events_consumed()
    assert set(heard) <= consumed, f"sent to the IVR's user, never used: {sorted(set(heard) - consumed)}"
    assert NEEDED <= set(heard), f"the IVR's user missed {sorted(NEEDED - set(heard))}"
    assert set(heard) == set(unfiltered) & consumed  # nothing the IVR uses was held back
    assert set(unfiltered) - consumed, "this call raised no unused event: it proves nothing"
