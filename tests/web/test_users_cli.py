"""`ivr users`: accounts added, their password changed, disabled and listed, each change audited."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from ivr.cli import users
from ivr.clock import ManualClock
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.web_accounts import WebAccounts
from tests.store.calls_data import NOW


@pytest.fixture
async def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("ivr.clock.system_clock", ManualClock(NOW))
    database = f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"
    store = Store(database)
    await upgrade(store)
    await store.aclose()
    return database


async def run(monkeypatch: pytest.MonkeyPatch, url: str, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    parser = argparse.ArgumentParser()
    users.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["users", *argv, "--url", url])
    return int(await args.handler(args))


async def test_an_account_is_added_changed_disabled_and_audited(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        await run(monkeypatch, url, "add", "edu", "--role", "editor", "--password-stdin", stdin="first password\n") == 0
    )
    assert await run(monkeypatch, url, "add", "edu", "--password-stdin", stdin="another password\n") == 2
    assert "exists already" in capsys.readouterr().err
    assert await run(monkeypatch, url, "passwd", "edu", "--password-stdin", stdin="short\n") == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert await run(monkeypatch, url, "passwd", "edu", "--password-stdin", stdin="second password\n") == 0
    assert await run(monkeypatch, url, "disable", "edu") == 0
    assert await run(monkeypatch, url, "disable", "nobody") == 2
    capsys.readouterr()
    assert await run(monkeypatch, url, "list") == 0
    assert capsys.readouterr().out.split() == ["edu", "editor", "disabled"]
    store = Store(url)
    try:
        accounts = WebAccounts(store, clock=ManualClock(NOW))
        (account,) = await accounts.accounts()
        assert PasswordHasher().verify(account.password_hash, "second password")  # only the hash is kept
        assert [e.action for e in await accounts.audit_log()] == ["user.disable", "user.passwd", "user.add"]
    finally:
        await store.aclose()
