"""``ivr serve``: run the FastAGI server (``ivr.app.serve`` wires flows and services into it)."""

from __future__ import annotations

import argparse
import gc
import os
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="answer Asterisk's FastAGI calls until SIGTERM (SIGHUP reloads flows)")
    parser.add_argument("--host", help="address to listen on (default: settings agi.host)")
    parser.add_argument("--port", type=int, help="port to listen on (default: settings agi.port)")
    parser.add_argument(
        "--workers",
        type=_positive,
        default=os.cpu_count() or 1,
        help="worker processes sharing the port, each with its own event loop (default: the number of cores); "
        "1 runs the server in this process",
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # a worker's index (ivr.supervisor starts it)
    parser.add_argument("--supervisor", type=int, help=argparse.SUPPRESS)  # its supervisor's pid
    parser.set_defaults(handler=_serve)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


async def _serve(args: argparse.Namespace) -> int:
    from ivr import app
    from ivr.config import settings

    current = settings()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    configured = current.model_copy(update={"agi": current.agi.model_copy(update=overrides)})
    if args.worker is not None:  # one of a supervisor's workers: the supervisor holds the pid file
        from ivr.supervisor import die_with_supervisor

        die_with_supervisor(args.supervisor)
        tune_gc()
        return await app.serve(configured, app.Worker(args.worker, args.workers))
    pid_file = configured.var_dir / "ivr-serve.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
    try:
        if args.workers > 1:
            from ivr.supervisor import Supervisor

            return await Supervisor(configured, args.workers, verbose=args.verbose).run()
        tune_gc()
        return await app.serve(configured)
    finally:
        pid_file.unlink(missing_ok=True)


#: A young generation this large is collected ~30x less often under load: each collection of the default 700
#: scanned the objects of every call in progress, and promoted them to be scanned again (~1 ms of CPU a call).
GC_THRESHOLDS = (20_000, 20, 100)


def tune_gc() -> None:
    """The server's objects are mostly long-lived (modules, settings) or freed by reference counting (a
    call's): the cyclic collector is made to run rarely, and never over what exists before the first call."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
