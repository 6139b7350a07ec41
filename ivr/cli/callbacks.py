"""`ivr callbacks list [--state ...]`, `ivr callbacks cancel ID`, `ivr callbacks retry ID`: the call backs the
IVR owes (ivr.store.callbacks), for operators. Numbers are masked; the dialer in `ivr serve` dials them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.store.callbacks import StoreCallbackBook
    from ivr.store.db import Store

STATES = ("pending", "dialling", "answered", "given_up", "cancelled")


def register(sub: Any) -> None:
    parser = sub.add_parser("callbacks", help="the call backs the IVR dials: list, cancel, retry")
    commands = parser.add_subparsers(dest="callbacks_command", required=True, metavar="ACTION")
    listing = commands.add_parser("list", help="list the call backs (oldest first) with their attempts")
    listing.add_argument("--state", choices=STATES, action="append", help="only this state (repeatable)")
    listing.set_defaults(handler=_list)
    for name, handler, text in (
        ("cancel", _cancel, "dial this call back no more (one ringing now ends by itself)"),
        ("retry", _retry, "dial this call back again now, with a fresh set of attempts"),
    ):
        action = commands.add_parser(name, help=text, description=text)
        action.add_argument("id", type=int, metavar="ID")
        action.set_defaults(handler=handler)
    for action in commands.choices.values():
        action.add_argument("--url", help="database URL (default: IVR_DATABASE_URL or the settings)")


async def _list(args: argparse.Namespace) -> int:
    from ivr.store.models import CallbackState

    store, book = _open(args.url)
    try:
        rows = await book.listed([CallbackState(state) for state in args.state or ()])
        attempts = {row.id: await book.attempts(row.id) for row in rows}
    finally:
        await store.aclose()
    for row in rows:
        print(
            f"#{row.id} {row.state.value:<9} {row.team:<10} {row.number_masked:<13} call={row.protocol} "
            f"ticket={row.ticket_number or '-'} {row.reason} attempts={row.attempts}"
            + (f" next={row.next_attempt_at:%Y-%m-%d %H:%M}Z" if row.state is CallbackState.PENDING else "")
        )
        for number, outcome, detail in attempts[row.id]:
            print(
                f"    attempt {number}: {outcome.value if outcome else 'in flight'}"
                + (f" ({detail})" if detail else "")
            )
    if not rows:
        print("no call backs")
    return 0


async def _cancel(args: argparse.Namespace) -> int:
    return await _change(args, "cancelled")


async def _retry(args: argparse.Namespace) -> int:
    return await _change(args, "pending again, due now")


async def _change(args: argparse.Namespace, done: str) -> int:
    from ivr.store.callbacks import CallbackRefused

    store, book = _open(args.url)
    try:
        await (book.cancel if args.handler is _cancel else book.retry)(args.id)
    except CallbackRefused as exc:
        print(f"ivr callbacks {args.callbacks_command}: {exc}")
        return 1
    finally:
        await store.aclose()
    print(f"call back #{args.id}: {done}")
    return 0


def _open(url: str | None) -> tuple[Store, StoreCallbackBook]:
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.store.callbacks import StoreCallbackBook
    from ivr.store.db import open_store

    conf = settings()
    store = open_store(conf, url)
    return store, StoreCallbackBook(store, clock=system_clock, conf=conf.callbacks, timezone=conf.timezone)
