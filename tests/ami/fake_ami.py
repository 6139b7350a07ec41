"""A small AMI server on loopback speaking Asterisk 22's manager protocol (CRLF headers, blank line)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

WAIT_S = 5.0
Fields = dict[str, Any]
#: Given an action, the messages to send back (None: stay silent, as a hung Asterisk would).
Responder = Callable[[Fields], list[Fields] | None]


def encode(message: Fields) -> bytes:
    lines: list[str] = []
    for key, value in message.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {item}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class FakeAmi:
    def __init__(self, *, secret: str = "s3cret") -> None:
        self.secret = secret
        self.responders: dict[str, Responder] = {}
        self.answer_pings = True
        self.received: asyncio.Queue[tuple[int, Fields]] = asyncio.Queue()
        self.writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self.writers:
            writer.close()
        await asyncio.wait_for(asyncio.gather(*self._tasks), WAIT_S)

    def send(self, connection: int, message: Fields) -> None:
        self.writers[connection].write(encode(message))

    def drop(self, connection: int) -> None:
        self.writers[connection].close()

    async def next_action(self, name: str) -> tuple[int, Fields]:
        """The next action called ``name`` (others received meanwhile are skipped)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                connection, fields = await self.received.get()
                if fields.get("Action", "").lower() == name.lower():
                    return connection, fields

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = len(self.writers)
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        while True:  # one action per turn; ends at EOF
            try:
                block = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            fields: Fields = {}
            for line in block.decode().strip().split("\r\n"):
                key, _, value = line.partition(": ")
                if key in fields:
                    fields[key] = [*([fields[key]] if isinstance(fields[key], str) else fields[key]), value]
                else:
                    fields[key] = value
            await self.received.put((connection, fields))
            for reply in self._reply(fields) or []:
                writer.write(encode(reply))

    def _reply(self, fields: Fields) -> list[Fields] | None:
        action = fields.get("Action", "").lower()
        aid = fields.get("ActionID", "")
        if action == "login":
            if fields.get("Secret") != self.secret:
                return [{"Response": "Error", "ActionID": aid, "Message": "Authentication failed"}]
            return [
                {"Response": "Success", "ActionID": aid, "Message": "Authentication accepted"},
                {"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "10", "Status": "Fully Booted"},
            ]
        if action == "ping":
            return (
                [{"Response": "Success", "ActionID": aid, "Ping": "Pong", "Timestamp": "1764070000.000000"}]
                if self.answer_pings
                else None
            )
        responder = self.responders.get(action)
        return responder(fields) if responder else None


def queue_status_reply(aid: str, queue: str = "technical") -> list[Fields]:
    """What Asterisk 22 answers to QueueStatus for a queue with two members and one caller."""
    return [
        {"Response": "Success", "ActionID": aid, "EventList": "start", "Message": "Queue status will follow"},
        {"Event": "QueueParams", "Queue": queue, "Max": "0", "Strategy": "rrmemory", "Calls": "1", "Holdtime": "42",
         "TalkTime": "300", "Completed": "10", "Abandoned": "2", "ServiceLevel": "60", "ServicelevelPerf": "80.0",
         "Weight": "0", "ActionID": aid},
        {"Event": "QueueMember", "Queue": queue, "Name": "Agente 101", "Location": "PJSIP/agent-101",
         "StateInterface": "PJSIP/agent-101", "Membership": "dynamic", "Penalty": "0", "CallsTaken": "3",
         "LastCall": "0", "InCall": "0", "Status": "1", "Paused": "1", "PausedReason": "almoco", "ActionID": aid},
        {"Event": "QueueMember", "Queue": queue, "Name": "Agente 102", "Location": "PJSIP/agent-102",
         "StateInterface": "PJSIP/agent-102", "Membership": "dynamic", "Penalty": "0", "CallsTaken": "5",
         "LastCall": "0", "InCall": "0", "Status": "1", "Paused": "0", "ActionID": aid},
        {"Event": "QueueMember", "Queue": queue, "Name": "Agente 103", "Location": "PJSIP/agent-103",
         "StateInterface": "PJSIP/agent-103", "Membership": "dynamic", "Penalty": "0", "CallsTaken": "0",
         "LastCall": "0", "InCall": "0", "Status": "5", "Paused": "0", "ActionID": aid},
        {"Event": "QueueEntry", "Queue": queue, "Position": "1", "Channel": "PJSIP/carrier-00000007",
         "Uniqueid": "1764070000.17", "CallerIDNum": "1133334444", "Wait": "37", "Priority": "0", "ActionID": aid},
        {"Event": "QueueStatusComplete", "EventList": "Complete", "ListItems": "5", "ActionID": aid},
    ]


def core_show_channels_reply(aid: str, *uniqueids: str) -> list[Fields]:
    """What Asterisk 22 answers to CoreShowChannels: one CoreShowChannel per channel up."""
    channels = [
        {"Event": "CoreShowChannel", "ActionID": aid, "Channel": f"PJSIP/carrier-{uid}", "Uniqueid": uid,
         "Linkedid": uid, "Context": "sac-inbound", "Exten": "30033336", "Priority": "3", "ChannelState": "6",
         "ChannelStateDesc": "Up", "Application": "Queue", "ApplicationData": "technical", "Duration": "00:00:40",
         "BridgeId": "", "CallerIDNum": "1133334444"}
        for uid in uniqueids
    ]  # fmt: skip
    return [
        {"Response": "Success", "ActionID": aid, "EventList": "start", "Message": "Channels will follow"},
        *channels,
        {
            "Event": "CoreShowChannelsComplete",
            "ActionID": aid,
            "EventList": "Complete",
            "ListItems": str(len(channels)),
        },
    ]
