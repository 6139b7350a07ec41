"""Asterisk's side of one FastAGI call, over loopback, for tests that drive a real `ivr serve`.

The answers to each command come from the bench's scripted caller (bench/asterisk_side.py, res_agi's
replies); this module only carries them over the socket, bounded in commands and time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bench.asterisk_side import Caller, header

#: No scripted call sends more commands than this; more means the flow loops.
MAX_COMMANDS = 400
CALL_TIMEOUT_S = 30.0


async def place_call(
    port: int, caller: Caller, *, at_queue: Callable[[], Awaitable[None]] | None = None
) -> Caller:
    """Send the ``agi_*`` block, answer every command until the IVR closes the socket; returns `caller`
    (its `variables` hold what the IVR set, e.g. ``IVR_PROTOCOL``). `at_queue` is awaited before the answer
    to ``EXEC Queue``: the call is held there, an agent talking, until it returns."""
    async with asyncio.timeout(CALL_TIMEOUT_S):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(header(caller.n).encode())
            for _ in range(MAX_COMMANDS):
                line = await reader.readline()
                if not line.endswith(b"\n"):  # the IVR closed the call
                    return caller
                if at_queue is not None and line.startswith(b'EXEC "Queue"'):
                    await at_queue()
                writer.write("".join(f"{answer}\n" for answer in caller.answer(line.decode().rstrip("\n"))).encode())
            raise AssertionError(f"call {caller.n}: more than {MAX_COMMANDS} commands (does the flow loop?)")
        finally:
            writer.close()
