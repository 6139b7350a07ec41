"""`ivr calls show PROTOCOL` (one call's trace, `--json` for machines) and `ivr calls list --since ...` (one line
per call, newest first), for operators, from ivr.store.history. Callers and recipients are masked; times are
local (the `timezone` setting)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.store.history import CallLine, CallTrace

#: Exit status when the call asked for is not in the store, or the command line cannot be read.
NOT_FOUND = 2
OUTCOMES = "contained, hangup, failed, queue, queue:<team>, transfer, transfer:<number>"


def register(sub: Any) -> None:
    parser = sub.add_parser("calls", help="what happened on calls: show one, list them")
    commands = parser.add_subparsers(dest="calls_command", required=True, metavar="ACTION")
    show = commands.add_parser(
        "show", help="one call: caller (masked), path node by node, tickets, messages, call backs, outcome"
    )
    show.add_argument("number", metavar="PROTOCOL", help="the call's protocol, or a ticket opened on it")
    show.add_argument("--json", action="store_true", help="as JSON, for machines")
    show.set_defaults(handler=_show)
    listing = commands.add_parser("list", help="calls newest first, one line each")
    listing.add_argument(
        "--since",
        required=True,
        help="from: a local date and time (2026-12-01, 2026-12-01 08:00) or a duration ago (2h, 1d)",
    )
    listing.add_argument("--until", help="up to (excluded), written like --since (default: now)")
    listing.add_argument("--caller", help="only calls from this number, written any way (shown masked)")
    listing.add_argument("--outcome", help=f"only calls that ended so: {OUTCOMES}")
    listing.add_argument("--limit", type=int, default=50, help="at most this many calls (default 50)")
    listing.set_defaults(handler=_list)
    for action in commands.choices.values():
        action.add_argument("--url", help="database URL (default: IVR_DATABASE_URL or the settings)")


async def _show(args: argparse.Namespace) -> int:
    from ivr.config import settings
    from ivr.store.db import open_store
    from ivr.store.history import trace

    conf = settings()
    store = open_store(conf, args.url)
    try:
        seen = await trace(store, args.number)
    finally:
        await store.aclose()
    if seen is None:
        print(f"ivr calls show: no call has protocol or ticket {args.number}", file=sys.stderr)
        return NOT_FOUND
    if args.json:
        print(json.dumps(asdict(seen), default=datetime.isoformat, ensure_ascii=False, indent=2))
    else:
        print("\n".join(_trace_lines(seen, conf, _releases_named(conf, seen.flow_version))))
    return 0


def _releases_named(conf: Settings, flow_version: str) -> str:
    from integrations.catalog import declared_registry
    from ivr.clock import system_clock
    from ivr.flows.library import FlowLibrary

    return FlowLibrary.of(conf, registry=declared_registry(), clock=system_clock).releases_named(flow_version)


async def _list(args: argparse.Namespace) -> int:
    from ivr.clock import moment_from, system_clock
    from ivr.config import settings
    from ivr.store.db import open_store
    from ivr.store.history import CallFilter, listed

    conf = settings()
    now = system_clock()
    try:
        since = moment_from(args.since, now, conf.timezone, past=True)
        until = moment_from(args.until, now, conf.timezone, past=True) if args.until else None
    except ValueError as exc:
        print(f"ivr calls list: {exc}", file=sys.stderr)
        return NOT_FOUND
    if args.outcome and args.outcome.partition(":")[0] not in ("contained", "hangup", "failed", "queue", "transfer"):
        print(f"ivr calls list: --outcome {args.outcome!r} is not one of {OUTCOMES}", file=sys.stderr)
        return NOT_FOUND
    which = CallFilter(since=since, until=until, caller=args.caller, outcome=args.outcome, limit=args.limit)
    store = open_store(conf, args.url)
    try:
        lines = await listed(store, which)
    finally:
        await store.aclose()
    for line in lines:
        print(_line(line, conf))
    if not lines:
        print(f"no calls since {_local(since, conf)}")
    return 0


def _line(line: CallLine, conf: Settings) -> str:
    return (
        f"{_local(line.started_at, conf)} {line.protocol} {line.caller_masked:<13} {_customer(line):<24.24} "
        f"{line.outcome:<24} {_seconds(line.duration_s)}"
    )


def _trace_lines(seen: CallTrace, conf: Settings, releases: str) -> list[str]:
    call = seen.call
    lines = [
        f"call {call.protocol}: {_local(call.started_at, conf)}, {_seconds(call.duration_s)}",
        f"  caller    {call.caller_masked}",
        f"  customer  {_customer(call)}",
        f"  flow      {seen.flow}, {releases} (flow version {seen.flow_version})",
        f"  outcome   {call.outcome}",
        f"  linkedid  {seen.linked_id or '-'}",
        "  path:",
    ]
    from ivr.voice.build import heard_lines

    heard = heard_lines(conf.prompts_dir, [step.prompts for step in seen.path])
    for step, words in zip(seen.path, heard, strict=True):
        given = f" input {step.input}" if step.input else ""
        lines.append(
            f"    {_local(step.started_at, conf, '%H:%M:%S')} {step.flow}/{step.node} ({step.verb}){given} -> "
            f"{step.outcome}, {step.duration_ms / 1000:.1f} s"
        )
        if words:
            lines.append(f"      heard: {words}")
    lines.append("  tickets:" if seen.tickets else "  tickets: none")
    lines.extend(f"    {t.number} {t.kind} ({t.state})" for t in seen.tickets)
    lines.append("  messages:" if seen.messages else "  messages: none")
    lines.extend(
        f"    {m.channel} to {m.recipient_masked} ({m.template}): {m.state}"
        + (f" {_local(m.sent_at, conf)}" if m.sent_at else f", {m.attempts} attempts")
        for m in seen.messages
    )
    lines.append("  call backs:" if seen.callbacks else "  call backs: none")
    for callback in seen.callbacks:
        lines.append(f"    #{callback.id} {callback.team} {callback.number_masked} {callback.reason}: {callback.state}")
        lines.extend(
            f"      attempt {a.number} {_local(a.started_at, conf, '%H:%M')}: {a.outcome}" for a in callback.attempts
        )
    return lines


def _customer(line: CallLine) -> str:
    if line.customer_id is None:
        return "-"
    return f"{line.customer_name} (#{line.customer_id})" if line.customer_name else f"#{line.customer_id}"


def _seconds(seconds: float | None) -> str:
    return "in progress" if seconds is None else f"{seconds:.0f} s"


def _local(moment: datetime, conf: Settings, form: str = "%Y-%m-%d %H:%M:%S") -> str:
    from zoneinfo import ZoneInfo

    return f"{moment.astimezone(ZoneInfo(conf.timezone)):{form}}"
