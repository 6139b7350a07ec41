"""The capacity bench's helpers: SIPp's stats rows, Asterisk's unique ids, the numbers each step dials,
the ceiling's dialplan, and the replay's dialplan, relay and server (bench/capacity_calls.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.capacity_calls import (
    AgiRecorder,
    ceiling_context,
    ceiling_extensions,
    ceiling_number,
    epoch_of,
    free_port,
    ivr_number,
    last_stats,
    replay_extensions,
    replay_number,
    serve_replay,
    step_of_number,
)
from ivr.asterisk import conf
from ivr.config import load_settings

HEADER = "StartTime;CurrentCall;SuccessfulCall(C);FailedCall(C);"


def test_the_last_complete_row_of_sipps_stats_gives_the_counters() -> None:
    text = f"{HEADER}\n2026-12-06\t23:08:56.6 1796598536.6;3;0;0;\n2026-12-06\t23:08:57.6 1796598537.6;2;5;1;\n"
    assert last_stats(text) == {"CurrentCall": 2, "SuccessfulCall(C)": 5, "FailedCall(C)": 1}


def test_a_row_sipp_is_still_writing_is_skipped() -> None:
    assert last_stats(f"{HEADER}\nx;3;4;0;\nx;9") == {"CurrentCall": 3, "SuccessfulCall(C)": 4, "FailedCall(C)": 0}
    assert last_stats(HEADER) == {}


def test_asterisks_unique_id_says_when_the_channel_was_created() -> None:
    assert epoch_of("sac-ivr-1796598466.42") == 1796598466.42
    assert epoch_of("1796598466.7") == 1796598466.7
    assert epoch_of("") == 0.0


def test_each_step_dials_its_own_number_and_its_records_are_told_apart_by_it() -> None:
    assert ivr_number("30033336", 7) == "00730033336"
    assert step_of_number("00730033336") == 7
    assert ceiling_number(2, 13) == "9213"
    assert step_of_number("9213") == 13
    assert step_of_number("8213") == 13  # a ceiling call whose keys were wrong
    assert replay_number("30033336", 7) == "70730033336"
    assert step_of_number("70730033336") == 7
    assert step_of_number("30033336") is None
    assert step_of_number("s") is None


def test_the_ceiling_plays_what_the_walk_heard_and_checks_every_key_group() -> None:
    stretches = [[("greet",), ("main_menu",)], [("type_ticket_number",)], [("status_in_progress", "digit/1"), ("bye",)]]
    text = ceiling_context("ticket", 1, ["1", "800001028#"], stretches, "sac/pt_BR")
    assert text.splitlines() == [
        "[bench-ticket]",
        "exten => _91XX,1,Answer()",
        " same => n,Playback(sac/pt_BR/greet)",
        " same => n,Read(KEYS,sac/pt_BR/main_menu,1,,1,8)",
        ' same => n,GotoIf($["${KEYS}" != "1"]?8${EXTEN:1},1)',
        " same => n,Read(KEYS,sac/pt_BR/type_ticket_number,0,,1,8)",
        ' same => n,GotoIf($["${KEYS}" != "800001028"]?8${EXTEN:1},1)',
        " same => n,Playback(sac/pt_BR/status_in_progress&sac/pt_BR/digit/1&sac/pt_BR/bye)",
        " same => n,Hangup()",
        "exten => _81XX,1,Hangup()",
    ]
    extensions = ceiling_extensions([("ticket", text)])
    assert extensions.startswith("[sac-inbound]\nexten => _91XX,1,Goto(bench-ticket,${EXTEN},1)\n")


def test_the_replay_runs_the_shipped_sac_ivr_context_against_its_own_port() -> None:
    settings = load_settings()
    shipped = conf.render(settings, conf.Layout.shipped(), "s", "agi-key-0123", "/moh", "/modules")["extensions.conf"]
    text = replay_extensions(shipped, settings.agi.port, 45999)
    head, _, context = text.partition("\n\n")
    assert head == "[sac-inbound]\nexten => _7XX.,1,Goto(bench-replay,0${EXTEN:1},1)"
    ivr = shipped[shipped.index("[sac-ivr]") :].split("\n[", 1)[0]
    assert context.strip() == ivr.replace("[sac-ivr]", "[bench-replay]").replace(
        f":{settings.agi.port}/sac?", ":45999/sac?"
    ).strip()
    assert "sac-fallback" in context  # a replayed call that does not finish lands where an IVR call would
    with pytest.raises(RuntimeError, match="FastAGI address"):
        replay_extensions(shipped, settings.agi.port + 1, 45999)


async def _asterisk(port: int, caller_id: str, answers: dict[str, str]) -> list[str]:
    """Asterisk's side of one call: the header, then each command answered from `answers` (by its first
    words) until the server closes the connection. The commands it was sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"agi_callerid: {caller_id}\nagi_extension: 00530033336\n\n".encode())
    sent = []
    while line := (await reader.readline()).decode().rstrip("\n"):
        sent.append(line)
        writer.write(f"{next(a for c, a in answers.items() if line.startswith(c))}\n".encode())
        await writer.drain()
    writer.close()
    return sent


async def test_the_relay_keeps_each_commands_answers_and_passes_both_ways_untouched() -> None:
    async def ivr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")
        for command in (b"ANSWER\n", b'WAIT FOR DIGIT "5000"\n'):
            writer.write(command)
            await reader.readline()
        writer.close()

    server = await asyncio.start_server(ivr, "127.0.0.1", 0)
    recorder = AgiRecorder("127.0.0.1", server.sockets[0].getsockname()[1])
    relay = await asyncio.start_server(recorder.relay, "127.0.0.1", 0)
    async with server, relay:
        sent = await _asterisk(relay.sockets[0].getsockname()[1], "3133334444", {"ANSWER": "200 result=0",
                                                                                  "WAIT": "200 result=49"})  # fmt: skip
        for _ in range(100):  # the relay files the call once both directions have closed
            if recorder.calls:
                break
            await asyncio.sleep(0.01)
    assert sent == ["ANSWER", 'WAIT FOR DIGIT "5000"']
    (call,) = recorder.calls
    assert (call.caller_id, call.extension) == ("3133334444", "00530033336")
    assert call.exchanges == [("ANSWER", ["200 result=0"]), ('WAIT FOR DIGIT "5000"', ["200 result=49"])]


async def test_the_replay_follows_the_recording_whose_answers_the_call_gives(tmp_path: Path) -> None:
    menu = 'WAIT FOR DIGIT "5000"'

    def recording(journey: int, caller_id: str, key: str, then: str) -> dict[str, object]:
        exchanges = [("ANSWER", ["200 result=0"]), (menu, [f"200 result={ord(key)}"]),
                     (f'STREAM FILE "{then}" ""', ["200 result=0 endpos=8000"])]  # fmt: skip
        return {"journey": journey, "caller_id": caller_id, "exchanges": exchanges}

    recordings = [recording(1, "3133334444", "1", "technical"), recording(2, "3133334444", "2", "billing"),
                  recording(3, "31999990000", "1", "unknown_caller")]  # fmt: skip
    (tmp_path / "recordings.json").write_text(json.dumps(recordings))
    port, log = free_port(), tmp_path / "replay.log"
    server = asyncio.create_task(serve_replay(port, tmp_path / "recordings.json", log))
    try:
        for _ in range(100):
            try:
                writer = (await asyncio.open_connection("127.0.0.1", port))[1]
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            break
        answers = {"ANSWER": "200 result=0", "STREAM": "200 result=0 endpos=1234"}
        billing = await _asterisk(port, "3133334444", answers | {"WAIT": "200 result=50"})
        unknown = await _asterisk(port, "31999990000", answers | {"WAIT": "200 result=49"})
        astray = await _asterisk(port, "3133334444", answers | {"WAIT": "200 result=51"})  # no recording has 3
        for _ in range(100):
            if len(log.read_text().splitlines()) == 3:
                break
            await asyncio.sleep(0.01)
    finally:
        server.cancel()
    assert billing == ["ANSWER", menu, 'STREAM FILE "billing" ""']
    assert unknown == ["ANSWER", menu, 'STREAM FILE "unknown_caller" ""']
    assert astray == ["ANSWER", menu, 'STREAM FILE "technical" ""']  # the first of those still possible
    lines = log.read_text().splitlines()
    assert sorted(lines) == ["00530033336 0 3", "00530033336 2 3", "00530033336 3 3"]  # astray: no journey
