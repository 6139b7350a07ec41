"""AgiChannel against a fake Asterisk replaying res_agi's answers over loopback."""

from __future__ import annotations

from pathlib import Path

from ivr.agi.wire import AgiCommandError, AgiHangup, AgiTimeout
from ivr.engine.channel import (
    CallerHangup,
    Channel,
    ChannelError,
    Digits,
    DigitsEnd,
    Heard,
    QueueOutcome,
    TransferOutcome,
)

from .conftest import CallRig, outcome
from .fake_asterisk import parse_args

ALL_KEYS = '"0123456789*#"'


async def test_sac_call_start_answer_announce_and_menu_barge_in(rig: CallRig) -> None:
    async def script(ch: Channel) -> tuple[str, str, str]:
        await ch.answer()
        announced = await ch.play(["your_protocol_is", "digit/2", "digit/0"], interruptible=False)
        key = await ch.play(["main_menu", "main_menu_more"])
        return ch.info.linked_id, announced, key

    peer, outcomes = await rig.call(script)
    await peer.expect("ANSWER", "200 result=0")
    await peer.expect('STREAM FILE "sac/pt_BR/your_protocol_is" ""', "200 result=0 endpos=23040")
    await peer.expect('STREAM FILE "sac/pt_BR/digit/2" ""', "200 result=0 endpos=4480")
    await peer.expect('STREAM FILE "sac/pt_BR/digit/0" ""', "200 result=0 endpos=4160")
    await peer.expect(f'STREAM FILE "sac/pt_BR/main_menu" {ALL_KEYS}', "200 result=49 endpos=12000")
    assert await outcome(outcomes) == ("1764070000.17", "", "1")
    # main_menu_more never played: the key stopped the prompts. The flow returned: the dialplan is told.
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    assert await peer.closed_by_ivr()


async def test_100_trying_comes_before_the_real_answer(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["welcome"])

    peer, outcomes = await rig.call(script)
    await peer.expect(f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}', "100 result=0 Trying...", "200 result=35 endpos=80")
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
    await peer.expect(f'STREAM FILE "sac/pt_BR/welcome" {ALL_KEYS}', "511 Command Not Permitted on a dead channel or intercept routine")
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


async def test_caller_id_name_cannot_inject_a_command(rig: CallRig) -> None:
    from .fake_asterisk import FakeAsterisk

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


async def test_caller_id_name_with_a_carriage_return_is_refused_before_sending(rig: CallRig) -> None:
    from .fake_asterisk import FakeAsterisk

    async def script(ch: Channel) -> object:
        try:
            await ch.set_variable("IVR_CALLER_NAME", ch.info.caller_name or "")
        except ValueError as exc:
            await ch.hangup()
            return exc
        return None

    server, outcomes = await rig.server(script)
    peer = await FakeAsterisk.call(server.port, agi_calleridname="Ana\rEXEC System x")
    await peer.started()
    await peer.expect("HANGUP", "200 result=1")  # the very next line: nothing was injected before it
    assert "CR" in str(await outcome(outcomes))
    assert await peer.closed_by_ivr()  # hung up by the flow: no IVR_DONE to set


async def test_read_digits_uses_first_then_inter_digit_timeouts(rig: CallRig) -> None:
    async def script(ch: Channel) -> list[Digits]:
        got = [await ch.read_digits(max_digits=14, first_timeout_s=8, inter_digit_timeout_s=3)]
        got.append(await ch.read_digits(max_digits=2, first_timeout_s=5, inter_digit_timeout_s=2.5))
        got.append(await ch.read_digits(max_digits=4, first_timeout_s=5, inter_digit_timeout_s=2))
        return got

    peer, outcomes = await rig.call(script)
    await peer.expect('WAIT FOR DIGIT "8000"', "200 result=49")
    await peer.expect('WAIT FOR DIGIT "3000"', "200 result=50")
    await peer.expect('WAIT FOR DIGIT "3000"', "200 result=35")
    await peer.expect('WAIT FOR DIGIT "5000"', "200 result=55")
    await peer.expect('WAIT FOR DIGIT "2500"', "200 result=48")
    await peer.expect('WAIT FOR DIGIT "5000"', "200 result=0")
    assert await outcome(outcomes) == [
        Digits("12", DigitsEnd.TERMINATOR),
        Digits("70", DigitsEnd.MAX_LENGTH),
        Digits("", DigitsEnd.TIMEOUT),
    ]


async def test_listen_records_where_asterisk_sees_it_and_returns_the_local_path(rig: CallRig, tmp_path: Path) -> None:
    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=10, silence_seconds=2, beep=True)

    peer, outcomes = await rig.call(script)
    line = await peer.command()
    argv = parse_args(line)
    assert argv[:2] == ["RECORD", "FILE"] and argv[3:] == ["wav", "0123456789*#", "10000", "BEEP", "s=2"]
    assert argv[2].startswith("/var/spool/asterisk/sac-recordings/")
    await peer.send("200 result=0 (timeout) endpos=24000")
    heard = await outcome(outcomes)
    assert heard.audio == tmp_path / (argv[2].rsplit("/", 1)[1] + ".wav")
    assert heard.duration_s == 3.0 and heard.interrupted_by == ""


async def test_a_key_pressed_while_listening_is_the_answer(rig: CallRig) -> None:
    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=5, silence_seconds=1)

    peer, outcomes = await rig.call(script)
    await peer.command()
    await peer.send("200 result=50 (dtmf) endpos=3200")  # the caller pressed 2 instead of speaking
    heard = await outcome(outcomes)
    assert heard.interrupted_by == "2"


async def test_listen_hangup_while_recording(rig: CallRig) -> None:
    async def script(ch: Channel) -> Heard:
        return await ch.listen(max_seconds=5, silence_seconds=1)

    peer, outcomes = await rig.call(script)
    line = await peer.command()
    assert parse_args(line)[-1] == "s=1" and "BEEP" not in line
    await peer.send("200 result=-1 (hangup) endpos=4000")
    assert isinstance(await outcome(outcomes), CallerHangup)


async def test_queue_sets_context_then_reports_no_agents(rig: CallRig) -> None:
    async def script(ch: Channel) -> QueueOutcome:
        return await ch.queue("technical", context={"protocol": "202600000017", "cnpj_root": "12.345.678"}, timeout_s=120)

    peer, outcomes = await rig.call(script)
    await peer.expect('SET VARIABLE "IVR_PROTOCOL" "202600000017"', "200 result=1")
    await peer.expect('SET VARIABLE "IVR_CNPJ_ROOT" "12.345.678"', "200 result=1")
    await peer.expect('EXEC "Queue" "technical,,,,120"', "200 result=0")
    await peer.expect('GET VARIABLE "QUEUESTATUS"', "200 result=1 (JOINEMPTY)")
    assert await outcome(outcomes) is QueueOutcome.NO_AGENTS


async def test_queue_answered_then_caller_gone_is_answered(rig: CallRig) -> None:
    async def script(ch: Channel) -> QueueOutcome:
        return await ch.queue("billing", context={}, timeout_s=60)

    peer, outcomes = await rig.call(script)
    await peer.expect('EXEC "Queue" "billing,,,,60"', "200 result=-1", "HANGUP")
    await peer.expect('GET VARIABLE "QUEUESTATUS"', "200 result=0")
    await peer.expect('GET VARIABLE "MEMBERINTERFACE"', "200 result=1 (PJSIP/agent-101)")
    assert await outcome(outcomes) is QueueOutcome.ANSWERED


async def test_transfer_dials_through_the_transfer_context(rig: CallRig) -> None:
    async def script(ch: Channel) -> TransferOutcome:
        return await ch.transfer("3195-8012", timeout_s=30)

    peer, outcomes = await rig.call(script)
    await peer.expect('EXEC "Dial" "Local/31958012@sac-transfer,30"', "200 result=0")
    await peer.expect('GET VARIABLE "DIALSTATUS"', "200 result=1 (BUSY)")
    assert await outcome(outcomes) is TransferOutcome.BUSY


async def test_a_silent_asterisk_times_out_and_the_call_is_closed(rig: CallRig) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["welcome"])

    peer, outcomes = await rig.call(script, command_timeout_s=0.2)
    await peer.command()  # received, never answered
    assert isinstance(await outcome(outcomes), AgiTimeout)
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
