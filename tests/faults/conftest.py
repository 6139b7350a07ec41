"""Real peers on 127.0.0.1 for the doctor and the fault tests (the carrier API fake, aiosmtpd, the AMI
fake, the speech fake, a seeded SQLite store, a TCP relay that can cut a server off), and whole calls
through the repository's own flows."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from integrations.catalog import declared_registry
from ivr.config import REPO_ROOT, Settings
from ivr.engine.flow import Flow
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.ports import CallInfo, Services
from ivr.engine.scripted import ScriptedChannel
from ivr.flows.checks import check_paths
from ivr.store.db import Store
from ivr.store.migrate import new_sqlite_store
from ivr.store.seed import seed
from ivr.voice.catalogue import Catalogue
from tests.ami.fake_ami import FakeAmi
from tests.email.conftest import SmtpServer
from tests.http.conftest import carrier  # noqa: F401  (fixture)
from tests.speech.fake_speech import FakeSpeech


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


#: When the fault tests' calls happen, unless a drainer needs time to pass: a Tuesday morning, every team open.
TUESDAY_10H = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))


async def seeded_sqlite(directory: Path, *, now: datetime = TUESDAY_10H) -> str:
    """A migrated store with the demo accounts dated as of `now`; returns its URL."""
    url = await new_sqlite_store(directory / "ivr.sqlite3")
    store = Store(url)
    try:
        await seed(store, now=now)
    finally:
        await store.aclose()
    return url


@pytest.fixture
async def ami() -> AsyncIterator[tuple[FakeAmi, int]]:
    """The AMI fake (secret "ami-s3cret") answering CoreStatus, and its port."""
    fake = FakeAmi(secret="ami-s3cret")
    port = await fake.start()
    fake.responders["corestatus"] = lambda fields: [
        {"Response": "Success", "ActionID": fields.get("ActionID", ""), "CoreCurrentCalls": "3",
         "CoreStartupTime": "10:00:00", "CoreReloadTime": "10:00:00"}
    ]  # fmt: skip
    yield fake, port
    await fake.stop()


@pytest.fixture
async def speech() -> AsyncIterator[FakeSpeech]:
    server = FakeSpeech()
    await server.start()
    yield server
    await server.stop()


# --- whole calls through the real flows ------------------------------------------------------------


@pytest.fixture(scope="session")
def sac_flows() -> Mapping[str, Flow]:
    """The repository's flows, checked as `ivr flow publish` checks them."""
    report = check_paths([REPO_ROOT / "flows"], catalogue=REPO_ROOT / "prompts" / "pt_BR", registry=declared_registry())
    assert report.ok, report.render()
    return report.flows


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue.load(REPO_ROOT / "prompts" / "pt_BR")


async def call(
    flows: Mapping[str, Flow], services: Services, settings: Settings, script: list[str], *,
    caller: str | None = "3133334444", channel: type[ScriptedChannel] = ScriptedChannel, **options: Any,
) -> tuple[CallResult, ScriptedChannel]:  # fmt: skip
    """One call to 3003-3336 through the `sac` flow, the caller following `script`."""
    line = channel(CallInfo(caller_id=caller, dialled="30033336"), script, **options)
    result = await run_call(flows["sac"], line, services, flows=flows, settings=settings)
    return result, line


def words(catalogue: Catalogue, line: ScriptedChannel) -> str:
    """What the caller heard, as one line of text."""
    return catalogue.render_text(line.heard)


class Relay:
    """A TCP relay on 127.0.0.1 in front of a server: `cut()` drops every connection and refuses new ones
    (the server is down, as far as its clients can tell); `restore()` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._links):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._links |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links -= {writer, up_writer}
            for end in (writer, up_writer):
                end.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass  # the relay was cut: the other direction ends too
    finally:
        writer.transport.abort()


__all__ = ["TUESDAY_10H", "Relay", "SmtpServer", "call", "free_port", "seeded_sqlite", "words"]
