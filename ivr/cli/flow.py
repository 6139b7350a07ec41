"""``ivr flow ...``: the supervisor's commands for flows.

    check / graph / schema / publish   (written by the checks area: see ivr/flows/checks.py)
    simulate / test                    (the engine area: ivr/flows/simulate.py, ivr/flows/flowtest.py)

Heavy imports stay inside the handlers so ``ivr --help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.clock import Clock
    from ivr.engine.ports import Services
    from ivr.flows.checks import Report

#: What `ivr flow test` runs with no argument: the flow tests of the checkout it is run in, not the
#: installed package's copy.
CHECKOUT_TESTS = Path("flows/tests")


def register(sub: Any) -> None:
    flow = sub.add_parser("flow", help="check, simulate, test and publish call flows")
    commands = flow.add_subparsers(dest="flow_command", required=True, metavar="SUBCOMMAND")
    _register_check_commands(commands)
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
    publish.set_defaults(handler=_publish)


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


def _publish(args: argparse.Namespace) -> int:
    from integrations.catalog import declared_registry
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.flows.library import FlowLibrary, signal_server

    config = settings()
    flows_dir = args.flows_dir or config.flows_dir
    if not flows_dir.is_dir():
        print(f"ivr flow publish: {flows_dir} is not a directory of flows", file=sys.stderr)
        return 2
    library = FlowLibrary(
        config.var_dir / "published",
        catalogue=config.prompts_dir,
        registry=declared_registry(),
        clock=system_clock,
        words_per_minute=config.voice.words_per_minute,
    )
    report = library.publish(flows_dir, who=args.who)
    if report.problems:
        print(report.render())
    if not report.ok:
        kept = library.published_version() or "(none yet)"
        print(f"ivr flow publish: refused: fix the errors above; the published version stays {kept}", file=sys.stderr)
        return 1
    print(f"published {flows_dir} as version {library.version} ({', '.join(sorted(report.flows))})")
    try:
        print(signal_server(config.var_dir / "ivr-serve.pid"))
    except PermissionError:
        print("ivr flow publish: not allowed to signal the running ivr serve; reload it as its user", file=sys.stderr)
        return 1
    return 0


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
    import tempfile

    from ivr.app import demo_services
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

    @contextlib.asynccontextmanager
    async def fresh_demo(clock: Clock) -> AsyncIterator[Services]:
        with tempfile.TemporaryDirectory(prefix="ivr-flow-test-") as directory:
            async with demo_services(config, Path(directory), clock=clock) as services:
                yield services

    try:
        results = await run_files(paths, fresh_demo, config, now=system_clock())
    except (FlowTestError, FlowLoadError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(report(results, verbose=args.show_heard))
    if not results:
        print("no flow tests found", file=sys.stderr)
        return 1
    return 0 if all(r.passed for r in results) else 1
