"""``announce``: what supervisors posted for this caller with `ivr announce add`, while it is in force.

    announcements:                # right after the protocol, before the first menu
      announce:
      next: main_menu

Each announcement plays its own built audio, like a prompt. A caller hears those whose scope takes them in
(``all``, their city, their circuit; a caller not identified only ``all``), each text once per call, and
nothing at all, at no cost in time, when none is in force. A key stops them and is kept for the next
question (DTMF barge-in): a caller who already knows where they are going is not held back. The node's
visit records what was played ("announced 3,5", or "none"): how many callers heard each one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.engine.steps import GoTo, Next
from ivr.engine.verbs.base import Continues

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class Announce(Continues):
    kind = "announce"

    interruptible: bool = True

    async def run(self, call: CallContext) -> Next:
        posted = await call.announcements.in_force(call.state.customer_id, call.clock())
        # `once`: the same text (one audio) in two scopes, or a second announce point, is not said again.
        played = [a for a in posted if call.caller.once(a.prompt_id)]
        await call.caller.play([a.prompt_id for a in played], interruptible=self.interruptible)
        return GoTo(self.next, result=f"announced {','.join(str(a.id) for a in played)}" if played else "none")
