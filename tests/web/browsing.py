"""What the browser tests share besides their fixtures (`console_url` and `browser`, in conftest.py): logging in
to the console in Debian's chromium, and screenshots under var/screenshots/."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import PASSWORD
from .console_process import screenshot_path


def log_in(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page).to_have_url(f"{url}/live")


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(screenshot_path(name)), full_page=True)
