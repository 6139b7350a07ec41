"""The demo data: idempotent, and covering what the journeys need (see ivr/store/seed.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr import cnpj
from ivr.cli import db as cli
from ivr.domain import DocumentKind, InvoiceLineKind, InvoiceStatus, TicketState
from ivr.store.db import Store
from ivr.store.migrate import alembic_config
from ivr.store.models import Customer, Invoice, InvoiceDocument, MaintenanceWindow, Ticket
from ivr.store.seed import seed

from .conftest import NOW, sqlite_url


def _counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Customer, Ticket, Invoice, InvoiceDocument, MaintenanceWindow)
    )


async def test_seeding_twice_adds_nothing_the_second_time(seeded: Store) -> None:
    before = await seeded.read(_counts)
    assert await seed(seeded, now=NOW) == []
    assert await seeded.read(_counts) == before


async def test_accounts_tickets_and_invoices_cover_every_case(seeded: Store) -> None:
    def facts(session: Session) -> dict[str, object]:
        invoices = session.scalars(select(Invoice)).all()
        return {
            "cnpjs": [c.cnpj for c in session.scalars(select(Customer))],
            "states": {t.state for t in session.scalars(select(Ticket))},
            "statuses": {i.status for i in invoices},
            "line_kinds": {line.kind for i in invoices for line in i.lines},
            "totals_match": all(i.amount == sum(line.amount for line in i.lines) for i in invoices),
            "documents": all({d.kind for d in i.documents} == set(DocumentKind) for i in invoices),
            "maintenance_ahead": all(w.starts_at > NOW for w in session.scalars(select(MaintenanceWindow))),
        }

    got = await seeded.read(facts)
    assert all(cnpj.is_valid(value) for value in got["cnpjs"]) and any(
        map(cnpj.is_alphanumeric, got["cnpjs"])
    )
    assert got["states"] == set(TicketState)
    assert got["statuses"] == set(InvoiceStatus)
    assert {InvoiceLineKind.PARTIAL, InvoiceLineKind.DISCOUNT} <= got["line_kinds"]
    assert got["totals_match"] and got["documents"] and got["maintenance_ahead"]


def _mod10(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        p = int(ch) * (2 - i % 2)
        total += p // 10 + p % 10
    return (10 - total % 10) % 10


async def test_boletos_have_valid_digitable_lines_and_documents_are_pdfs(seeded: Store) -> None:
    documents = await seeded.read(lambda s: s.scalars(select(InvoiceDocument)).all())
    for doc in documents:
        assert doc.content.startswith(b"%PDF-1.4") and doc.content.rstrip().endswith(b"%%EOF")
        if doc.kind is DocumentKind.BOLETO:
            line = doc.digitable_line
            assert len(line) == 47 and line.isdigit()
            for start, end in ((0, 9), (10, 20), (21, 31)):
                assert _mod10(line[start:end]) == int(line[end]), line
            code = line[:4] + line[32] + line[33:] + line[4:9] + line[10:20] + line[21:31]
            body = code[:4] + code[5:]
            rest = 11 - sum(int(c) * (2 + i % 8) for i, c in enumerate(reversed(body))) % 11
            assert int(code[4]) == (1 if rest in (0, 10, 11) else rest)


async def test_cli_upgrades_and_seeds_a_new_file(tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    url = sqlite_url(tmp_path / "new" / "ivr.sqlite3")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    for argv, expected in (
        (["db", "upgrade", "--url", url], f"revision {head}"),
        (["db", "seed", "--url", url], "seeded 4 account(s)"),
        (["db", "seed", "--url", url], "already present"),
    ):
        args = parser.parse_args(argv)
        assert await args.handler(args) == 0
        assert expected in capsys.readouterr().out
    store = Store(url)
    try:
        assert (await store.read(_counts))[0] == 4
    finally:
        await store.aclose()
