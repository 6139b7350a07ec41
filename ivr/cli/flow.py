"""``ivr flow ...``: the supervisor's commands for flows.

    check / graph / schema / publish   (written by the checks area: see ivr/flows/checks.py)
    history / diff / rollback          (the published releases: ivr/flows/library.py, ivr/flows/diff.py)
    simulate / test                    (the engine area: ivr/flows/simulate.py, ivr/flows/flowtest.py)

Heavy imports stay inside the handlers so ``ivr --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.flows.checks import Report
    from ivr.flows.library import FlowLibrary

#: What `ivr flow test` runs with no argument: the flow tests of the checkout it is run in, not the
#: installed package's copy.
CHECKOUT_TESTS = Path("flows/tests")


def register(sub: Any) -> None:
    flow = sub.add_parser("flow", help="check, simulate, test and publish call flows")
    commands = flow.add_subparsers(dest="flow_command", required=True, metavar="SUBCOMMAND")
    _register_check_commands(commands)
    _register_release_commands(commands)
    _register_engine_commands(commands)


# --- check / graph / schema / publish (checks area) --------------------------------------------------


def _register_check_commands(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="check flows without running them (exit status 1 when there are errors)",
        description="Check flow files: structure, prompts, operations, loops and Brazil's SAC rules. "
        "A directory stands for its *.yaml files; other flows in the same directories are read so subflows "
        "resolve.",
    )
    check.add_argument("paths", nargs="*", type=Path, help="flow files or directories (default: the flows dir)")
    check.set_defaults(handler=_check)

    graph = commands.add_parser("graph", help="draw a flow with Graphviz (errors in red, unreachable dashed)")
    graph.add_argument("flow", type=Path, help="the flow file, e.g. flows/sac.yaml")
    graph.add_argument(
        "-o", "--output", type=Path, default=None, help="where to write: .svg, .png, .pdf or .dot (default <flow>.svg)"
    )
    graph.set_defaults(handler=_graph)

    schema = commands.add_parser("schema", help="write the flow language's JSON Schema (for editors)")
    schema.add_argument("-o", "--output", type=Path, default=None, help="the file to write (default: print it)")
    schema.set_defaults(handler=_schema)

    publish = commands.add_parser(
        "publish",
        help="check a flow directory and make it the version ivr serve runs",
        description="Check every flow in the directory; if there is no error, publish it as a new version "
        "and tell a running ivr serve to reload (SIGHUP). A broken set is refused: the running version stays.",
    )
    publish.add_argument("flows_dir", nargs="?", type=Path, default=None, help="default: the flows dir")
    publish.add_argument("--who", default=None, help="who publishes, for the history (default: your login)")
    publish.add_argument("--note", default=None, help='why, for the history: "new billing menu"')
    publish.set_defaults(handler=_publish)

    impact = commands.add_parser(
        "impact",
        help="before publishing: how the draft would change the recorded calls of the last days",
        description="Replay the recorded calls of the last days (the newest --limit) against the current release "
        "and against the draft, on demo data: how many would end differently, which nodes gain or lose visits, "
        "and which calls could not be replayed and why. The draft must pass the checks, as for publish. Masked "
        "personal data is played by a demo account's values: see flows/README.md, Impact before publishing.",
    )
    impact.add_argument("flows_dir", nargs="?", type=Path, default=None, help="the draft (default: the flows dir)")
    impact.add_argument("--days", type=int, default=7, help="how many days of calls, up to now (default 7)")
    impact.add_argument("--limit", type=int, default=2000, help="replay at most this many, newest first (default 2000)")
    impact.add_argument("--top", type=int, default=10, help="how many changes and nodes to list (default 10)")
    impact.add_argument("--json", action="store_true", help="print JSON, for machines")
    impact.set_defaults(handler=_impact)


def _checked(paths: list[Path]) -> Report:
    """The check of flow files against the configured prompt catalogue and voice."""
    from integrations.catalog import declared_registry
    from ivr.config import settings
    from ivr.flows.checks import check_paths

    config = settings()
    return check_paths(
        paths,
        catalogue=config.prompts_dir,
        registry=declared_registry(),
        words_per_minute=config.voice.words_per_minute,
    )


def _check(args: argparse.Namespace) -> int:
    from ivr.config import settings

    paths = args.paths or [settings().flows_dir]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"ivr flow check: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    report = _checked(paths)
    if not report.problems and not report.flows:
        print(f"ivr flow check: no flow files (*.yaml) in {', '.join(map(str, paths))}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


def _graph(args: argparse.Namespace) -> int:
    from ivr.flows.graph import GraphError, write_graph

    if not args.flow.is_file():
        print(f"ivr flow graph: no such flow file: {args.flow}", file=sys.stderr)
        return 2
    report = _checked([args.flow])
    for problem in report.problems:
        print(problem, file=sys.stderr)
    drawn = [f for f in report.flows.values() if f.source == args.flow]
    if not drawn:
        print(f"ivr flow graph: {args.flow} cannot be loaded, so it cannot be drawn", file=sys.stderr)
        return 1
    output = args.output or Path(args.flow.stem + ".svg")
    try:
        write_graph(drawn[0], report.problems, output)
    except GraphError as exc:
        print(f"ivr flow graph: {exc}", file=sys.stderr)
        return 2
    print(f"drew flow '{drawn[0].name}' to {output} ({report.summary()})")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from ivr.flows.schema import render_schema

    text = render_schema()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def _library(config: Settings) -> FlowLibrary:
    """The published releases, checked against the configured prompts, operations and voice."""
    from integrations.catalog import declared_registry
    from ivr.clock import system_clock
    from ivr.flows.library import FlowLibrary

    return FlowLibrary.of(config, registry=declared_registry(), clock=system_clock)


def _tell_server(config: Settings, command: str) -> int:
    """Ask a running ivr serve to reload what was just made current; say how it went."""
    from ivr.flows.library import signal_server

    try:
        print(signal_server(config.var_dir / "ivr-serve.pid"))
    except PermissionError:
        print(
            f"ivr flow {command}: not allowed to signal the running ivr serve; reload it as its user",
            file=sys.stderr,
        )
        return 1
    return 0


def _publish(args: argparse.Namespace) -> int:
    from ivr.config import settings

    config = settings()
    flows_dir = args.flows_dir or config.flows_dir
    if not flows_dir.is_dir():
        print(f"ivr flow publish: {flows_dir} is not a directory of flows", file=sys.stderr)
        return 2
    library = _library(config)
    try:
        report = library.publish(flows_dir, who=args.who, note=args.note)
    except ValueError as exc:  # the note
        print(f"ivr flow publish: --note: {exc}", file=sys.stderr)
        return 2
    if report.problems:
        print(report.render())
    if not report.ok:
        kept = library.published_version() or "(none yet)"
        print(f"ivr flow publish: refused: fix the errors above; the published version stays {kept}", file=sys.stderr)
        return 1
    print(f"published {flows_dir} as version {library.version} ({', '.join(sorted(report.flows))})")
    return _tell_server(config, "publish")


async def _impact(args: argparse.Namespace) -> int:
    import json

    from ivr.app import flow_impact
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.flows.impact import ImpactRefused, render

    config = settings()
    draft = args.flows_dir or config.flows_dir
    try:
        impact = await flow_impact(draft, settings=config, clock=system_clock, days=args.days, limit=args.limit)
    except ImpactRefused as exc:
        if exc.report is not None:
            print(exc.report.render())
        print(f"ivr flow impact: {exc}", file=sys.stderr)
        return 1 if exc.report is not None else 2
    print(json.dumps(impact.as_json(), ensure_ascii=False, indent=2) if args.json else render(impact, top=args.top))
    return 0


# --- history / diff / rollback (the published releases) ---------------------------------------------


def _register_release_commands(commands: Any) -> None:
    history = commands.add_parser(
        "history",
        help="the published releases, newest first, and which one is current",
        description="Every publish and rollback, newest first: its number (for diff and rollback), version, "
        "when (local time), who and note; CURRENT marks the one ivr serve loads.",
    )
    history.add_argument("--json", action="store_true", help="print JSON, for machines")
    history.set_defaults(handler=_history)

    diff = commands.add_parser(
        "diff",
        help="what changed between two releases, or between the draft and a release",
        description="A and B are release numbers (ivr flow history), versions, 'current', or a flows directory "
        "(the draft, e.g. flows/). Prints a text diff of each flow file, then what changed node by node.",
    )
    diff.add_argument("a", metavar="A", help="the older side: 3, current, a version, or flows/")
    diff.add_argument("b", metavar="B", help="the newer side, in the same forms")
    diff.set_defaults(handler=_diff)

    rollback = commands.add_parser(
        "rollback",
        help="make an earlier release current again (checked again first)",
        description="Check release N again with today's prompts and operations; if it passes, make it current, "
        "record it in the history and tell a running ivr serve to reload (SIGHUP): calls in progress finish on "
        "their release, new calls take N. A release that fails is refused and the running one stays.",
    )
    rollback.add_argument("number", metavar="N", help="the release's number in ivr flow history")
    rollback.add_argument("--who", default=None, help="who rolls back, for the history (default: your login)")
    rollback.add_argument("--note", default=None, help='why, for the history: "billing menu loops"')
    rollback.set_defaults(handler=_rollback)


def _history(args: argparse.Namespace) -> int:
    import json
    from zoneinfo import ZoneInfo

    from ivr.config import settings

    config = settings()
    library = _library(config)
    zone = ZoneInfo(config.timezone)
    entries = list(reversed(library.history()))
    current = library.current_entry()
    if args.json:
        records = [
            {
                "number": entry.number,
                "version": entry.version,
                "published_at": entry.published_at.astimezone(zone).isoformat(),
                "who": entry.who,
                "note": entry.note,
                "rollback_to": entry.rollback_to,
                "files": list(entry.files),
                "current": entry == current,
            }
            for entry in entries
        ]
        print(json.dumps(records, ensure_ascii=False, indent=2))
        return 0
    if not entries:
        print("nothing published yet: ivr flow publish")
        return 0
    table = [["N", "version", f"when ({config.timezone})", "who", "note", ""]]
    table += [
        [
            str(entry.number),
            entry.version,
            f"{entry.published_at.astimezone(zone):%Y-%m-%d %H:%M}",
            entry.who,
            entry.describe(),
            "CURRENT" if entry == current else "",
        ]
        for entry in entries
    ]
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _diff(args: argparse.Namespace) -> int:
    from ivr.config import settings
    from ivr.flows.library import UnknownRelease

    try:
        print(_library(settings()).diff(args.a, args.b).render())
    except UnknownRelease as exc:
        print(f"ivr flow diff: {exc}", file=sys.stderr)
        return 2
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from ivr.config import settings
    from ivr.flows.library import UnknownRelease

    if not args.number.isdigit():
        print(f"ivr flow rollback: {args.number!r} is not a release number (see ivr flow history)", file=sys.stderr)
        return 2
    config = settings()
    library = _library(config)
    try:
        done = library.rollback(int(args.number), who=args.who, note=args.note)
    except UnknownRelease as exc:
        print(f"ivr flow rollback: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # the note
        print(f"ivr flow rollback: --note: {exc}", file=sys.stderr)
        return 2
    target = done.target
    if done.report.problems:
        print(done.report.render())
    if not done.report.ok:
        kept = library.published_version() or "(none)"
        print(
            f"ivr flow rollback: refused: release {target.number} fails today's checks; the published version "
            f"stays {kept}",
            file=sys.stderr,
        )
        return 1
    if done.entry is None:
        print(f"release {target.number} (version {target.version}) is already current: nothing changed")
        return 0
    print(
        f"rolled back to release {target.number}: "
        f"version {target.version} is current again (history entry {done.entry.number})"
    )
    return _tell_server(config, "rollback")


# --- simulate / test (engine area) -----------------------------------------------------------------


def _register_engine_commands(commands: Any) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="walk a flow in the terminal, hearing the prompts as text",
        description="Walk a flow as a caller. Actions: keys (1, 123#), barge:1 (a key during the prompt), "
        "say:<words>, silence, hangup. Without --input, type them when the IVR waits.",
    )
    simulate.add_argument("flow", type=Path, help="the flow file, e.g. flows/sac.yaml")
    simulate.add_argument("--caller", default=None, help="the caller's number (omit for a withheld number)")
    simulate.add_argument("--input", default=None, help='the caller\'s actions, comma-separated: "1,2,#"')
    simulate.add_argument(
        "--queue", action="append", default=[], metavar="NAME=OUTCOME",
        help="how a queue answers: answered, no_agents, timeout, full, failed, callback (1 pressed while waiting); "
        "default answered",
    )
    simulate.add_argument(
        "--queue-state", action="append", default=[], metavar="NAME:waiting=N,agents=N[,available=N,talk_s=N,hold_s=N]",
        help="how a queue stands before the caller joins it (its position and wait are said); not given: unknown, "
        "as with AMI down",
    )
    simulate.add_argument(
        "--transfer", default="answered", help="how a transfer ends: answered, busy, no_answer, failed"
    )
    simulate.add_argument(
        "--at", default=None, metavar="WHEN",
        help="when the call happens, e.g. '2026-12-24 21:00' (local time; opening hours, holidays, deadlines); "
        "default: now",
    )  # fmt: skip
    simulate.set_defaults(handler=_simulate)

    test = commands.add_parser(
        "test",
        help="run the flow tests written in YAML (flows/tests/*.yaml)",
        description="Run flow tests: each case is a whole call on demo data dated as of its `at`. Prints each "
        "case with the seconds of audio the caller heard up to the outcome.",
    )
    test.add_argument(
        "paths", nargs="*", type=Path, help=f"test files or directories (default: {CHECKOUT_TESTS} here)"
    )
    test.add_argument("--verbose", dest="show_heard", action="store_true", help="show what each caller heard")
    test.set_defaults(handler=_test)


async def _simulate(args: argparse.Namespace) -> int:
    from ivr.app import build_services
    from ivr.clock import ManualClock, local, system_clock
    from ivr.config import settings
    from ivr.engine.channel import QueueOutcome, TransferOutcome
    from ivr.engine.scripted import ScriptError, parse_queue_load
    from ivr.flows.loader import FlowLoadError, flows_beside, load_flow
    from ivr.flows.simulate import simulate, split_inputs

    config = settings()
    try:
        flow = load_flow(args.flow)
        flows = flows_beside(flow)
        inputs = split_inputs(args.input) if args.input is not None else None
        queues = {}
        for item in args.queue:
            name, _, outcome = item.partition("=")
            queues[name] = QueueOutcome(outcome)
        loads = {}
        for item in args.queue_state:
            name, _, state = item.partition(":")
            loads[name] = parse_queue_load(state)
        transfer = TransferOutcome(args.transfer)
        clock = system_clock if args.at is None else ManualClock(local(_moment(args.at), config.timezone))
    except FlowLoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ScriptError, ValueError) as exc:
        print(f"ivr flow simulate: {exc}", file=sys.stderr)
        return 2
    async with build_services(config, clock=clock) as services:
        result = await simulate(
            flow, services, config, caller=args.caller, inputs=inputs, flows=flows, queues=queues, queue_loads=loads,
            transfer=transfer,
        )
    return 1 if result.outcome.value == "failed" else 0


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at: {text!r} is not a date and time like 2026-12-24 21:00") from None


async def _test(args: argparse.Namespace) -> int:
    from ivr.app import demo_factory
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.flows.flowtest import FlowTestError, report, run_files
    from ivr.flows.loader import FlowLoadError

    config = settings()
    if not args.paths and not CHECKOUT_TESTS.is_dir():
        print(
            f"ivr flow test: no ./{CHECKOUT_TESTS} in {Path.cwd()}; run it at the top of a checkout or name the "
            "test files",
            file=sys.stderr,
        )
        return 2
    paths = args.paths or [CHECKOUT_TESTS]
    try:
        results = await run_files(paths, demo_factory(config), config, now=system_clock())
    except (FlowTestError, FlowLoadError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(report(results, verbose=args.show_heard))
    if not results:
        print("no flow tests found", file=sys.stderr)
        return 1
    return 0 if all(r.passed for r in results) else 1
