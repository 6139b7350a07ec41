"""`ivr serve`'s SIGHUP reload checks the flows off the event loop: the calls in progress keep being served."""

from __future__ import annotations

import asyncio
import threading
import time
from types import MappingProxyType
from typing import Any

from ivr.app import reload_flows
from ivr.flows.checks import Report


class _SlowLibrary:
    """A release whose checks take a while (a large or hostile flow set)."""

    version = "v1"

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None

    def reload(self) -> Report:
        self.thread = threading.current_thread()
        time.sleep(0.3)  # CPU-bound checks, as far as the event loop can tell
        return Report((), MappingProxyType({}))


async def test_the_reload_checks_run_in_a_worker_thread_while_the_loop_goes_on() -> None:
    library = _SlowLibrary()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:  # cancelled below
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    report: Any = await reload_flows(library)  # type: ignore[arg-type]
    ticking.cancel()
    assert report.ok
    assert library.thread is not threading.main_thread()
    assert ticks >= 5  # the loop served other tasks (calls) during the 0.3 s of checks
