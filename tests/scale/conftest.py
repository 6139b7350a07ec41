"""Empty databases for the scale tests, on the embedded SQLite and on the session's PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

#: Makes an empty database and returns its SQLAlchemy URL.
NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> NewDatabase:
    """A factory of empty databases of one dialect (every test using it runs on both)."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres").fresh_database
    numbers = itertools.count(1)

    async def sqlite_database() -> str:
        return f"sqlite+aiosqlite:///{tmp_path / f'db{next(numbers)}.sqlite3'}"

    return sqlite_database
