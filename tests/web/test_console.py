"""The console as a client without a browser sees it: logins, sessions, CSRF, roles, the audit log, pages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.store.calls_data import DAY, TICKET, A, B

from .conftest import PASSWORD, Site

PAGES = ("/", "/live", "/live/events", "/calls", f"/calls/{A}", "/reports", "/reports.csv", "/flows",
         "/flows/diff?a=1&b=current", "/audit", "/users")  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_without_login_sends_to_the_login_page(site: Site, path: str) -> None:
    response = await site.client.get(path, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=")


async def test_a_post_without_login_goes_to_the_login_page_and_changes_nothing(site: Site) -> None:
    response = await site.client.post("/flows/rollback", data={"number": "1"}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login")


async def test_a_good_login_opens_a_session_in_a_strict_http_only_cookie(site: Site) -> None:
    token = await site.csrf("/login")
    response = await site.client.post(
        "/login", data={"name": "vera", "password": PASSWORD, "csrf": token, "next": "/calls"}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/calls"
    cookie = response.cookies["sac_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    page = await site.client.get("/live")
    assert page.status == 200 and "vera (viewer)" in await page.text()
    assert page.headers["X-Frame-Options"] == "DENY" and "default-src 'self'" in page.headers["Content-Security-Policy"]


async def test_a_login_never_sends_to_another_site(site: Site) -> None:
    token = await site.csrf("/login")
    response = await site.client.post(
        "/login", data={"name": "vera", "password": PASSWORD, "csrf": token, "next": "//evil.example/"},
        allow_redirects=False,
    )  # fmt: skip
    assert response.headers["Location"] == "/live"


async def test_a_wrong_password_and_an_unknown_name_are_refused_alike(site: Site) -> None:
    assert await site.log_in("vera", "wrong password!") == 401
    assert await site.log_in("nobody", PASSWORD) == 401
    assert (await site.client.get("/live", allow_redirects=False)).status == 303


async def test_a_login_form_without_its_token_is_refused(site: Site) -> None:
    await site.client.get("/login")
    response = await site.client.post("/login", data={"name": "vera", "password": PASSWORD}, allow_redirects=False)
    assert response.status == 403


async def test_five_failures_refuse_the_account_from_that_address_for_the_window(site: Site) -> None:
    for _ in range(5):
        assert await site.log_in("vera", "wrong password!") == 401
    token = await site.csrf("/login")
    response = await site.client.post("/login", data={"name": "vera", "password": PASSWORD, "csrf": token})
    assert response.status == 429
    assert "Too many failed logins" in await response.text() and int(response.headers["Retry-After"]) <= 15 * 60
    assert await site.log_in("edu") == 303  # another account is not held up
    site.clock.set(site.clock() + timedelta(minutes=15, seconds=1))
    assert await site.log_in("vera") == 303


async def test_a_session_ends_with_its_lifetime(site: Site) -> None:
    assert await site.log_in("vera") == 303
    site.clock.set(site.clock() + timedelta(seconds=site.console.conf.web.session_lifetime_s))
    assert (await site.client.get("/calls", allow_redirects=False)).status == 303


async def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    assert await site.log_in("edu") == 303
    response = await site.client.post("/flows/rollback", data={"number": "1"})
    assert response.status == 403 and "security token" in await response.text()
    response = await site.client.post("/flows/rollback", data={"number": "1", "csrf": "forged"})
    assert response.status == 403


async def test_a_viewer_cannot_publish_nor_roll_back_and_sees_no_such_button(site: Site) -> None:
    assert await site.log_in("vera") == 303
    page = await (await site.client.get("/flows")).text()
    assert "Roll back" not in page and "Publish the draft" not in page
    token = await site.csrf("/flows")
    for action in ("/flows/rollback", "/flows/publish"):
        response = await site.client.post(action, data={"number": "1", "csrf": token})
        assert response.status == 403
    assert len(site.console.library.history()) == 1


async def test_an_editor_publishes_and_rolls_back_and_the_audit_log_says_who(site: Site) -> None:
    assert await site.log_in("edu") == 303
    token = await site.csrf("/flows")
    published = await site.client.post("/flows/publish", data={"csrf": token, "note": "same again"})
    assert published.status == 200  # the draft is release 1's files: publishing again changes nothing
    rolled = await site.client.post("/flows/rollback", data={"number": "1", "csrf": token, "note": "check"})
    assert rolled.status == 200 and "already current" in await rolled.text()
    log = await site.console.accounts.audit_log()
    assert [(e.who, e.action) for e in log[:2]] == [("edu", "flow.publish"), ("edu", "login")]
    assert (await site.client.get("/audit")).status == 403  # the log is the admins'


async def test_login_logout_and_account_changes_are_in_the_audit_log(site: Site) -> None:
    assert await site.log_in("ana") == 303
    token = await site.csrf("/live")
    assert (await site.client.post("/logout", data={"csrf": token}, allow_redirects=False)).status == 303
    await site.console.accounts.disable("vera", who="ana")
    actions = [(e.who, e.action, e.detail) for e in await site.console.accounts.audit_log()]
    assert actions[:3] == [("ana", "user.disable", "vera"), ("ana", "logout", ""), ("ana", "login", "")]
    assert ("test", "user.add", "vera as viewer") in actions
    assert await site.log_in("vera") == 401  # disabled
    assert (await site.client.get("/live", allow_redirects=False)).status == 303  # logged out


async def test_calls_are_found_by_day_caller_protocol_and_ticket_with_callers_masked(site: Site) -> None:
    assert await site.log_in("vera") == 303
    day = await (await site.client.get(f"/calls?day={DAY}")).text()
    assert A in day and B in day and "31******44" in day and "3133334444" not in day
    mine = await (await site.client.get(f"/calls?day={DAY}&caller=(31) 3333-4444")).text()
    assert A in mine and B not in mine
    by_ticket = await site.client.get(f"/calls?number={TICKET}", allow_redirects=False)
    assert by_ticket.headers["Location"] == f"/calls/{A}"
    missing = await (await site.client.get("/calls?number=999")).text()
    assert "No call has protocol or ticket 999" in missing


async def test_a_call_s_trace_shows_its_path_tickets_messages_and_linkedid(site: Site) -> None:
    assert await site.log_in("vera") == 303
    page = await (await site.client.get(f"/calls/{A}")).text()
    for seen in ("queue:technical", "sac/queue_tech", TICKET, "f***@serraazul.com.br", f"{A}.1", "31******44"):
        assert seen in page, seen
    assert "no published release holds this flow version" in page  # the day's calls ran a flow "v7"
    assert "Você ligou para a American Tower Fibra" in page and "• •" in page  # heard at greet, digits masked
    assert (await site.client.get("/calls/000000000000")).status == 404


async def test_the_report_of_a_day_and_its_csv(site: Site) -> None:
    assert await site.log_in("vera") == 303
    page = await (await site.client.get(f"/reports?date={DAY}&span=day")).text()
    assert "drop-off-chart" in page and "sac/menu" in page
    response = await site.client.get(f"/reports.csv?date={DAY}&span=day")
    assert response.headers["Content-Disposition"] == f'attachment; filename="report-day-{DAY}.csv"'
    rows = (await response.text()).splitlines()
    assert rows[0] == "section,name,value,percent" and "calls,all,7,100.0" in rows


async def test_the_report_of_one_flow(site: Site) -> None:
    assert await site.log_in("vera") == 303
    page = await (await site.client.get(f"/reports?date={DAY}&span=day&flow=sac")).text()
    assert '<option value="sac" selected>sac</option>' in page and "flow sac." in page
    rows = (await (await site.client.get(f"/reports.csv?date={DAY}&span=day&flow=sac")).text()).splitlines()
    assert "calls,all,6,100.0" in rows  # the seventh call of the day ran another flow


async def test_the_live_page_says_plainly_when_no_unit_runs(site: Site) -> None:
    assert await site.log_in("vera") == 303
    async with site.client.get("/live/events") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        line = await response.content.readline()
    assert b"ivr serve) is not running" in line


async def test_the_audit_log_and_users_are_the_admins(site: Site) -> None:
    assert await site.log_in("ana") == 303
    users = await (await site.client.get("/users")).text()
    assert "vera" in users and "editor" in users
    audit = await (await site.client.get("/audit")).text()
    assert "user.add" in audit
