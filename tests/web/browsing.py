"""What the browser tests share: `ivr web` in its own process on a loopback port over a copy of the prepared
console (its store, its draft), Debian's chromium driven by Playwright (never a downloaded browser), logging in,
and screenshots under var/screenshots/. A test module takes the fixtures by importing them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ivr.config import REPO_ROOT

from .conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
STARTED = re.compile(r"the console is at (http://\S+)/")


@pytest.fixture(scope="module")
def console_url(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ivr web` on a free loopback port over a copy of the prepared store and draft; stopped after the module."""
    directory = tmp_path_factory.mktemp("browser")
    shutil.copytree(prepared, directory, dirs_exist_ok=True)
    env = {**os.environ, "IVR_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'ivr.sqlite3'}",
           "IVR_VAR_DIR": str(directory / "var"), "IVR_FLOWS_DIR": str(directory / "flows")}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "web", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the one line it prints once it listens, or nothing if it died
        started = STARTED.search(line)
        assert started, f"ivr web did not start: {line!r} (exit status {process.poll()})"
        yield started[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: ./dev installs Debian's chromium package")
    # The dated runs preload libfaketime for the processes they start; the browser needs no fake time.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env)
        yield launched
        launched.close()


def log_in(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page).to_have_url(f"{url}/live")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
