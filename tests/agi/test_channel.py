"""AgiChannel against a fake Asterisk replaying res_agi's answers over loopback."""

from __future__ import annotations

import asyncio
import os
import wave
from array import array
from pathlib import Path
from typing import Any

import pytest

from bench.asterisk_side import mset_values
from ivr.agi import channel as channel_module
from ivr.agi.wire import AgiCommandError, AgiHangup, AgiProtocolError, AgiTimeout
from ivr.engine.channel import CallerHangup, Channel, ChannelError, Digits, DigitsEnd, QueueOutcome, TransferOutcome
from ivr.engine.ports import Heard
from ivr.voice.build import AUDIO_SUBDIR, MANIFEST

from .conftest import CallRig, outcome
from .fake_asterisk import FakeAsterisk, header_block, parse_args

ALL_KEYS = '"0123456789*#"'


async def test_sac_call_start_answer_announce_and_menu_barge_in(rig: CallRig) -> None:
    async def script(ch: Channel) -> tuple[str, str, str]:
        await ch.answer()
        announced = await ch.play(["your_protocol_is", "digit/2", "digit/0"], interruptible=False)
        key = await ch.play(["main_menu", "main_menu_more"])
        return ch.info.linked_id, announced, key

    peer, outcomes = await rig.call(script)
    await peer.expect("ANSWER", "200 result=0")
    # Several prompts are one command: Background plays them whole ("p": keys ignored, as for a protocol)...
    await peer.expect(
        'EXEC "Background" "sac/pt_BR/your_protocol_is&sac/pt_BR/digit/2&sac/pt_BR/digit/0,p"', "200 result=0"
    )
    await peer.expect('GET VARIABLE "BACKGROUNDSTATUS"', "200 result=1 (SUCCESS)")  # every file was there
    # ... or up to a key, which it returns (res_agi's EXEC keeps it from jumping to an extension "1").
    await peer.expect('EXEC "Background" "sac/pt_BR/main_menu&sac/pt_BR/main_menu_more"', "200 result=49")
    assert await outcome(outcomes) == ("1764070000.17", "", "1")
    # The flow returned: the dialplan is told.
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    assert await peer.closed_by_ivr()


@pytest.mark.parametrize(("given", "asked"), [("1764070000.17", False), ("pbx-1.1764070000.3", False), ("1 2", True)])
async def test_the_linkedid_the_dialplan_gives_is_taken_and_a_malformed_one_is_asked_for(
    rig: CallRig, given: str, asked: bool
) -> None:
    async def script(ch: Channel) -> str:
        return ch.info.linked_id

    server, outcomes = await rig.server(script)
    peer = await FakeAsterisk.call(server.port, script=f"sac?key=k&linkedid={given.replace(' ', '%20')}")
    if asked:
        await peer.started("1764070000.99")
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")  # nothing else was asked
    assert await outcome(outcomes) == ("1764070000.99" if asked else given)


async def test_100_trying_comes_before_the_real_answer(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["welcome"])

    peer, outcomes = await rig.call(script)
    await peer.expect(
        f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}', "100 result=0 Trying...", "200 result=35 endpos=80"
    )
    assert await outcome(outcomes) == "#"


async def test_multiline_520_is_read_whole_and_the_next_answer_stays_paired(rig: CallRig) -> None:
    async def script(ch: Channel) -> tuple[str, str]:
        try:
            await ch.set_variable("X", "1")
        except AgiCommandError as exc:
            refused = exc.text
        return refused, await ch.play(["welcome"])

    peer, outcomes = await rig.call(script)
    await peer.expect(
        'SET VARIABLE "X" "1"',
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: SET VARIABLE <variablename> <value>",
        "",
        "520 End of proper usage.",
    )
    await peer.expect(f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}', "200 result=50 endpos=8")
    refused, key = await outcome(outcomes)
    assert "SET VARIABLE <variablename>" in refused and key == "2"


async def test_hangup_line_mid_command_is_not_taken_as_the_answer(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        await ch.play(["welcome"])
        return "not reached"

    peer, outcomes = await rig.call(script)
    await peer.expect(f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}', "HANGUP", "200 result=0 endpos=1200")
    assert isinstance(await outcome(outcomes), CallerHangup)
    assert await peer.closed_by_ivr()  # no further command after the hang-up


async def test_hangup_between_commands_is_noticed_at_the_next_command(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        await ch.answer()
        await ch.play(["welcome"])
        return "not reached"

    peer, outcomes = await rig.call(script)
    await peer.expect("ANSWER", "200 result=0", "HANGUP")
    await peer.expect(
        f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}',
        "511 Command Not Permitted on a dead channel or intercept routine",
    )
    assert isinstance(await outcome(outcomes), AgiHangup)


async def test_511_after_hangup_is_a_caller_hangup(rig: CallRig) -> None:
    async def script(ch: Channel) -> object:
        try:
            await ch.set_variable("IVR_STEP", "menu")
        except CallerHangup as exc:
            await ch.hangup()  # a no-op on a gone caller
            return exc
        return None

    peer, outcomes = await rig.call(script)
    await peer.expect('SET VARIABLE "IVR_STEP" "menu"', "511 Command Not Permitted on a dead channel")
    assert isinstance(await outcome(outcomes), CallerHangup)
    assert await peer.closed_by_ivr()


async def test_minus_one_followed_by_hangup_is_a_hangup_and_alone_is_an_error(rig: CallRig) -> None:
    async def script(ch: Channel) -> tuple[str, str]:
        try:
            await ch.play(["missing_prompt"])
        except CallerHangup:
            return "hangup", ""
        except ChannelError as exc:
            first = str(exc)
        try:
            await ch.play(["welcome"])
        except CallerHangup:
            return first, "hangup"
        return first, "played"

    peer, outcomes = await rig.call(script)
    await peer.expect(f'STREAM FILE "sac/pt_BR/missing_prompt" {ALL_KEYS}', "200 result=-1 endpos=0")
    await peer.expect(f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}', "200 result=-1 endpos=960", "HANGUP")
    first, second = await outcome(outcomes)
    assert "missing sound file" in first and second == "hangup"


async def test_a_sequence_with_a_missing_file_is_an_error_and_a_hangup_in_it_a_hangup(rig: CallRig) -> None:
    async def script(ch: Channel) -> tuple[str, str]:
        try:
            await ch.play(["welcome", "missing_prompt", "main_menu"])
        except ChannelError as exc:
            first = str(exc)
        try:
            await ch.play(["your_protocol_is", "digit/1"], interruptible=False)
        except CallerHangup:
            return first, "hangup"
        return first, "played"

    peer, outcomes = await rig.call(script)
    # Background stops at a file it cannot open, and says so only in BACKGROUNDSTATUS.
    await peer.expect(
        'EXEC "Background" "sac/pt_BR/welcome&sac/pt_BR/missing_prompt&sac/pt_BR/main_menu"', "200 result=0"
    )
    await peer.expect('GET VARIABLE "BACKGROUNDSTATUS"', "200 result=1 (FAILED)")
    await peer.expect('EXEC "Background" "sac/pt_BR/your_protocol_is&sac/pt_BR/digit/1,p"', "200 result=-1", "HANGUP")
    first, second = await outcome(outcomes)
    assert first == "Background of welcome .. main_menu failed (missing sound file, or directory?)"
    assert second == "hangup"


async def test_a_long_sequence_is_split_to_fit_res_agis_command_line(rig: CallRig) -> None:
    digits = [f"digit/{n % 10}" for n in range(250)]  # ~4,500 bytes of names: more than res_agi reads at once

    async def script(ch: Channel) -> str:
        return await ch.play(digits, interruptible=False)

    peer, outcomes = await rig.call(script)
    lines = []
    while len(lines) < 5:
        line = await peer.command()
        if line.startswith("SET VARIABLE"):  # the flow ended
            break
        lines.append(line)
        await peer.send("200 result=0")
        if len(lines) == 1:  # the later runs hold only digits this peer has just played
            await peer.expect('GET VARIABLE "BACKGROUNDSTATUS"', "200 result=1 (SUCCESS)")
    assert await outcome(outcomes) == ""
    played = [parse_args(line)[2].removesuffix(",p").split("&") for line in lines]
    assert [name for run in played for name in run] == [f"sac/pt_BR/{d}" for d in digits]  # in order, all
    assert len(lines) == 3 and all(len(line.encode()) + 1 <= 2047 for line in lines)


async def test_files_a_peer_has_played_are_not_asked_about_again_until_the_prompts_are_rebuilt(
    rig: CallRig,
) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["your_protocol_is", "digit/2"], interruptible=False)

    server, outcomes = await rig.server(script, {"your_protocol_is": 1.0, "digit/2": 0.4})
    sequence = 'EXEC "Background" "sac/pt_BR/your_protocol_is&sac/pt_BR/digit/2,p"'
    status = 'GET VARIABLE "BACKGROUNDSTATUS"'

    async def call(*answers: tuple[str, str]) -> Any:
        peer = await FakeAsterisk.call(server.port)
        await peer.started()
        for command, answer in answers:
            await peer.expect(command, answer)
        return await outcome(outcomes)

    assert await call((sequence, "200 result=0"), (status, "200 result=1 (SUCCESS)")) == ""
    # Played through before by this peer: the next command is the flow's end, not the question.
    assert await call((sequence, "200 result=0"), ('SET VARIABLE "IVR_DONE" "1"', "200 result=1")) == ""
    manifest = rig.tmp_path / "prompts" / AUDIO_SUBDIR / MANIFEST
    built = manifest.stat()
    os.utime(manifest, ns=(built.st_atime_ns, built.st_mtime_ns + 10**9))  # `ivr prompts build` ran again
    failure = await call((sequence, "200 result=0"), (status, "200 result=1 (FAILED)"))  # and a file went
    assert isinstance(failure, ChannelError) and "missing sound file" in str(failure)


async def test_a_sequence_is_bounded_by_the_sum_of_its_prompts_lengths(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["digit/0", "new_prompt", "digit/0"])

    peer, outcomes = await rig.call(script, {"digit/0": 0.2}, command_timeout_s=0.05, margin_s=0.1)
    await peer.command()  # received, never answered
    failure = await outcome(outcomes)
    assert isinstance(failure, AgiTimeout)
    assert str(failure) == (
        "EXEC: no answer from Asterisk within 0.6 s (prompts digit/0 .. digit/0 (3) last 0.5 s (1 without a "
        "built length counted as agi.command_timeout_s), + 0.1 s margin)"
    )


async def test_caller_id_name_cannot_inject_a_command(rig: CallRig) -> None:
    name = 'Ana" EXEC System "touch /tmp/owned'

    async def script(ch: Channel) -> str | None:
        await ch.set_variable("IVR_CALLER_NAME", ch.info.caller_name or "")
        return ch.info.caller_name

    server, outcomes = await rig.server(script)
    peer = await FakeAsterisk.call(server.port, agi_calleridname=name)
    await peer.started()
    line = await peer.command()
    assert parse_args(line) == ["SET", "VARIABLE", "IVR_CALLER_NAME", name]
    await peer.send("200 result=1")
    assert await outcome(outcomes) == name
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    assert await peer.closed_by_ivr()


async def test_a_back_end_value_with_control_characters_is_sent_cleaned_not_refused(rig: CallRig) -> None:
    async def script(ch: Channel) -> None:
        await ch.set_variable("IVR_CUSTOMER_NAME", "Serra\r\nEXEC System x\0Azul")

    peer, outcomes = await rig.call(script)
    line = await peer.command()
    assert parse_args(line) == ["SET", "VARIABLE", "IVR_CUSTOMER_NAME", "Serra\ufffd\ufffdEXEC System x\ufffdAzul"]
    await peer.send("200 result=1")
    assert await outcome(outcomes) is None  # the call goes on
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    assert await peer.closed_by_ivr()


@pytest.mark.parametrize("answer", ["200 result=49abc", "200 result=x", "200 result=99999999999", "200 result=7"])
async def test_a_bogus_result_ends_the_call_as_a_protocol_error_logged(
    rig: CallRig, caplog: pytest.LogCaptureFixture, answer: str
) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["welcome"])

    peer, outcomes = await rig.call(script)
    await peer.expect(f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}', answer)
    assert isinstance(await outcome(outcomes), AgiProtocolError)  # never a key misread from garbage
    assert await peer.closed_by_ivr()  # no IVR_DONE: the dialplan's fallback takes the caller
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("AGI protocol error" in e and "result=" in e for e in errors)
    assert not any(r.exc_info for r in caplog.records)  # a peer's fault, said in one line: no traceback


async def test_a_caller_number_broken_by_a_line_break_leaves_the_call_unidentified(
    rig: CallRig, caplog: pytest.LogCaptureFixture
) -> None:
    async def script(ch: Channel) -> tuple[str | None, str | None]:
        return ch.info.caller_id, ch.info.caller_name

    server, outcomes = await rig.server(script)
    # What res_agi's "agi_callerid: %s\n" makes of a number holding a line break (a %0A in the SIP From).
    block = header_block(agi_callerid="3133334444\n77", agi_calleridname="Ana\x1b[2J")
    peer = await FakeAsterisk.call(server.port, block=block)
    await peer.started()
    assert await outcome(outcomes) == (None, None)  # unidentified; the call goes on
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("agi_callerid" in w for w in warnings) and any("agi_calleridname" in w for w in warnings)
    assert not any("3133334444" in w or "Ana" in w for w in warnings)  # caller data never logged


async def test_an_entry_of_several_keys_is_one_gosub_to_the_dialplans_keys_routine(rig: CallRig) -> None:
    async def script(ch: Channel) -> list[Digits]:
        got = [await ch.read_digits(max_digits=14, first_timeout_s=8, inter_digit_timeout_s=3)]
        got.append(await ch.read_digits(max_digits=2, first_timeout_s=5, inter_digit_timeout_s=2.5))
        got.append(await ch.read_digits(max_digits=4, first_timeout_s=5, inter_digit_timeout_s=2, terminator="#*"))
        got.append(await ch.read_digits(max_digits=4, first_timeout_s=5, inter_digit_timeout_s=2, terminator="#*"))
        got.append(await ch.read_digits(max_digits=1, first_timeout_s=6, inter_digit_timeout_s=6, terminator=""))
        return got

    peer, outcomes = await rig.call(script)
    retval = 'GET VARIABLE "GOSUB_RETVAL"'
    # The routine gets the max, the first key's wait, each next key's wait and the keys that end the entry.
    await peer.expect('GOSUB "sac-keys" "s" "1" "14,8,3,#"', "100 result=0 Trying...", "200 result=0 Gosub complete")
    await peer.expect(retval, "200 result=1 (OK:12#)")
    await peer.expect('GOSUB "sac-keys" "s" "1" "2,5,2.5,#"', "100 result=0 Trying...", "200 result=0 Gosub complete")
    await peer.expect(retval, "200 result=1 (OK:70)")
    await peer.expect('GOSUB "sac-keys" "s" "1" "4,5,2,#*"', "100 result=0 Trying...", "200 result=0 Gosub complete")
    await peer.expect(retval, "200 result=1 (OK:4*)")
    await peer.expect('GOSUB "sac-keys" "s" "1" "4,5,2,#*"', "100 result=0 Trying...", "200 result=0 Gosub complete")
    await peer.expect(retval, "200 result=1 (TIMEOUT:)")
    await peer.expect('WAIT FOR DIGIT "6000"', "200 result=55")  # one key is one command either way
    assert await outcome(outcomes) == [
        Digits("12", DigitsEnd.TERMINATOR, "#"),
        Digits("70", DigitsEnd.MAX_LENGTH),
        Digits("4", DigitsEnd.TERMINATOR, "*"),
        Digits("", DigitsEnd.TIMEOUT),
        Digits("7", DigitsEnd.MAX_LENGTH),
    ]


async def test_an_entry_waits_for_its_keys_as_long_as_they_may_take(rig: CallRig) -> None:
    async def script(ch: Channel) -> Digits:
        return await ch.read_digits(max_digits=3, first_timeout_s=0.2, inter_digit_timeout_s=0.1)

    peer, outcomes = await rig.call(script, command_timeout_s=0.05, margin_s=0.1)
    await peer.command()  # received, never answered
    failure = await outcome(outcomes)
    assert isinstance(failure, AgiTimeout)
    assert str(failure) == "GOSUB: no answer from Asterisk within 0.5 s (an entry's keys of 0.4 s, + 0.1 s margin)"


async def test_a_dialplan_without_the_keys_routine_is_read_key_by_key_and_asked_again_later(
    rig: CallRig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def script(ch: Channel) -> list[Digits]:
        got = [await ch.read_digits(max_digits=14, first_timeout_s=8, inter_digit_timeout_s=3)]
        got.append(await ch.read_digits(max_digits=4, first_timeout_s=5, inter_digit_timeout_s=2))
        monkeypatch.setattr(channel_module, "KEYS_RETRY_S", 0.0)  # time to ask again (a dialplan reload)
        got.append(await ch.read_digits(max_digits=4, first_timeout_s=5, inter_digit_timeout_s=2))
        return got

    peer, outcomes = await rig.call(script)
    await peer.expect('GOSUB "sac-keys" "s" "1" "14,8,3,#"', "200 result=-1 Gosub label not found")
    await peer.expect('WAIT FOR DIGIT "8000"', "200 result=49")
    await peer.expect('WAIT FOR DIGIT "3000"', "200 result=50")
    await peer.expect('WAIT FOR DIGIT "3000"', "200 result=35")
    await peer.expect('WAIT FOR DIGIT "5000"', "200 result=0")  # not asked again for a while
    await peer.expect('GOSUB "sac-keys" "s" "1" "4,5,2,#"', "100 result=0 Trying...", "200 result=0 Gosub complete")
    await peer.expect('GET VARIABLE "GOSUB_RETVAL"', "200 result=1 (OK:9#)")
    assert await outcome(outcomes) == [
        Digits("12", DigitsEnd.TERMINATOR, "#"),
        Digits("", DigitsEnd.TIMEOUT),
        Digits("9", DigitsEnd.TERMINATOR, "#"),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "Asterisk at 127.0.0.1 has no sac-keys routine in its dialplan (asterisk_conf/extensions.conf): entries"
        " are read key by key, a command each"
    ]


@pytest.mark.parametrize(
    ("answer", "then"),
    [
        # What Asterisk 22 does when the caller hangs up during Read(): the dialplan stops before Return()
        # and res_agi says HANGUP before it answers (seen in an e2e call)...
        ("200 result=0 Gosub complete (abnormal exit)", ("HANGUP", "200 result=1 ()")),
        # ... or, were the routine to return, what it would return.
        ("200 result=0 Gosub complete", ("200 result=1 (HANGUP:12)", "HANGUP")),
    ],
)
async def test_a_hang_up_during_an_entry_is_the_callers(rig: CallRig, answer: str, then: tuple[str, str]) -> None:
    async def script(ch: Channel) -> Digits:
        return await ch.read_digits(max_digits=14, first_timeout_s=8, inter_digit_timeout_s=3)

    peer, outcomes = await rig.call(script)
    await peer.expect('GOSUB "sac-keys" "s" "1" "14,8,3,#"', "100 result=0 Trying...", answer)
    await peer.expect('GET VARIABLE "GOSUB_RETVAL"', *then)
    assert isinstance(await outcome(outcomes), CallerHangup)


@pytest.mark.parametrize(
    ("retval", "error", "said"),
    [
        ("OK:12x", AgiProtocolError, "sac-keys returned 'OK:12x', not up to 4 keys"),
        ("OK:12345", AgiProtocolError, "sac-keys returned 'OK:12345', not up to 4 keys"),
        ("OK:12", ChannelError, "sac-keys: Read() ended with READSTATUS='OK' after 2 key(s)"),  # neither # nor 4
        ("ERROR:", ChannelError, "sac-keys: Read() ended with READSTATUS='ERROR' after 0 key(s)"),
    ],
)
async def test_what_the_keys_routine_cannot_have_returned_is_an_error_not_keys(
    rig: CallRig, retval: str, error: type[Exception], said: str
) -> None:
    async def script(ch: Channel) -> Digits:
        return await ch.read_digits(max_digits=4, first_timeout_s=8, inter_digit_timeout_s=3)

    peer, outcomes = await rig.call(script)
    await peer.expect('GOSUB "sac-keys" "s" "1" "4,8,3,#"', "100 result=0 Trying...", "200 result=0 Gosub complete")
    await peer.expect('GET VARIABLE "GOSUB_RETVAL"', f"200 result=1 ({retval})")
    failure = await outcome(outcomes)
    assert isinstance(failure, error) and str(failure) == said


def _recorded(tmp_path: Path, command: str, *, loud: bool, seconds: float) -> Path:
    """What RECORD FILE leaves for `command`: 8 kHz 16-bit mono WAV holding a tone, or line noise
    under Asterisk's silence threshold."""
    name = parse_args(command)[2].rsplit("/", 1)[1]
    path = tmp_path / f"{name}.wav"
    level = 3000 if loud else 40
    samples = array("h", (level if (i // 8) % 2 else -level for i in range(round(8000 * seconds))))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(samples.tobytes())
    return path


async def test_listen_records_where_asterisk_sees_it_and_keeps_a_voice(rig: CallRig, tmp_path: Path) -> None:
    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=10, silence_seconds=2, beep=True)

    peer, outcomes = await rig.call(script)
    line = await peer.command()
    argv = parse_args(line)
    # The first stretch ends a second past the silence bound, in case no audio comes at all.
    assert argv[:2] == ["RECORD", "FILE"] and argv[3:] == ["wav", "0123456789*#", "3000", "BEEP", "s=2"]
    assert argv[2].startswith("/var/spool/asterisk/sac-recordings/1764070000.17-")  # named after the call
    recording = _recorded(tmp_path, line, loud=True, seconds=1.5)
    await peer.send("200 result=0 (timeout) endpos=12000")  # ended by silence, before its bound
    heard = await outcome(outcomes)
    assert heard.audio == recording and recording.exists()
    assert heard.duration_s == 1.5 and heard.interrupted_by == ""


async def test_a_recording_of_silence_is_deleted(rig: CallRig, tmp_path: Path) -> None:
    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=15, silence_seconds=2)

    peer, outcomes = await rig.call(script)
    line = await peer.command()
    recording = _recorded(tmp_path, line, loud=False, seconds=1.0)
    await peer.send("200 result=0 (timeout) endpos=8000")  # s=2 ended it: the caller's phone sent silence
    heard = await outcome(outcomes)
    assert heard.audio is None and not recording.exists()
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")  # no second RECORD FILE


async def test_a_caller_who_sends_no_audio_is_taken_as_silent_after_the_first_stretch(
    rig: CallRig, tmp_path: Path
) -> None:
    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=15, silence_seconds=2)

    peer, outcomes = await rig.call(script)
    line = await peer.command()
    assert parse_args(line)[5] == "3000"  # not 15 s: s= never fires without voice frames
    recording = _recorded(tmp_path, line, loud=False, seconds=0)  # the header Asterisk wrote, no audio
    await peer.send("200 result=0 (timeout) endpos=0")
    heard = await outcome(outcomes)
    assert (heard.audio, heard.duration_s) == (None, 0.0) and not recording.exists()
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")


async def test_a_caller_still_speaking_after_the_first_stretch_is_recorded_on(
    rig: CallRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_module, "NO_AUDIO_GRACE_S", 0.0)  # a 1 s first stretch: a short test

    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=5, silence_seconds=1)

    peer, outcomes = await rig.call(script)
    first = await peer.command()
    _recorded(tmp_path, first, loud=True, seconds=1.0)
    await asyncio.sleep(1.0)  # the recording ran to its bound, voice all along
    await peer.send("200 result=0 (timeout) endpos=8000")
    second = parse_args(await peer.command())
    assert second[2] == parse_args(first)[2]  # the same file, appended at the first stretch's end
    assert second[3:] == ["wav", "0123456789*#", "4000", "8000", "s=1"]
    recording = _recorded(tmp_path, " ".join(f'"{a}"' for a in second), loud=True, seconds=2.5)
    await peer.send("200 result=0 (timeout) endpos=20000")
    heard = await outcome(outcomes)
    assert heard.audio == recording and heard.duration_s == 2.5


async def test_a_key_pressed_while_listening_is_the_answer(rig: CallRig, tmp_path: Path) -> None:
    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=5, silence_seconds=1)

    peer, outcomes = await rig.call(script)
    recording = _recorded(tmp_path, await peer.command(), loud=False, seconds=0.4)
    await peer.send("200 result=50 (dtmf) endpos=3200")  # the caller pressed 2 instead of speaking
    heard = await outcome(outcomes)
    assert heard.interrupted_by == "2" and heard.audio is None and not recording.exists()


async def test_listen_hangup_while_recording_leaves_no_recording(rig: CallRig, tmp_path: Path) -> None:
    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=5, silence_seconds=1)

    peer, outcomes = await rig.call(script)
    line = await peer.command()
    assert parse_args(line)[-1] == "s=1" and "BEEP" not in line
    recording = _recorded(tmp_path, line, loud=True, seconds=0.5)
    await peer.send("200 result=-1 (hangup) endpos=4000")
    assert isinstance(await outcome(outcomes), CallerHangup)
    assert not recording.exists()


async def test_queue_sets_context_then_reports_no_agents(rig: CallRig) -> None:
    async def script(ch: Channel) -> QueueOutcome:
        return await ch.queue(
            "technical", context={"protocol": "202600000017", "cnpj_root": "12.345.678"}, timeout_s=120
        )

    peer, outcomes = await rig.call(script)
    await peer.expect('EXEC "MSet" "IVR_PROTOCOL=202600000017,IVR_CNPJ_ROOT=12.345.678"', "200 result=0")
    await peer.expect('EXEC "Queue" "technical,c,,,120"', "200 result=0")
    await peer.expect('GET VARIABLE "CONTEXT"', "200 result=1 (sac-ivr)")
    await peer.expect('GET VARIABLE "QUEUESTATUS"', "200 result=1 (JOINEMPTY)")
    assert await outcome(outcomes) is QueueOutcome.NO_AGENTS


async def test_the_agents_context_keeps_separators_quotes_and_backslashes_and_fits_the_command_line(
    rig: CallRig,
) -> None:
    name = 'Serra, "Azul" (filial [MG]) a\\b=c'
    path = ">".join(f"node_{n}" for n in range(100))  # with the keys, ~2,300 bytes: more than one command line
    keyed = " ".join(f"menu_{n}=1" for n in range(150))

    async def script(ch: Channel) -> QueueOutcome:
        context = {"customer_name": name, "path": path, "keyed": keyed, "tickets": ""}
        return await ch.queue("billing", context=context, timeout_s=60)

    peer, outcomes = await rig.call(script)
    values: dict[str, str] = {}
    commands = 0
    while (line := await peer.command()).startswith('EXEC "MSet"'):
        assert len(line.encode()) + 1 <= 2047
        values |= mset_values(parse_args(line)[2])
        commands += 1
        await peer.send("200 result=0")
    assert values == {"IVR_CUSTOMER_NAME": name, "IVR_PATH": path, "IVR_KEYED": keyed, "IVR_TICKETS": ""}
    assert commands == 2
    assert line == 'EXEC "Queue" "billing,c,,,60"'
    await peer.send("200 result=-1", "HANGUP")
    await peer.expect('GET VARIABLE "QUEUESTATUS"', "200 result=0")
    await peer.expect('GET VARIABLE "MEMBERINTERFACE"', "200 result=1 (PJSIP/agent-101)")
    assert await outcome(outcomes) is QueueOutcome.ANSWERED


async def test_queue_answered_then_caller_gone_is_answered(rig: CallRig) -> None:
    async def script(ch: Channel) -> QueueOutcome:
        return await ch.queue("billing", context={}, timeout_s=60)

    peer, outcomes = await rig.call(script)
    await peer.expect('EXEC "Queue" "billing,c,,,60"', "200 result=-1", "HANGUP")
    await peer.expect('GET VARIABLE "QUEUESTATUS"', "200 result=0")
    await peer.expect('GET VARIABLE "MEMBERINTERFACE"', "200 result=1 (PJSIP/agent-101)")
    assert await outcome(outcomes) is QueueOutcome.ANSWERED


async def test_an_agent_who_hangs_up_first_ends_an_answered_call(rig: CallRig) -> None:
    async def script(ch: Channel) -> QueueOutcome:
        return await ch.queue("billing", context={}, timeout_s=60)

    peer, outcomes = await rig.call(script)
    # With Queue's c option the caller comes back (not result=-1, which read as a failure).
    await peer.expect('EXEC "Queue" "billing,c,,,60"', "200 result=0")
    await peer.expect('GET VARIABLE "CONTEXT"', "200 result=1 (sac-ivr)")
    await peer.expect('GET VARIABLE "QUEUESTATUS"', "200 result=1 (CONTINUE)")
    assert await outcome(outcomes) is QueueOutcome.ANSWERED
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")  # so the dialplan hangs up, no fallback


async def test_the_call_back_key_pressed_while_waiting_leaves_the_queue(rig: CallRig) -> None:
    async def script(ch: Channel) -> QueueOutcome:
        return await ch.queue("technical", context={}, timeout_s=600)

    peer, outcomes = await rig.call(script)
    # app_queue's exit with a key jumps the channel to queues.conf's context and sets no QUEUESTATUS of its
    # own: an earlier Queue() of the call may have left one, so the context is read first.
    await peer.expect('EXEC "Queue" "technical,c,,,600"', "200 result=0")
    await peer.expect('GET VARIABLE "CONTEXT"', "200 result=1 (sac-queue-key)")
    assert await outcome(outcomes) is QueueOutcome.CALLBACK


async def test_transfer_dials_through_the_transfer_context(rig: CallRig) -> None:
    async def script(ch: Channel) -> TransferOutcome:
        return await ch.transfer("+553131958012", timeout_s=30)

    peer, outcomes = await rig.call(script)
    await peer.expect('EXEC "Dial" "Local/3131958012@sac-transfer,30,g"', "200 result=0")
    await peer.expect('GET VARIABLE "DIALSTATUS"', "200 result=1 (BUSY)")
    assert await outcome(outcomes) is TransferOutcome.BUSY


async def test_a_transfer_the_far_end_hangs_up_first_was_answered(rig: CallRig) -> None:
    async def script(ch: Channel) -> TransferOutcome:
        return await ch.transfer("+553131958012", timeout_s=30)

    peer, outcomes = await rig.call(script)
    await peer.expect('EXEC "Dial" "Local/3131958012@sac-transfer,30,g"', "200 result=0")  # g: back to us
    await peer.expect('GET VARIABLE "DIALSTATUS"', "200 result=1 (ANSWER)")
    assert await outcome(outcomes) is TransferOutcome.ANSWERED


async def test_a_prompt_longer_than_the_command_timeout_plays_to_its_end(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["main_menu"])

    peer, outcomes = await rig.call(script, {"main_menu": 0.5}, command_timeout_s=0.2, margin_s=0.3)
    await peer.command()
    await asyncio.sleep(0.6)  # Asterisk plays the whole prompt, past command_timeout_s
    await peer.send("200 result=0 endpos=4000")
    assert await outcome(outcomes) == ""
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")


async def test_a_silent_asterisk_times_out_naming_the_prompt_and_its_bound(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["welcome"])

    peer, outcomes = await rig.call(script, {"welcome": 0.1}, margin_s=0.1)
    await peer.command()  # received, never answered
    failure = await outcome(outcomes)
    assert isinstance(failure, AgiTimeout)
    assert (
        str(failure) == "STREAM FILE: no answer from Asterisk within 0.2 s (prompt welcome lasts 0.1 s, + 0.1 s margin)"
    )
    assert await peer.closed_by_ivr()


async def test_closed_socket_mid_call_is_a_caller_hangup(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["welcome"])

    peer, outcomes = await rig.call(script)
    await peer.command()
    peer.close()
    assert isinstance(await outcome(outcomes), CallerHangup)


async def test_a_flow_that_fails_leaves_ivr_done_unset_for_the_fallback(rig: CallRig) -> None:
    async def script(ch: Channel) -> None:
        await ch.answer()
        raise RuntimeError("back-end exploded")

    peer, outcomes = await rig.call(script)
    await peer.expect("ANSWER", "200 result=0")
    assert isinstance(await outcome(outcomes), RuntimeError)
    assert await peer.closed_by_ivr()  # no SET VARIABLE IVR_DONE: Asterisk sends the caller to a human


def test_dialled_number_comes_from_the_extension_or_else_the_dnid() -> None:
    from ivr.agi.channel import call_info
    from ivr.agi.wire import AgiRequest

    assert call_info(AgiRequest({"agi_extension": "+5530033336", "agi_dnid": "30033336"})).dialled == "+5530033336"
    assert call_info(AgiRequest({"agi_extension": "s", "agi_dnid": "30033336"})).dialled == "30033336"
    assert call_info(AgiRequest({"agi_extension": "s", "agi_dnid": "unknown"})).dialled == ""


async def test_the_cause_a_dropped_line_ended_with_is_read_after_the_hangup(rig: CallRig) -> None:
    async def script(ch: Channel) -> object:
        await ch.answer()
        try:
            await ch.play(["welcome"])
        except CallerHangup:
            return await ch.hangup_cause()
        return "not reached"

    peer, outcomes = await rig.call(script)
    await peer.expect("ANSWER", "200 result=0", "HANGUP")
    await peer.expect(f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}', "511 Command Not Permitted on a dead channel")
    await peer.expect('GET VARIABLE "HANGUPCAUSE"', "200 result=1 (38)")  # network out of order
    assert await outcome(outcomes) == 38
