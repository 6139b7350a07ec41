"""What the browser tests share: `ivr web` in its own process on a loopback port over a copy of the prepared
console (its store, its draft), Debian's chromium driven by Playwright (never a downloaded browser), logging in,
and screenshots under var/screenshots/. A test module takes the fixtures by importing them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .conftest import PASSWORD
from .console_process import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, chromium_env, console_process, screenshot_path

__all__ = ["SCREENSHOTS", "browser", "console_url", "log_in", "shot"]


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


def log_in(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page).to_have_url(f"{url}/live")


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(screenshot_path(name)), full_page=True)
