"""Real calls through Asterisk 22: SIP in, FastAGI out, the fallback queue, DTMF.

These prove the Asterisk side (dialplan, PJSIP, queues) with a stand-in FastAGI responder; the
journeys through the real IVR build on the same fixtures.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.agi.channel import KEYS_CONTEXT, _mset_pair
from ivr.agi.wire import format_command
from ivr.asterisk.sipp import CallScript, Keys, Pause, prepare_speech

from .ami import Ami
from .conftest import E2EAsterisk, RecordTiming
from .fastagi import AgiSession, FastAgiStub

pytestmark = pytest.mark.e2e

NEGOTIATION_DIALLED = "3131958012"  # +55 31 3195-8012 as the trunk takes it (sip.trunk_number_format national)


def _event(name: str, **fields: str) -> Callable[[dict[str, str]], bool]:
    """Matches an AMI event by name and exact field values."""
    return lambda e: e.get("Event") == name and all(e.get(k) == v for k, v in fields.items())


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Wait for a condition Asterisk makes true in a file (no event tells us); bounded."""
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout_s} s") from None


async def _finish(session: AgiSession) -> None:
    """What the IVR does at the end of a call: mark it done, hang up, end the AGI session (the
    channel goes only when the session ends)."""
    assert await session.command("SET VARIABLE IVR_DONE 1") == (200, "1")
    assert (await session.command("HANGUP"))[0] == 200
    await session.close()


async def test_calls_to_the_sac_number_reach_fastagi_with_number_and_caller(
    asterisk: E2EAsterisk, agi: FastAgiStub
) -> None:
    national = asyncio.create_task(asterisk.call(CallScript("30033336", "3133334444", end="wait_bye")))
    international = asyncio.create_task(asterisk.call(CallScript("+5530033336", None, end="wait_bye")))
    carrier = asyncio.create_task(
        asterisk.call(CallScript("030033336", "+553133334444", end="wait_bye"), from_carrier=True)
    )
    sessions = {}
    for _ in range(3):
        session = await agi.next_session()
        sessions[session.env["agi_extension"]] = session
    # ANSWER waits up to 500 ms for the caller's first media: answer the three at once.
    answers = await asyncio.gather(*(session.command("ANSWER") for session in sessions.values()))
    assert answers == [(200, "0")] * 3

    first, second, third = sessions["30033336"], sessions["+5530033336"], sessions["030033336"]
    port = asterisk.settings.agi.port
    key = asterisk.settings.agi.secret.get_secret_value()  # the dialplan proves where the call comes from
    linked = first.env["agi_uniqueid"]  # the first channel of its call
    assert first.env["agi_request"] == f"agi://127.0.0.1:{port}/sac?key={key}&linkedid={linked}"
    assert first.env["agi_network_script"] == f"sac?key={key}&linkedid={linked}"
    assert first.env["agi_callerid"] == "3133334444"
    assert second.env["agi_callerid"] == "anonymous"  # withheld: a normal case, not an error
    assert first.env["agi_channel"].startswith("PJSIP/tester-")
    assert third.env["agi_channel"].startswith("PJSIP/carrier-")  # told apart by the SBC's address
    assert third.env["agi_callerid"] == "+553133334444"
    for session in (first, second, third):
        await _finish(session)

    for result in await asyncio.gather(national, international, carrier):
        assert result.ok, result.summary()
        assert result.answered and result.hung_up_by == "asterisk", result.summary()
    # Each call leaves a CDR line keyed by its linkedid (the first channel's uniqueid) once it is gone.
    cdr = asterisk.instance.host_path(f"{asterisk.instance.layout.log}/cdr-custom/Master.csv")
    keys = [f'"{s.env["agi_uniqueid"]}","{s.env["agi_uniqueid"]}"' for s in (first, second, third)]
    await _until(lambda: cdr.exists() and all(key in cdr.read_text() for key in keys), "CDR lines")


async def test_unknown_numbers_are_refused_without_reaching_the_ivr(
    asterisk: E2EAsterisk, agi: FastAgiStub
) -> None:
    result = await asterisk.call(CallScript("40040000", "3133334444"))
    assert result.final_status == 404, result.summary()
    assert agi.sessions.empty()


async def test_a_dead_ivr_puts_the_caller_in_the_fallback_queue_within_5_s(
    asterisk: E2EAsterisk, agi: FastAgiStub, ami: Ami, queue_agent: str, record_timing: RecordTiming
) -> None:
    queue = asterisk.settings.asterisk.fallback_queue
    call = asyncio.create_task(asterisk.call(CallScript("30033336", "3133334444", end="wait_bye")))
    session = await agi.next_session()
    channel = session.env["agi_channel"]
    await session.command("ANSWER")
    await session.command("SET VARIABLE IVR_PROTOCOL 202600000017")  # allocated when answered
    died = time.monotonic()
    await session.close()  # the IVR crashes mid-call: the connection closes without IVR_DONE

    joined = await ami.wait_event(_event("QueueCallerJoin", Channel=channel), timeout_s=5)
    latency = time.monotonic() - died
    record_timing("  fallback: IVR connection lost -> QueueCallerJoin", latency)
    assert latency < 5
    assert joined["Queue"] == queue
    # The agent's phone rings with the call's context, and the caller reaches the agent.
    called = await ami.wait_event(_event("AgentCalled", Channel=channel), timeout_s=5)
    assert "IVR_PROTOCOL=202600000017" in called["ChanVariable"].splitlines()
    connected = await ami.wait_event(_event("AgentConnect", Channel=channel), timeout_s=5)
    assert connected["Interface"] == queue_agent

    await ami.action("Hangup", Channel=channel)
    result = await call
    assert result.answered and result.hung_up_by == "asterisk", result.summary()


async def test_fallback_without_agents_does_not_leave_the_caller_waiting(
    asterisk: E2EAsterisk, agi: FastAgiStub, ami: Ami
) -> None:
    call = asyncio.create_task(asterisk.call(CallScript("30033336", "3133334444", end="wait_bye"), timeout_s=30))
    session = await agi.next_session()
    channel = session.env["agi_channel"]
    await session.command("ANSWER")
    await session.close()

    # No agent logged in: Queue refuses the caller at once (joinempty), who is told and let go.
    left = await ami.wait_event(_event("VarSet", Channel=channel, Variable="QUEUESTATUS"), timeout_s=5)
    assert left["Value"] == "JOINEMPTY"
    told = await ami.wait_event(_event("Newexten", Channel=channel, Application="Playback"), timeout_s=5)
    assert told["AppData"].endswith("/no_agents_available")
    await ami.action("Hangup", Channel=channel)
    result = await call
    assert result.hung_up_by == "asterisk", result.summary()


async def test_a_transfer_leaves_through_the_carrier_trunk_to_the_negotiation_line(
    asterisk: E2EAsterisk, agi: FastAgiStub, ami: Ami
) -> None:
    far_end = asyncio.create_task(asterisk.answer_on_trunk())
    call = asyncio.create_task(asterisk.call(CallScript("30033336", "3133334444", end="wait_bye")))
    session = await agi.next_session()
    caller = session.env["agi_channel"]
    await session.command("ANSWER")
    # What the IVR's transfer does: Dial a Local channel in sac-transfer, which dials out via the trunk.
    transfer = asyncio.create_task(
        session.command(f"EXEC Dial Local/{NEGOTIATION_DIALLED}@sac-transfer,20", timeout_s=15)
    )
    await ami.wait_event(
        lambda e: e.get("Event") == "DialEnd"
        and e.get("DestChannel", "").startswith("PJSIP/carrier-")
        and e.get("DialStatus") == "ANSWER",
        timeout_s=5,
    )
    await ami.action("Hangup", Channel=caller)
    assert (await transfer)[0] == 200
    await session.close()

    answered = await far_end
    assert answered.received[0].startswith(f"INVITE sip:{NEGOTIATION_DIALLED}@"), answered.received
    assert answered.ok and answered.hung_up_by == "asterisk", answered.summary()
    result = await call
    assert result.ok and result.hung_up_by == "asterisk", result.summary()


async def test_numbers_outside_sac_transfer_cannot_be_dialled(asterisk: E2EAsterisk, agi: FastAgiStub) -> None:
    call = asyncio.create_task(asterisk.call(CallScript("30033336", "3133334444", end="wait_bye")))
    session = await agi.next_session()
    await session.command("ANSWER")
    await session.command("EXEC Dial Local/21999999999@sac-transfer,5")
    assert await session.command("GET VARIABLE DIALSTATUS") == (200, "1 (CHANUNAVAIL)")
    await _finish(session)
    result = await call
    assert result.ok, result.summary()


async def test_one_mset_gives_agents_values_with_separators_quotes_and_backslashes_as_they_were(
    asterisk: E2EAsterisk, agi: FastAgiStub
) -> None:
    # The IVR sets the agents' context with one EXEC MSet (ivr.agi.channel): Asterisk's own parser reads it.
    values = {
        "IVR_CUSTOMER_NAME": 'Serra, "Azul" (filial [MG]) a\\b=c|d ${X}',
        "IVR_PATH": "greet>main_menu>billing",
        "IVR_TICKETS": "",
    }
    call = asyncio.create_task(asterisk.call(CallScript("30033336", "3133334444", end="wait_bye")))
    session = await agi.next_session()
    await session.command("ANSWER")
    line = format_command("EXEC", "MSet", ",".join(_mset_pair(name, value) for name, value in values.items()))
    assert await session.command(line.decode().rstrip("\n")) == (200, "0")
    for name, value in values.items():
        code, result = await session.command(f"GET VARIABLE {name}")
        assert code == 200 and result.removeprefix("1 (").removesuffix(")") == value, (name, result)
    await _finish(session)
    result = await call
    assert result.ok, result.summary()


async def test_repeated_dtmf_keys_arrive_intact(asterisk: E2EAsterisk, agi: FastAgiStub) -> None:
    call = asyncio.create_task(
        asterisk.call(CallScript("30033336", "3133334444", steps=(Pause(0.5), Keys("1122#")), end="wait_bye"))
    )
    session = await agi.next_session()
    await session.command("ANSWER")
    keys = ""
    for _ in range(10):  # bounded: five keys expected
        code, result = await session.command("WAIT FOR DIGIT 5000")
        key = int(result.split()[0])
        assert code == 200 and key > 0, f"no key within 5 s after {keys!r}"
        keys += chr(key)
        if keys.endswith("#"):
            break
    assert keys == "1122#"
    await _finish(session)
    result = await call
    assert result.ok, result.summary()


async def test_the_dialplan_reads_an_entry_of_several_keys_in_one_command(
    asterisk: E2EAsterisk, agi: FastAgiStub
) -> None:
    # What AgiChannel.read_digits sends for a CNPJ or a ticket number: the shipped sac-keys routine.
    steps = (Pause(0.5), Keys("4526#12*3"), Pause(3.0), Keys("70"))
    call = asyncio.create_task(asterisk.call(CallScript("30033336", "3133334444", steps=steps, end="wait_bye")))
    session = await agi.next_session()
    await session.command("ANSWER")

    async def entry(arguments: str) -> tuple[str, float]:
        started = time.monotonic()
        assert await session.command(f"GOSUB {KEYS_CONTEXT} s 1 {arguments}", timeout_s=15) == (200, "0 Gosub complete")
        code, returned = await session.command("GET VARIABLE GOSUB_RETVAL")
        assert code == 200
        return returned.removeprefix("1 (").removesuffix(")"), time.monotonic() - started

    assert (await entry("14,8,3,#*"))[0] == "OK:4526#"  # "#" ends it
    assert (await entry("14,8,3,#*"))[0] == "OK:12*"  # so does "*", at once: the "3" is the next entry's
    assert (await entry("14,8,1,#*"))[0] == "TIMEOUT:3"  # nothing within a second of the "3"
    assert (await entry("2,8,3,#"))[0] == "OK:70"  # two keys were all it takes
    nothing, waited = await entry("4,1,1,#")
    assert nothing == "TIMEOUT:" and 0.9 < waited < 3.0  # the first key's wait
    await _finish(session)
    result = await call
    assert result.ok, result.summary()


async def test_speech_is_recorded_until_silence_where_the_ivr_reads_it(
    asterisk: E2EAsterisk, agi: FastAgiStub, tmp_path: Path
) -> None:
    spoken = tmp_path / "spoken.wav"
    subprocess.run(["espeak-ng", "-v", "pt-br", "-w", str(spoken), "minha internet caiu"], check=True, timeout=30)
    speech = prepare_speech(spoken, tmp_path / "spoken", trailing_silence_s=3.0)
    call = asyncio.create_task(
        asterisk.call(CallScript("30033336", "3133334444", steps=(Pause(0.5), speech), end="wait_bye"))
    )
    session = await agi.next_session()
    await session.command("ANSWER")
    name = f"e2e-{secrets.token_hex(4)}"
    inside = f"{asterisk.settings.asterisk.recordings_dir_in_asterisk}/{name}"
    started = time.monotonic()
    code, _ = await session.command(f"RECORD FILE {inside} wav # 15000 0 s=1", timeout_s=20)
    took = time.monotonic() - started
    await _finish(session)
    assert code == 200
    # Ended by the silence after the words (padding), not by the 15 s bound.
    assert took < speech.seconds + 1.5, f"RECORD FILE took {took:.1f} s for {speech.seconds:.1f} s of audio"
    recording = asterisk.settings.recordings_path / f"{name}.wav"
    try:
        assert recording.stat().st_size > 8000, "the recording holds less than half a second of audio"
    finally:
        recording.unlink(missing_ok=True)
    result = await call
    assert result.ok, result.errors
