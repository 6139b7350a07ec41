"""`ivr flow impact` as a supervisor runs it before publishing: calls recorded by the engine on the published
minimal flow are replayed against it and against a draft, and the report says what would change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

import ivr.clock
from ivr.app import demo_services
from ivr.clock import ManualClock
from ivr.config import settings
from ivr.engine.channel import QueueOutcome
from ivr.engine.interpreter import run_call
from ivr.engine.ports import CallInfo
from ivr.engine.scripted import ScriptedChannel
from ivr.flows.impact import NotReplayable, RecordedCall, RecordedVisit, replay_of
from ivr.flows.loader import load_flow
from ivr.store.db import open_store
from ivr.store.models import Call, NodeVisit
from ivr.store.seed import stand_in

from .drafts import FIXTURES, edit, new_draft, run

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2026, 12, 5, 14, 0, tzinfo=SAO_PAULO)
#: The recorded calls: what the caller did, and how the technical queue answered.
CALLS: tuple[tuple[list[str], QueueOutcome], ...] = (
    (["1"], QueueOutcome.ANSWERED),
    (["1"], QueueOutcome.ANSWERED),
    (["0"], QueueOutcome.ANSWERED),
    (["4"], QueueOutcome.NO_AGENTS),
    (["silence", "silence", "silence"], QueueOutcome.ANSWERED),
)


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    var = tmp_path / "var"
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(FIXTURES / "prompts"))
    monkeypatch.setenv("IVR_VAR_DIR", str(var))
    monkeypatch.setenv("IVR_TIMEZONE", "America/Sao_Paulo")
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'live.sqlite3'}")
    monkeypatch.setattr(ivr.clock, "system_clock", ManualClock(NOW))
    settings.cache_clear()
    yield var
    settings.cache_clear()


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    return new_draft(tmp_path)


async def _record(draft: Path, directory: Path) -> None:
    """The calls as `ivr serve` records them: the engine over the store, visits and all, two days ago."""
    config = settings()
    flow = load_flow(draft / "minimal.yaml")
    clock = ManualClock(NOW - timedelta(days=2))
    async with demo_services(config, directory, clock=clock, database_url=config.database_url) as services:
        for number, (inputs, queue) in enumerate(CALLS):
            clock.set(NOW - timedelta(days=2, minutes=-number))
            channel = ScriptedChannel(
                CallInfo(caller_id="11987654321", dialled="", unique_id=str(number)),
                inputs,
                queue_outcomes={"technical": queue},
            )
            await run_call(flow, channel, services, settings=config)


@pytest.fixture
def recorded(var_dir: Path, draft: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The minimal flow published, and five calls on it recorded two days ago."""
    assert run(capsys, "publish", str(draft), "--who", "ana")[0] == 0
    asyncio.run(_record(draft, tmp_path / "recording"))
    return draft


def test_a_menu_option_sent_elsewhere_changes_those_calls_and_the_nodes(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(recorded, '"1": {go: agent}', '"1": {go: goodbye}')

    status, out, err = run(capsys, "impact", str(recorded), "--days", "7")

    assert status == 0, err
    assert "calls replayed: 5; on the release, 5 end as recorded\n" in out
    assert "calls that would end differently: 2 (40.0%)" in out
    assert "  queue:technical → ended: 2 calls" in out
    assert "minimal/agent" in out and "minimal/goodbye" in out
    agent = next(line for line in out.splitlines() if "minimal/agent " in line)
    assert agent.split()[1:] == ["5", "→", "3", "(-2)"]
    assert "calls not replayed: 0" in out

    status, out, _ = run(capsys, "impact", str(recorded), "--json")
    data = json.loads(out)
    assert (data["replayed"], data["sampled"], data["in_window"]) == (5, 5, 5)
    assert data["endings"] == [{"before": "queue:technical", "after": "ended", "calls": 2}]
    goodbye = next(node for node in data["nodes"] if node["node"] == "minimal/goodbye")
    assert (goodbye["before"], goodbye["after"], goodbye["change"]) == (1, 3, 2)


def test_a_draft_like_the_release_changes_nothing(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "impact", str(recorded))

    assert status == 0, err
    assert "calls that would end differently: 0" in out
    assert "nodes gaining or losing visits: 0" in out


def test_the_window_and_the_limit_bound_the_calls(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "impact", str(recorded), "--limit", "2", "--json")
    assert (json.loads(out)["sampled"], json.loads(out)["in_window"]) == (2, 5)

    _, out, _ = run(capsys, "impact", str(recorded), "--days", "1", "--json")  # recorded two days ago
    assert json.loads(out)["in_window"] == 0


def test_a_call_with_a_masked_entry_it_cannot_stand_in_for_is_listed_with_why(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = NOW - timedelta(hours=2)
    visit = {"call_protocol": "202600000999", "flow": "minimal", "flow_version": "", "started_at": at, "duration_ms": 0}
    visits = [
        visit | {"node": "main_menu", "verb": "menu", "input": "1", "outcome": "1"},
        visit | {"node": "ask", "verb": "collect", "input": "<9 chars>", "outcome": "collected"},
    ]
    call = {"protocol": "202600000999", "flow": "minimal", "started_at": at, "ended_at": at, "outcome": "hangup"}

    async def insert_call() -> None:
        store = open_store(settings())
        try:
            await store.write(
                lambda session: (session.execute(insert(Call).values(call)), session.execute(insert(NodeVisit), visits))
            )
        finally:
            await store.aclose()

    asyncio.run(insert_call())
    status, out, err = run(capsys, "impact", str(recorded))

    assert status == 0, err
    assert "calls replayed: 5" in out
    assert "calls not replayed: 1" in out
    assert (
        "input masked at minimal/ask (<9 chars>): the demo account has no value of that length: 1 (e.g. 202600000999)"
        in out
    )


def test_masked_entries_are_played_by_the_demo_account() -> None:
    account = stand_in()

    def visit(node: str, verb: str, input: str, outcome: str, flow: str = "sac") -> RecordedVisit:
        return RecordedVisit(flow, node, verb, input, outcome)

    call = RecordedCall(
        protocol="202600000001",
        flow="sac",
        started_at=NOW,
        caller_id="3199990000",
        identified=True,
        outcome="queue:billing",
        visits=(
            visit("main_menu", "menu", "quero a ###", "2"),  # said, digits masked: the option it chose
            visit("ask_cnpj", "collect", "11.***.***/****-81", "collected", "identify"),
            visit("ask_code", "collect", "<6 chars>", "collected", "identify"),
            visit("ticket", "collect", "800001028", "collected"),  # our own numbers are stored as keyed
            visit("ask_month", "collect", "2026-10", "collected"),  # a month is kept as YYYY-MM, keyed as MM
            visit("callback_number", "collect", "31******44", "collected"),
            visit("ask_cnpj_root", "collect", "<8 chars>", "invalid", "identify"),
            visit("complaint_words", "record", "<12 s>", "recorded"),
            visit("billing_queue", "queue", "", "no_agents:billing"),
        ),
    )

    replay = replay_of(call, {}, account)

    assert replay.caller_id == "3199990000"  # identified by what they keyed, not by their number
    assert replay.inputs == (
        "2", f"{account.cnpj}#", "100200#", "800001028#", "10#", "3133334444#", "00000000#", "say:palavras do cliente",
    )  # fmt: skip
    assert replay.queues == {"billing": QueueOutcome.NO_AGENTS}


def test_a_caller_known_by_their_number_is_played_by_the_demo_account_and_retries_follow_the_release() -> None:
    release = {"minimal": load_flow(FIXTURES / "good" / "minimal.yaml")}
    call = RecordedCall(
        "202600000002", "minimal", NOW, "3199990000", True, "queue:technical",
        (
            RecordedVisit("minimal", "who", "lookup", "", "found"),
            RecordedVisit("minimal", "main_menu", "menu", "", "no_input"),
        ),
    )  # fmt: skip

    replay = replay_of(call, release, stand_in())

    assert replay.caller_id == stand_in().caller_id
    assert replay.inputs == ("silence",) * 3  # the menu's two retries and its first try

    with pytest.raises(NotReplayable, match="no node visits stored"):
        replay_of(RecordedCall("202600000003", "minimal", NOW, None, False, "hangup", ()), release, stand_in())


def test_a_draft_that_fails_the_checks_is_refused_with_the_checkers_messages(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(recorded, '"1": {go: agent}', '"1": {go: nowhere}')

    status, out, err = run(capsys, "impact", str(recorded))

    assert status == 1
    assert "nowhere" in out
    assert "fails its checks, so it would not publish" in err


def test_a_bad_flows_directory_gets_one_line(var_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "impact", str(tmp_path / "nope"))
    assert (status, out) == (2, "")
    assert err == f"ivr flow impact: {tmp_path / 'nope'} is not a directory of flows\n"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(capsys, "impact", str(empty))[2] == f"ivr flow impact: no flow files (*.yaml) in {empty}\n"


def test_nothing_published_leaves_nothing_to_compare_with(
    var_dir: Path, draft: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "impact", str(draft))
    assert status == 2
    assert "there is no release to compare the draft with" in err
