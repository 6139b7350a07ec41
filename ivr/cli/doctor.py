"""`ivr doctor`: one line per peer (ok / warn / FAIL and how to fix it); exit status 1 if any FAIL."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def register(sub: Any) -> None:
    text = "check the settings and every peer: database, Asterisk, FastAGI, back-ends, prompts, flows"
    parser = sub.add_parser("doctor", help=text, description=text)
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="bound on each check (default 5 s)")
    parser.set_defaults(handler=_doctor)


async def _doctor(args: argparse.Namespace) -> int:
    from ivr.config import ConfigError, load_settings
    from ivr.doctor import Finding, Status, diagnose, failed, render

    if not args.verbose:  # the findings say what the peers' own log lines would (-v shows those too)
        logging.getLogger().setLevel(logging.ERROR)
    try:
        settings = load_settings()
    except ConfigError as exc:  # nothing else can be checked without settings
        print(render([Finding("settings", Status.FAIL, str(exc))]))
        return 1
    findings = await diagnose(settings, timeout_s=args.timeout)
    print(render(findings))
    return 1 if failed(findings) else 0
