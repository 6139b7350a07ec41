"""A fake of the WhatsApp Business Cloud API (aiohttp) on 127.0.0.1, checking each request as the real API
would, recording what it accepts, and failing on demand; and a store with the demo accounts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from ivr.config import WhatsAppSettings
from ivr.store.db import Store
from ivr.store.migrate import new_sqlite_store
from tests.outbox_support import WAIT_S, seeded_store

TOKEN = "test-token-not-secret"
NUMBER_ID = "123456789012345"
VERSION = "v21.0"
TEMPLATES = {"sac_protocolo": 3, "sac_linha_digitavel": 5}  # approved templates and their parameter counts


@dataclass(frozen=True)
class Sent:
    """A message the fake accepted."""

    to: str
    template: str
    language: str
    parameters: tuple[str, ...]
    message_id: str


@dataclass
class Failure:
    """The answer for the next matching request instead of accepting it."""

    status: int
    code: int
    message: str


@dataclass
class CloudApi:
    """The Cloud API's ``POST /{version}/{phone_number_id}/messages``; `stop()` and `start()` again on the
    same port play an outage (connection refused)."""

    port: int = 0
    failures: list[Failure] = field(default_factory=list)  # answered in order, one per request
    not_on_whatsapp: set[str] = field(default_factory=set)  # "to" values answered with error 131026
    sent: list[Sent] = field(default_factory=list)
    requests: int = 0
    _arrived: asyncio.Queue[Sent] = field(default_factory=asyncio.Queue)
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **changes: Any) -> WhatsAppSettings:
        values: dict[str, Any] = dict(
            base_url=self.base_url, api_version=VERSION, phone_number_id=NUMBER_ID, token=SecretStr(TOKEN),
            timeout_s=5, connect_timeout_s=2,
        )  # fmt: skip
        return WhatsAppSettings(**(values | changes))

    def fail(self, status: int, code: int, message: str, times: int = 1) -> None:
        self.failures += [Failure(status, code, message) for _ in range(times)]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(f"/{VERSION}/{{number_id}}/messages", self._messages)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def next(self) -> Sent:
        """The next message accepted (TimeoutError after WAIT_S)."""
        return await asyncio.wait_for(self._arrived.get(), WAIT_S)

    async def _messages(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.match_info["number_id"] != NUMBER_ID:
            return _error(400, 100, "Unsupported post request: unknown phone number id")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, 190, "Invalid OAuth access token")
        if request.content_type != "application/json":
            return _error(400, 100, f"expected application/json, got {request.content_type}")
        try:
            sent = _check(json.loads(await request.read()), message_id=f"wamid.TEST{self.requests}")
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, 100, f"(#100) Invalid parameter: {exc}")
        if self.failures:
            failure = self.failures.pop(0)
            return _error(failure.status, failure.code, failure.message)
        if sent.template not in TEMPLATES or sent.language != "pt_BR":
            return _error(404, 132001, "(#132001) Template name does not exist in the translation")
        if len(sent.parameters) != TEMPLATES[sent.template]:
            return _error(400, 132000, "(#132000) Number of parameters does not match the expected number")
        if sent.to in self.not_on_whatsapp:
            return _error(400, 131026, f"Message undeliverable to {sent.to}")
        self.sent.append(sent)
        self._arrived.put_nowait(sent)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": sent.to, "wa_id": sent.to}],
                "messages": [{"id": sent.message_id, "message_status": "accepted"}],
            }
        )


def _check(body: dict[str, Any], *, message_id: str) -> Sent:
    """The shape of a template message, as the Cloud API documents it."""
    if body["messaging_product"] != "whatsapp" or body["type"] != "template":
        raise ValueError("messaging_product must be whatsapp and type template")
    if body.get("recipient_type", "individual") != "individual":
        raise ValueError("recipient_type must be individual")
    to = body["to"]
    if not (isinstance(to, str) and to.isdigit() and 8 <= len(to) <= 15):
        raise ValueError(f"to must be the number's digits with the country code, got {to!r}")
    template = body["template"]
    [component] = template["components"]
    if component["type"] != "body":
        raise ValueError("only a body component is expected")
    parameters = []
    for parameter in component["parameters"]:
        text = parameter["text"]
        if parameter["type"] != "text" or not text or "\n" in text or "\t" in text or "     " in text:
            raise ValueError(f"bad text parameter {text!r}")
        parameters.append(text)
    return Sent(to, template["name"], template["language"]["code"], tuple(parameters), message_id)


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "ATEST"}},
        status=status,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """SQLite with the demo accounts (the outbox itself is tested on PostgreSQL too, in tests/email)."""
    async with seeded_store(await new_sqlite_store(tmp_path / "ivr.sqlite3")) as db:
        yield db
