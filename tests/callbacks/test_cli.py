"""What an operator sees and does: `ivr callbacks list` (numbers masked), `cancel`, `retry`."""

from __future__ import annotations

import argparse

import pytest

from ivr.cli import callbacks as cli
from ivr.store.callbacks import StoreCallbackBook
from ivr.store.models import AttemptOutcome

from .conftest import request


async def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["callbacks", *argv, "--url", url])
    status = await args.handler(args)
    return status, capsys.readouterr().out


async def test_list_cancel_and_retry(
    book: StoreCallbackBook, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = await book.schedule(request())
    second = await book.schedule(request("billing", protocol="202600000018"))
    dial = await book.claim("technical", unit="a")
    assert dial is not None
    await book.finish(dial, AttemptOutcome.BUSY, "Reason 5: Failure", unit="a")

    status, out = await run(capsys, database_url, "list")
    assert status == 0
    assert f"#{first} pending   technical  31*******55   call=202600000017 ticket=800000014 requested attempts=1" in out
    assert "    attempt 1: busy (Reason 5: Failure)" in out
    assert f"#{second} pending   billing" in out
    assert "31988776655" not in out  # masked

    assert await run(capsys, database_url, "cancel", str(second)) == (0, f"call back #{second}: cancelled\n")
    status, out = await run(capsys, database_url, "list", "--state", "cancelled")
    assert f"#{second} cancelled" in out and f"#{first} " not in out
    assert await run(capsys, database_url, "cancel", str(second)) == (
        1, f"ivr callbacks cancel: call back #{second} is cancelled\n",
    )  # fmt: skip
    assert await run(capsys, database_url, "retry", str(second)) == (
        0,
        f"call back #{second}: pending again, due now\n",
    )
    assert await run(capsys, database_url, "list", "--state", "given_up") == (0, "no call backs\n")
