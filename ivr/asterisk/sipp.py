"""Scripted phone calls with SIPp: build a UAC scenario, run it against Asterisk, say what happened.

A call is a ``CallScript``: who calls which number, then steps on SIPp's own timeline (pauses, keys
sent as RFC 4733 events, speech streamed as RTP), then either we hang up or we wait for Asterisk to.
SIPp cannot react to what it hears, so keys go after a prompt the caller can interrupt, or after the
measured length of one they cannot (DECISIONS: "SIPp runs on its own timeline").
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast
from xml.sax.saxutils import quoteattr

# SIPp 3.6 sends play_dtmf events with payload type 96 whatever the SDP says, so the offer maps 96.
DTMF_PAYLOAD = 96
# SIPp 3.6 plays each key for 200 ms, then 200 ms of silence (measured), and a second play_dtmf cuts
# the keys still queued: steps after keys wait this long per key, with slack for the last one.
KEY_TIME_S = 0.45
KEYS = re.compile(r"[0-9*#A-D]+")
PAYLOAD_BY_SUFFIX = {".ulaw": 0, ".alaw": 8}


class SippError(RuntimeError):
    """SIPp could not be run at all (missing, bad arguments, ports)."""


class PortTaken(SippError):
    """SIPp could not bind a port it was given: something else had taken it."""


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Keys:
    """DTMF keys sent in-band as RFC 4733 events; repeated keys ("1122#") arrive as separate presses."""

    digits: str

    def __post_init__(self) -> None:
        if not KEYS.fullmatch(self.digits):
            raise ValueError(f"keys {self.digits!r}: expected digits, *, # or A-D")


@dataclass(frozen=True)
class Speech:
    """Raw 8 kHz G.711 audio (.ulaw or .alaw) streamed into the call, padded with trailing silence."""

    path: Path
    seconds: float  # how long the stream plays; the next step waits for it

    def __post_init__(self) -> None:
        if self.path.suffix not in PAYLOAD_BY_SUFFIX:
            raise ValueError(f"{self.path}: expected a raw .ulaw or .alaw file (see prepare_speech)")


Step = Pause | Keys | Speech


def step_s(step: Step) -> float:
    """How long a step lasts on SIPp's timeline: keys take KEY_TIME_S each, a pause or speech its length."""
    return len(step.digits) * KEY_TIME_S if isinstance(step, Keys) else step.seconds


@dataclass(frozen=True)
class CallScript:
    number: str = "30033336"
    caller: str | None = "3133334444"  # None: caller ID withheld
    steps: tuple[Step, ...] = ()
    # "hangup": we send BYE after the steps; "wait_bye": we wait for Asterisk's. Either way a BYE from
    # Asterisk during the steps ends the call normally (the IVR may well finish first).
    end: Literal["hangup", "wait_bye"] = "hangup"

    @property
    def steps_s(self) -> float:
        """How long the steps last, from the answer."""
        return sum(step_s(step) for step in self.steps)


@dataclass
class CallResult:
    exit_status: int  # SIPp's: 0 the call went as scripted, 1 it did not, 255 it hit the time bound
    answered: bool
    final_status: int | None  # the INVITE's final response (200, 404, 486...), None if none came
    hung_up_by: Literal["caller", "asterisk"] | None
    duration_s: float
    errors: str = ""
    received: list[str] = field(default_factory=list)  # start lines of what Asterisk sent

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def summary(self) -> str:
        if self.final_status is None:
            outcome = "no answer from Asterisk"
        elif not self.answered:
            outcome = f"rejected with {self.final_status}"
        else:
            outcome = f"answered, hung up by {self.hung_up_by or 'nobody (still up when SIPp gave up)'}"
        verdict = "as scripted" if self.ok else f"NOT as scripted (SIPp exit {self.exit_status})"
        text = f"call {outcome} after {self.duration_s:.1f} s, {verdict}"
        rejected = self.final_status is not None and not self.answered  # the status says it all
        return text + (f"\n{self.errors}" if self.errors and not self.ok and not rejected else "")


def prepare_speech(source: Path, target: Path, trailing_silence_s: float = 2.0) -> Speech:
    """Convert any audio sox reads to raw 8 kHz mu-law, with silence after it so Asterisk's silence
    detection ends the recording (SIPp sends nothing once the stream ends)."""
    target = target.with_suffix(".ulaw")
    command = [
        "sox", str(source), "-t", "raw", "-r", "8000", "-c", "1", "-e", "u-law", str(target),
        "pad", "0", str(trailing_silence_s),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise SippError("sox is not installed (apt-get install sox)") from exc
    if done.returncode != 0:
        raise SippError(f"{source}: sox cannot convert it ({done.stderr.strip()})")
    return Speech(target, seconds=target.stat().st_size / 8000)


def _from_header(caller: str | None) -> str:
    if caller is None:
        return '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=[pid]SIPpTag00[call_number]'
    # URI escapes (%0A) are allowed: Asterisk decodes them, as it does for a carrier's From.
    if not re.fullmatch(r"\+?(?:[0-9]|%[0-9A-Fa-f]{2}){1,20}", caller):
        raise ValueError(f"caller {caller!r}: expected a phone number (digits or %XX escapes, optional leading +)")
    return f"<sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"


def scenario_xml(script: CallScript) -> str:
    """The SIPp UAC scenario for one call: INVITE offering PCMA, PCMU and telephone-event."""
    if not re.fullmatch(r"\+?[0-9]{1,20}", script.number):
        raise ValueError(f"number {script.number!r}: expected digits, optional leading +")
    invite = f"""
      INVITE sip:{script.number}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {_from_header(script.caller)}
      To: <sip:{script.number}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      User-Agent: sac-ivr scripted call
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=sac-ivr call
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 0 {DTMF_PAYLOAD}
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=rtpmap:{DTMF_PAYLOAD} telephone-event/8000
      a=fmtp:{DTMF_PAYLOAD} 0-16
      a=ptime:20
      a=sendrecv
"""
    ack = """
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
"""
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1" ?>',
        '<scenario name="sac-ivr call">',
        f'  <send retrans="500"><![CDATA[{invite}]]></send>',
        '  <recv response="100" optional="true"/>',
        '  <recv response="180" optional="true"/>',
        '  <recv response="183" optional="true"/>',
        '  <recv response="200" rtd="true"/>',
        f"  <send><![CDATA[{ack}]]></send>",
    ]
    for index, step in enumerate(script.steps):
        parts += _step_xml(step, f"step{index}")
    if script.end == "hangup":
        bye = """
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
"""
        parts += [
            f'  <send retrans="500"><![CDATA[{bye}]]></send>',
            '  <recv response="200" crlf="true" next="end"/>',
        ]
    else:
        parts += ['  <recv request="BYE"/>']
    # Asterisk hung up (at the end, or during a step): acknowledge it.
    ok = """
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Length: 0
"""
    parts += ['  <label id="bye"/>', f"  <send><![CDATA[{ok}]]></send>", '  <label id="end"/>']
    parts += ["</scenario>", ""]
    return "\n".join(parts)


ANSWER_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sac-ivr answerer">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:answerer@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=sac-ivr answerer
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 0
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=sendrecv
]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
]]></send>
</scenario>
"""


def _step_xml(step: Step, label: str) -> list[str]:
    """A step, then a wait that Asterisk's BYE cuts short (a plain <pause> would abort the call)."""
    if isinstance(step, Pause):
        action = []
    elif isinstance(step, Keys):
        action = [f"exec play_dtmf={quoteattr(step.digits)}"]
    else:
        stream = f"{step.path},1,{PAYLOAD_BY_SUFFIX[step.path.suffix]}"
        action = [f"exec rtp_stream={quoteattr(stream)}"]
    lines = [f"  <nop><action><{a}/></action></nop>" for a in action]
    wait = max(round(step_s(step) * 1000), 1)
    lines += [
        f'  <recv request="BYE" timeout="{wait}" ontimeout="{label}" next="bye"/>',
        f'  <label id="{label}"/>',
    ]
    return lines


class PortBlocks:
    """UDP ports for the SIPp processes this process runs: aligned blocks of `width` in first..last, each
    checked free and then held until released, so two concurrent calls never pick the same block (a port
    free when checked is not free once another SIPp started a moment ago binds it). The ranges lie below
    the kernel's ephemeral ports (32768 up), where any process's bind to port 0 could take one between
    the check and SIPp's own bind."""

    def __init__(self, first: int, last: int, width: int) -> None:
        self._first, self._last, self._width = first, last, width
        self._held: set[int] = set()

    def take(self) -> int:
        for _ in range(50):  # bounded: free blocks are plentiful
            base = random.randrange(self._first, self._last - self._width + 2, self._width)
            if base in self._held:
                continue
            with contextlib.ExitStack() as stack:
                try:
                    for offset in range(self._width):
                        sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                        sock.bind(("127.0.0.1", base + offset))
                except OSError:
                    continue
            self._held.add(base)
            return base
        raise SippError(f"no free UDP ports for SIPp in {self._first}-{self._last}")

    def release(self, base: int) -> None:
        self._held.discard(base)


#: SIPp's own SIP port: its default (5060) can be shared by two SIPp at once, who then steal each other's
#: requests.
SIP_PORTS = PortBlocks(10000, 19999, 1)
#: SIPp's media: a port with the next three (audio, video and their RTCP).
MEDIA_PORTS = PortBlocks(20000, 29999, 4)
#: A SIPp that exits at once on "Address already in use" is run again on other ports this many times
#: (another process, such as a second test session, took them after the check).
BIND_ATTEMPTS = 3


async def place_call(
    script: CallScript,
    host: str,
    port: int,
    *,
    local_ip: str = "127.0.0.1",
    timeout_s: float = 30.0,
) -> CallResult:
    """Run one scripted call against Asterisk at host:port, bounded by ``timeout_s``."""
    target = [f"{host}:{port}", "-s", script.number]
    return await _run_sipp(scenario_xml(script), target, local_ip, None, timeout_s)


async def answer_call(local_ip: str, port: int, *, timeout_s: float = 30.0) -> CallResult:
    """Stand in for the far end of the carrier trunk: answer one INVITE on local_ip:port, then wait
    for Asterisk's BYE. ``received[0]`` is the INVITE's request line (the number Asterisk dialled)."""
    return await _run_sipp(ANSWER_SCENARIO, [], local_ip, port, timeout_s)


async def _run_sipp(
    scenario: str, target: list[str], local_ip: str, sip_port: int | None, timeout_s: float
) -> CallResult:
    """Run SIPp on `sip_port` (None: one of SIP_PORTS) and media ports of its own."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SippError("sipp is not installed (apt-get install sip-tester)")
    for _ in range(BIND_ATTEMPTS - 1):
        with contextlib.suppress(PortTaken):
            return await _run_sipp_on_held_ports(sipp, scenario, target, local_ip, sip_port, timeout_s)
    return await _run_sipp_on_held_ports(sipp, scenario, target, local_ip, sip_port, timeout_s)


async def _run_sipp_on_held_ports(
    sipp: str, scenario: str, target: list[str], local_ip: str, sip_port: int | None, timeout_s: float
) -> CallResult:
    with contextlib.ExitStack() as held:
        media_port = MEDIA_PORTS.take()
        held.callback(MEDIA_PORTS.release, media_port)
        if sip_port is None:
            sip_port = SIP_PORTS.take()
            held.callback(SIP_PORTS.release, sip_port)
        return await _run_sipp_on(sipp, scenario, target, local_ip, sip_port, media_port, timeout_s)


async def _run_sipp_on(
    sipp: str, scenario: str, target: list[str], local_ip: str, sip_port: int, media_port: int, timeout_s: float
) -> CallResult:
    with tempfile.TemporaryDirectory(prefix="sac-sipp-") as tmp:
        work = Path(tmp)
        (work / "scenario.xml").write_text(scenario, encoding="iso-8859-1")
        messages, errors = work / "messages.log", work / "errors.log"
        command = [
            sipp, *target, "-sf", str(work / "scenario.xml"), "-m", "1", "-l", "1",
            "-i", local_ip, "-p", str(sip_port), "-mi", local_ip, "-mp", str(media_port),
            "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error",
            "-trace_msg", "-message_file", str(messages), "-trace_err", "-error_file", str(errors),
        ]  # fmt: skip
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=work, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout_s + 5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SippError(f"sipp did not exit within {timeout_s + 5.0:.0f} s despite -timeout") from None
        except asyncio.CancelledError:
            proc.kill()  # the caller gave up on the call: SIPp must not outlive it
            await proc.wait()
            raise
        duration = time.monotonic() - started
        log, status = _read(messages), cast(int, proc.returncode)  # set once communicate() returns
        if status != 0 and not log:  # SIPp never got as far as sending anything
            detail = stderr.decode(errors="replace").strip() or _read(errors)
            failure = PortTaken if "errno = 98" in detail else SippError
            raise failure(f"sipp failed (exit {status}): {detail[-500:]}")
        problems = "\n".join(p for p in (_read(errors).strip(), stderr.decode(errors="replace").strip()) if p)
        return _outcome(status, log, problems, duration)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _outcome(status: int, messages: str, errors: str, duration: float) -> CallResult:
    final_status: int | None = None
    hung_up_by: Literal["caller", "asterisk"] | None = None
    received: list[str] = []
    # SIPp's message log: a header line per message ("UDP message received [n] bytes :"), then the message.
    for block in re.split(r"^-{10,}.*$", messages, flags=re.MULTILINE):
        direction = re.search(r"^\w+ message (sent|received)", block, re.MULTILINE)  # not "Unexpected ..."
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        start = next((line for line in lines if line.startswith(("SIP/2.0 ", "INVITE ", "BYE ", "ACK "))), None)
        if not direction or start is None:
            continue
        cseq = re.search(r"^CSeq:\s*\d+\s+(\w+)", block, re.MULTILINE | re.IGNORECASE)
        method = cseq.group(1).upper() if cseq else ""
        code = re.match(r"SIP/2\.0 (\d{3})", start)
        if code and method == "INVITE" and int(code.group(1)) >= 200:
            final_status = int(code.group(1))  # received as the caller, sent as the answerer
        if direction.group(1) == "received":
            received.append(start)
            if start.startswith("BYE "):
                hung_up_by = hung_up_by or "asterisk"
        elif start.startswith("BYE "):
            hung_up_by = hung_up_by or "caller"
    answered = final_status is not None and 200 <= final_status < 300
    return CallResult(status, answered, final_status, hung_up_by, duration, errors.strip()[-800:], received)

