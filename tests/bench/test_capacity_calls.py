"""The capacity bench's pure helpers: SIPp's stats rows, Asterisk's unique ids, the numbers each step
dials, and the ceiling's dialplan (bench/capacity_calls.py)."""

from __future__ import annotations

from bench.capacity_calls import (
    ceiling_context,
    ceiling_extensions,
    ceiling_number,
    epoch_of,
    ivr_number,
    last_stats,
    step_of_number,
)

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
