"""`ivr db upgrade` (apply migrations), `ivr db seed` (demo accounts, idempotent), and the outbox of
e-mails and WhatsApp messages: `ivr db outbox` (list, e.g. the failed ones) and `ivr db requeue ID...`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.store.db import Store


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
    outbox = commands.add_parser("outbox", help="list the messages to send (newest first)")
    outbox.add_argument("--state", choices=("pending", "sent", "failed"), help="only messages in this state")
    outbox.add_argument("--limit", type=int, default=50)
    outbox.add_argument("--url", help="database URL (default: IVR_DATABASE_URL or the settings)")
    outbox.set_defaults(handler=_outbox)
    requeue = commands.add_parser("requeue", help="send failed messages again (after fixing the cause)")
    requeue.add_argument("ids", type=int, nargs="+", metavar="ID")
    requeue.add_argument("--url", help="database URL (default: IVR_DATABASE_URL or the settings)")
    requeue.set_defaults(handler=_requeue)


async def _upgrade(args: argparse.Namespace) -> int:
    from ivr.store.migrate import current_revision, upgrade

    store = _open(args.url)
    try:
        await upgrade(store)
        print(f"database at revision {await current_revision(store)}")
    finally:
        await store.aclose()
    return 0


async def _seed(args: argparse.Namespace) -> int:
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.store.migrate import upgrade
    from ivr.store.seed import seed

    store = _open(args.url)
    try:
        await upgrade(store)
        added = await seed(store, now=system_clock(), timezone=settings().timezone)
    finally:
        await store.aclose()
    print(f"seeded {len(added)} account(s): {', '.join(added)}" if added else "demo data already present")
    return 0


async def _outbox(args: argparse.Namespace) -> int:
    from integrations.messaging.outbox import listed
    from ivr.store.models import OutboxState, mask_recipient

    store = _open(args.url)
    try:
        rows = await listed(store, state=OutboxState(args.state) if args.state else None, limit=args.limit)
    finally:
        await store.aclose()
    for row in rows:
        print(
            f"#{row.id} {row.state.value:<7} {row.channel.value:<8} {row.template:<16} "
            f"{mask_recipient(row.channel, row.recipient):<28} attempts={row.attempts} "
            f"call={row.call_protocol or '-'} queued={row.created_at:%Y-%m-%d %H:%M}Z"
            + (f" sent={row.sent_at:%Y-%m-%d %H:%M}Z" if row.sent_at else "")
            + (f"\n    last error: {row.last_error}" if row.last_error else "")
        )
    if not rows:
        print("no messages")
    return 0


async def _requeue(args: argparse.Namespace) -> int:
    from integrations.messaging.outbox import requeue
    from ivr.clock import system_clock

    store = _open(args.url)
    try:
        done = await requeue(store, args.ids, now=system_clock())
    finally:
        await store.aclose()
    missed = sorted(set(args.ids) - set(done))
    if done:
        print(f"requeued: {', '.join(f'#{i}' for i in done)}")
    if missed:
        print(f"not failed (or unknown), left alone: {', '.join(f'#{i}' for i in missed)}")
    return 1 if missed else 0


def _open(url: str | None) -> Store:
    """The store named by `url` or the settings; a SQLite file's directory is made if missing."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from ivr.config import settings
    from ivr.store.db import open_store, private_directory

    parsed = make_url(url or settings().database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        private_directory(Path(parsed.database).parent)  # before the store creates its file there
    return open_store(settings(), url)
