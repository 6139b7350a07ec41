"""``say``: speak a value (a number, money in reais, a date, the call protocol...) in pt-BR.

    announce_protocol:
      say: {before: your_protocol_is, protocol: "{{ call.protocol }}", after: write_it_down}
      next: main_menu

The protocol announcement is never interruptible (DECISIONS.md): the caller must hear the number.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import model_validator

from ivr.engine.steps import GoTo, Next
from ivr.engine.template import check_template
from ivr.engine.verbs.base import Continues, Prompts
from ivr.voice.speak import SAY_KINDS, SayError, say_ids

if TYPE_CHECKING:
    from ivr.engine.context import CallContext

log = logging.getLogger(__name__)


class Say(Continues):
    kind = "say"

    digits: str | None = None
    number: str | None = None
    money: str | None = None
    date: str | None = None
    time: str | None = None
    period: str | None = None  # "00:00-04:00": "da meia-noite às quatro horas"
    protocol: str | None = None
    phone: str | None = None
    options: dict[str, str | bool] = {}  # e.g. {weekday: true, on: true} for dates, {gender: f} for numbers
    before: Prompts = []
    after: Prompts = []
    interruptible: bool | None = None  # default: yes, except for protocols

    @model_validator(mode="after")
    def _one_value(self) -> Say:
        given = [k for k in SAY_KINDS if getattr(self, k, None) is not None]
        if len(given) != 1:
            raise ValueError(f"say exactly one of: {', '.join(SAY_KINDS)} (got {', '.join(given) or 'none'})")
        check_template(self.template)
        unknown = set(self.options) - set(SAY_KINDS[self.what])
        if unknown:
            allowed = ", ".join(SAY_KINDS[self.what]) or "no options"
            raise ValueError(f"{self.what} takes {allowed}, not {', '.join(sorted(unknown))}")
        if self.what == "protocol" and self.interruptible:
            raise ValueError("a protocol announcement is never interruptible")
        return self

    @property
    def what(self) -> str:
        return next(k for k in SAY_KINDS if getattr(self, k, None) is not None)

    @property
    def template(self) -> str:
        return str(getattr(self, self.what))

    @property
    def announces_protocol(self) -> bool:
        """True for the announcement of the call's own protocol number."""
        return self.what == "protocol" and "call.protocol" in self.template

    def prompt_ids(self) -> list[str]:
        return [*self.before, *self.after]

    async def run(self, call: CallContext) -> Next:
        value = call.state.render(self.template)
        try:
            spoken = say_ids(self.what, value, **self.options)
        except SayError as exc:
            # A value the back-end left empty or malformed: the caller still hears the rest.
            log.error("call %s: cannot say %s here (%s)", call.state.protocol, self.what, exc)
            spoken = []
        ids = [*self.before, *spoken, *self.after]
        interruptible = self.what != "protocol" if self.interruptible is None else self.interruptible
        await call.caller.play(ids, interruptible=interruptible)
        return GoTo(self.next)
