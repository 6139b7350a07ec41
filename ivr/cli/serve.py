"""``ivr serve``: run the FastAGI server (``ivr.app.serve`` wires flows and services into it)."""

from __future__ import annotations

import argparse
import inspect
import os
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="answer Asterisk's FastAGI calls until SIGTERM (SIGHUP reloads flows)")
    parser.add_argument("--host", help="address to listen on (default: settings agi.host)")
    parser.add_argument("--port", type=int, help="port to listen on (default: settings agi.port)")
    parser.set_defaults(handler=_serve)


async def _serve(args: argparse.Namespace) -> int:
    from ivr import app
    from ivr.config import settings

    current = settings()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    configured = current.model_copy(update={"agi": current.agi.model_copy(update=overrides)})
    pid_file = configured.var_dir / "ivr-serve.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
    try:
        result = app.serve(configured)
        if inspect.isawaitable(result):
            result = await result
    finally:
        pid_file.unlink(missing_ok=True)
    return int(result or 0)
