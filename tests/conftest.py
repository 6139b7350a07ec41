"""Fixtures shared by every test folder."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from integrations.messaging.outbox import Outbox
from tests.e2e.shards import WHOLE, Shard, assign
from tests.email.conftest import SmtpServer
from tests.postgres import PostgresServer
from tests.whatsapp.conftest import CloudApi


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--e2e-shard", type=Shard.parse, default=WHOLE, metavar="K/N",
        help="run only the K-th of N shards of the e2e tests (tests/e2e/shards.py); the others as usual",
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    # Registered beside the shards' option, which it goes with.
    config.addinivalue_line(
        "markers", "solo: an e2e test that needs most of the machine: it waits until no other e2e session runs"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the e2e tests of the other shards (`--e2e-shard`); run the `solo` ones last, each after the
    rest of its module, since they wait for the other shards to end."""
    shard: Shard = config.getoption("e2e_shard")
    if shard == WHOLE:
        return
    e2e = [item for item in items if item.get_closest_marker("e2e")]
    shard_of = assign((item.path.name for item in e2e), shard.count)
    others = {item for item in e2e if shard_of[item.path.name] != shard.index}
    config.hook.pytest_deselected(items=[item for item in items if item in others])
    solo = {item.path for item in items if item.get_closest_marker("solo")}
    items[:] = sorted(
        (item for item in items if item not in others),
        key=lambda item: (item.path in solo, item.get_closest_marker("solo") is not None),
    )  # stable: the order within each group stays


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (the scale path of the store). Its directory is not under
    pytest's per-user temporary folder, which the `postgres` system user cannot enter."""
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="ivr-postgres-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def outboxes() -> AsyncIterator[list[Outbox]]:
    """Outboxes a test starts (e-mail, WhatsApp); each is closed at the end, whatever happened."""
    started: list[Outbox] = []
    yield started
    for outbox in started:
        await outbox.aclose()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    """A real aiosmtpd server on 127.0.0.1 that keeps what arrives."""
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def cloud() -> AsyncIterator[CloudApi]:
    """A local fake of the WhatsApp Cloud API that checks each request."""
    api = CloudApi()
    await api.start()
    yield api
    await api.stop()
