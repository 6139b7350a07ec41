"""SIPp scenarios are valid XML that send what the script says, and SIPp's log reads back right."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.asterisk import sipp


def _actions(xml: str) -> list[dict[str, str]]:
    return [dict(e.attrib) for e in ET.fromstring(xml).iter("exec")]


def test_keys_and_speech_become_rtp_actions_in_order(tmp_path: Path) -> None:
    speech = sipp.Speech(tmp_path / "hello.ulaw", seconds=2.0)
    script = sipp.CallScript(steps=(sipp.Pause(1.0), sipp.Keys("1122#"), speech, sipp.Keys("0")))
    xml = sipp.scenario_xml(script)
    assert _actions(xml) == [
        {"play_dtmf": "1122#"},
        {"rtp_stream": f"{tmp_path / 'hello.ulaw'},1,0"},
        {"play_dtmf": "0"},
    ]
    assert "a=rtpmap:96 telephone-event/8000" in xml  # the payload SIPp's play_dtmf uses
    assert "RTP/AVP 8 0 96" in xml  # A-law offered first


def test_every_wait_can_be_cut_short_by_asterisks_bye() -> None:
    script = sipp.CallScript(steps=(sipp.Pause(2.0), sipp.Keys("12")), end="hangup")
    waits = [e.attrib for e in ET.fromstring(sipp.scenario_xml(script)).iter("recv") if "timeout" in e.attrib]
    keys_ms = str(round(2 * sipp.KEY_TIME_S * 1000))
    assert [(w["timeout"], w["next"]) for w in waits] == [("2000", "bye"), (keys_ms, "bye")]
    assert script.steps_s == 2.0 + 2 * sipp.KEY_TIME_S  # what a test may wait for the steps to be done


def test_a_withheld_caller_sends_anonymous() -> None:
    xml = sipp.scenario_xml(sipp.CallScript(caller=None))
    assert 'From: "Anonymous" <sip:anonymous@anonymous.invalid>' in xml


@pytest.mark.parametrize(
    "bad", [dict(number="3003;x"), dict(caller="31 3333"), dict(caller="31\n3333"), dict(caller="31%0")]
)
def test_numbers_that_would_break_the_sip_message_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        sipp.scenario_xml(sipp.CallScript(**bad))


def test_a_caller_may_carry_uri_escapes_as_a_carrier_might_send_them() -> None:
    xml = sipp.scenario_xml(sipp.CallScript(caller="31%0A33334444"))
    assert "From: <sip:31%0A33334444@[local_ip]:[local_port]>" in xml


def test_bad_keys_and_unknown_audio_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keys"):
        sipp.Keys("12x")
    with pytest.raises(ValueError, match="ulaw"):
        sipp.Speech(tmp_path / "speech.wav", seconds=1.0)


REJECTED_LOG = """\
----------------------------------------------- 2026-11-25 13:52:50.443440
UDP message sent (610 bytes):

INVITE sip:40040000@127.0.0.1:5160 SIP/2.0
CSeq: 1 INVITE

----------------------------------------------- 2026-11-25 13:52:50.443822
UDP message received [306] bytes :

SIP/2.0 404 Not Found
CSeq: 1 INVITE
Server: sac-ivr

-----------------------------------------------
Unexpected UDP message received:

SIP/2.0 404 Not Found
CSeq: 1 INVITE
"""

HUNG_UP_BY_ASTERISK_LOG = """\
----------------------------------------------- 1
UDP message sent (610 bytes):

INVITE sip:30033336@127.0.0.1:5160 SIP/2.0
CSeq: 1 INVITE

----------------------------------------------- 2
UDP message received [306] bytes :

SIP/2.0 200 OK
CSeq: 1 INVITE

----------------------------------------------- 3
UDP message received [306] bytes :

BYE sip:sipp@127.0.0.1:45000 SIP/2.0
CSeq: 25283 BYE
"""


def test_a_rejected_call_reads_back_with_its_status() -> None:
    result = sipp._outcome(1, REJECTED_LOG, "", 0.1)
    assert (result.answered, result.final_status, result.hung_up_by) == (False, 404, None)
    assert result.received == ["SIP/2.0 404 Not Found"]
    assert "rejected with 404" in result.summary()


def test_a_call_ended_by_asterisk_reads_back_as_such() -> None:
    result = sipp._outcome(0, HUNG_UP_BY_ASTERISK_LOG, "", 2.5)
    assert result.ok and result.answered and result.hung_up_by == "asterisk"
    assert result.summary() == "call answered, hung up by asterisk after 2.5 s, as scripted"


@pytest.mark.parametrize("ports", [sipp.SIP_PORTS, sipp.MEDIA_PORTS], ids=["sip", "media"])
def test_calls_placed_together_never_share_a_port(ports: sipp.PortBlocks) -> None:
    """Twenty calls placed at once pick their ports before any SIPp binds them: SIPp binds four media ports
    from the base, so one block starting inside another made a SIPp fail to bind its video RTP port; and a
    SIP port from the kernel's ephemeral range was taken by another process before SIPp bound it."""
    picked: list[int] = []
    try:
        for _ in range(100):
            picked.append(ports.take())  # held, as _run_sipp does until its SIPp ends
        width = 4 if ports is sipp.MEDIA_PORTS else 1
        every = [base + offset for base in picked for offset in range(width)]
        assert len(set(every)) == len(every)
        low, high = [int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()]
        assert not [port for port in every if low <= port <= high]
    finally:
        for base in picked:
            ports.release(base)


async def test_a_sipp_whose_port_was_taken_meanwhile_runs_again_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real SIPp, started on a SIP port something else bound after it was checked, fails at once ("Unable
    to bind main socket, errno = 98"): the call is placed again on other ports, not lost."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # where the INVITE goes, unanswered
    silent.bind(("127.0.0.1", 0))
    given: list[int] = []
    real_take = sipp.SIP_PORTS.take

    def take_the_taken_one_first() -> int:
        given.append(taken.getsockname()[1] if not given else real_take())
        return given[-1]

    monkeypatch.setattr(sipp.SIP_PORTS, "take", take_the_taken_one_first)
    with taken, silent:
        result = await sipp.place_call(sipp.CallScript(), "127.0.0.1", silent.getsockname()[1], timeout_s=1.0)
        invite = silent.recv(4096).decode()
    assert len(given) == 2 and not result.answered
    assert invite.startswith("INVITE ") and f"127.0.0.1:{given[1]}" in invite
