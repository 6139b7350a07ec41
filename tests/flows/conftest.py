"""Services for flow tests: `ivr.app.demo_services`, the real operations over a fresh seeded SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from ivr.app import demo_services
from ivr.config import settings
from ivr.engine.services import Services


@pytest.fixture
def seeded_services(tmp_path: Path) -> Callable[[], AbstractAsyncContextManager[Services]]:
    return lambda: demo_services(settings(), tmp_path)
