"""The console as a supervisor meets it: `ivr web` in its own process on a loopback port, over a store with
the known day of calls, driven by Debian's chromium through Playwright (tests/web/conftest.py).

A screenshot of each page is saved under var/screenshots/ (printed), to look at what the test saw.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.store.calls_data import DAY, TICKET, A, B

from .browsing import log_in, shot
from .console_process import SCREENSHOTS

pytestmark = pytest.mark.browser

DRAWING_MS = 60_000


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

    # The first drawing of a day's drop-off runs Graphviz on the whole flow (1-2 s, more on a loaded machine).
    page.goto(f"{console_url}/reports?date={DAY}&span=day", timeout=DRAWING_MS)
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
