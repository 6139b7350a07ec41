"""Services for flow tests: `ivr.app.demo_services`, the real operations over a fresh seeded store,
on the embedded SQLite default and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
import tempfile
from datetime import datetime
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
    def fresh(at: datetime | None) -> AbstractAsyncContextManager[Services]:
        # A directory per test file: each is seeded as of its own `at`.
        return demo_services(settings(), Path(tempfile.mkdtemp(dir=tmp_path)), database_url=url, now=at)

    return fresh
