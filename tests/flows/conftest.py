"""Services for flow tests: `ivr.app.demo_services`, the real operations over a fresh seeded store,
on the embedded SQLite default and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from ivr.app import demo_services
from ivr.config import settings
from ivr.engine.services import Services


@pytest.fixture(params=["sqlite", "postgresql"])
async def seeded_services(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], AbstractAsyncContextManager[Services]]:
    url = await request.getfixturevalue("postgres").fresh_database() if request.param == "postgresql" else None
    return lambda: demo_services(settings(), tmp_path, database_url=url)
