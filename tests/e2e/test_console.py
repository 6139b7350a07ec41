"""The console watching real calls: a supervisor's browser (Debian's chromium through Playwright) on
`ivr web`, beside the `ivr serve` that SIPp callers reach through Asterisk 22, both on the same store and
var directory. The live page shows a call as it happens and drops it when it ends, without a reload; a
release edited and published in the browser while a call is in progress leaves that call on the release it
started with, and the next call takes the new one; after a rollback in the browser the next call runs the
old release again. Each call's trace names its release and what was heard.

Screenshots go to var/screenshots/ (console-*.png), beside the fast suite's browser test.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, async_playwright, expect

from ivr.asterisk.sipp import CallResult, CallScript, Pause
from ivr.config import REPO_ROOT
from ivr.store.seed import KNOWN_CALLER
from tests.web.console_process import CHROMIUM, CHROMIUM_ARGS, chromium_env, console_process, screenshot_path

from .conftest import E2EAsterisk, serve_ivr
from .ivr_process import IVR, IvrProcess
from .store import StoreReader, wait_for

pytestmark = pytest.mark.e2e

SUPERVISOR, PASSWORD = "vera", "uma senha longa o bastante"
IN_PROGRESS_S = 40.0  # the first caller stays this long: the edit and the publish happen meanwhile
BRIEF_S = 6.0  # the second caller, after the publish
SEEN_MS = 10_000  # a page shows what happened within this (the live page takes about a second)


@pytest.fixture(scope="module")
def draft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flows the console publishes from: a copy of the repo's, which the test changes."""
    directory = tmp_path_factory.mktemp("console-draft") / "flows"
    shutil.copytree(REPO_ROOT / "flows", directory)
    return directory


@pytest.fixture(scope="module")
def ivr(asterisk: E2EAsterisk, draft: Path) -> Iterator[IvrProcess]:
    """This module's `ivr serve`, publishing the draft copy on its start (release 1)."""
    with serve_ivr(asterisk, env={"IVR_FLOWS_DIR": str(draft)}) as process:
        yield process


@pytest.fixture(scope="module")
def console_url(ivr: IvrProcess) -> Iterator[str]:
    """`ivr web` on the IVR's store and var directory (its live socket, its releases), with an editor."""
    env = ivr.environment()
    added = subprocess.run(
        [str(IVR), "users", "add", SUPERVISOR, "--role", "editor", "--password-stdin"],
        input=PASSWORD, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with console_process(env) as url:
        yield url


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(screenshot_path(f"console-{name}")), full_page=True)


def calling(asterisk: E2EAsterisk, caller: str, seconds: float) -> asyncio.Task[CallResult]:
    """A caller who stays `seconds` in the IVR (keying nothing) and hangs up."""
    script = CallScript(caller=caller, steps=(Pause(seconds),), end="hangup")
    return asyncio.ensure_future(asterisk.call(script, timeout_s=seconds + 30))


async def release_of(page: Page, url: str, protocol: str) -> str:
    """The release a call ran on, as its trace names it (searching a protocol opens its trace): "release 2"."""
    await page.goto(f"{url}/calls")
    await page.fill("input[name=number]", protocol)
    await page.click("button:has-text('Search')")
    await expect(page.locator("h1")).to_have_text(f"Call {protocol}")
    named = re.search(r"releases? [\d, ]+", str(await page.locator("#flow-release").text_content()))
    assert named, "the trace names no release"
    return named[0].strip()


async def test_a_supervisor_sees_a_real_call_live_and_a_publish_leaves_it_on_its_release(
    asterisk: E2EAsterisk, ivr: IvrProcess, draft: Path, console_url: str
) -> None:
    stored = StoreReader(ivr.database)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=chromium_env()
        )
        try:
            live, work = await browser.new_page(), await browser.new_page()
            for page in (live, work):
                page.set_default_timeout(SEEN_MS)
                await page.goto(f"{console_url}/login")
                await page.fill("input[name=name]", SUPERVISOR)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button:has-text('Log in')")
                await expect(page).to_have_url(f"{console_url}/live")
            await expect(live.locator("#live-status")).to_contain_text("Asterisk connected")

            before = stored.protocols()
            first = calling(asterisk, KNOWN_CALLER, IN_PROGRESS_S)
            row = live.locator("#live-calls tbody tr", has_text="sac")
            await expect(row).to_have_count(1)  # the live page, never reloaded, shows the call
            protocol = str(await row.locator("td").first.text_content()).strip()
            await wait_for(lambda: protocol in stored.protocols() - before or None, "the live call in the store", 10)
            await expect(row).to_contain_text("31******44")  # the caller, masked
            since = str(await row.locator("td").nth(4).text_content())  # in the IVR's time zone, 24-hour
            local_hour = f"{ivr.clock().astimezone(ZoneInfo(ivr.settings.timezone)):%H}"
            assert re.fullmatch(r"\d\d:\d\d:\d\d", since) and since[:2] == local_hour, since
            await shot(live, "live-call")

            # While the call is in progress, a supervisor edits the draft in the browser and publishes it.
            await work.click("nav >> text=Flows")
            old = str(await work.locator("#history tr.current td").first.text_content()).strip()
            await work.goto(f"{console_url}/flows/edit/sac.yaml")
            await expect(work.locator("#check-status")).to_contain_text("the draft can be published")
            await work.focus("#text")
            await work.keyboard.press("Control+End")
            await work.keyboard.type("# revisado pela supervisão\n")
            await work.click("#save")
            await expect(work.locator("#message")).to_contain_text("Saved sac.yaml. The draft passes its checks")
            assert "# revisado pela supervisão" in (draft / "sac.yaml").read_text(encoding="utf-8")
            await work.click("text=Impact of publishing the draft")
            await work.fill("#publish input[name=note]", "comentário da supervisão")
            await work.click("#publish button")
            await expect(work.locator(".notice")).to_contain_text("Published the draft as version")
            new = str(await work.locator("#history tr.current td").first.text_content()).strip()
            assert new != old
            assert not first.done(), "the first call ended before the publish: the test proves nothing"
            await shot(work, "published")
            # The unit reloads in a moment (every worker): the live page says when new calls take it.
            await expect(live.locator("#live-status")).to_contain_text(f"new calls take release {new}")

            second = calling(asterisk, "3198887777", BRIEF_S)
            for call in (await first, await second):
                assert call.answered, call.summary()
            await expect(live.locator("#live-calls tbody tr", has_text=protocol)).to_have_count(0)
            await expect(live.locator("#live-calls tbody tr", has_text="sac")).to_have_count(0)
            await shot(live, "live-empty")

            (later,) = stored.protocols() - before - {protocol}
            await stored.ended_calls(before, 2)
            assert await release_of(work, console_url, protocol) == f"release {old}"
            await expect(work.locator("#path")).to_contain_text("Você ligou para a American Tower Fibra")
            assert await release_of(work, console_url, later) == f"release {new}"
            await shot(work, "trace")

            # Going back: the next call runs release 1's flow again (history entry 3 holds the same files).
            await work.click("nav >> text=Flows")
            await work.click(f"button:has-text('Roll back to {old}')")
            await expect(work.locator(".notice")).to_contain_text(f"Release {old} is current again")
            back = str(await work.locator("#history tr.current td").first.text_content()).strip()
            await expect(live.locator("#live-status")).to_contain_text(f"new calls take release {back}")
            (await calling(asterisk, "3198887777", BRIEF_S)).answered or pytest.fail("the call after the rollback")
            (last,) = (await stored.ended_calls(before | {protocol, later}, 1))
            assert await release_of(work, console_url, last.protocol) == f"releases {old}, {back}"
        finally:
            await browser.close()
