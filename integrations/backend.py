"""The operations a back-end answers for the flows (accounts, tickets, invoices, circuits, outages, leads),
declared once for both back-ends: our store (`integrations.builtin.operations.BuiltinOperations`) and the carrier's
systems (`integrations.carrier.backend.HttpOperations`, settings ``backend: http``).

Each implements every method below (one it lacks is refused when it is built) and answers the
`Directory` questions identification asks; identification itself, and what "confirmed" means for these
operations, are the same for both and live here. Result fields come from `integrations.answers`, shaped
once for both.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import timedelta
from typing import Annotated

from integrations.accounts import IDENTITY, Directory, Identification, callback
from integrations.answers import (
    CIRCUIT_RESULTS,
    INCIDENT_RESULTS,
    INVOICE_RESULTS,
    SUSPENSION_RESULTS,
    TICKET_RESULTS,
)
from ivr.domain import TicketKind
from ivr.engine.operations import OperationContext, OperationResult, Operations, Requirement, operation

#: How far ahead `open_incidents` looks for planned maintenance.
MAINTENANCE_HORIZON = timedelta(days=7)
#: What an operation opening a ticket returns (ticket_number/ticket_kind: the engine lists the tickets
#: opened during the call for the agent).
OPENED_RESULTS = ("number", "kind", "expected_date", "ticket_number", "ticket_kind")


class Backend(Operations, Directory):
    """What both back-ends answer; implementations override the abstract methods without redeclaring them."""

    def __init__(self) -> None:
        super().__init__()
        self._identification = Identification(self)

    def confirmed(self, ctx: OperationContext) -> bool:
        return self._identification.confirmed(ctx)

    # --- who the caller is (integrations.accounts.Identification, over this back-end's Directory) ----------

    @operation("Identify the caller by the number they call from (no input).", results=IDENTITY, identifies=True)
    async def customer_by_caller_id(self, ctx: OperationContext) -> OperationResult:
        return await self._identification.customer_by_caller_id(ctx)

    @operation(
        "Identify (or confirm) the account by CNPJ, or by its 8-character root once a customer is known.",
        results=IDENTITY,
        identifies=True,
    )
    async def customer_by_cnpj(
        self, ctx: OperationContext, cnpj: Annotated[str, "CNPJ (digits or letters) or its root"]
    ) -> OperationResult:
        return await self._identification.customer_by_cnpj(ctx, cnpj)

    @operation("Identify (or confirm) the account by customer code.", results=IDENTITY, identifies=True)
    async def customer_by_code(
        self, ctx: OperationContext, code: Annotated[str, "customer code, digits"]
    ) -> OperationResult:
        return await self._identification.customer_by_code(ctx, code)

    # --- tickets -----------------------------------------------------------------------------------------

    @operation(
        "State of one of the caller's tickets, by ticket number or by the call protocol it was opened on.",
        results=TICKET_RESULTS,
        requires=Requirement.IDENTIFIED,
    )
    @abstractmethod
    async def ticket_status(
        self, ctx: OperationContext, number: Annotated[str, "ticket number (9 digits) or call protocol (12 digits)"]
    ) -> OperationResult: ...

    # Who may open which kind depends on the kind (`integrations.accounts.Identification.refuses_ticket`).
    @operation(
        "Open a ticket of the given kind on the caller's account, linked to this call's protocol.",
        results=OPENED_RESULTS,
        opens=True,
    )
    async def open_ticket(
        self,
        ctx: OperationContext,
        kind: Annotated[TicketKind, "technical_failure, service_request, billing_doubt, ..."],
        circuit: Annotated[str, "circuit designation or its position (1, 2...)"] = "",
        symptom: Annotated[str, "e.g. no_connection, slow, intermittent"] = "",
        description: Annotated[str, "the caller's words"] = "",
    ) -> OperationResult:
        refusal = self._identification.refuses_ticket(ctx, kind)
        if refusal is not None:
            return refusal
        return await self._open_ticket(ctx, kind, circuit=circuit, symptom=symptom, description=description)

    @operation(
        "Ask a team to call the caller back: a callback request (a ticket) with the number to call, "
        "the caller's own when it is a Brazilian landline or mobile; not_found when there is none. "
        "The IVR dials it (callback_number, callback_team: the engine keeps it in the call back book).",
        results=(*OPENED_RESULTS, "phone", "callback_number", "callback_team"),
        opens=True,
        personal=("phone", "callback_number"),
    )
    async def request_callback(
        self,
        ctx: OperationContext,
        team: Annotated[str, "technical, billing or commercial"],
        phone: Annotated[str, "number keyed for the call back (area code + number)"] = "",
    ) -> OperationResult:
        asked = callback(ctx, team, phone)
        if isinstance(asked, OperationResult):
            return asked
        result = await self._open_ticket(
            ctx, TicketKind.CALLBACK_REQUEST, description=asked.description, callback_number=asked.number
        )
        return OperationResult.found(
            **result.data, phone=asked.number, callback_number=asked.number, callback_team=team
        )

    @abstractmethod
    async def _open_ticket(
        self,
        ctx: OperationContext,
        kind: TicketKind,
        *,
        circuit: str = "",
        symptom: str = "",
        description: str = "",
        callback_number: str | None = None,
    ) -> OperationResult:
        """Write a ticket the caller may open (`open_ticket` and `request_callback` checked that):
        FOUND with `OPENED_RESULTS`, NOT_FOUND when `circuit` names none of the account's."""

    @operation(
        "The caller's most recent ticket of one kind (e.g. bgp_request): its number and where it stands.",
        results=TICKET_RESULTS,
        requires=Requirement.IDENTIFIED,
    )
    @abstractmethod
    async def latest_ticket(
        self, ctx: OperationContext, kind: Annotated[TicketKind, "ticket kind, e.g. bgp_request"]
    ) -> OperationResult: ...

    @operation(
        "The caller's most recent ticket still being worked on (open, in progress or waiting for the "
        "customer), of any kind but a call back: what a known caller is most likely calling about.",
        results=TICKET_RESULTS,
        requires=Requirement.IDENTIFIED,
    )
    @abstractmethod
    async def latest_open_ticket(self, ctx: OperationContext) -> OperationResult: ...

    # --- billing -----------------------------------------------------------------------------------------

    @operation(
        "Open and overdue invoices of the confirmed account, the next due date and the latest invoice.",
        results=INVOICE_RESULTS,
        requires=Requirement.CONFIRMED,
    )
    @abstractmethod
    async def invoice_summary(self, ctx: OperationContext) -> OperationResult: ...

    @operation(
        "Why the caller's service is suspended: financial (overdue invoices; amounts only once the account "
        "is confirmed), technical (an open outage) or none.",
        results=SUSPENSION_RESULTS,
        requires=Requirement.IDENTIFIED,
    )
    @abstractmethod
    async def suspension_status(self, ctx: OperationContext) -> OperationResult: ...

    # --- circuits and incidents --------------------------------------------------------------------------

    @operation(
        "How many circuits the caller's account has, and the first few designations and addresses.",
        results=CIRCUIT_RESULTS,
        requires=Requirement.IDENTIFIED,
    )
    @abstractmethod
    async def circuits(self, ctx: OperationContext) -> OperationResult: ...

    @operation(
        "Known outages and planned maintenance (next days) on the caller's circuits; not_found if none.",
        results=INCIDENT_RESULTS,
        requires=Requirement.IDENTIFIED,
    )
    @abstractmethod
    async def open_incidents(self, ctx: OperationContext) -> OperationResult: ...

    @operation(
        "Attach the caller to the known outage on their circuits: the open failure ticket of that circuit "
        "(opened for the first caller, never duplicated) records this call; not_found if no outage.",
        results=("number", "circuit", "expected_date", "attached", "ticket_number", "ticket_kind"),
        requires=Requirement.IDENTIFIED,
        opens=True,
    )
    @abstractmethod
    async def attach_to_incident(self, ctx: OperationContext) -> OperationResult: ...

    # --- leads -------------------------------------------------------------------------------------------

    @operation(
        "Record a prospective customer for the commercial team to call back (default: the caller's number).",
        results=("lead_id", "phone"),
        opens=True,
        personal=("phone",),
    )
    @abstractmethod
    async def register_lead(
        self, ctx: OperationContext, name: str = "", phone: Annotated[str, "number to call back"] = ""
    ) -> OperationResult: ...
