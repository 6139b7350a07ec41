"""Who the caller is, and what they may do: the account rules every adapter applies the same way.

An adapter answers plain questions about accounts through a `Directory` (which accounts have this
phone, CNPJ, root or code; a short summary of one). `Identification` turns those answers into the
three identifying operations and keeps, per call protocol, the factors seen: two *different* factors
(registered caller ID, CNPJ or its root, customer code) pointing to the same customer confirm the
account, so keying the (public) CNPJ twice confirms nothing. Amounts, document requests, disputes and
cancellations need a confirmed account (`confirmed`, which the registry asks for the operations declared
as requiring it, and `refuses_ticket` for the kinds of ticket that need it).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from ivr import cnpj as cnpj_rules
from ivr import phone as phones
from ivr.domain import TicketKind
from ivr.engine.operations import REFUSALS, OperationContext, OperationResult, OperationStatus, Requirement
from ivr.protocol_number import NumberKind, kind_of

T = TypeVar("T")

#: Result fields of every identifying operation.
IDENTITY = ("customer_id", "confirmed", "customer_name", "account_status", "circuit_count")
# Opened without an identified account (a caller who is not a customer may complain or ask a callback).
UNIDENTIFIED_KINDS = frozenset({TicketKind.COMPLAINT, TicketKind.CALLBACK_REQUEST})
CONFIRMED_KINDS = frozenset(
    {
        TicketKind.BOLETO_COPY,
        TicketKind.NOTA_FISCAL_COPY,
        TicketKind.BILLING_DISPUTE,
        TicketKind.CANCELLATION,
        TicketKind.DUE_DATE_CHANGE,
    }
)
_FACTORS_KEPT = 10_000  # calls whose identification factors are remembered (oldest forgotten first)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    name: str
    status: str  # active, suspended...
    circuit_count: int
    caller_registered: bool  # the caller's number is one of the account's phones


class Directory(Protocol):
    """The questions about accounts an adapter answers from its own back-end (abstract: a back-end that
    derives from it cannot be built without answering them all)."""

    @abstractmethod
    async def by_phone(self, number: str) -> Sequence[int]:
        """Accounts with this (normalised) phone or WhatsApp number registered."""

    @abstractmethod
    async def by_cnpj(self, cnpj: str) -> int | None:
        """The account with this full, valid, normalised CNPJ."""

    @abstractmethod
    async def by_cnpj_root(self, root: str) -> Sequence[int]:
        """Accounts whose CNPJ starts with this 8-character root."""

    @abstractmethod
    async def by_code(self, code: str) -> int | None: ...

    @abstractmethod
    async def summary(self, customer_id: int, caller: str | None) -> AccountSummary: ...


@dataclass(frozen=True, slots=True)
class _Identity:
    customer_id: int
    factors: frozenset[str]


class Identification:
    """The identifying operations over a `Directory`, and the per-call confirmation bookkeeping."""

    def __init__(self, directory: Directory, *, kept: int = _FACTORS_KEPT) -> None:
        self._directory = directory
        self._kept = kept
        self._identities: OrderedDict[str, _Identity] = OrderedDict()

    async def customer_by_caller_id(self, ctx: OperationContext) -> OperationResult:
        number = phones.normalise(ctx.caller_id)
        if number is None:
            return OperationResult.not_found("caller ID withheld or not a number")
        ids = await self._directory.by_phone(number)
        if len(ids) != 1:
            return OperationResult.not_found(f"number {phones.mask(number)} is on {len(ids)} accounts")
        return await self._identified(ctx, ids[0], "caller_id")

    async def customer_by_cnpj(self, ctx: OperationContext, cnpj: str) -> OperationResult:
        value = cnpj_rules.normalise(cnpj)
        found: int | None
        if len(value) == 14 and cnpj_rules.is_valid(value):
            found = await self._directory.by_cnpj(value)
        elif len(value) == 8:
            # A root confirms the customer already known on the call; alone it must match one customer.
            ids = await self._directory.by_cnpj_root(value)
            if ctx.customer_id is not None and ctx.customer_id in ids:
                found = ctx.customer_id
            else:
                found = ids[0] if len(ids) == 1 else None
        else:
            return OperationResult.not_found("not a valid CNPJ or CNPJ root")
        if found is None:
            return OperationResult.not_found(f"no account for CNPJ {cnpj_rules.mask(value)}")
        return await self._identified(ctx, found, "cnpj")

    async def customer_by_code(self, ctx: OperationContext, code: str) -> OperationResult:
        value = re.sub(r"[\s.\-/]", "", code)
        if not value:
            return OperationResult.not_found("empty customer code")
        found = await self._directory.by_code(value)
        if found is None:
            return OperationResult.not_found("no account for this customer code")
        return await self._identified(ctx, found, "code")

    async def _identified(self, ctx: OperationContext, customer_id: int, factor: str) -> OperationResult:
        """Record one more factor for this call's customer; two different factors confirm the account."""
        previous = self._identities.get(ctx.call_protocol)
        factors = {factor}
        if previous is not None and previous.customer_id == customer_id:
            factors |= previous.factors
        summary = await self._directory.summary(customer_id, phones.normalise(ctx.caller_id))
        if summary.caller_registered:
            factors.add("caller_id")
        self._identities[ctx.call_protocol] = _Identity(customer_id, frozenset(factors))
        self._identities.move_to_end(ctx.call_protocol)
        while len(self._identities) > self._kept:
            self._identities.popitem(last=False)
        return OperationResult.found(
            customer_id=customer_id,
            confirmed=len(factors) >= 2,
            customer_name=summary.name,
            account_status=summary.status,
            circuit_count=summary.circuit_count,
        )

    def confirmed(self, ctx: OperationContext) -> bool:
        """Confirmed by the engine and by the factors seen here for the very same customer."""
        identity = self._identities.get(ctx.call_protocol)
        return (
            ctx.account_confirmed
            and identity is not None
            and identity.customer_id == ctx.customer_id
            and len(identity.factors) >= 2
        )

    def refuses_ticket(self, ctx: OperationContext, kind: TicketKind) -> OperationResult | None:
        """The result refusing this caller a ticket of `kind` now, or None when they may open it: what
        ``open_ticket`` requires of the caller depends on the kind asked for."""
        if ctx.customer_id is None and kind not in UNIDENTIFIED_KINDS:
            return OperationResult.not_found(REFUSALS[Requirement.IDENTIFIED])
        if kind in CONFIRMED_KINDS and not self.confirmed(ctx):
            return OperationResult.not_found(REFUSALS[Requirement.CONFIRMED])
        return None


class Callback(NamedTuple):
    """A call back a caller may ask for (a ticket of kind ``callback_request``, which anyone may open):
    the number to call and the request's words."""

    number: str
    description: str


#: The teams a caller may ask to be called back by, as the request names them.
CALLBACK_TEAMS = {"technical": "técnica", "billing": "financeira", "commercial": "comercial"}


def callback(ctx: OperationContext, team: str, phone: str) -> Callback | OperationResult:
    """The call back asked for (the number keyed, else the caller's own), or the result refusing it: a
    call back needs a Brazilian landline or mobile to call, never a withheld, foreign or 0800 number."""
    if team not in CALLBACK_TEAMS:
        return OperationResult(OperationStatus.ERROR, {}, f"unknown team {team!r} ({', '.join(CALLBACK_TEAMS)})")
    number = phones.callback_number(phone or ctx.caller_id)
    if number is None:
        return OperationResult.not_found("no Brazilian landline or mobile to call back")
    return Callback(number, f"Retorno pedido para a equipe {CALLBACK_TEAMS[team]}: ligar para {number}.")


class TicketReference(NamedTuple):
    """The ticket an identified caller asks about: theirs, by ticket number or by call protocol."""

    customer_id: int
    digits: str
    kind: NumberKind


def ticket_reference(ctx: OperationContext, number: str) -> TicketReference | OperationResult:
    """What `number` refers to for this (identified) caller, or the result refusing it."""
    digits = re.sub(r"\D", "", number)
    kind = kind_of(digits)
    if kind is None:
        return OperationResult.not_found("not a valid ticket or protocol number")
    return TicketReference(ctx.identified_customer, digits, kind)


def pick_circuit(rows: Sequence[T], ref: str, designation: Callable[[T], str]) -> T | None:
    """The customer's circuit by its position (1-based, rows sorted by designation), by designation
    (as said: "BHZ FO 10021" matches BHZ-FO-10021) or by the designation's last digits (4 or more), when
    only one circuit ends so; with no reference, the customer's only circuit if there is just one."""
    ref = ref.strip()
    if not ref:
        return rows[0] if len(rows) == 1 else None
    if ref.isdigit() and len(ref) <= 2:
        index = int(ref) - 1
        return rows[index] if 0 <= index < len(rows) else None
    wanted = _plain(ref)
    exact = [row for row in rows if _plain(designation(row)) == wanted]
    if exact or not (wanted.isdigit() and len(wanted) >= 4):
        return exact[0] if exact else None
    ending = [row for row in rows if _plain(designation(row)).endswith(wanted)]
    return ending[0] if len(ending) == 1 else None


def _plain(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())
