"""The console as a supervisor meets it: `ivr web` in its own process on a loopback port, over a store with
the known day of calls, driven by Debian's chromium through Playwright (never a downloaded browser).

A screenshot of each page is saved under var/screenshots/ (printed), to look at what the test saw.
"""

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
from tests.store.calls_data import DAY, TICKET, A, B

from .conftest import PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
STARTED = re.compile(r"the console is at (http://\S+)/")


@pytest.fixture(scope="module")
def console_url(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ivr web` on a free loopback port over a copy of the prepared store; stopped after the module."""
    directory = tmp_path_factory.mktemp("browser")
    shutil.copytree(prepared, directory, dirs_exist_ok=True)
    env = {**os.environ, "IVR_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'ivr.sqlite3'}",
           "IVR_VAR_DIR": str(directory / "var")}  # fmt: skip
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


def test_a_supervisor_logs_in_and_reads_live_calls_reports_flows_and_the_audit_log(
    browser: Browser, console_url: str
) -> None:
    page = browser.new_page()
    page.set_default_timeout(10_000)
    for path in ("/live", "/calls", f"/calls/{A}", "/reports", "/flows", "/audit"):
        page.goto(f"{console_url}{path}")
        expect(page).to_have_url(re.compile(re.escape(f"{console_url}/login?next=")))
    shot(page, "login")
    page.fill("input[name=name]", "ana")
    page.fill("input[name=password]", "not the password")
    page.click("button:has-text('Log in')")
    expect(page.locator(".error")).to_contain_text("Wrong name or password")
    log_in(page, console_url, "ana")

    expect(page.locator("#live-status")).to_contain_text("ivr serve) is not running")
    shot(page, "live")

    page.click("nav >> text=Calls")
    page.fill("input[name=day]", DAY.isoformat())
    page.click("button:has-text('Search')")
    calls = page.locator("#calls")
    expect(calls).to_contain_text(A)
    expect(calls).to_contain_text(B)
    expect(calls).to_contain_text("31******44")
    shot(page, "calls")
    page.click(f"a:has-text('{A}')")
    expect(page.locator("h1")).to_have_text(f"Call {A}")
    expect(page.locator("#outcome")).to_have_text("queue:technical")
    expect(page.locator("main")).to_contain_text(TICKET)
    expect(page.locator("main")).to_contain_text(f"{A}.1")  # the linkedid, to find the CDR
    shot(page, "call")

    page.goto(f"{console_url}/reports?date={DAY}&span=day")
    figures = page.locator("#figures")
    expect(figures.locator("tr", has_text="calls")).to_contain_text("7")
    expect(figures.locator("tr", has_text="abandoned")).to_contain_text("2")
    expect(page.locator("#drop-off-chart")).to_contain_text("sac/menu")
    shot(page, "reports")

    page.click("nav >> text=Flows")
    expect(page.locator("#history tr.current")).to_contain_text("CURRENT")
    expect(page.locator("#history")).to_contain_text("first")
    expect(page.locator("#publish")).to_be_visible()
    shot(page, "flows")

    page.click("nav >> text=Audit log")
    expect(page.locator("#audit")).to_contain_text("login")
    shot(page, "audit")
    page.click("nav >> text=Users")
    expect(page.locator("#users")).to_contain_text("vera")
    shot(page, "users")
    page.close()
    print(f"\nscreenshots of each page: {SCREENSHOTS}")


def test_a_viewer_cannot_roll_back_and_a_post_without_the_token_is_refused(browser: Browser, console_url: str) -> None:
    page = browser.new_page()
    page.set_default_timeout(10_000)
    log_in(page, console_url, "vera")
    page.goto(f"{console_url}/flows")
    expect(page.locator("#history")).to_contain_text("CURRENT")
    expect(page.locator("button", has_text="Roll back")).to_have_count(0)
    expect(page.locator("#publish")).to_have_count(0)
    shot(page, "flows-viewer")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(f"{console_url}/flows/rollback", form={"number": "1"}, max_redirects=0)
    assert refused.status == 403  # no token: refused before the role is even asked
    forbidden = page.request.post(f"{console_url}/flows/rollback", form={"number": "1", "csrf": token or ""})
    assert forbidden.status == 403 and "editor role" in forbidden.text()
    page.close()
