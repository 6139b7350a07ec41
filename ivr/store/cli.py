"""`ivr db upgrade` (apply migrations) and `ivr db seed` (demo accounts, idempotent)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("db", help="the store: migrations and demo data")
    commands = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, handler, text in (
        ("upgrade", _upgrade, "apply the database migrations (creates the SQLite file if needed)"),
        ("seed", _seed, "add the demo accounts missing from the store (implies upgrade)"),
    ):
        action = commands.add_parser(name, help=text, description=text)
        action.add_argument("--url", help="database URL (default: IVR_DATABASE_URL or the settings)")
        action.set_defaults(handler=handler)


async def _upgrade(args: argparse.Namespace) -> int:
    from ivr.store.db import open_store
    from ivr.store.migrate import current_revision, upgrade

    store = _open(args.url, open_store)
    try:
        await upgrade(store)
        print(f"database at revision {await current_revision(store)}")
    finally:
        await store.aclose()
    return 0


async def _seed(args: argparse.Namespace) -> int:
    from ivr.config import settings
    from ivr.store.db import open_store
    from ivr.store.migrate import upgrade
    from ivr.store.seed import seed

    store = _open(args.url, open_store)
    try:
        await upgrade(store)
        added = await seed(store, timezone=settings().timezone)
    finally:
        await store.aclose()
    print(f"seeded {len(added)} account(s): {', '.join(added)}" if added else "demo data already present")
    return 0


def _open(url: str | None, open_store: Any) -> Any:
    from pathlib import Path

    from sqlalchemy.engine import make_url

    store = open_store(url)
    parsed = make_url(store.url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return store
