"""The console's aiohttp application: one guard in front of every page (a session, the CSRF token of every
POST, the security headers) and the pages' routes (ivr.web.pages)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ivr.clock import Clock
from ivr.config import Settings
from ivr.flows.library import FlowLibrary
from ivr.store.announcements import StoreAnnouncements
from ivr.store.db import Store
from ivr.store.models import WebRole
from ivr.store.web_accounts import LoggedIn, WebAccounts
from ivr.web.auth import allowed, token_hash
from ivr.web.diagrams import Diagrams

if TYPE_CHECKING:
    from ivr.web.editor import DraftRunners

HERE = Path(__file__).parent
SESSION_COOKIE = "sac_session"
LOGIN_CSRF_COOKIE = "sac_login_csrf"  # the login form's token, before there is a session to hold one
OPEN_PATHS = frozenset({"/login"})
HEADERS = {
    # No inline script, no framing, no outside origin: what a stolen field could inject runs nowhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Console:
    """What the pages read and change, built once by `ivr web` (or a test)."""

    conf: Settings
    store: Store
    clock: Clock
    accounts: WebAccounts
    library: FlowLibrary
    announcements: StoreAnnouncements
    live_socket: Path  # where a running `ivr serve` answers with its live snapshot
    tell_server: Callable[[], str]  # asks a running `ivr serve` to load the newly current release
    drafts: DraftRunners  # what the editor runs on the draft (flow tests, simulator, impact): ivr.app's
    diagrams: Diagrams = field(default_factory=Diagrams)


CONSOLE = web.AppKey("console", Console)
TEMPLATES = web.AppKey("templates", Environment)
USER = web.RequestKey("user", LoggedIn)


def create_app(console: Console) -> web.Application:
    from ivr.web import pages

    app = web.Application(middlewares=[_guard])
    app[CONSOLE] = console
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    env.filters["local"] = lambda moment, form="%Y-%m-%d %H:%M:%S": (
        "" if moment is None else f"{moment.astimezone(_zone(console.conf.timezone)):{form}}"
    )
    app[TEMPLATES] = env
    pages.add_routes(app)
    app.router.add_static("/static", HERE / "static")
    return app


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def user(request: web.Request) -> LoggedIn:
    return request[USER]


def needs(role: WebRole) -> Callable[[Handler], Handler]:
    """A page or action for `role` and above: others get 403, said plainly."""

    def wrap(handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            if not allowed(user(request).role, role):
                raise web.HTTPForbidden(text=f"Forbidden: this needs the {role.value} role or above.")
            return await handler(request)

        return checked

    return wrap


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    page = request.app[TEMPLATES].get_template(template).render(
        user=request.get(USER), path=request.path, allowed=allowed, Role=WebRole, **context
    )
    return web.Response(text=page, content_type="text/html", status=status)


def address(request: web.Request) -> str:
    return request.remote or ""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Nothing but the login page and the static files without a live session; no POST without the
    session's CSRF token (the login form carries its own, checked by the login page)."""
    if request.path not in OPEN_PATHS and not request.path.startswith("/static/"):
        console = request.app[CONSOLE]
        token = request.cookies.get(SESSION_COOKIE)
        logged_in = await console.accounts.session(token_hash(token)) if token else None
        if logged_in is None:
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
        request[USER] = logged_in
        if request.method == "POST":
            form = await request.post()
            if not same(form.get("csrf"), logged_in.csrf_token):
                raise web.HTTPForbidden(
                    text="Forbidden: the form's security token is missing or stale; reload the page."
                )
    response = await handler(request)
    if not response.prepared:
        response.headers.update(HEADERS)
    return response


@asynccontextmanager
async def console_for(
    conf: Settings, *, clock: Clock, live_socket: Path, tell_server: Callable[[], str], drafts: DraftRunners
) -> AsyncIterator[Console]:
    """The console over the configured store and published flows, the store closed on exit."""
    from integrations.catalog import declared_registry
    from ivr.store.db import open_store

    store = open_store(conf)
    library = FlowLibrary.of(conf, registry=declared_registry(), clock=clock)
    try:
        yield Console(
            conf=conf,
            store=store,
            clock=clock,
            accounts=WebAccounts(store, clock=clock),
            library=library,
            announcements=StoreAnnouncements(store, clock=clock, prompts_dir=conf.prompts_dir),
            live_socket=live_socket,
            tell_server=tell_server,
            drafts=drafts,
        )
    finally:
        await store.aclose()
