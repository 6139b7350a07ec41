"""A local stand-in for the carrier's systems: carrier_api.openapi.yaml served by aiohttp on 127.0.0.1,
with seeded accounts, and faults on demand (`misbehave`): slow, HTTP 500, malformed JSON, a body of
the wrong schema, a connection reset, a 404.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ivr.protocol_number import make_call_protocol, make_ticket_number

ZONE = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZONE)
KNOWN_CALLER = "3133334444"  # on account 1 only
SHARED_CALLER = "1140041234"  # on accounts 2 and 3
TOKEN = "test-token"
PROTOCOL = make_call_protocol(2026, 1)
TICKET = make_ticket_number(1)
OPEN_STATES = ("open", "in_progress", "waiting_customer")


class Fault(str, Enum):
    SLOW = "slow"  # answers only when the test ends
    ERROR_500 = "500"
    MALFORMED = "malformed"  # 200 with a body that is not JSON
    WRONG_SCHEMA = "wrong_schema"  # 200 with JSON that breaks the contract
    RESET = "reset"  # the connection is reset before any answer
    NOT_FOUND = "404"


#: Account 1's registered contacts: the addresses its messages go to (never the caller's own number).
EMAIL = "financeiro@padariapaoquente.com.br"
WHATSAPP = "31988887777"
CONTACTS = {
    1: [
        {"kind": "phone", "value": KNOWN_CALLER},
        {"kind": "email", "value": EMAIL},
        {"kind": "whatsapp", "value": WHATSAPP},
    ],
}


def pdf(kind: str, invoice_id: int) -> bytes:
    """A small PDF whose bytes say which document it is, so a test can tell the one delivered."""
    return f"%PDF-1.4\n% {kind} da fatura {invoice_id}\n%%EOF\n".encode()


def digitable_line(invoice_id: int) -> str:
    return f"{invoice_id:047d}"


def _customer(cid: int, code: str, name: str, cnpj: str, phones: list[str], circuits: int) -> dict[str, Any]:
    return {"id": cid, "code": code, "name": name, "cnpj": cnpj, "status": "active", "phones": phones,
            "circuit_count": circuits}  # fmt: skip


CUSTOMERS = [
    _customer(1, "100200", "Padaria Pão Quente Ltda", "11222333000181", [KNOWN_CALLER], 2),
    {**_customer(2, "100300", "Contabilidade Alfa", "11444777000161", [SHARED_CALLER], 0), "status": "suspended"},
    _customer(3, "100400", "Mercado Beta", "12345678000195", [SHARED_CALLER], 0),
]
CIRCUITS = {
    1: [
        {"designation": "BHZ-0002-FO", "service": "IP 200M", "address": "Rua B, 20", "city": "Belo Horizonte",
         "state": "MG", "status": "active"},
        {"designation": "BHZ-0001-FO", "service": "IP 100M", "address": "Rua A, 10", "city": "Belo Horizonte",
         "state": "MG", "status": "active"},
    ],
}  # fmt: skip


def _at(days: float, hour: int = 10) -> str:
    return (NOW + timedelta(days=days)).replace(hour=hour, minute=0).isoformat()


def _invoice(iid: int, month: str, amount: str, due: str, status: str, lines: list[tuple[str, str]]) -> dict[str, Any]:
    return {"id": iid, "reference_month": month, "amount": amount, "due_date": due, "status": status,
            "paid_on": None, "nota_fiscal_number": f"NF-{iid}",
            "lines": [{"kind": k, "description": k, "amount": a} for k, a in lines]}  # fmt: skip


INVOICES = {
    1: [
        _invoice(12, "2026-11-01", "950.00", "2026-12-10", "open",
                 [("service", "1000.00"), ("partial", "50.00"), ("discount", "-100.00")]),
        _invoice(11, "2026-10-01", "1000.00", "2026-11-10", "overdue", [("service", "1000.00")]),
    ],
    2: [
        _invoice(22, "2026-10-01", "300.00", "2026-11-05", "overdue", [("service", "300.00")]),
        _invoice(21, "2026-09-01", "300.00", "2026-10-05", "overdue", [("service", "300.00")]),
    ],
}  # fmt: skip
INCIDENTS = {
    1: [{"id": 5, "circuit": "BHZ-0001-FO", "description": "fibra rompida", "started_at": _at(-1),
         "expected_end_at": _at(0, 18), "resolved_at": None}],
}  # fmt: skip
WINDOWS = {
    1: [{"id": 9, "circuit": "BHZ-0002-FO", "description": "troca de equipamento", "starts_at": _at(2, 1),
         "ends_at": _at(2, 4)}],
}  # fmt: skip


@dataclass
class CarrierFake:
    """The server's state; tests read `hits` (requests per "METHOD /path") and `posts`."""

    hits: Counter[str] = field(default_factory=Counter)
    posts: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: list[tuple[int, str, str | None]] = field(default_factory=list)  # (incident, ticket, call)
    released: asyncio.Event = field(default_factory=asyncio.Event)  # ends every slow answer
    _faults: dict[str, tuple[Fault, int | None]] = field(default_factory=dict)
    _keys: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    base_url: str = ""

    def __post_init__(self) -> None:
        self.tickets[TICKET] = {
            "number": TICKET, "customer_id": 1, "kind": "technical_failure", "state": "in_progress",
            "circuit": "BHZ-0001-FO", "symptom": "no_connection", "description": "", "opened_at": _at(-2),
            "updated_at": _at(-1), "expected_date": "2026-11-26", "call_protocol": PROTOCOL,
        }  # fmt: skip

    def misbehave(self, route: str, fault: Fault, times: int | None = None) -> None:
        """Make requests to `route` ("GET /customers") fail with `fault`: the next `times` ones, or all."""
        self._faults[route] = (fault, times)

    def heal(self) -> None:
        self._faults.clear()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v1/customers", self.search_customers)
        app.router.add_get("/v1/customers/{cid}", self.customer)
        app.router.add_get("/v1/customers/{cid}/contacts", self.contacts)
        app.router.add_get("/v1/customers/{cid}/circuits", self.circuits)
        app.router.add_get("/v1/customers/{cid}/invoices", self.invoices)
        app.router.add_get("/v1/customers/{cid}/incidents", self.incidents)
        app.router.add_get("/v1/customers/{cid}/maintenance", self.maintenance)
        app.router.add_get("/v1/invoices/{iid}/boleto.pdf", self.document)
        app.router.add_get("/v1/invoices/{iid}/nota-fiscal.pdf", self.document)
        app.router.add_get("/v1/invoices/{iid}/digitable-line", self.digitable_line)
        app.router.add_get("/v1/tickets", self.search_tickets)
        app.router.add_get("/v1/tickets/{number}", self.ticket)
        app.router.add_post("/v1/tickets", self.open_ticket)
        app.router.add_post("/v1/leads", self.register_lead)
        app.router.add_post("/v1/incidents/{iid}/tickets", self.attach)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = f"{request.method} {request.path.removeprefix('/v1')}"
        self.hits[route] += 1
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _problem(401, "no or wrong token")
        fault, times = self._faults.get(route, (None, None))
        if fault is not None:
            if times is not None and times > 1:
                self._faults[route] = (fault, times - 1)
            elif times is not None:
                del self._faults[route]
            return await self._fail(request, fault)
        return await handler(request)

    async def _fail(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault is Fault.SLOW:
            await self.released.wait()
            return _problem(503, "too late")
        if fault is Fault.ERROR_500:
            return _problem(500, "internal error")
        if fault is Fault.MALFORMED:
            return web.Response(text='{"customers": [', content_type="application/json")
        if fault is Fault.WRONG_SCHEMA:
            return web.json_response({"customers": [{"id": "one", "name": "?"}], "tickets": [{}]})
        if fault is Fault.NOT_FOUND:
            return _problem(404, "no such thing")
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:  # RST instead of FIN: a reset, not a tidy close
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never sent: the connection is gone

    # --- the contract --------------------------------------------------------------------------------

    async def search_customers(self, request: web.Request) -> web.Response:
        (key, value), *_ = request.query.items()
        match = {
            "phone": lambda c: value in c["phones"],
            "cnpj": lambda c: c["cnpj"] == value,
            "cnpj_root": lambda c: c["cnpj"].startswith(value),
            "code": lambda c: c["code"] == value,
        }[key]
        return web.json_response({"customers": [c for c in CUSTOMERS if match(c)]})

    async def customer(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["cid"])
        found = next((c for c in CUSTOMERS if c["id"] == cid), None)
        return web.json_response(found) if found else _problem(404, "no such customer")

    async def contacts(self, request: web.Request) -> web.Response:
        return web.json_response({"contacts": CONTACTS.get(int(request.match_info["cid"]), [])})

    def _invoice(self, request: web.Request) -> dict[str, Any] | None:
        iid = int(request.match_info["iid"])
        return next((i for invoices in INVOICES.values() for i in invoices if i["id"] == iid), None)

    async def document(self, request: web.Request) -> web.Response:
        invoice = self._invoice(request)
        if invoice is None:
            return _problem(404, "no such invoice")
        kind = request.path.rsplit("/", 1)[1].removesuffix(".pdf")
        return web.Response(body=pdf(kind, invoice["id"]), content_type="application/pdf")

    async def digitable_line(self, request: web.Request) -> web.Response:
        invoice = self._invoice(request)
        if invoice is None:
            return _problem(404, "no such invoice")
        return web.json_response({"invoice_id": invoice["id"], "digitable_line": digitable_line(invoice["id"]),
                                  "due_date": invoice["due_date"], "amount": invoice["amount"]})  # fmt: skip

    async def circuits(self, request: web.Request) -> web.Response:
        return web.json_response({"circuits": CIRCUITS.get(int(request.match_info["cid"]), [])})

    async def invoices(self, request: web.Request) -> web.Response:
        return web.json_response({"invoices": INVOICES.get(int(request.match_info["cid"]), [])})

    async def incidents(self, request: web.Request) -> web.Response:
        return web.json_response({"incidents": INCIDENTS.get(int(request.match_info["cid"]), [])})

    async def maintenance(self, request: web.Request) -> web.Response:
        start, end = (datetime.fromisoformat(request.query[k]) for k in ("from", "to"))
        windows = [
            w for w in WINDOWS.get(int(request.match_info["cid"]), [])
            if datetime.fromisoformat(w["ends_at"]) >= start and datetime.fromisoformat(w["starts_at"]) <= end
        ]  # fmt: skip
        return web.json_response({"windows": windows})

    async def search_tickets(self, request: web.Request) -> web.Response:
        query = request.query
        found = [
            t for t in self.tickets.values()
            if t["customer_id"] == int(query["customer_id"])
            and all(t[k] == query[k] for k in ("call_protocol", "kind", "circuit") if k in query)
            and (query.get("state", "all") == "all" or t["state"] in OPEN_STATES)
        ]  # fmt: skip
        return web.json_response({"tickets": found[::-1]})

    async def attach(self, request: web.Request) -> web.Response:
        body = await request.json()
        replay = self._replay(request, body)
        if replay is not None:
            return replay
        incident_id = int(request.match_info["iid"])
        self.attached.append((incident_id, body["ticket_number"], body["call_protocol"]))
        return self._created(request, body, {"incident_id": incident_id, "ticket_number": body["ticket_number"]})

    async def ticket(self, request: web.Request) -> web.Response:
        found = self.tickets.get(request.match_info["number"])
        return web.json_response(found) if found else _problem(404, "no such ticket")

    async def open_ticket(self, request: web.Request) -> web.Response:
        body = await request.json()
        replay = self._replay(request, body)
        if replay is not None:
            return replay
        number = make_ticket_number(len(self.tickets) + 1)
        ticket = {
            "number": number, "customer_id": body["customer_id"], "kind": body["kind"], "state": "open",
            "circuit": body.get("circuit"), "symptom": body.get("symptom", ""),
            "description": body.get("description", ""), "opened_at": NOW.isoformat(), "updated_at": NOW.isoformat(),
            "expected_date": (date(2026, 11, 26)).isoformat(), "call_protocol": body["call_protocol"],
        }  # fmt: skip
        self.tickets[number] = ticket
        return self._created(request, body, ticket)

    async def register_lead(self, request: web.Request) -> web.Response:
        body = await request.json()
        replay = self._replay(request, body)
        if replay is not None:
            return replay
        lead = {"id": len(self._keys) + 1, **body}
        return self._created(request, body, lead)

    def _replay(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        key = request.headers.get("Idempotency-Key", "")
        self.posts.append((request.path.removeprefix("/v1"), dict(request.headers), body))
        if len(key) < 16:
            return _problem(400, "Idempotency-Key required")
        if key not in self._keys:
            return None
        first_body, resource = self._keys[key]
        return web.json_response(resource) if first_body == body else _problem(409, "key reused")

    def _created(self, request: web.Request, body: dict[str, Any], resource: dict[str, Any]) -> web.Response:
        self._keys[request.headers["Idempotency-Key"]] = (body, resource)
        return web.json_response(resource, status=201)


def _problem(status: int, title: str) -> web.Response:
    return web.Response(
        status=status, text=json.dumps({"title": title, "status": status}), content_type="application/problem+json"
    )
