"""What an operator sees: `ivr calls show` (text and JSON, exit 2 for an unknown protocol), `ivr calls list`
(masked, newest first, filtered) and `ivr report` (text and CSV, local days). The commands read the system
clock: it is set to the tests' moment."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from ivr.cli import calls, report
from ivr.clock import ManualClock
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from tests.store.calls_data import DAY, NOW, TICKET, A, B, C, D, E, F, H, write_day


@pytest.fixture
async def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("ivr.clock.system_clock", ManualClock(NOW))
    database = f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"
    store = Store(database)
    await upgrade(store)
    await write_day(store)
    await store.aclose()
    return database


async def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    calls.register(sub)
    report.register(sub)
    args = parser.parse_args([*argv, "--url", url])
    status = await args.handler(args)
    out, err = capsys.readouterr()
    return status, out, err


async def test_show_traces_a_call_masked(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = await run(capsys, url, "calls", "show", A)
    assert (status, err) == (0, "")
    assert out.startswith(f"call {A}: {DAY} 08:00:00, 120 s\n  caller    31******44\n")
    for expected in (
        "  customer  Serra Azul Ltda (#1)\n",
        "  flow      sac, no published release holds this flow version (flow version v7)\n",
        "    08:00:00 sac/greet (play) -> menu, 1.0 s\n      heard: Olá! Você ligou para a American Tower Fibra.",
        "  outcome   queue:technical\n",
        f"  linkedid  {A}.1\n",
        "    08:00:01 sac/menu (menu) input 1 -> 1, 1.0 s\n",
        f"    {TICKET} technical_failure (open)\n",
        "    email to f***@serraazul.com.br (call_summary): sent",
        "    whatsapp to 31*******34 (call_summary): pending, 0 attempts\n",
        "technical 31******44 dropped: answered\n      attempt 1 08:10: no_answer\n      attempt 2 08:20: answered\n",
    ):
        assert expected in out
    assert "3133334444" not in out and "financeiro@" not in out


async def test_show_as_json_by_a_ticket_number(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = await run(capsys, url, "calls", "show", TICKET, "--json")
    shown = json.loads(out)
    assert status == 0 and shown["call"]["protocol"] == A and shown["call"]["caller_masked"] == "31******44"
    assert [step["node"] for step in shown["path"]] == ["greet", "menu", "tech", "queue_tech"]
    assert shown["call"]["started_at"] == "2026-03-09T11:00:00+00:00" and shown["linked_id"] == f"{A}.1"


async def test_show_an_unknown_protocol_says_so_in_one_line(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(capsys, url, "calls", "show", "202699999990") == (
        2, "", "ivr calls show: no call has protocol or ticket 202699999990\n",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "protocols"),
    [
        (["--since", str(DAY)], [F, H, E, D, C, B, A]),
        (["--since", str(DAY), "--until", f"{DAY} 09:45"], [D, C, B, A]),
        (["--since", "1d"], [F]),  # NOW is 10:00 the day after DAY
        (["--since", str(DAY), "--caller", "(11) 98765-4321"], [E, B]),
        (["--since", str(DAY), "--outcome", "contained", "--limit", "1"], [H]),
    ],
)
async def test_list_one_line_per_call_newest_first(
    url: str, capsys: pytest.CaptureFixture[str], argv: list[str], protocols: list[str]
) -> None:
    status, out, _ = await run(capsys, url, "calls", "list", *argv)
    assert status == 0 and [line.split()[2] for line in out.splitlines()] == protocols


async def test_a_listed_line_is_local_and_masked(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = await run(capsys, url, "calls", "list", "--since", str(DAY), "--outcome", "transfer")
    assert out.split() == [str(DAY), "09:50:00", E, "11*******21", "-", "transfer:+553131958012", "45", "s"]
    _, out, _ = await run(capsys, url, "calls", "list", "--since", str(DAY), "--outcome", "failed")
    assert out.startswith(f"{DAY} 23:30:00 {F} ")  # 02:30 UTC the next day


@pytest.mark.parametrize(
    ("argv", "why"),
    [(["--since", "yesterday"], "'yesterday' is not a date and time"), (["--since", "2h", "--outcome", "won"], "won")],
)
async def test_list_refuses_what_it_cannot_read(
    url: str, capsys: pytest.CaptureFixture[str], argv: list[str], why: str
) -> None:
    status, out, err = await run(capsys, url, "calls", "list", *argv)
    assert status == 2 and out == "" and why in err and len(err.splitlines()) == 1


async def test_report_of_a_day_as_text(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = await run(capsys, url, "report", "--day", str(DAY))
    lines = out.splitlines()
    assert status == 0 and lines[0] == f"calls of {DAY} (America/Sao_Paulo), flow all: 7"
    assert [line.split() for line in lines[1:4]] == [
        ["contained", "2", "28.6%"], ["abandoned", "2", "28.6%"], ["transferred", "2", "28.6%"],
    ]  # fmt: skip
    assert "    transfer:+553131958012 (negotiation line)" in out and "average time to outcome: 52 s" in out
    assert "  technical_failure" in out
    assert "  sac/cnpj" in out and "2 visits  hung up 1, input failed 1, failed 0: 100.0%" in out


async def test_report_as_csv(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = await run(capsys, url, "report", "--day", str(DAY), "--flow", "sac", "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert status == 0 and rows[0] == ["section", "name", "value", "percent"]
    assert rows[1] == ["span", "local", f"{DAY} 00:00 - {DAY + timedelta(days=1)} 00:00 America/Sao_Paulo", ""]
    assert ["calls", "all", "6", "100.0"] in rows and ["outcome", "contained", "1", "16.7"] in rows
    assert ["transferred", "queue:technical", "1", "16.7"] in rows and ["tickets", "technical_failure", "1", ""] in rows
    assert ["time to outcome", "average seconds", "60.0", ""] in rows
    assert ["drop-off hung up", "sac/menu", "1", "20.0"] in rows
    assert ["drop-off failed", "sac/greet", "1", "16.7"] in rows


async def test_report_of_today_and_of_a_week(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = await run(capsys, url, "report")
    assert out.splitlines()[0] == f"calls of {DAY + timedelta(days=1)} (America/Sao_Paulo), flow all: 0"
    _, out, _ = await run(capsys, url, "report", "--week", str(DAY - timedelta(days=1)))
    assert out.splitlines()[0] == (
        f"calls of {DAY - timedelta(days=1)} to {DAY + timedelta(days=5)} (America/Sao_Paulo), flow all: 8"
    )


@pytest.mark.parametrize("command", [["calls", "list", "--since", "1d"], ["report", "--day", "2026-12-01"]])
def test_a_database_not_there_or_not_migrated_is_said_in_one_line(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before `ivr db upgrade` (a fresh clone), a supervisor's command says what to do, never a traceback."""
    from ivr.cli import main

    for database in (tmp_path / "nowhere" / "ivr.sqlite3", tmp_path / "empty.sqlite3"):
        assert main([*command, "--url", f"sqlite+aiosqlite:///{database}"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "store unavailable" in err and "ivr db upgrade" in err, err
