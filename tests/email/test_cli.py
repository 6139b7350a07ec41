"""What an operator sees of the outbox (`ivr db outbox`), and sending a failed message again."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from integrations.messaging.email import SmtpSender
from integrations.messaging.outbox import NewMessage, Outbox
from ivr.cli import db as cli
from ivr.clock import system_clock
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import OutboxChannel
from tests.outbox_support import FAST, WAIT_S

from .conftest import SmtpServer, email_conf


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["db", *argv])
    status = await args.handler(args)
    return status, capsys.readouterr().out


async def test_a_failed_message_is_listed_with_its_error_and_sent_once_requeued(
    tmp_path: Path, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"
    store = Store(url)
    await upgrade(store)
    smtp.refuse.add("ti@serraazul.com.br")
    box = Outbox(store, {OutboxChannel.EMAIL: SmtpSender(email_conf(smtp))}, clock=system_clock, conf=FAST)
    try:
        await box.start()
        [failed] = await box.enqueue(
            NewMessage(OutboxChannel.EMAIL, "ti@serraazul.com.br", "boleto", "Segue o boleto.", subject="Boleto")
        )
        await box.wait_until(lambda s: s.failed == 1, WAIT_S)

        status, out = await run(capsys, "outbox", "--state", "failed", "--url", url)
        assert status == 0
        assert f"#{failed} failed  email    boleto" in out and "t***@serraazul.com.br" in out
        assert "last error: t***@serraazul.com.br refused by the server ([550])" in out
        assert "ti@serraazul.com.br" not in out

        smtp.refuse.clear()
        assert await run(capsys, "requeue", str(failed), "999", "--url", url) == (
            1,
            f"requeued: #{failed}\nnot failed (or unknown), left alone: #999\n",
        )
        assert (await smtp.next()).rcpt_tos == ("ti@serraazul.com.br",)  # the drainer found it by polling
        await box.wait_until(lambda s: s.sent == 1, WAIT_S)
        status, out = await run(capsys, "outbox", "--url", url)
        assert f"#{failed} sent" in out and "attempts=1" in out
    finally:
        await box.aclose()
        await store.aclose()
