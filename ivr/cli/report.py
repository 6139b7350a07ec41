"""`ivr report [--day DATE | --week DATE] [--flow NAME] [--csv]`: a day's or a week's calls for supervisors
(ivr.store.reports), as text or CSV. Days are local (the `timezone` setting); with neither, today so far."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.store.reports import Report



def register(sub: Any) -> None:
    parser = sub.add_parser(
        "report", help="a day's or a week's calls: outcomes, transfers, tickets, time to outcome, drop-off per node"
    )
    span = parser.add_mutually_exclusive_group()
    span.add_argument(
        "--day", type=date.fromisoformat, metavar="DATE", help="this local day (2026-12-01); default today"
    )
    span.add_argument("--week", type=date.fromisoformat, metavar="DATE", help="seven local days from this date")
    parser.add_argument("--flow", help="only the calls of this flow (default: every flow)")
    parser.add_argument("--csv", action="store_true", help="as CSV (section,name,value,percent), for spreadsheets")
    parser.add_argument("--url", help="database URL (default: IVR_DATABASE_URL or the settings)")
    parser.set_defaults(handler=_report)


async def _report(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.store.db import open_store
    from ivr.store.reports import CSV_HEADER, csv_rows, local_days, settled_report

    conf = settings()
    now = system_clock()
    first = args.week or args.day or now.astimezone(ZoneInfo(conf.timezone)).date()
    store = open_store(conf, args.url)
    try:
        span = local_days(first, 7 if args.week else 1, conf.timezone)
        figures = await settled_report(store, *span, flow=args.flow, now=now)
    finally:
        await store.aclose()
    if args.csv:
        rows = csv_rows(figures, timezone=conf.timezone, negotiation_number=conf.page.negotiation_number)
        csv.writer(sys.stdout, lineterminator="\n").writerows([CSV_HEADER, *rows])
    else:
        print("\n".join(_text(figures, conf)))
    return 0


def _text(figures: Report, conf: Settings) -> list[str]:
    from ivr.store.reports import percent, transfer_reason

    last = figures.until - timedelta(days=1)  # the span's last day (its end is excluded)
    when = f"{figures.since:%Y-%m-%d}" + (f" to {last:%Y-%m-%d}" if last.date() > figures.since.date() else "")
    lines = [f"calls of {when} ({conf.timezone}), flow {figures.flow or 'all'}: {figures.calls}"]
    for name, count in (
        ("contained", figures.contained),
        ("abandoned", figures.abandoned),
        ("transferred", figures.transferred_total),
        ("failed", figures.failed),
        ("in progress", figures.in_progress),
    ):
        lines.append(f"  {name:<14} {count:>6} {percent(count, figures.calls):>6}%")
        if name == "transferred":
            lines.extend(
                f"    {transfer_reason(reason, conf.page.negotiation_number):<40} {n:>6}"
                for reason, n in figures.transferred
            )
    average = "-" if figures.average_s is None else f"{figures.average_s:.0f} s"
    lines.append(f"average time to outcome: {average}")
    lines.append("tickets opened:" + ("" if figures.tickets else " none"))
    lines.extend(f"  {kind:<24} {count:>6}" for kind, count in figures.tickets)
    lines.append("drop-off per node (of its visits):" + ("" if figures.drop_off else " none"))
    lines.extend(
        f"  {node.flow + '/' + node.node:<32} {node.visits:>6} visits  hung up {node.hung_up}, input failed "
        f"{node.input_failed}, failed {node.failed}: {100 * node.share:.1f}%"
        for node in figures.drop_off
    )
    return lines
