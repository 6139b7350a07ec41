"""The `ivr` command. Each area registers its own sub-commands; this module only dispatches.

Sub-command modules keep their heavy imports inside the handlers so `ivr --help` stays instant.
A handler returns the process exit status (0 = success); it may be a coroutine function.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Sequence

from ivr import logs
from ivr.config import ConfigError, settings

# Modules exposing `register(subparsers)`; each adds one top-level command group.
COMMAND_MODULES = (
    "ivr.cli.flow",  # ivr flow check|simulate|test|graph|publish|schema
    "ivr.cli.prompts",  # ivr prompts build|list
    "ivr.cli.db",  # ivr db upgrade|seed
    "ivr.cli.serve",  # ivr serve
    "ivr.cli.asterisk",  # ivr asterisk up|down|status|cli, ivr call
    "ivr.cli.doctor",  # ivr doctor
    "ivr.cli.callbacks",  # ivr callbacks list|cancel|retry
    "ivr.cli.live",  # ivr live
    "ivr.cli.announce",  # ivr announce add|list|end
    "ivr.cli.calls",  # ivr calls show|list
    "ivr.cli.report",  # ivr report
    "ivr.cli.users",  # ivr users add|passwd|disable|list
    "ivr.cli.web",  # ivr web
)

DATABASE_HINT = " (is the database there and migrated? `ivr db upgrade` prepares it; IVR_DATABASE_URL names it)"

QUIET_COMMANDS = {"flow", "prompts", "announce", "calls", "report", "users"}
#: Commands that run for days: they log as the `log` settings say (JSON lines for an operator's shipper).
LONG_RUNNING_COMMANDS = {"serve", "web"}
#: Commands whose event loop is uvloop's: the call path. libuv's loop and socket transports, in C, took a
#: sixth off the IVR's CPU per real call (bench/README.md, "uvloop, one command for several prompts").
UVLOOP_COMMANDS = {"serve"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="sac-ivr: the 3003-3336 phone IVR")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    try:
        _configure_logging(args)
        if inspect.iscoroutinefunction(handler):
            with asyncio.Runner(loop_factory=loop_factory(args.command)) as runner:
                result = runner.run(handler(args))
        else:
            result = handler(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # a peer that is not there: the database (the store's StoreUnavailable)...
        hint = DATABASE_HINT if str(exc).startswith("store unavailable") else ""
        print(f"ivr {args.command}: {exc}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def loop_factory(command: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `command` runs on (None: asyncio's own). The benches run their FastAGI servers on
    `serve`'s, so they compare code, not loops."""
    if command not in UVLOOP_COMMANDS:
        return None  # asyncio's own loop
    import uvloop  # here, not above: `ivr --help` stays instant

    return uvloop.new_event_loop


def _configure_logging(args: argparse.Namespace) -> None:
    fmt: logs.LogFormat = "text"
    level: int | str = logging.INFO
    if args.command in LONG_RUNNING_COMMANDS:
        conf = settings().log
        fmt, level = conf.format, conf.level
    elif args.command in QUIET_COMMANDS:
        level = logging.WARNING  # a supervisor's commands print their own report; INFO lines would drown it
    logs.configure(fmt, logging.DEBUG if args.verbose else level)
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise

