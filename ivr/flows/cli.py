"""``ivr flow ...``: the supervisor's commands for flows.

    check / graph / schema / publish   (written by the checks area: see ivr/flows/checks.py)
    simulate / test                    (the engine area: ivr/flows/simulate.py, ivr/flows/flowtest.py)

Heavy imports stay inside the handlers so ``ivr --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    flow = sub.add_parser("flow", help="check, simulate, test and publish call flows")
    commands = flow.add_subparsers(dest="flow_command", required=True, metavar="SUBCOMMAND")
    _register_engine_commands(commands)


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
        help="how a queue answers: answered, no_agents, timeout, full, failed (default answered)",
    )
    simulate.add_argument(
        "--transfer", default="answered", help="how a transfer ends: answered, busy, no_answer, failed"
    )
    simulate.set_defaults(handler=_simulate)

    test = commands.add_parser("test", help="run the flow tests written in YAML (flows/tests/*.yaml)")
    test.add_argument("paths", nargs="*", type=Path, help="test files or directories (default: flows/tests)")
    test.add_argument("--verbose", dest="show_heard", action="store_true", help="show what each caller heard")
    test.set_defaults(handler=_test)


async def _simulate(args: argparse.Namespace) -> int:
    from ivr.app import build_services
    from ivr.config import settings
    from ivr.engine.channel import QueueOutcome, TransferOutcome
    from ivr.engine.scripted import ScriptError
    from ivr.flows.loader import FlowLoadError, load_flow
    from ivr.flows.simulate import simulate, split_inputs

    config = settings()
    try:
        flow = load_flow(args.flow)
        inputs = split_inputs(args.input) if args.input is not None else None
        queues = {}
        for item in args.queue:
            name, _, outcome = item.partition("=")
            queues[name] = QueueOutcome(outcome)
        transfer = TransferOutcome(args.transfer)
    except FlowLoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ScriptError, ValueError) as exc:
        print(f"ivr flow simulate: {exc}", file=sys.stderr)
        return 2
    async with build_services(config) as services:
        result = await simulate(
            flow, services, config, caller=args.caller, inputs=inputs, queues=queues, transfer=transfer
        )
    return 1 if result.outcome.value == "failed" else 0


async def _test(args: argparse.Namespace) -> int:
    from ivr.app import build_services
    from ivr.config import settings
    from ivr.flows.flowtest import FlowTestError, report, run_files
    from ivr.flows.loader import FlowLoadError

    config = settings()
    paths = args.paths or [Path(config.flows_dir) / "tests"]
    try:
        results = await run_files(paths, lambda: build_services(config), config)
    except (FlowTestError, FlowLoadError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(report(results, verbose=args.show_heard))
    if not results:
        print("no flow tests found", file=sys.stderr)
        return 1
    return 0 if all(r.passed for r in results) else 1
