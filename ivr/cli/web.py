"""``ivr web``: the supervisors' web console (ivr.web), on the `web` settings' address (loopback by default)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("web", help="the supervisors' web console: live state, calls, reports, flows")
    parser.add_argument("--host", help="address to listen on (default: the web.host setting, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the web.port setting; 0: any free one)")
    parser.set_defaults(handler=_web)


async def _web(args: argparse.Namespace) -> int:
    import asyncio

    from aiohttp import web

    from ivr.app import demo_factory, flow_impact, live_socket
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.flows.library import signal_server
    from ivr.store.db import open_store
    from ivr.store.migrate import upgrade
    from ivr.web.app import console_for, create_app
    from ivr.web.editor import DraftRunners

    conf = settings()
    host = args.host or conf.web.host
    port = conf.web.port if args.port is None else args.port
    store = open_store(conf)
    try:
        await upgrade(store)  # the accounts' tables, on a store older than the console
    finally:
        await store.aclose()
    tell = lambda: signal_server(conf.var_dir / "ivr-serve.pid")  # noqa: E731
    drafts = DraftRunners(demo=demo_factory, impact=flow_impact)
    async with console_for(
        conf, clock=system_clock, live_socket=live_socket(conf), tell_server=tell, drafts=drafts
    ) as console:
        runner = web.AppRunner(create_app(console), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            bound_host, bound_port = runner.addresses[0][:2]  # the port taken, when asked for port 0
            print(f"ivr web: the console is at http://{bound_host}:{bound_port}/ (accounts: ivr users add)", flush=True)
            await asyncio.Event().wait()  # until interrupted
        finally:
            await runner.cleanup()
    return 0
