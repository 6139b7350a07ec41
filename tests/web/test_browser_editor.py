"""The draft's editor as a supervisor meets it in Debian's chromium (tests/web/conftest.py): an error typed
is shown at its line without a reload, and gone once fixed; the draft saved, its impact read, then published.

Screenshots under var/screenshots/editor-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from .browsing import log_in, shot
from .test_editor import MENU_LINE

pytestmark = pytest.mark.browser

CURSOR_LINE = "(t => t.value.slice(0, t.selectionStart).split('\\n').length)(document.getElementById('text'))"


def select(page: Page, line: int, word: str) -> None:
    """Select `word` on `line` of the text, as a double click would: what is typed next replaces it."""
    page.locator("#text").evaluate(
        """(t, [line, word]) => {
            const start = t.value.split("\\n").slice(0, line - 1).reduce((at, text) => at + text.length + 1, 0);
            const at = t.value.indexOf(word, start);
            t.focus();
            t.setSelectionRange(at, at + word.length);
        }""",
        [line, word],
    )


def test_an_editor_types_an_error_sees_it_at_its_line_fixes_it_saves_and_publishes(
    browser: Browser, console_url: str
) -> None:
    page = browser.new_page()
    page.set_default_timeout(15_000)
    log_in(page, console_url, "edu")
    page.goto(f"{console_url}/flows")
    page.click("text=Edit the draft")
    page.click(".draft-files >> text=sac.yaml")
    expect(page.locator("#check-status")).to_contain_text("0 errors")
    text = page.locator("#text").input_value()
    line = text.splitlines().index(MENU_LINE) + 1

    select(page, line, "commercial")
    page.keyboard.type("nowhere")  # the option now goes to a node that does not exist
    problem = page.locator("#problems li.error", has_text="nowhere")
    expect(problem).to_contain_text(f"line {line}: error:")
    expect(page.locator("#gutter span").nth(line - 1)).to_have_class("error")
    expect(page.locator("#check-status")).to_contain_text("cannot be published until the errors are fixed")
    shot(page, "editor-error")
    problem.locator("a").click()
    assert page.evaluate(CURSOR_LINE) == line  # the cursor is on the line the message is about

    select(page, line, "nowhere")
    page.keyboard.type("commercial")
    select(page, line, "]")
    page.keyboard.type(", planos]")
    edited = text.replace(MENU_LINE, MENU_LINE.replace("vendas]", "vendas, planos]"))
    expect(page.locator("#problems li.error")).to_have_count(0)
    expect(page.locator("#gutter span.error")).to_have_count(0)
    expect(page.locator("#check-status")).to_contain_text("the draft can be published")
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("Saved sac.yaml. The draft passes its checks")
    assert page.locator("#text").input_value() == edited
    shot(page, "editor-saved")

    page.click("text=Impact of publishing the draft")
    expect(page.locator("#impact")).to_contain_text("Calls replayed", timeout=120_000)
    shot(page, "editor-impact")
    page.fill("#publish input[name=note]", "planos no menu")
    page.click("#publish button")
    expect(page.locator(".notice")).to_contain_text("Published the draft as version")
    current = page.locator("#history tr.current")
    expect(current).to_contain_text("planos no menu")
    expect(current).to_contain_text("edu")
    expect(page.locator("#history tbody tr")).to_have_count(2)
    shot(page, "editor-published")
    page.close()


def test_a_viewer_reads_the_draft_without_saving(browser: Browser, console_url: str) -> None:
    page = browser.new_page()
    page.set_default_timeout(15_000)
    log_in(page, console_url, "vera")
    page.goto(f"{console_url}/flows/edit/sac.yaml")
    expect(page.locator("#check-status")).to_contain_text(re.compile(r"\d+ errors"))
    expect(page.locator("#text")).not_to_be_editable()
    expect(page.locator("#save")).to_have_count(0)
    page.close()
