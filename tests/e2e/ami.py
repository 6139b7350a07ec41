"""A minimal AMI client for the e2e tests: actions matched by ActionID, events kept for waiting on.

Test-only on purpose: the tests must not depend on the product's AMI client they may later check.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

Message = dict[str, str]


class Ami:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self.events: list[Message] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, host: str, port: int, username: str, secret: str) -> Ami:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        await asyncio.wait_for(reader.readline(), 5)  # "Asterisk Call Manager/..."
        ami = cls(reader, writer)
        reply = await ami.action("Login", Username=username, Secret=secret)
        if reply.get("Response") != "Success":
            await ami.close()
            raise ConnectionError(f"AMI login refused: {reply.get('Message')}")
        return ami

    async def action(self, name: str, timeout_s: float = 5.0, **fields: Any) -> Message:
        action_id = f"e2e-{next(self._ids)}"
        reply: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = reply
        lines = [f"Action: {name}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in fields.items())]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        try:
            return await asyncio.wait_for(reply, timeout_s)
        finally:
            self._pending.pop(action_id, None)

    async def wait_event(self, match: Callable[[Message], bool], timeout_s: float) -> Message:
        """The first event (since connecting) that ``match`` accepts, waiting up to ``timeout_s``."""
        async with asyncio.timeout(timeout_s), self._changed:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if match(event):
                        return event
                seen = len(self.events)
                await self._changed.wait()

    async def _read(self) -> None:
        message: Message = {}
        while line := await self._reader.readline():
            text = line.decode(errors="replace").rstrip("\r\n")
            if text:
                key, _, value = text.partition(":")
                key, value = key.strip(), value.strip()
                # Repeated keys (one ChanVariable line per channel variable) are kept, one per line.
                message[key] = f"{message[key]}\n{value}" if key in message else value
                continue
            if "Event" in message:
                async with self._changed:
                    self.events.append(message)
                    self._changed.notify_all()
            elif (future := self._pending.get(message.get("ActionID", ""))) and not future.done():
                future.set_result(message)
            message = {}

    async def close(self) -> None:
        self._task.cancel()
        self._writer.close()
        try:
            await self._task
        except asyncio.CancelledError:
            pass  # the reader was cancelled by us
        await self._writer.wait_closed()
