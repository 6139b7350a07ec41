"""Services for flow tests: `ivr.app.demo_services`, the real operations over a fresh seeded store,
on the embedded SQLite default and on PostgreSQL."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ivr.app import demo_services
from ivr.clock import Clock
from ivr.config import settings
from ivr.engine.ports import Services
from ivr.flows.flowtest import ServicesFactory


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded_services(request: pytest.FixtureRequest, tmp_path: Path) -> ServicesFactory:
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None

    @asynccontextmanager
    async def fresh(clock: Clock) -> AsyncIterator[Services]:
        # A store of its own each time: each is seeded as of its own moment.
        url = await postgres.migrated_database() if postgres else None
        directory = Path(tempfile.mkdtemp(dir=tmp_path))
        async with demo_services(settings(), directory, clock=clock, database_url=url) as services:
            yield services

    return fresh
