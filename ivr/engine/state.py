"""What a call knows and has gathered: who is calling, the account identified, the flow's variables, the
nodes walked and the tickets opened. Templates and conditions in flows read it, and only it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateError

from ivr import phone
from ivr.engine.flow import FlowError
from ivr.engine.ports import Ticket
from ivr.engine.template import evaluate, render

#: Shorter personal values (a menu key kept masked, a one-digit answer) are not looked for in a `set`'s text:
#: masking every "1" would garble the records and protect nothing.
MIN_PERSONAL_CHARS = 4
#: The caller's latest answers an agent is told (the channel variable stays short).
KEYED_TOLD = 12
#: The nodes an agent is told: the latest ones within this many characters. A call may walk hundreds of
#: nodes, and the context's channel variables must fit res_agi's 2,047-byte command line.
PATH_TOLD_CHARS = 800


@dataclass(slots=True)
class CallState:
    protocol: str
    caller_id: str | None  # the national number (ivr.phone.normalise), None when withheld
    dialled: str
    listening: bool  # spoken answers can be heard on this call
    customer_id: int | None = None
    account_confirmed: bool = False
    customer: dict[str, Any] = field(default_factory=dict)  # the identified account's fields
    variables: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)  # node names; subflow nodes as "flow/node"
    tickets: list[Ticket] = field(default_factory=list)  # opened on this call
    keyed: list[str] = field(default_factory=list)  # "node=answer" per answer given (masked where personal)
    masked: dict[str, Any] = field(default_factory=dict)  # variable -> how records show it (see `keep`)
    # What the number calling is, worked out once: templates ask on every condition of the call.
    callable: bool = field(init=False)  # a Brazilian landline or mobile that can be called back
    caller_mobile: bool = field(init=False)

    def __post_init__(self) -> None:
        self.callable = phone.callback_number(self.caller_id) is not None
        self.caller_mobile = phone.is_mobile(self.caller_id or "")

    def identify(self, customer_id: int, account: Mapping[str, Any], *, confirmed: bool) -> None:
        """The caller is the customer of this account; `confirmed` when this identification confirmed it.
        A confirmation holds for the account it was given for, never for another one."""
        kept = self.account_confirmed and customer_id == self.customer_id
        self.customer_id = customer_id
        self.account_confirmed = kept or confirmed
        self.customer = dict(account)

    def keep(self, name: str, value: Any, *, masked: Any) -> None:
        """Keep what the caller gave (a CNPJ, keyed digits, a transcript) or an operation found in a variable;
        `masked` is how the call's records show it, the same form as the node's visit (`Next.input`)."""
        self.variables[name] = value
        self.masked[name] = masked

    def assign(self, name: str, value: Any) -> None:
        """Give a variable a value (a flow's `set`). Text that carries something personal the call holds (the
        caller's number, what the caller gave, an operation's personal result) is recorded with it masked."""
        shown = self._masked_text(value) if isinstance(value, str) else value  # before the old value goes
        self.variables[name] = value
        if shown != value:
            self.masked[name] = shown
        else:
            self.masked.pop(name, None)  # a value kept masked before is gone

    def _masked_text(self, text: str) -> str:
        personal: dict[str, str] = {self.caller_id: phone.mask(self.caller_id)} if self.caller_id else {}
        for name, shown in self.masked.items():
            raw = self.variables.get(name)
            if shown is raw:  # an operation's results with nothing personal
                continue
            if isinstance(raw, Mapping) and isinstance(shown, Mapping):  # an operation's results
                personal.update((raw[k], v) for k, v in shown.items() if isinstance(raw.get(k), str) and raw[k] != v)
            elif isinstance(raw, str) and raw != shown:
                personal[raw] = str(shown)
        for raw in sorted(personal, key=len, reverse=True):
            if len(raw) >= MIN_PERSONAL_CHARS:
                text = text.replace(raw, personal[raw])
        return text

    def recorded_variables(self) -> dict[str, Any]:
        """The variables as the store keeps them: what the caller gave only in its masked form."""
        return {**self.variables, **{name: shown for name, shown in self.masked.items() if name in self.variables}}

    @property
    def customer_name(self) -> str:
        return str(self.customer.get("customer_name", ""))  # integrations.accounts.IDENTITY

    def template_vars(self) -> dict[str, Any]:
        call = {
            "protocol": self.protocol,
            "caller_id": self.caller_id or "",
            "dialled": self.dialled,
            "identified": self.customer_id is not None,
            "confirmed": self.account_confirmed,
            "customer": dict(self.customer),
            "path": list(self.path),
            "tickets": [ticket.number for ticket in self.tickets],
            "listening": self.listening,
            "callable": self.callable,
            "caller_mobile": self.caller_mobile,
        }
        return {**self.variables, "call": call}

    def render(self, template: str) -> str:
        if "{" not in template:  # plain text: no variables to gather
            return template
        return _rendered(template, self.template_vars())

    def render_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` with each text rendered, the call's variables gathered once for them all."""
        variables: dict[str, Any] | None = None
        rendered = {}
        for name, value in values.items():
            if isinstance(value, str) and "{" in value:
                if variables is None:
                    variables = self.template_vars()
                value = _rendered(value, variables)
            rendered[name] = value
        return rendered

    def evaluate(self, expression: str) -> Any:
        try:
            return evaluate(expression, self.template_vars())
        except (TemplateError, TypeError) as exc:
            raise FlowError(f"condition {expression!r} failed: {exc}") from exc

    def queue_context(self) -> dict[str, str]:
        """The call's context for agents (channel variables)."""
        return {
            "protocol": self.protocol,
            "caller_id": self.caller_id or "",
            "customer": str(self.customer_id or ""),
            "customer_name": self.customer_name,
            "path": _latest(self.path),
            "tickets": ",".join(t.number for t in self.tickets),
            "keyed": " ".join(self.keyed[-KEYED_TOLD:]),
        }


def _latest(path: list[str]) -> str:
    """The path as agents read it ("a>b>c"), its earlier nodes cut to "...>" past PATH_TOLD_CHARS."""
    told = ">".join(path)
    if len(told) <= PATH_TOLD_CHARS:
        return told
    return "...>" + told[-PATH_TOLD_CHARS:].partition(">")[2]  # whole node names only


def _rendered(template: str, variables: dict[str, Any]) -> str:
    try:
        return render(template, variables)
    except (TemplateError, TypeError) as exc:  # e.g. the sandbox refused an attribute
        raise FlowError(f"template {template!r} failed: {exc}") from exc
