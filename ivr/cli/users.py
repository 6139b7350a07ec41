"""``ivr users add|passwd|disable|list``: the web console's accounts (roles viewer, editor, admin). Passwords
are read from a prompt (twice) or, for scripts, one line on standard input (``--password-stdin``); only
their argon2 hash is stored. Every change is in the console's audit log, by the login that made it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

ROLES = ("viewer", "editor", "admin")


def register(sub: Any) -> None:
    parser = sub.add_parser("users", help="the web console's accounts: add, passwd, disable, list")
    commands = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = commands.add_parser("add", help="a new account with a role")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer", help="what it may do (default viewer)")
    passwd = commands.add_parser("passwd", help="set an account's password (and enable it again)")
    passwd.add_argument("name")
    for action in (add, passwd):
        action.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    disable = commands.add_parser("disable", help="the account can log in no more; its sessions end")
    disable.add_argument("name")
    listing = commands.add_parser("list", help="every account, its role and state")
    for action, handler in ((add, _add), (passwd, _passwd), (disable, _disable), (listing, _list)):
        action.add_argument("--url", help="database URL (default: IVR_DATABASE_URL or the settings)")
        action.set_defaults(handler=handler)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _operator() -> str:
    import getpass

    return f"{getpass.getuser()} (ivr users)"


async def _change(args: argparse.Namespace, what: str) -> int:
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.store.db import open_store
    from ivr.store.models import WebRole
    from ivr.store.web_accounts import AccountError, WebAccounts
    from ivr.web.auth import hash_password

    try:
        hashed = hash_password(_password(args)) if what in ("add", "passwd") else ""
    except ValueError as exc:
        print(f"ivr users {what}: {exc}", file=sys.stderr)
        return 2
    store = open_store(settings(), args.url)
    accounts = WebAccounts(store, clock=system_clock)
    try:
        if what == "add":
            await accounts.add(args.name, hashed, WebRole(args.role), who=_operator())
        elif what == "passwd":
            await accounts.set_password(args.name, hashed, who=_operator())
        else:
            await accounts.disable(args.name, who=_operator())
    except AccountError as exc:
        print(f"ivr users {what}: {exc}", file=sys.stderr)
        return 2
    finally:
        await store.aclose()
    print({"add": f"added {args.name} ({getattr(args, 'role', '')})", "passwd": f"password of {args.name} set",
           "disable": f"{args.name} disabled; its sessions ended"}[what])  # fmt: skip
    return 0


async def _add(args: argparse.Namespace) -> int:
    return await _change(args, "add")


async def _passwd(args: argparse.Namespace) -> int:
    return await _change(args, "passwd")


async def _disable(args: argparse.Namespace) -> int:
    return await _change(args, "disable")


async def _list(args: argparse.Namespace) -> int:
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.store.db import open_store
    from ivr.store.web_accounts import WebAccounts

    store = open_store(settings(), args.url)
    try:
        accounts = await WebAccounts(store, clock=system_clock).accounts()
    finally:
        await store.aclose()
    for account in accounts:
        print(f"{account.name:<24} {account.role.value:<7} {'active' if account.active else 'disabled'}")
    if not accounts:
        print("no accounts yet: ivr users add NAME --role admin")
    return 0
