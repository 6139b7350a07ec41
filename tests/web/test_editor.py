"""The draft's editor without a browser: the check at its line, saving (stale bases, roles, the audit row),
and the flow tests, the simulator and the impact run on a copy of the repo's flows."""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

import pytest

from .conftest import Site

MENU_LINE = '        "5": {go: commercial, say_it: [não sou cliente, comercial, contratar, cotação, vendas]}'
BROKEN_LINE = MENU_LINE.replace("go: commercial", "go: nowhere")


def draft(site: Site, name: str = "sac.yaml") -> Path:
    return site.console.conf.flows_dir / name


def line_of(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


async def check(site: Site, text: str, name: str = "sac.yaml") -> list[dict[str, object]]:
    token = await site.csrf(f"/flows/edit/{name}")
    response = await site.client.post("/flows/check", data={"csrf": token, "name": name, "text": text})
    assert response.status == 200, await response.text()
    return (await response.json())["problems"]


async def save(site: Site, text: str, *, base: str, name: str = "sac.yaml") -> tuple[int, str]:
    token = await site.csrf(f"/flows/edit/{name}")
    response = await site.client.post(f"/flows/save/{name}", data={"csrf": token, "text": text, "base": base})
    return response.status, html.unescape(await response.text())


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("path", ["/flows/edit", "/flows/edit/sac.yaml", "/flows/simulate", "/flows/impact"])
async def test_the_editor_s_pages_without_login_send_to_the_login_page(site: Site, path: str) -> None:
    response = await site.client.get(path, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login?next=")


async def test_a_viewer_reads_the_draft_with_its_files_but_has_no_save(site: Site) -> None:
    assert await site.log_in("vera") == 303
    first = await site.client.get("/flows/edit", allow_redirects=False)
    assert first.headers["Location"] == "/flows/edit/identify.yaml"
    page = html.unescape(await (await site.client.get("/flows/edit/sac.yaml")).text())
    assert MENU_LINE in page and "identify.yaml" in page and "/static/editor.js" in page
    assert "readonly" in page and "Save sac.yaml" not in page


async def test_the_check_puts_an_error_at_its_line_and_none_once_fixed(site: Site) -> None:
    assert await site.log_in("vera") == 303  # checking changes nothing: viewers may
    text = draft(site).read_text(encoding="utf-8")
    broken = text.replace(MENU_LINE, BROKEN_LINE)
    problems = await check(site, broken.replace("\n", "\r\n"))  # as a browser sends a textarea
    [error] = [p for p in problems if p["severity"] == "error"]
    assert error["file"] == "sac.yaml" and error["line"] == line_of(text, MENU_LINE)
    assert "nowhere" in str(error["message"])
    assert [p for p in await check(site, text) if p["severity"] == "error"] == []
    assert draft(site).read_text(encoding="utf-8") == text  # a check never writes the draft


async def test_the_check_sees_the_whole_draft_a_subflow_renamed_breaks_its_caller(site: Site) -> None:
    assert await site.log_in("vera") == 303
    text = draft(site, "identify.yaml").read_text(encoding="utf-8")
    problems = await check(site, text.replace("\nflow: identify\n", "\nflow: identified\n"), "identify.yaml")
    assert any(p["file"] == "sac.yaml" and p["severity"] == "error" for p in problems), problems


async def test_the_check_refuses_a_huge_text_and_files_outside_the_draft(site: Site) -> None:
    assert await site.log_in("vera") == 303
    token = await site.csrf("/flows/edit/sac.yaml")
    huge = await site.client.post("/flows/check", data={"csrf": token, "name": "sac.yaml", "text": "#" * 300_000})
    assert huge.status == 413 and "over 256 KiB" in await huge.text()
    for name in ("../pyproject.toml", "flow.schema.json", "new.yaml", "tests"):
        response = await site.client.post("/flows/check", data={"csrf": token, "name": name, "text": "x"})
        assert response.status == 404 and "No flow file" in await response.text(), name
    assert (await site.client.get("/flows/edit/..%2Fsac.yaml")).status == 404


async def test_an_editor_saves_and_the_audit_log_keeps_the_diff(site: Site) -> None:
    assert await site.log_in("edu") == 303
    text = draft(site).read_text(encoding="utf-8")
    edited = text.replace(MENU_LINE, MENU_LINE.replace("vendas]", "vendas, planos]"))
    status, page = await save(site, edited.replace("\n", "\r\n"), base=sha(text))
    assert status == 200 and "Saved sac.yaml. The draft passes its checks" in page
    assert draft(site).read_text(encoding="utf-8") == edited
    assert f'name="base" value="{sha(edited)}"' in page  # the next save is against what was saved
    [entry] = [e for e in await site.console.accounts.audit_log() if e.action == "flow.edit"]
    assert entry.who == "edu" and entry.detail.startswith("sac.yaml\n--- a/sac.yaml\n+++ b/sac.yaml\n")
    assert f"-{MENU_LINE}\n" in entry.detail and "+" + MENU_LINE.replace("vendas]", "vendas, planos]") in entry.detail
    assert not [p for p in draft(site).parent.iterdir() if p.name.endswith(".tmp")]


async def test_a_draft_with_errors_is_saved_but_not_published(site: Site) -> None:
    assert await site.log_in("edu") == 303
    text = draft(site).read_text(encoding="utf-8")
    status, page = await save(site, text.replace(MENU_LINE, BROKEN_LINE), base=sha(text))
    assert status == 200 and "cannot be published until they are fixed" in page
    token = await site.csrf("/flows")
    refused = await site.client.post("/flows/publish", data={"csrf": token})
    assert refused.status == 422 and "nowhere" in await refused.text()


async def test_a_save_over_a_file_changed_since_it_was_opened_is_refused_and_keeps_the_text(site: Site) -> None:
    assert await site.log_in("edu") == 303
    opened = draft(site).read_text(encoding="utf-8")
    theirs = opened.replace("vendas]", "vendas, loja]")
    draft(site).write_text(theirs, encoding="utf-8")  # another supervisor saved meanwhile
    mine = opened.replace("vendas]", "vendas, planos]")
    status, page = await save(site, mine, base=sha(opened))
    assert status == 409 and "was changed by someone else since you opened it" in page
    assert "planos" in page and "+" + MENU_LINE.replace("vendas]", "vendas, loja]") in page  # mine, and the diff
    assert draft(site).read_text(encoding="utf-8") == theirs


async def test_a_viewer_cannot_save(site: Site) -> None:
    assert await site.log_in("vera") == 303
    text = draft(site).read_text(encoding="utf-8")
    status, page = await save(site, "flow: gone\n", base=sha(text))
    assert status == 403 and "editor role" in page
    assert draft(site).read_text(encoding="utf-8") == text


async def test_the_flow_tests_of_the_draft_say_each_case_and_what_differed(site: Site) -> None:
    assert await site.log_in("vera") == 303
    tests = site.console.conf.flows_dir / "tests"
    for other in tests.glob("*.yaml"):
        if other.name != "announcements.yaml":  # one file: the run stays a few seconds
            other.unlink()
    announcements = tests / "announcements.yaml"
    text = announcements.read_text(encoding="utf-8")
    cases = text.count("- name:")
    token = await site.csrf("/flows/edit/sac.yaml")
    page = html.unescape(await (await site.client.post("/flows/test", data={"csrf": token})).text())
    assert f"{cases} passed, 0 failed" in page and "FAIL" not in page
    announcements.write_text(text.replace("outcome: queue:", "outcome: queue:nobody_", 1), encoding="utf-8")
    page = html.unescape(await (await site.client.post("/flows/test", data={"csrf": token})).text())
    assert f"{cases - 1} passed, 1 failed" in page and "FAIL" in page and "outcome: expected queue:nobody_" in page


async def test_the_simulator_prints_the_call_on_the_draft(site: Site) -> None:
    assert await site.log_in("vera") == 303
    token = await site.csrf("/flows/simulate")
    form = {"csrf": token, "flow": "sac.yaml", "caller": "3133334444", "inputs": "1, 1", "at": "2026-11-25 10:00"}
    page = html.unescape(await (await site.client.post("/flows/simulate", data=form)).text())
    assert "call from 3133334444 to flow 'sac'" in page and "IVR:" in page and "path: " in page
    bad = await site.client.post("/flows/simulate", data={**form, "inputs": "1, typo:x"})
    assert bad.status == 400 and "Not simulated" in await bad.text()
    late = await site.client.post("/flows/simulate", data={**form, "at": "yesterday"})
    assert late.status == 400 and "not a date and time like 2026-12-24 21:00" in html.unescape(await late.text())


async def test_the_impact_of_the_draft_replays_the_recorded_calls(site: Site) -> None:
    assert await site.log_in("edu") == 303
    text = draft(site).read_text(encoding="utf-8")
    one, five = '"1": {go: technical_entry', '"5": {go: commercial'  # the first menu's 1 and 5 swapped
    swapped = text.replace(one, "@@").replace(five, one.replace('"1"', '"5"')).replace("@@", five.replace('"5"', '"1"'))
    draft(site).write_text(swapped, encoding="utf-8")
    page = html.unescape(await (await site.client.get("/flows/impact?days=7")).text())
    assert "Calls replayed" in page and 'id="nodes"' in page and "sac/commercial" in page
    assert "Would end differently</dt><dd id=\"changed\">0<" not in page
    assert 'id="publish"' in page  # the publish button comes after the impact
    assert (await site.client.get("/flows/impact?days=0")).status == 400
    draft(site).write_text(text.replace(MENU_LINE, BROKEN_LINE), encoding="utf-8")
    refused = await site.client.get("/flows/impact")
    assert refused.status == 422 and "fails its checks" in await refused.text() and "nowhere" in await refused.text()


async def test_a_draft_file_that_is_not_utf8_is_said_so_not_a_server_error(site: Site) -> None:
    assert await site.log_in("ana") == 303
    draft(site).write_bytes(draft(site).read_bytes() + b"# caf\xe9 em latin-1\n")
    response = await site.client.get("/flows/edit/sac.yaml")
    assert response.status == 422
    assert "sac.yaml is not UTF-8 text" in await response.text()
