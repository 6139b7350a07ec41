"""A tiny FastAGI responder for the e2e plumbing tests: each call becomes an ``AgiSession`` the test
drives command by command (the real server is ivr/agi; these tests prove Asterisk's side)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator


class AgiSession:
    def __init__(self, env: dict[str, str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.env = env
        self._reader, self._writer = reader, writer
        self.closed = asyncio.Event()

    async def command(self, line: str, timeout_s: float = 10.0) -> tuple[int, str]:
        """Send one AGI command; returns (status code, what follows result=, e.g. "1 (CHANUNAVAIL)"), past
        a ``100 result=0 Trying...`` line (GOSUB's, before the routine runs)."""
        self._writer.write(line.encode() + b"\n")
        await self._writer.drain()
        async with asyncio.timeout(timeout_s):
            reply = (await self._reader.readline()).decode().strip()
            if reply.startswith("100 "):
                reply = (await self._reader.readline()).decode().strip()
        match = re.match(r"(\d{3}) result=(.*)$", reply)
        if not match:
            raise AssertionError(f"{line!r}: unexpected AGI reply {reply!r}")
        return int(match.group(1)), match.group(2)

    async def close(self) -> None:
        """Drop the connection, as a crashed IVR would."""
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        self.closed.set()


class FastAgiStub:
    def __init__(self) -> None:
        self.sessions: asyncio.Queue[AgiSession] = asyncio.Queue()
        self.opened: list[AgiSession] = []

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: dict[str, str] = {}
        for _ in range(200):  # the agi_* block is a few dozen lines
            line = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
            if not line:
                break
            key, _, value = line.partition(":")
            env[key.strip()] = value.strip()
        session = AgiSession(env, reader, writer)
        self.opened.append(session)
        await self.sessions.put(session)
        await session.closed.wait()  # the test drives the session; keep the connection until it is done

    async def next_session(self, timeout_s: float = 10.0) -> AgiSession:
        return await asyncio.wait_for(self.sessions.get(), timeout_s)


@contextlib.asynccontextmanager
async def serve(host: str, port: int) -> AsyncIterator[FastAgiStub]:
    stub = FastAgiStub()
    server = await asyncio.start_server(stub._accept, host, port)
    try:
        yield stub
    finally:
        server.close()
        for session in stub.opened:
            if not session.closed.is_set():
                await session.close()
        await server.wait_closed()
