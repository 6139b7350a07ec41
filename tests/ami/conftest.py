"""The fake AMI server on loopback and a client logged in to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ivr.ami.client import AmiClient
from ivr.config import AmiSettings

from .fake_ami import FakeAmi


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


def settings_for(port: int, **overrides: object) -> AmiSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "secret": "s3cret",
        "action_timeout_s": 0.5,
        "ping_interval_s": 60,
    }
    values.update(overrides)
    return AmiSettings.model_validate(values)


@pytest.fixture
async def client(ami: FakeAmi) -> AsyncIterator[AmiClient]:
    port = ami._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    c = AmiClient(settings_for(port))
    await c.connect()
    yield c
    await c.close()
