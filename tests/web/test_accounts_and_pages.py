"""Accounts managed from the browser by an admin (and refused to everyone else), and the pages of the calls
search and of the audit log."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import partial
from html import unescape

import pytest

from ivr.protocol_number import make_call_protocol
from ivr.store.models import WebRole
from ivr.web.pages import PAGE_ROWS
from tests.store.calls_data import DAY, at, insert_call

from .conftest import PASSWORD, Site

NEW_PASSWORD = "a new long password"
OLDER = re.compile(r'<a href="([^"]+)" rel="next">')
NEWER = re.compile(r'<a href="([^"]+)" rel="prev">')


async def change(site: Site, action: str, **form: str) -> tuple[int, str]:
    token = await site.csrf("/live")
    response = await site.client.post(f"/users/{action}", data={"csrf": token, **form})
    return response.status, await response.text()


async def test_an_admin_adds_an_account_changes_its_role_resets_its_password_and_disables_it(site: Site) -> None:
    assert await site.log_in("ana") == 303
    status, page = await change(site, "add", name="rui", role="editor", password=PASSWORD, again=PASSWORD)
    assert status == 200 and "Added rui as editor." in page and "<td>rui</td><td>editor</td>" in page
    status, page = await change(site, "role", name="rui", role="viewer")
    assert status == 200 and "rui is viewer now." in page
    status, page = await change(site, "password", name="rui", password=NEW_PASSWORD, again=NEW_PASSWORD)
    assert status == 200 and "password of rui is set" in page
    status, page = await change(site, "disable", name="rui")
    assert status == 200 and "rui is disabled" in page
    log = [(e.who, e.action, e.detail) for e in await site.console.accounts.audit_log()]
    assert log[:4] == [("ana", "user.disable", "rui"), ("ana", "user.passwd", "rui"),
                       ("ana", "user.role", "rui: editor -> viewer"), ("ana", "user.add", "rui as editor")]  # fmt: skip
    assert await site.log_in("rui", NEW_PASSWORD) == 401  # disabled


async def test_a_reset_password_is_the_one_that_logs_in(site: Site) -> None:
    assert await site.log_in("ana") == 303
    assert (await change(site, "password", name="vera", password=NEW_PASSWORD, again=NEW_PASSWORD))[0] == 200
    assert await site.log_in("vera") == 401
    assert await site.log_in("vera", NEW_PASSWORD) == 303


@pytest.mark.parametrize(
    ("action", "form", "said"),
    [
        ("add", {"name": "rui", "role": "editor", "password": "short", "again": "short"}, "at least 10 characters"),
        ("add", {"name": "rui", "role": "editor", "password": PASSWORD, "again": "other password"}, "passwords differ"),
        ("add", {"name": "vera", "role": "viewer", "password": PASSWORD, "again": PASSWORD}, "exists already"),
        ("add", {"name": "<b>x</b>", "role": "viewer", "password": PASSWORD, "again": PASSWORD}, "not an account name"),
        ("add", {"name": "rui", "role": "boss", "password": PASSWORD, "again": PASSWORD}, "choose a role"),
        ("role", {"name": "nobody", "role": "admin"}, "there is no account 'nobody'"),
        ("disable", {"name": "ana"}, "cannot disable your own account"),
        ("role", {"name": "ana", "role": "viewer"}, "ana is the last active admin"),
    ],
)
async def test_bad_input_and_refused_changes_are_said_on_the_page(
    site: Site, action: str, form: dict[str, str], said: str
) -> None:
    assert await site.log_in("ana") == 303
    before = await site.console.accounts.accounts()
    status, page = await change(site, action, **form)
    assert status == 400 and said in unescape(page) and "Traceback" not in page
    assert "<b>x</b>" not in page  # a name typed is shown escaped
    assert await site.console.accounts.accounts() == before


async def test_the_last_admin_cannot_be_disabled_by_another_way_either(site: Site) -> None:
    await site.console.accounts.add("bia", "hash", WebRole.ADMIN, who="test")
    assert await site.log_in("ana") == 303
    assert (await change(site, "disable", name="bia"))[0] == 200  # another admin remains: ana
    await site.console.accounts.set_role("edu", WebRole.ADMIN, who="test")
    assert (await change(site, "role", name="edu", role="editor"))[0] == 200
    status, page = await change(site, "role", name="ana", role="editor")
    assert status == 400 and "last active admin" in page


@pytest.mark.parametrize("name", ["vera", "edu"])
async def test_viewers_and_editors_cannot_manage_accounts(site: Site, name: str) -> None:
    assert await site.log_in(name) == 303
    assert (await site.client.get("/users")).status == 403
    for action, form in (("add", {"name": "rui", "role": "admin", "password": PASSWORD, "again": PASSWORD}),
                         ("role", {"name": name, "role": "admin"}), ("disable", {"name": "ana"}),
                         ("password", {"name": "ana", "password": PASSWORD, "again": PASSWORD})):  # fmt: skip
        status, _ = await change(site, action, **form)
        assert status == 403, action
    assert [a.name for a in await site.console.accounts.accounts()] == ["ana", "edu", "vera"]
    account = await site.console.accounts.account(name)
    assert account is not None and account.role is not WebRole.ADMIN


async def walk(site: Site, first: str, rows: re.Pattern[str]) -> list[list[str]]:
    """Every page from `first` following the "Older" links (bounded), with the rows `rows` finds on each."""
    pages, path = [], first
    for _ in range(10):
        page = await (await site.client.get(path)).text()
        pages.append(rows.findall(page))
        older = OLDER.search(page)
        if older is None:
            return pages
        path = unescape(older[1])
    raise AssertionError("more pages than expected")


async def test_the_calls_of_a_busy_day_are_paged_with_the_filters_kept(site: Site) -> None:
    many = 2 * PAGE_ROWS + 5
    numbers = [make_call_protocol(2026, 1000 + n) for n in range(many)]
    for n, protocol in enumerate(numbers):
        await site.console.store.write(
            partial(insert_call, protocol=protocol, start=at(12) + timedelta(minutes=n), seconds=30,
                    caller="21988887777", customer=None, outcome="hangup", flow="sac", visits=[])
        )  # fmt: skip
    assert await site.log_in("vera") == 303
    pages = await walk(site, f"/calls?day={DAY}&caller=21988887777", re.compile(r'<a href="/calls/(\d+)">'))
    assert [len(p) for p in pages] == [PAGE_ROWS, PAGE_ROWS, 5]
    assert [n for p in pages for n in p] == list(reversed(numbers))  # newest first, each once, to the last
    last = await (await site.client.get(f"/calls?day={DAY}&caller=21988887777&page=3")).text()
    newer = NEWER.search(last)
    assert newer and "caller=21988887777" in unescape(newer[1]) and "page=2" in newer[1]
    assert "Older" not in last
    bad = await site.client.get(f"/calls?day={DAY}&page=x")
    assert bad.status == 200 and "The page is not one" in await bad.text()


async def test_the_audit_log_is_paged_to_its_first_entry(site: Site) -> None:
    for n in range(PAGE_ROWS + 3):
        await site.console.accounts.audit(f"bot{n}", "test.entry", f"entry {n}")
    assert await site.log_in("ana") == 303
    pages = await walk(site, "/audit", re.compile(r"<tr><td>[^<]*</td><td>([^<]*)</td>"))
    entries = [who for p in pages for who in p]
    assert len(pages) == 2 and len(entries) == len(await site.console.accounts.audit_log(limit=1000))
    assert entries[-1] == "test"  # the oldest: the accounts added by the test fixture
    assert (await site.client.get("/audit?page=0")).status == 400
