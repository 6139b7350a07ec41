"""The HTTP back-end: the flows' operations (`integrations.backend.Backend`) answered by the carrier's
systems (settings ``backend: http``).

The same operations, identification and confirmation rules as the built-in back-end, and the same result
shapes (`integrations.answers`); only the source differs: the API described in carrier_api.openapi.yaml,
reached through `CarrierClient` (retries, breaker, cache, validation). Each operation runs under a
deadline (`carrier_api.read_deadline_s` for look-ups, `write_deadline_s` for those that open something),
so a caller never waits longer than configured; past it the flow takes its ``timeout`` branch.

    async with HttpOperations(settings.carrier_api, timezone=settings.timezone) as operations:
        registry = operations.registry()
"""

from __future__ import annotations

import hashlib
import re
import uuid
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from integrations import answers
from integrations.accounts import AccountSummary, pick_circuit, ticket_reference
from integrations.backend import MAINTENANCE_HORIZON, Backend
from integrations.carrier.client import CarrierClient, NotFound
from integrations.carrier.contract import day, instant, money
from ivr import phone as phones
from ivr.clock import Clock
from ivr.config import CarrierApiSettings
from ivr.domain import InvoiceLineKind, InvoiceStatus, TicketKind
from ivr.engine.operations import OperationContext, OperationRegistry, OperationResult, OperationSpec
from ivr.protocol_number import NumberKind

_NATIONAL = re.compile(r"^(\d{10,11}|0[3589]00\d{7}|[34]00\d{5})$")  # the contract's NationalNumber
_CODE = re.compile(r"^[0-9A-Za-z]{1,16}$")  # the contract's customer code


class HttpOperations(Backend):
    """The operations over the carrier API, and the account `Directory` identification asks."""

    def __init__(
        self,
        conf: CarrierApiSettings,
        *,
        timezone: str,
        clock: Clock,
        client: CarrierClient | None = None,
    ) -> None:
        super().__init__()
        self._conf = conf
        self.client = client or CarrierClient(conf)
        self._zone = ZoneInfo(timezone)
        self._clock = clock

    def registry(self) -> OperationRegistry:
        """A registry of the back-end's operations, each bounded by its own deadline."""
        registry = OperationRegistry(default_timeout_s=max(self._conf.read_deadline_s, self._conf.write_deadline_s))
        registry.register_all(self)
        return registry

    def deadline_s(self, spec: OperationSpec) -> float:
        """One attempt and the write deadline for what changes something in the carrier's systems."""
        return self._conf.write_deadline_s if spec.opens else self._conf.read_deadline_s

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- the account directory (integrations.accounts.Directory) ------------------------------------

    async def by_phone(self, number: str) -> list[int]:
        if not _NATIONAL.match(number):  # a number from abroad is on no account
            return []
        return await self._search("phone", number)

    async def by_cnpj(self, cnpj: str) -> int | None:
        ids = await self._search("cnpj", cnpj)
        return ids[0] if len(ids) == 1 else None

    async def by_cnpj_root(self, root: str) -> list[int]:
        return await self._search("cnpj_root", root)

    async def by_code(self, code: str) -> int | None:
        if not _CODE.match(code):
            return None
        ids = await self._search("code", code)
        return ids[0] if len(ids) == 1 else None

    async def summary(self, customer_id: int, caller: str | None) -> AccountSummary:
        customer = await self.client.read(f"/customers/{customer_id}", "Customer", cached=True)
        return AccountSummary(
            name=customer["name"],
            status=customer["status"],
            circuit_count=customer["circuit_count"],
            caller_registered=caller is not None and caller in customer["phones"],
        )

    async def _search(self, key: str, value: str) -> list[int]:
        found = await self.client.read("/customers", "CustomerList", {key: value}, cached=True)
        for customer in found["customers"]:  # identification asks for the summary next
            self.client.remember(f"/customers/{customer['id']}", customer)
        return [customer["id"] for customer in found["customers"]]

    # --- tickets -----------------------------------------------------------------------------------

    async def ticket_status(self, ctx: OperationContext, number: str) -> OperationResult:
        reference = ticket_reference(ctx, number)
        if isinstance(reference, OperationResult):
            return reference
        customer_id, digits, kind = reference
        ticket: dict[str, Any] | None
        if kind is NumberKind.TICKET:
            try:
                ticket = await self.client.read(f"/tickets/{digits}", "Ticket")
            except NotFound:
                ticket = None
            if ticket is not None and ticket["customer_id"] != customer_id:
                ticket = None  # another account's ticket does not exist for this caller
        else:
            ticket = await self._newest_ticket(customer_id, call_protocol=digits)
        if ticket is None:
            return OperationResult.not_found("no such ticket on this account")
        return OperationResult.found(**self._ticket_answer(ticket))

    def _ticket_answer(self, ticket: dict[str, Any]) -> dict[str, Any]:
        """One ticket of the API as the operations about a ticket answer it (`answers.TICKET_RESULTS`)."""
        what = f"ticket {ticket['number']}"
        return {
            "number": ticket["number"],
            "kind": ticket["kind"],
            "state": ticket["state"],
            "circuit": ticket["circuit"] or "",
            "opened_on": answers.local_date(instant(ticket["opened_at"], what), self._zone),
            "updated_on": answers.local_date(instant(ticket["updated_at"], what), self._zone),
            "expected_date": day(ticket["expected_date"], what) if ticket["expected_date"] else "",
            "call_protocol": ticket["call_protocol"] or "",
        }

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
        designation = None
        if ctx.customer_id is not None:
            chosen = pick_circuit(await self._circuit_rows(ctx.customer_id), circuit, lambda row: row.designation)
            if circuit and chosen is None:
                return OperationResult.not_found("no such circuit on this account")
            designation = chosen.designation if chosen else None
        body = {
            "customer_id": ctx.customer_id,
            "kind": kind.value,
            "circuit": designation,
            "symptom": symptom[:80],
            "description": description[:2000],
            "call_protocol": ctx.call_protocol or None,
        }
        if callback_number is not None:
            body["callback_number"] = callback_number
        ticket = await self.client.write("/tickets", "Ticket", body, idempotency_key=idempotency_key(ctx, body))
        expected = day(ticket["expected_date"], f"ticket {ticket['number']}") if ticket["expected_date"] else ""
        # ticket_number/ticket_kind: the engine lists tickets opened during the call for the agent.
        return OperationResult.found(
            number=ticket["number"],
            kind=ticket["kind"],
            expected_date=expected,
            ticket_number=ticket["number"],
            ticket_kind=ticket["kind"],
        )

    async def latest_ticket(self, ctx: OperationContext, kind: TicketKind) -> OperationResult:
        ticket = await self._newest_ticket(ctx.identified_customer, kind=kind.value)
        if ticket is None:
            return OperationResult.not_found(f"no {kind.value} ticket")
        return OperationResult.found(**self._ticket_answer(ticket))

    async def latest_open_ticket(self, ctx: OperationContext) -> OperationResult:
        customer_id = ctx.identified_customer
        query = {"customer_id": str(customer_id), "state": "open"}
        tickets = (await self.client.read("/tickets", "TicketList", query))["tickets"]
        ticket = next(
            (t for t in tickets if t["customer_id"] == customer_id and t["kind"] != TicketKind.CALLBACK_REQUEST.value),
            None,
        )
        if ticket is None:
            return OperationResult.not_found("no open ticket")
        return OperationResult.found(**self._ticket_answer(ticket))

    async def attach_to_incident(self, ctx: OperationContext) -> OperationResult:
        """The caller joins the open failure ticket of the circuit with a known outage (opened for the
        first caller), and the call is recorded on the incident."""
        customer_id = ctx.identified_customer
        incident = await self._first_open_incident(customer_id)
        if incident is None:
            return OperationResult.not_found("no outage on the account")
        circuit = incident["circuit"]
        failure = TicketKind.TECHNICAL_FAILURE.value
        ticket = await self._newest_ticket(customer_id, kind=failure, circuit=circuit, state="open")
        opened = ticket is None
        if ticket is None:
            body = {
                "customer_id": customer_id,
                "kind": failure,
                "circuit": circuit,
                "symptom": "no_connection",
                "description": f"Falha conhecida: {incident['description']}"[:2000],
                "call_protocol": ctx.call_protocol or None,
            }
            ticket = await self.client.write("/tickets", "Ticket", body, idempotency_key=idempotency_key(ctx, body))
        attach = {"ticket_number": ticket["number"], "call_protocol": ctx.call_protocol or None}
        path = f"/incidents/{incident['id']}/tickets"
        await self.client.write(path, "IncidentTicket", attach, idempotency_key=idempotency_key(ctx, attach))
        end = incident["expected_end_at"]
        return OperationResult.found(
            number=ticket["number"],
            circuit=circuit,
            expected_date=answers.local_date(instant(end, f"incident {incident['id']}"), self._zone) if end else "",
            attached="new" if opened else "existing",
            # Only a ticket opened on this call is listed for the agent as opened here.
            ticket_number=ticket["number"] if opened else "",
            ticket_kind=failure if opened else "",
        )

    async def _newest_ticket(self, customer_id: int, **filters: str) -> dict[str, Any] | None:
        query = {"customer_id": str(customer_id), **filters}
        tickets = (await self.client.read("/tickets", "TicketList", query))["tickets"]
        return next((t for t in tickets if t["customer_id"] == customer_id), None)

    # --- billing -----------------------------------------------------------------------------------

    async def invoice_summary(self, ctx: OperationContext) -> OperationResult:
        found = await self.client.read(f"/customers/{ctx.identified_customer}/invoices", "InvoiceList")
        rows = sorted((_invoice_row(invoice) for invoice in found["invoices"]), key=lambda row: row.reference_month)
        today = answers.local_date(self._clock(), self._zone)
        return OperationResult.found(**answers.invoice_summary(rows, today))

    async def suspension_status(self, ctx: OperationContext) -> OperationResult:
        customer_id = ctx.identified_customer
        base = f"/customers/{customer_id}"
        customer = await self.client.read(base, "Customer", cached=True)
        circuits = await self.client.read(f"{base}/circuits", "CircuitList", cached=True)
        suspended = customer["status"] == "suspended" or any(c["status"] == "suspended" for c in circuits["circuits"])
        today = answers.local_date(self._clock(), self._zone)
        invoices = (await self.client.read(f"{base}/invoices", "InvoiceList"))["invoices"]
        overdue = sorted(
            (row.due_date, row.amount)
            for row in map(_invoice_row, invoices)
            if row.status is not InvoiceStatus.PAID and row.due_date < today
        )
        incident = await self._first_open_incident(customer_id)
        return OperationResult.found(
            **answers.suspension(
                suspended=suspended,
                overdue=overdue,
                incident_circuit=incident["circuit"] if incident else "",
                confirmed=self.confirmed(ctx),
            )
        )

    # --- circuits and incidents --------------------------------------------------------------------

    async def circuits(self, ctx: OperationContext) -> OperationResult:
        return OperationResult.found(**answers.circuits(await self._circuit_rows(ctx.identified_customer)))

    async def open_incidents(self, ctx: OperationContext) -> OperationResult:
        customer_id = ctx.identified_customer
        now = self._clock()
        unresolved = await self._open_incidents(customer_id)
        span = {"from": now.isoformat(), "to": (now + MAINTENANCE_HORIZON).isoformat()}
        planned = await self.client.read(f"/customers/{customer_id}/maintenance", "MaintenanceList", span)
        incidents = [
            answers.IncidentRow(
                i["circuit"],
                i["description"],
                instant(i["expected_end_at"], f"incident {i['id']}") if i["expected_end_at"] else None,
            )
            for i in unresolved
        ]
        windows = sorted(map(_window_row, planned["windows"]), key=lambda row: row.starts)
        data = answers.incidents(incidents, windows, self._zone)
        return OperationResult.found(**data) if data else OperationResult.not_found("no incident or maintenance")

    async def _open_incidents(self, customer_id: int) -> list[dict[str, Any]]:
        """Unresolved incidents on the account's circuits, oldest first."""
        found = await self.client.read(f"/customers/{customer_id}/incidents", "IncidentList", {"state": "open"})
        return sorted(
            (i for i in found["incidents"] if i["resolved_at"] is None),
            key=lambda i: (instant(i["started_at"], f"incident {i['id']}"), i["id"]),
        )

    async def _first_open_incident(self, customer_id: int) -> dict[str, Any] | None:
        incidents = await self._open_incidents(customer_id)
        return incidents[0] if incidents else None

    async def _circuit_rows(self, customer_id: int) -> list[answers.CircuitRow]:
        found = await self.client.read(f"/customers/{customer_id}/circuits", "CircuitList", cached=True)
        rows = [answers.CircuitRow(c["designation"], c["address"], c["city"]) for c in found["circuits"]]
        return sorted(rows, key=lambda row: row.designation)

    # --- leads -------------------------------------------------------------------------------------

    async def register_lead(self, ctx: OperationContext, name: str = "", phone: str = "") -> OperationResult:
        number = phones.normalise(phone or ctx.caller_id)
        if number is None or not _NATIONAL.match(number):
            return OperationResult.not_found("no phone number to call back")
        body = {"name": name.strip()[:200], "phone": number, "call_protocol": ctx.call_protocol or None}
        lead = await self.client.write("/leads", "Lead", body, idempotency_key=idempotency_key(ctx, body))
        return OperationResult.found(lead_id=lead["id"], phone=lead["phone"])


def idempotency_key(ctx: OperationContext, body: dict[str, Any]) -> str:
    """The same key for the same request on the same call: a flow that repeats an ``open_ticket`` after a
    time-out gets the ticket already opened, never a second one. Without a call protocol (no call to
    tie a repeat to) every request is new."""
    if not ctx.call_protocol:
        return f"sac-ivr-{uuid.uuid4().hex}"
    seed = repr((ctx.call_protocol, sorted(body.items())))
    return "sac-ivr-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def _invoice_row(invoice: dict[str, Any]) -> answers.InvoiceRow:
    what = f"invoice {invoice['id']}"
    return answers.InvoiceRow(
        reference_month=day(invoice["reference_month"], what),
        amount=money(invoice["amount"], what),
        due_date=day(invoice["due_date"], what),
        status=InvoiceStatus(invoice["status"]),
        lines=tuple((InvoiceLineKind(line["kind"]), money(line["amount"], what)) for line in invoice["lines"]),
    )


def _window_row(window: dict[str, Any]) -> answers.WindowRow:
    what = f"maintenance window {window['id']}"
    return answers.WindowRow(window["circuit"], instant(window["starts_at"], what), instant(window["ends_at"], what))
