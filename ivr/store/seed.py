"""Demo data (`ivr db seed`): a few accounts that exercise every caller journey. Idempotent.

Each account is added once, keyed by its CNPJ; running the seed again adds only accounts missing
from the store. Dates are relative to the day of seeding (invoices due, maintenance in the coming
days). Ticket numbers come from fixed sequence blocks, so they are the same in every fresh store.

- ``KNOWN_CALLER`` 3133334444: Transportes Serra Azul, two circuits, one with an open incident and
  the other with planned maintenance; tickets in each state; invoices paid, overdue and open, with a
  partial-billing line and a discount line.
- Hospital Vale do Aço (numeric CNPJ, nothing wrong on its circuit), Nova Fibra Tecnologia
  (alphanumeric CNPJ, reached by mobile, maintenance in four days), Comercial Ipê (suspended for
  overdue invoices).
- ``SHARED_CALLER`` 3130001111 is registered on two accounts (an accountant's office): caller ID
  alone cannot tell which, so the flow must ask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr import cnpj as cnpj_rules
from ivr.domain import AccountStatus, ContactKind, DocumentKind, InvoiceLineKind, InvoiceStatus, TicketKind, TicketState
from ivr.flows.impact import StandIn
from ivr.protocol_number import make_call_protocol, make_ticket_number
from ivr.store import boleto
from ivr.store.db import Store
from ivr.store.models import (
    Circuit,
    Contact,
    Customer,
    Incident,
    Invoice,
    InvoiceDocument,
    InvoiceLine,
    MaintenanceWindow,
    Ticket,
)
from ivr.store.pdf import text_pdf
from ivr.store.sequences import TICKET, raise_to

KNOWN_CALLER = "3133334444"
SHARED_CALLER = "3130001111"
SEED_TICKET_BLOCK = 1_000  # seed tickets use sequences below this; new tickets start above it
BANK = "341"


@dataclass(frozen=True)
class CircuitSeed:
    designation: str
    service: str
    address: str
    city: str
    state: str
    monthly: Decimal
    status: AccountStatus = AccountStatus.ACTIVE
    incident: str = ""  # an open incident on it, if any
    maintenance_in_days: int | None = None  # planned maintenance that many days from the seed day


@dataclass(frozen=True)
class TicketSeed:
    sequence: int
    kind: TicketKind
    state: TicketState
    days_ago: int
    circuit: int | None = None  # index into the account's circuits
    symptom: str = ""
    description: str = ""


@dataclass(frozen=True)
class InvoiceSeed:
    months_ago: int
    status: InvoiceStatus
    partial_circuit: int | None = None  # that circuit started mid-month: a pro-rata line
    discount: Decimal = Decimal("0")  # a highlighted commercial discount line


@dataclass(frozen=True)
class AccountSeed:
    cnpj: str
    code: str
    name: str
    contacts: tuple[tuple[ContactKind, str, str], ...]
    circuits: tuple[CircuitSeed, ...]
    tickets: tuple[TicketSeed, ...] = ()
    invoices: tuple[InvoiceSeed, ...] = ()
    status: AccountStatus = AccountStatus.ACTIVE
    due_day: int = 10


ACCOUNTS: tuple[AccountSeed, ...] = (
    AccountSeed(
        cnpj="11222333000181",
        code="100200",
        name="Transportes Serra Azul Ltda",
        contacts=(
            (ContactKind.PHONE, KNOWN_CALLER, "Recepção"),
            (ContactKind.WHATSAPP, "31988887777", "Marta (financeiro)"),
            (ContactKind.EMAIL, "financeiro@serraazul.com.br", "Financeiro"),
            (ContactKind.EMAIL, "ti@serraazul.com.br", "TI"),
        ),
        circuits=(
            CircuitSeed(
                "BHZ-FO-10021",
                "IP dedicado 500 Mbps",
                "Av. Afonso Pena, 1500, Centro",
                "Belo Horizonte",
                "MG",
                Decimal("2890.00"),
                incident="Rompimento de fibra na Av. Amazonas; equipe em campo",
            ),
            CircuitSeed(
                "CTG-FO-10022",
                "Lan-to-Lan 1 Gbps",
                "Rua João César de Oliveira, 1200, Eldorado",
                "Contagem",
                "MG",
                Decimal("1990.00"),
                maintenance_in_days=2,
            ),
        ),
        tickets=(
            TicketSeed(
                101,
                TicketKind.TECHNICAL_FAILURE,
                TicketState.OPEN,
                0,
                0,
                "no_connection",
                "Link sem conexão desde as 8h",
            ),
            TicketSeed(
                102,
                TicketKind.SERVICE_REQUEST,
                TicketState.IN_PROGRESS,
                3,
                1,
                "",
                "Liberar bloco /29 adicional",
            ),
            TicketSeed(
                103,
                TicketKind.DUE_DATE_CHANGE,
                TicketState.WAITING_CUSTOMER,
                6,
                None,
                "",
                "Mudar vencimento para dia 20",
            ),
            TicketSeed(
                104, TicketKind.BILLING_DOUBT, TicketState.RESOLVED, 12, None, "", "Valor parcial na fatura"
            ),
            TicketSeed(105, TicketKind.BOLETO_COPY, TicketState.CLOSED, 20),
            TicketSeed(
                106, TicketKind.BGP_REQUEST, TicketState.CANCELLED, 30, 0, "", "Sessão BGP com ASN próprio"
            ),
        ),
        invoices=(
            InvoiceSeed(3, InvoiceStatus.PAID),
            InvoiceSeed(2, InvoiceStatus.PAID, partial_circuit=1),
            InvoiceSeed(1, InvoiceStatus.OVERDUE, discount=Decimal("150.00")),
            InvoiceSeed(0, InvoiceStatus.OPEN),
        ),
    ),
    AccountSeed(
        cnpj="45263816000146",
        code="100300",
        name="Hospital Vale do Aço S.A.",
        contacts=(
            (ContactKind.PHONE, "3138210000", "Central"),
            (ContactKind.PHONE, SHARED_CALLER, "Contabilidade Silva"),
            (ContactKind.EMAIL, "ti@hvaco.org.br", "TI"),
        ),
        circuits=(
            CircuitSeed(
                "IPA-FO-20031",
                "IP dedicado 1 Gbps",
                "Rua Pouso Alegre, 300, Centro",
                "Ipatinga",
                "MG",
                Decimal("4200.00"),
            ),
        ),
        tickets=(
            TicketSeed(
                201,
                TicketKind.TECHNICAL_FAILURE,
                TicketState.RESOLVED,
                9,
                0,
                "slow",
                "Lentidão no horário de pico",
            ),
        ),
        invoices=(
            InvoiceSeed(2, InvoiceStatus.PAID),
            InvoiceSeed(1, InvoiceStatus.PAID),
            InvoiceSeed(0, InvoiceStatus.OPEN),
        ),
        due_day=15,
    ),
    AccountSeed(
        cnpj="12ABC34501DE35",
        code="300400",
        name="Nova Fibra Tecnologia Ltda",
        contacts=(
            (ContactKind.PHONE, "11987654321", "Diretoria"),
            (ContactKind.WHATSAPP, "11987654321", "Diretoria"),
            (ContactKind.EMAIL, "contas@novafibra.com.br", "Contas a pagar"),
        ),
        circuits=(
            CircuitSeed(
                "SPO-FO-30041",
                "IP dedicado 300 Mbps",
                "Av. Paulista, 1000, Bela Vista",
                "São Paulo",
                "SP",
                Decimal("1750.00"),
                maintenance_in_days=4,
            ),
        ),
        tickets=(
            TicketSeed(
                301, TicketKind.BILLING_DISPUTE, TicketState.OPEN, 2, None, "", "Cobrança em duplicidade"
            ),
        ),
        invoices=(
            InvoiceSeed(1, InvoiceStatus.PAID, partial_circuit=0),
            InvoiceSeed(0, InvoiceStatus.OPEN, discount=Decimal("87.50")),
        ),
        due_day=5,
    ),
    AccountSeed(
        cnpj="60394672000150",
        code="100500",
        name="Comercial Ipê Ltda",
        contacts=(
            (ContactKind.PHONE, "3132221111", "Loja"),
            (ContactKind.PHONE, SHARED_CALLER, "Contabilidade Silva"),
            (ContactKind.EMAIL, "compras@comercialipe.com.br", "Compras"),
        ),
        circuits=(
            CircuitSeed(
                "BHZ-FO-10051",
                "IP dedicado 100 Mbps",
                "Rua dos Caetés, 500, Centro",
                "Belo Horizonte",
                "MG",
                Decimal("890.00"),
                status=AccountStatus.SUSPENDED,
            ),
        ),
        tickets=(
            TicketSeed(
                401,
                TicketKind.CANCELLATION,
                TicketState.IN_PROGRESS,
                4,
                None,
                "",
                "Encerrar contrato ao fim do mês",
            ),
        ),
        invoices=(
            InvoiceSeed(2, InvoiceStatus.OVERDUE),
            InvoiceSeed(1, InvoiceStatus.OVERDUE),
            InvoiceSeed(0, InvoiceStatus.OPEN),
        ),
        status=AccountStatus.SUSPENDED,
    ),
)


async def seed(store: Store, *, now: datetime, timezone: str = "America/Sao_Paulo") -> list[str]:
    """Add the demo accounts missing from the store, dated relative to `now`; returns the names of those
    added."""
    zone = ZoneInfo(timezone)

    def write(session: Session) -> list[str]:
        added = []
        for account in ACCOUNTS:
            if session.scalar(select(Customer.id).where(Customer.cnpj == account.cnpj)) is None:
                _add_account(session, account, now, zone)
                added.append(account.name)
        raise_to(session, TICKET, SEED_TICKET_BLOCK)
        return added

    return await store.write(write)


def _add_account(session: Session, account: AccountSeed, now: datetime, zone: ZoneInfo) -> None:
    if not cnpj_rules.is_valid(account.cnpj):
        raise ValueError(f"seed account {account.name!r}: invalid CNPJ {account.cnpj}")
    today = now.astimezone(zone).date()
    customer = Customer(
        cnpj=account.cnpj,
        cnpj_root=cnpj_rules.root(account.cnpj),
        code=account.code,
        name=account.name,
        status=account.status,
        created_at=now - timedelta(days=400),
    )
    customer.contacts = [Contact(kind=kind, value=value, name=name) for kind, value, name in account.contacts]
    circuits = [
        Circuit(
            designation=c.designation,
            service=c.service,
            address=c.address,
            city=c.city,
            state=c.state,
            status=c.status,
        )
        for c in account.circuits
    ]
    customer.circuits = circuits
    session.add(customer)
    session.flush()
    for spec, circuit in zip(account.circuits, circuits, strict=True):
        if spec.incident:
            session.add(
                Incident(
                    circuit_id=circuit.id,
                    description=spec.incident,
                    started_at=now - timedelta(hours=2),
                    expected_end_at=now + timedelta(hours=4),
                )
            )
        if spec.maintenance_in_days is not None:
            day = today + timedelta(days=spec.maintenance_in_days)
            starts = datetime.combine(day, time(0, 0), zone)
            session.add(
                MaintenanceWindow(
                    circuit_id=circuit.id,
                    description="Troca de equipamento no POP (atividade programada)",
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=4),
                )
            )
    for ticket in account.tickets:
        opened = now - timedelta(days=ticket.days_ago, hours=1)
        session.add(
            Ticket(
                number=make_ticket_number(ticket.sequence),
                customer_id=customer.id,
                circuit_id=circuits[ticket.circuit].id if ticket.circuit is not None else None,
                kind=ticket.kind,
                state=ticket.state,
                symptom=ticket.symptom,
                description=ticket.description,
                call_protocol=make_call_protocol(today.year - 1, 9_000 + ticket.sequence),
                created_at=opened,
                updated_at=opened + timedelta(hours=3),
                expected_date=opened.astimezone(zone).date() + timedelta(days=5),
            )
        )
    for invoice in account.invoices:
        session.add(_invoice(customer, account, invoice, today))


def _invoice(customer: Customer, account: AccountSeed, spec: InvoiceSeed, today: date) -> Invoice:
    month = _month_start(today, spec.months_ago)
    lines = []
    for index, circuit in enumerate(account.circuits):
        if spec.partial_circuit == index:
            start = month.replace(day=16)
            days_in_month = (_month_start(month, -1) - month).days
            days = days_in_month - 15
            amount = (circuit.monthly * days / days_in_month).quantize(Decimal("0.01"))
            lines.append(
                InvoiceLine(
                    kind=InvoiceLineKind.PARTIAL,
                    amount=amount,
                    period_start=start,
                    period_end=_month_start(month, -1) - timedelta(days=1),
                    description=(
                        f"Faturamento parcial {circuit.designation}: ativação em {start:%d/%m} ({days} dias)"
                    ),
                )
            )
        else:
            lines.append(
                InvoiceLine(
                    kind=InvoiceLineKind.SERVICE,
                    amount=circuit.monthly,
                    description=f"{circuit.service} {circuit.designation}",
                )
            )
    if spec.discount:
        lines.append(
            InvoiceLine(
                kind=InvoiceLineKind.DISCOUNT, amount=-spec.discount, description="Desconto comercial"
            )
        )
    total = sum((line.amount for line in lines), Decimal("0.00"))
    due = _month_start(month, -1).replace(day=account.due_day)
    if spec.status is InvoiceStatus.OVERDUE:
        due = min(due, today - timedelta(days=10))
    elif spec.status is InvoiceStatus.OPEN:
        due = max(due, today + timedelta(days=10))
    invoice = Invoice(
        customer_id=customer.id,
        reference_month=month,
        amount=total,
        due_date=due,
        status=spec.status,
        paid_on=due - timedelta(days=2) if spec.status is InvoiceStatus.PAID else None,
        lines=lines,
    )
    free_field = f"109{customer.id:08d}{month:%Y%m}{account.due_day:02d}000000"  # carteira, nosso número
    line = boleto.digitable_line(boleto.barcode(BANK, total, due, free_field))
    reference = f"{month:%m/%Y}"
    invoice.documents = [
        InvoiceDocument(
            kind=DocumentKind.BOLETO,
            digitable_line=line,
            file_name=f"boleto-{account.code}-{month:%Y-%m}.pdf",
            content_type="application/pdf",
            content=text_pdf(
                [
                    "Boleto bancário - American Tower do Brasil (Fibra)",
                    f"Pagador: {customer.name}",
                    f"CNPJ: {customer.cnpj}",
                    f"Referência: {reference}",
                    f"Vencimento: {due:%d/%m/%Y}",
                    f"Valor: R$ {total:.2f}".replace(".", ","),
                    f"Linha digitável: {boleto.formatted(line)}",
                ]
            ),
        ),
        InvoiceDocument(
            kind=DocumentKind.NOTA_FISCAL,
            number=f"{customer.id:03d}{month:%y%m}",
            file_name=f"nota-fiscal-{account.code}-{month:%Y-%m}.pdf",
            content_type="application/pdf",
            content=text_pdf(
                [
                    "Nota Fiscal Fatura de Serviço de Comunicação (NFCom)",
                    f"Tomador: {customer.name}",
                    f"CNPJ: {customer.cnpj}",
                    f"Referência: {reference}",
                ]
                + [f"{item.description}: R$ {item.amount:.2f}".replace(".", ",") for item in lines]
                + [f"Total: R$ {total:.2f}".replace(".", ",")]
            ),
        ),
    ]
    return invoice


def _month_start(day: date, months_ago: int) -> date:
    """First day of the month `months_ago` before `day`'s month (negative: months after)."""
    index = day.year * 12 + day.month - 1 - months_ago
    return date(index // 12, index % 12 + 1, 1)


def stand_in() -> StandIn:
    """The first demo account (the known caller's) as the stand-in for callers whose data is masked in
    their node visits (`ivr flow impact`): its CNPJ, and what a caller keys of it by length (CNPJ root,
    customer code, phones, a circuit's last four and five digits)."""
    account = ACCOUNTS[0]
    keyed = [account.cnpj[:8], account.code]
    keyed += [value for kind, value, _ in account.contacts if kind in (ContactKind.PHONE, ContactKind.WHATSAPP)]
    for circuit in account.circuits:
        digits = re.sub(r"\D", "", circuit.designation)
        keyed += [digits[-4:], digits[-5:]]
    by_length: dict[int, str] = {}
    for value in keyed:
        by_length.setdefault(len(value), value)  # the first of a length: the root before a phone
    return StandIn(caller_id=KNOWN_CALLER, cnpj=account.cnpj, by_length=by_length)
