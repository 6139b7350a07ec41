"""A console over a fresh SQLite store holding the known day of calls (tests.store.calls_data), three accounts
(one per role), a copy of the repo's flows as its draft, published once, and a client speaking to it as a
browser would; for the browser tests, `ivr web` in its own process over a copy of it, and Debian's chromium
driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.sync_api import Browser, sync_playwright

from ivr.app import demo_factory, flow_impact
from ivr.clock import ManualClock
from ivr.config import REPO_ROOT, Settings, load_settings
from ivr.store.migrate import upgrade
from ivr.store.models import WebRole
from ivr.web.app import Console, console_for, create_app
from ivr.web.auth import hash_password
from ivr.web.editor import DraftRunners
from tests.store.calls_data import NOW, write_day

from .console_process import CHROMIUM, CHROMIUM_ARGS, chromium_env, console_process

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



@pytest.fixture(scope="module")
def console_url(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ivr web` on a free loopback port over a copy of the prepared store and draft; stopped after the module."""
    directory = tmp_path_factory.mktemp("browser")
    shutil.copytree(prepared, directory, dirs_exist_ok=True)
    env = {**os.environ, "IVR_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'ivr.sqlite3'}",
           "IVR_VAR_DIR": str(directory / "var"), "IVR_FLOWS_DIR": str(directory / "flows")}  # fmt: skip
    with console_process(env) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=chromium_env())
        yield launched
        launched.close()
