"""A console over a fresh SQLite store holding the known day of calls (tests.store.calls_data), three accounts
(one per role), a copy of the repo's flows as its draft, published once, and a client speaking to it as a
browser would."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import demo_factory, flow_impact
from ivr.clock import ManualClock
from ivr.config import REPO_ROOT, Settings, load_settings
from ivr.store.migrate import upgrade
from ivr.store.models import WebRole
from ivr.web.app import Console, console_for, create_app
from ivr.web.auth import hash_password
from ivr.web.editor import DraftRunners
from tests.store.calls_data import NOW, write_day

PASSWORD = "correct horse battery"
ACCOUNTS = {"vera": WebRole.VIEWER, "edu": WebRole.EDITOR, "ana": WebRole.ADMIN}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
DRAFTS = DraftRunners(demo=demo_factory, impact=flow_impact)


@dataclass
class Site:
    console: Console
    client: TestClient
    clock: ManualClock

    async def csrf(self, path: str) -> str:
        """The CSRF token in the form of the page at `path`, as a browser would find it."""
        response = await self.client.get(path)
        found = CSRF.search(await response.text())
        assert found, f"no CSRF token in {path}"
        return found[1]

    async def log_in(self, name: str, password: str = PASSWORD) -> int:
        token = await self.csrf("/login")
        response = await self.client.post(
            "/login", data={"name": name, "password": password, "csrf": token, "next": "/live"}, allow_redirects=False
        )
        return response.status


def console_settings(tmp_path: Path) -> Settings:
    """The console's settings over `tmp_path`: its store, its var dir and its draft (`flows`, edited by tests)."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"
    return load_settings(database_url=database_url, var_dir=tmp_path / "var", flows_dir=tmp_path / "flows")


async def prepared_store(conf: Settings) -> None:
    """The known day of calls, an account per role, and the repo's flows published (release 1)."""
    clock = ManualClock(NOW)
    async with console_for(
        conf, clock=clock, live_socket=conf.var_dir / "live.sock", tell_server=str, drafts=DRAFTS
    ) as console:
        await upgrade(console.store)
        await write_day(console.store)
        for name, role in ACCOUNTS.items():
            await console.accounts.add(name, hash_password(PASSWORD), role, who="test")
        report = console.library.publish(conf.flows_dir, who="test", note="first")
        assert report.ok, report.render()


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared once (hashing passwords and checking flows take a second), copied for each test."""
    directory = tmp_path_factory.mktemp("console")
    conf = console_settings(directory)
    conf.var_dir.mkdir()
    shutil.copytree(REPO_ROOT / "flows", conf.flows_dir)
    asyncio.run(prepared_store(conf))
    return directory


@pytest.fixture
async def site(prepared: Path, tmp_path: Path) -> AsyncIterator[Site]:
    shutil.copytree(prepared, tmp_path, dirs_exist_ok=True)
    conf = console_settings(tmp_path)
    clock = ManualClock(NOW)
    told = lambda: "no ivr serve is running here"  # noqa: E731
    async with console_for(
        conf, clock=clock, live_socket=conf.var_dir / "live.sock", tell_server=told, drafts=DRAFTS
    ) as console:
        async with TestClient(TestServer(create_app(console))) as client:
            yield Site(console, client, clock)

