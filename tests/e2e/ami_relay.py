"""A TCP relay between `ivr serve` and Asterisk's AMI that drops the connection once, right after a chosen
action has gone through: Asterisk carries the action out, its reply never reaches the IVR, as when the
network between them fails mid-dial. Every action relayed (on every connection) is counted, so a test can
tell whether the IVR sent it again after reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

_ACTION = re.compile(rb"^action:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class AmiRelay:
    def __init__(self, upstream: tuple[str, int], cut_after: str) -> None:
        self._upstream = upstream
        self._cut_after = cut_after.lower()
        self.actions: list[str] = []  # action names from the IVR, in order, across connections
        self.connections = 0
        self.cut = asyncio.Event()  # set once the connection was dropped after `cut_after`
        self._writers: set[asyncio.StreamWriter] = set()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._writers |= {writer, up_writer}
        down = asyncio.create_task(self._pipe(up_reader, writer))
        try:
            await self._relay_actions(reader, up_writer)
        finally:
            for w in (writer, up_writer):
                w.close()
            down.cancel()
            await asyncio.gather(down, return_exceptions=True)

    async def _relay_actions(self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
        pending = b""
        while chunk := await reader.read(65536):
            pending += chunk
            *blocks, pending = pending.split(b"\r\n\r\n")
            for block in blocks:
                upstream.write(block + b"\r\n\r\n")
                name = m.group(1).decode().lower() if (m := _ACTION.search(block)) else ""
                self.actions.append(name)
                if name == self._cut_after and not self.cut.is_set():
                    await upstream.drain()  # Asterisk has it; the reply will find no one
                    self.cut.set()
                    return

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        writer.close()


@asynccontextmanager
async def ami_relay(upstream: tuple[str, int], cut_after: str) -> AsyncIterator[tuple[AmiRelay, int]]:
    """The relay listening on a free loopback port (yielded with it) until the block ends."""
    relay = AmiRelay(upstream, cut_after)
    server = await asyncio.start_server(relay._client, "127.0.0.1", 0)
    try:
        yield relay, int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in relay._writers:
            writer.close()
        await server.wait_closed()
