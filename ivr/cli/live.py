"""``ivr live``: the live state of the unit running on this machine (calls in the IVR and their node, the
queues, call backs owed) as JSON, read from its ``ivr serve`` (ivr.app `live_socket`). Callers are masked."""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: A running unit answers at once; longer means it is stuck, and saying so beats hanging.
ANSWER_TIMEOUT_S = 5.0


def register(sub: Any) -> None:
    parser = sub.add_parser("live", help="the live state of the unit running here: calls, queues, call backs, as JSON")
    parser.set_defaults(handler=_live)


async def _live(args: argparse.Namespace) -> int:
    import json

    from ivr.ami.live import read_snapshot
    from ivr.app import live_socket
    from ivr.config import settings

    path = live_socket(settings())
    try:
        snapshot = await read_snapshot(path, ANSWER_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        print(f"ivr live: no running `ivr serve` answers at {path} ({exc or 'no answer in time'})", file=sys.stderr)
        return 1
    print(json.dumps(snapshot, indent=2, ensure_ascii=False))
    return 0
