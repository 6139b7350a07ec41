"""The console's pages: login, live (server-sent events), calls and a call's trace, reports (with CSV),
flow releases (history, diff, publish, rollback), the audit log and the accounts; the trace, the reports
and the diff are also drawn on the flow (ivr.web.diagrams).

Every change writes an audit row (who, when, what); publish and rollback are the flow library's, run in a
worker thread since they check the flows on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from ivr.ami.live import KEEPALIVE_S, watch_snapshots
from ivr.flows.library import UnknownRelease
from ivr.store.history import CallFilter, listed, trace
from ivr.store.models import WebRole
from ivr.store.reports import CSV_HEADER, csv_rows, local_days, settled_report
from ivr.store.web_accounts import WebAccounts
from ivr.voice.build import heard_lines
from ivr.web import editor
from ivr.web.app import (
    CONSOLE,
    HEADERS,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Console,
    address,
    needs,
    new_token,
    render,
    same,
    user,
)
from ivr.web.auth import Opened, hash_password, log_in, token_hash
from ivr.web.diagrams import diff_drawings, drop_off_drawings, path_drawings

#: A release as a supervisor names it in the diff form: a history number, `current`, or `draft` (flows/).
RELEASE_REF = re.compile(r"^(current|draft|\d{1,6})$")
PAGE_ROWS = 50  # lines of a listing's page (calls, the audit log)
MAX_PAGE = 10_000  # keeps a typed page number's offset bounded
BAD_PAGE = "The page is not one: a number from 1."
LIVE_ANSWER_TIMEOUT_S = 2.0
LIVE_SILENCE_S = 2 * KEEPALIVE_S  # the unit says something at least every KEEPALIVE_S; twice that is a hang
LIVE_RETRY_S = 1.0  # after the unit went (a restart): how soon to look for it again
LIVE_KEEPALIVE_S = 15.0  # a comment line now and then, so a proxy or a sleeping tab notices a closed stream
LIVE_DOWN = "The IVR (ivr serve) is not running on this machine: there is no live state to show."


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", _home)
    app.router.add_get("/live", live_page)
    app.router.add_get("/live/events", live_events)
    app.router.add_get("/calls", calls_page)
    app.router.add_get("/calls/{number}", call_page)
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/reports.csv", reports_csv)
    app.router.add_get("/flows", flows_page)
    app.router.add_get("/flows/diff", diff_page)
    app.router.add_post("/flows/publish", publish)
    app.router.add_post("/flows/rollback", rollback)
    app.router.add_get("/audit", audit_page)
    app.router.add_get("/users", users_page)
    app.router.add_post("/users/{change}", account_change)
    editor.add_routes(app)


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


async def _home(_request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/live")


def _today(console: Console) -> date:
    return console.clock().astimezone(_zone(console)).date()


def _zone(console: Console) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(console.conf.timezone)


def _day(text: str | None, console: Console) -> date | None:
    """A date from a form; None when it is not one (the page says so)."""
    if not text:
        return _today(console)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


# --- logging in and out ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Paging:
    """Where a listing's page is: its number and the links to the pages beside it, the filters kept."""

    number: int
    newer: str | None
    older: str | None


def _page(request: web.Request) -> int | None:
    """The page asked for (1 when none); None when it is not a page number (the page says so)."""
    text = request.query.get("page", "1").strip()
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_PAGE else None


def _paged(request: web.Request, number: int, rows: list[Any]) -> tuple[list[Any], Paging]:
    """A page of `rows`, read one past `PAGE_ROWS` to know whether an older page follows."""

    def link(to: int) -> str:
        return f"{request.path}?{urlencode({**request.query, 'page': str(to)})}"

    older = link(number + 1) if len(rows) > PAGE_ROWS else None
    return rows[:PAGE_ROWS], Paging(number, link(number - 1) if number > 1 else None, older)


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never `//elsewhere` nor a full address (no open redirect)."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/live"


async def login_page(request: web.Request, *, message: str = "", status: int = 200) -> web.Response:
    # Kept while the browser holds one: a second login page (another tab, the favicon's redirect) must not
    # make the first one's form stale.
    form_token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = render(
        request,
        "login.html",
        status=status,
        csrf=form_token,
        next=_safe_next(request.query.get("next")),
        message=message,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        form_token,
        httponly=True,
        samesite="Strict",
        secure=_console(request).conf.web.cookie_secure,
        path="/login",
    )
    return response


async def login(request: web.Request) -> web.Response:
    console = _console(request)
    form = await request.post()
    if not same(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        raise web.HTTPForbidden(text="Forbidden: the login form's security token is missing or stale; reload the page.")
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    outcome = await log_in(
        console.accounts, console.conf.web, name, password, address=address(request), now=console.clock()
    )
    if not isinstance(outcome, Opened):
        status = 429 if outcome.retry_after_s is not None else 401
        response = await login_page(request, message=outcome.message, status=status)
        if outcome.retry_after_s is not None:
            response.headers["Retry-After"] = str(outcome.retry_after_s)
        return response
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))
    response.set_cookie(
        SESSION_COOKIE,
        outcome.token,
        httponly=True,
        samesite="Strict",
        secure=console.conf.web.cookie_secure,
        max_age=console.conf.web.session_lifetime_s,
        path="/",
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await _console(request).accounts.close_session(token_hash(token), who=user(request).name, address=address(request))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# --- live ---------------------------------------------------------------------------------------------


async def live_page(request: web.Request) -> web.Response:
    return render(request, "live.html", timezone=_console(request).conf.timezone)


class _UnitFeed:
    """The unit's latest snapshot (None while no `ivr serve` answers), kept by `follow`: it subscribes to the
    unit's live socket, and after the unit goes (a restart) tries again every `LIVE_RETRY_S`."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.snapshot: dict[str, Any] | None = None
        self.changed = asyncio.Event()

    async def follow(self) -> None:
        while True:  # until the page's stream ends and cancels it
            with contextlib.suppress(OSError, TimeoutError, ValueError):
                async for snapshot in watch_snapshots(self.socket, LIVE_SILENCE_S):
                    self.snapshot = snapshot
                    self.changed.set()
            self.snapshot = None
            self.changed.set()
            await asyncio.sleep(LIVE_RETRY_S)


async def _announcements(console: Console) -> list[dict[str, Any]]:
    return [
        {
            "id": item.announcement.id,
            "text": item.announcement.text,
            "scope": str(item.announcement.scope),
            "until": f"{item.announcement.until.astimezone(_zone(console)):%Y-%m-%d %H:%M}",
        }
        for item in await console.announcements.listed()
        if item.state == "in force"
    ]


def _serving(console: Console, snapshot: dict[str, Any] | None) -> str:
    """The releases the unit gives new calls, as the history numbers them: "release 2" (two while its
    workers reload one after another)."""
    versions = snapshot.get("flows", []) if snapshot else []
    if not versions:
        return ""
    history = console.library.history()
    numbers = [next((str(e.number) for e in reversed(history) if e.version == v), v) for v in versions]
    return f"release{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"


async def live_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the live state (the unit's snapshot, the announcements in force) at once and
    whenever it changes. The unit tells each change as it happens; the announcements and the session are
    read again every `live_poll_s`, and the stream ends with the session."""
    console = _console(request)
    token = token_hash(request.cookies.get(SESSION_COOKIE, ""))
    response = web.StreamResponse(headers={**HEADERS, "Content-Type": "text/event-stream"})
    await response.prepare(request)
    feed = _UnitFeed(console.live_socket)
    following = asyncio.create_task(feed.follow(), name="live-feed")
    clock = asyncio.get_running_loop().time
    poll_s = console.conf.web.live_poll_s
    with contextlib.suppress(TimeoutError):  # the unit's first answer, or knowing there is none
        async with asyncio.timeout(LIVE_ANSWER_TIMEOUT_S):
            await feed.changed.wait()
    last, next_poll, quiet_since = "", clock(), clock()
    announcements: list[dict[str, Any]] = []
    serving, serving_of = "", None  # the history is read again when the versions served change, or at a poll
    try:
        with contextlib.suppress(ConnectionResetError):  # the page was closed: nothing left to tell
            while True:  # until the session ends or the page goes
                feed.changed.clear()
                polled = clock() >= next_poll
                if polled:
                    if await console.accounts.session(token) is None:
                        break
                    announcements = await _announcements(console)
                    next_poll = clock() + poll_s
                snapshot = feed.snapshot  # read once: the feed may change while the history is read below
                down = "" if snapshot else LIVE_DOWN
                versions = snapshot.get("flows") if snapshot else None
                if polled or versions != serving_of:
                    serving, serving_of = await asyncio.to_thread(_serving, console, snapshot), versions
                state = {"unit": snapshot, "down": down, "announcements": announcements, "serving": serving}
                payload = json.dumps(state, ensure_ascii=False, sort_keys=True)
                if payload != last:
                    await response.write(f"data: {payload}\n\n".encode())
                    last, quiet_since = payload, clock()
                elif clock() - quiet_since >= LIVE_KEEPALIVE_S:
                    await response.write(b": still here\n\n")
                    quiet_since = clock()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_poll - clock())):
                        await feed.changed.wait()
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
    return response


# --- calls --------------------------------------------------------------------------------------------


async def calls_page(request: web.Request) -> web.Response:
    console = _console(request)
    query = request.query
    number, caller = query.get("number", "").strip(), query.get("caller", "").strip()
    day = _day(query.get("day"), console)
    if number:
        found = await trace(console.store, number)
        if found is not None:
            raise web.HTTPSeeOther(f"/calls/{found.call.protocol}")
        return render(request, "calls.html", day=day, caller=caller, number=number, lines=[],
                      message=f"No call has protocol or ticket {number}.")  # fmt: skip
    page = _page(request)
    if day is None or page is None:
        message = "The date is not one: write it as 2026-12-01." if day is None else BAD_PAGE
        return render(request, "calls.html", day=day, caller=caller, number="", lines=[], message=message)
    since, until = local_days(day, 1, console.conf.timezone)
    which = CallFilter(since, until, caller or None, limit=PAGE_ROWS + 1, offset=(page - 1) * PAGE_ROWS)
    lines, paging = _paged(request, page, await listed(console.store, which))
    message = "" if lines else f"No calls on {day:%Y-%m-%d}" + (" from that number." if caller else ".")
    return render(request, "calls.html", day=day, caller=caller, number="", lines=lines, message=message, paging=paging)


async def call_page(request: web.Request) -> web.Response:
    console = _console(request)
    seen = await trace(console.store, request.match_info["number"])
    if seen is None:
        return render(
            request,
            "not_found.html",
            status=404,
            what=f"No call has protocol or ticket {request.match_info['number']}.",
        )
    releases = await asyncio.to_thread(console.library.releases_named, seen.flow_version)
    heard = await asyncio.to_thread(heard_lines, console.conf.prompts_dir, [step.prompts for step in seen.path])
    drawings = await path_drawings(console.diagrams, console.library, seen)
    return render(request, "call.html", seen=seen, releases=releases, heard=heard, drawings=drawings)


# --- reports ------------------------------------------------------------------------------------------


async def _figures(request: web.Request) -> tuple[Any, str, date] | None:
    console = _console(request)
    span = "week" if request.query.get("span") == "week" else "day"
    first = _day(request.query.get("date"), console)
    if first is None:
        return None
    flow = request.query.get("flow") or None
    days = local_days(first, 7 if span == "week" else 1, console.conf.timezone)
    figures = await settled_report(console.store, *days, flow=flow, now=console.clock())
    return figures, span, first


async def reports_page(request: web.Request) -> web.Response:
    console = _console(request)
    found = await _figures(request)
    if found is None:
        return render(request, "reports.html", figures=None, span="day", first=_today(console), rows=[], chart=[],
                      flows=console.conf.agi.entry_flows,
                      message="The date is not one: write it as 2026-12-01.")  # fmt: skip
    figures, span, first = found
    rows = csv_rows(figures, timezone=console.conf.timezone, negotiation_number=console.conf.page.negotiation_number)
    chart = [(f"{node.flow}/{node.node}", node.share, node.visits) for node in figures.drop_off[:12]]
    last = figures.until - timedelta(days=1)
    drawings = await drop_off_drawings(console.diagrams, console.library, figures.drop_off)
    return render(request, "reports.html", figures=figures, span=span, first=first, last=last, rows=rows, chart=chart,
                  drawings=drawings, flows=console.conf.agi.entry_flows, message="",
                  query=request.query_string)  # fmt: skip


async def reports_csv(request: web.Request) -> web.Response:
    console = _console(request)
    found = await _figures(request)
    if found is None:
        raise web.HTTPBadRequest(text="The date is not one: write it as 2026-12-01.")
    figures, span, first = found
    out = io.StringIO()
    rows = csv_rows(figures, timezone=console.conf.timezone, negotiation_number=console.conf.page.negotiation_number)
    csv.writer(out, lineterminator="\n").writerows([CSV_HEADER, *rows])
    name = f"report-{span}-{first:%Y-%m-%d}.csv"
    return web.Response(
        text=out.getvalue(), content_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


# --- flows --------------------------------------------------------------------------------------------


async def flows_page(request: web.Request, *, message: str = "", problems: str = "", status: int = 200) -> web.Response:
    library = _console(request).library
    history = await asyncio.to_thread(library.history)
    current = await asyncio.to_thread(library.current_entry)
    return render(request, "flows.html", status=status, history=list(reversed(history)),
                  current=current.number if current else None, message=message, problems=problems)  # fmt: skip


async def diff_page(request: web.Request) -> web.Response:
    console = _console(request)
    a, b = request.query.get("a", "").strip(), request.query.get("b", "current").strip()
    if not (RELEASE_REF.match(a) and RELEASE_REF.match(b)):
        return await flows_page(request, message="Compare release numbers, 'current' or 'draft'.", status=400)
    try:
        changes = await asyncio.to_thread(console.library.diff, _side(a, console), _side(b, console))
    except UnknownRelease as exc:
        return await flows_page(request, message=str(exc), status=404)
    drawings = await diff_drawings(console.diagrams, changes.files)
    return render(request, "diff.html", changes=changes, a=a, b=b, drawings=drawings)


def _side(ref: str, console: Console) -> str:
    """`draft` is the flows directory being edited; anything else the library reads as it is."""
    return str(console.conf.flows_dir) if ref == "draft" else ref


@needs(WebRole.EDITOR)
async def publish(request: web.Request) -> web.Response:
    console = _console(request)
    form = await request.post()
    who, note = user(request).name, str(form.get("note", "")).strip() or None
    try:
        checked = await asyncio.to_thread(console.library.publish, console.conf.flows_dir, who=who, note=note)
    except ValueError as exc:  # the note
        return await flows_page(request, message=f"Not published: the note {exc}", status=400)
    if not checked.ok:
        return await flows_page(request, message="Not published: the draft fails its checks.",
                                problems=checked.render(), status=422)  # fmt: skip
    version = console.library.version
    await console.accounts.audit(who, "flow.publish", f"version {version}" + (f": {note}" if note else ""),
                                 address=address(request))  # fmt: skip
    told = await asyncio.to_thread(console.tell_server)
    return await flows_page(request, message=f"Published the draft as version {version}. {told}.")


@needs(WebRole.EDITOR)
async def rollback(request: web.Request) -> web.Response:
    console = _console(request)
    form = await request.post()
    number = str(form.get("number", ""))
    who, note = user(request).name, str(form.get("note", "")).strip() or None
    if not number.isdigit():
        return await flows_page(request, message="Choose a release number from the history.", status=400)
    try:
        done = await asyncio.to_thread(console.library.rollback, int(number), who=who, note=note)
    except UnknownRelease as exc:
        return await flows_page(request, message=str(exc), status=404)
    except ValueError as exc:  # the note
        return await flows_page(request, message=f"Not rolled back: the note {exc}", status=400)
    if not done.report.ok:
        return await flows_page(request, message=f"Not rolled back: release {number} fails today's checks.",
                                problems=done.report.render(), status=422)  # fmt: skip
    if done.entry is None:
        return await flows_page(request, message=f"Release {number} is already current: nothing changed.")
    await console.accounts.audit(who, "flow.rollback", f"to release {number} (version {done.target.version})"
                                 + (f": {note}" if note else ""), address=address(request))  # fmt: skip
    told = await asyncio.to_thread(console.tell_server)
    return await flows_page(
        request, message=f"Release {number} is current again (history entry {done.entry.number}). {told}."
    )


# --- administration -----------------------------------------------------------------------------------


@needs(WebRole.ADMIN)
async def audit_page(request: web.Request) -> web.Response:
    page = _page(request)
    if page is None:
        raise web.HTTPBadRequest(text=BAD_PAGE)
    entries = await _console(request).accounts.audit_log(limit=PAGE_ROWS + 1, offset=(page - 1) * PAGE_ROWS)
    entries, paging = _paged(request, page, entries)
    return render(request, "audit.html", entries=entries, paging=paging)


@needs(WebRole.ADMIN)
async def users_page(request: web.Request) -> web.Response:
    return await _users(request)


async def _users(request: web.Request, *, message: str = "", status: int = 200) -> web.Response:
    accounts = await _console(request).accounts.accounts()
    return render(request, "users.html", status=status, accounts=accounts, roles=list(WebRole), message=message)


@needs(WebRole.ADMIN)
async def account_change(request: web.Request) -> web.Response:
    """One change of an account from its form on the users page (`ACCOUNT_CHANGES`); bad input and refusals
    (WebAccounts' rules, hash_password's) are said on the page with the reason, never as an error page."""
    change = ACCOUNT_CHANGES.get(request.match_info["change"])
    if change is None:
        raise web.HTTPNotFound(text="Not found: no such change of an account.")
    form = await request.post()
    try:
        done = await change(_console(request).accounts, form, user(request).name, address(request))
    except ValueError as exc:  # AccountError is one
        return await _users(request, message=f"Not done: {exc}.", status=400)
    return await _users(request, message=done)


Form = MultiDictProxy[Any]


def _name(form: Form) -> str:
    return str(form.get("name", "")).strip()


def _role(form: Form) -> WebRole:
    try:
        return WebRole(str(form.get("role", "")))
    except ValueError:
        raise ValueError("choose a role: " + ", ".join(role.value for role in WebRole)) from None


def _password(form: Form) -> str:
    """The argon2 hash of the password typed twice, under the same rules as `ivr users` (hash_password)."""
    password = str(form.get("password", ""))
    if password != str(form.get("again", "")):
        raise ValueError("the two passwords differ")
    return hash_password(password)


async def _add(accounts: WebAccounts, form: Form, who: str, where: str) -> str:
    name, role = _name(form), _role(form)
    await accounts.add(name, _password(form), role, who=who, address=where)
    return f"Added {name} as {role.value}."


async def _set_role(accounts: WebAccounts, form: Form, who: str, where: str) -> str:
    name, role = _name(form), _role(form)
    await accounts.set_role(name, role, who=who, address=where)
    return f"{name} is {role.value} now."


async def _reset_password(accounts: WebAccounts, form: Form, who: str, where: str) -> str:
    name = _name(form)
    await accounts.set_password(name, _password(form), who=who, address=where)
    return f"The password of {name} is set (and the account enabled)."


async def _disable(accounts: WebAccounts, form: Form, who: str, where: str) -> str:
    name = _name(form)
    await accounts.disable(name, who=who, address=where)
    return f"{name} is disabled; its sessions ended."


#: The users page's forms, by the last part of their action (/users/add...): each says what it did.
ACCOUNT_CHANGES: dict[str, Callable[[WebAccounts, Form, str, str], Awaitable[str]]] = {
    "add": _add,
    "role": _set_role,
    "password": _reset_password,
    "disable": _disable,
}
