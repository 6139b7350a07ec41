"""Call scripts for the e2e journeys, timed against the flows the IVR serves and their built prompts."""

from __future__ import annotations

from typing import Literal

from ivr.asterisk.sipp import CallResult, CallScript, Keys, Pause, Step
from ivr.asterisk.timing import MARGIN_S, said_s, until_protocol_said_s
from ivr.engine.verbs.say import Say
from ivr.flows.loader import load_flow

from .conftest import E2EAsterisk
from .ivr_process import IvrProcess
from .store import StoredCall

SERRA_AZUL_CNPJ_ROOT = "11222333"  # the known caller's account (ivr/store/seed.py)
GAP_S = 1.5  # after a key group: the next prompt has begun (keys between prompts are not heard)


class Journeys:
    """Call scripts timed against the flows the IVR serves and their built prompts."""

    def __init__(self, ivr: IvrProcess) -> None:
        self.flow = load_flow(ivr.settings.flows_dir / "sac.yaml")
        self.greeting_s = until_protocol_said_s(self.flow, ivr.moment.year)

    def script(
        self, caller: str | None, *groups: str | float, end: Literal["hangup", "wait_bye"] = "wait_bye"
    ) -> CallScript:
        """Keys after the protocol announcement; a number in `groups` is an extra wait (an announcement
        that cannot be interrupted)."""
        steps: list[Step] = [Pause(self.greeting_s + MARGIN_S)]
        for group in groups:
            steps += [Keys(group), Pause(GAP_S)] if isinstance(group, str) else [Pause(group)]
        return CallScript(caller=caller, steps=tuple(steps), end=end)

    def ticket_said_s(self, node: str) -> float:
        """How long `node` takes to say a ticket number (9 digits) with its prompts."""
        verb = self.flow.nodes[node].verb
        assert isinstance(verb, Say), f"{self.flow.source}: {node} is no `say` node"
        return said_s(verb, 9)


async def answered_call(asterisk: E2EAsterisk, call: CallScript, timeout_s: float = 60.0) -> CallResult:
    result = await asterisk.call(call, timeout_s=timeout_s)
    assert result.answered, result.summary()
    return result


def visit_of(call: StoredCall, node: str) -> tuple[str, str, str]:
    found = [v for v in call.visits if v[0] == node]
    assert found, f"call {call.protocol} never visited {node}: {call.path}"
    return found[0]
