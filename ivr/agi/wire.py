"""The FastAGI wire: the ``agi_*`` header block, command quoting, answers, out-of-band ``HANGUP``.

What res_agi.c (Asterisk 22) puts on the socket, and what this module expects:

* On connect, ``agi_network: yes``, ``agi_network_script: sac?lang=pt_BR``, ``agi_request: agi://...``
  and the other ``agi_*: value`` lines, then one empty line. Values are raw bytes (a caller-ID name
  can be anything the far end sent), so they are decoded with replacement, never trusted. res_agi's
  setup_env writes them with ``"agi_callerid: %s\n"``: a line break in the caller's number (decoded from
  a ``%0A`` in the SIP From) splits one line in two. Such a header, and any holding another control
  character, is dropped and named in `AgiRequest.malformed`; the call goes on without it. (The shipped
  dialplan filters caller ID before AGI(), so this is the second line of defence; a blank line injected
  that way would end the block early, which only the dialplan can prevent.)
* Each command is one line, split by ``parse_args()``: blanks separate words, ``"`` toggles quoting,
  ``\\`` makes the next character literal. Every argument is sent quoted and escaped, and CR, LF and
  NUL are refused, so caller data can never end a command early and start a second one.
* Each command gets exactly one answer: ``200 result=N [(data)] [endpos=N]``, optionally preceded by
  ``100 result=0 Trying...``; ``510 Invalid or unknown command``; ``511 Command Not Permitted on a dead
  channel``; ``520 ...`` or a ``520-`` line, free usage text, and a closing ``520 End of proper usage.``
* ``HANGUP`` is written by res_agi's loop *between* commands when the channel goes away, so it may sit
  in front of the answer to the command we just sent. It is not that answer: it is noted, the real
  answer is read (keeping the stream in step), and then `CallerHangup` is raised.

Errors (the engine's two exceptions at the root, foreign errors mapped with ``raise ... from``)::

    ChannelError                      (ivr.engine.channel)
     └── AgiError
          ├── AgiArgumentError        + ValueError: CR/LF/NUL in an argument, command line too long
          ├── AgiProtocolError        malformed header block or answer (a result= that is no C int, a key
          │                           code that is no DTMF key), line or answer too long
          ├── AgiTimeout              + TimeoutError: no (complete) answer in time
          └── AgiCommandError         510 / 520 / 503: Asterisk refused the command (.status, .text)
    CallerHangup                      (ivr.engine.channel)
     ├── AgiHangup                    HANGUP line or 511 (dead channel)
     └── AgiConnectionLost            + ConnectionError: Asterisk closed the socket
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from urllib.parse import parse_qsl, urlencode, urlsplit

from ivr.engine.channel import CallerHangup, ChannelError
from ivr.engine.deadline import LazyDeadline
from ivr.text import has_control

#: Longest line we accept from Asterisk (its own buffers are 1-2 KiB; GET VARIABLE values fit in 1 KiB).
MAX_LINE = 8192
#: res_agi reads a command into ``char buf[AGI_BUF_LEN]`` (2048): longer lines would be cut in two.
MAX_COMMAND = 2047
#: Upper bounds that keep a misbehaving peer from making us read forever.
MAX_HEADER_LINES = 200
MAX_USAGE_LINES = 200
MAX_TRYING = 100
#: How long closing a call's socket may wait for the peer to take what is left unsent.
CLOSE_TIMEOUT_S = 2.0


class AgiStatus(IntEnum):
    """Status codes res_agi answers with."""

    TRYING = 100
    SUCCESS = 200
    MEMORY_FAILURE = 503
    INVALID_COMMAND = 510
    DEAD_CHANNEL = 511
    USAGE_ERROR = 520


class AgiError(ChannelError):
    """Base of the AGI wire errors."""


class AgiArgumentError(AgiError, ValueError):
    """An argument cannot be sent safely (CR, LF or NUL inside, or the command line is too long)."""


class AgiProtocolError(AgiError):
    """The peer sent something res_agi never sends (malformed or oversized line or header block)."""


class AgiTimeout(AgiError, TimeoutError):
    """No complete answer in time; the connection is closed, since a late answer would desynchronise it."""


class AgiCommandError(AgiError):
    """Asterisk refused the command (510 unknown, 520 usage, 503 memory)."""

    def __init__(self, status: int, text: str, command: str) -> None:
        super().__init__(f"{command}: Asterisk answered {status} {text}")
        self.status = status
        self.text = text
        self.command = command


class AgiHangup(CallerHangup):
    """Asterisk said the channel hung up (``HANGUP`` line, or ``511`` for a dead channel)."""


class AgiConnectionLost(CallerHangup, ConnectionError):
    """Asterisk closed the FastAGI socket: the call is over for us."""


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The header block Asterisk sends when a call reaches ``AGI(agi://host:port/<flow>?<params>)``."""

    headers: Mapping[str, str]
    malformed: tuple[str, ...] = ()  # headers dropped: a line break or control character in the value

    @property
    def script(self) -> str:
        """The request path with its query, e.g. ``sac?lang=pt_BR``."""
        script = self.headers.get("agi_network_script")
        if script is not None:
            return script
        split = urlsplit(self.headers.get("agi_request", ""))
        return split.path + (f"?{split.query}" if split.query else "")

    @property
    def flow(self) -> str:
        """The flow name the path routes to: ``sac`` for ``agi://127.0.0.1:4574/sac?lang=pt_BR``."""
        return self.script.partition("?")[0].strip("/")

    @property
    def params(self) -> dict[str, str]:
        """The request query as a mapping (last value wins)."""
        return dict(parse_qsl(self.script.partition("?")[2], keep_blank_values=True))

    def without_param(self, name: str) -> AgiRequest:
        """The same request without query parameter `name` in its path (a key nothing after the door sees)."""

        def stripped(value: str) -> str:
            path, _, query = value.partition("?")
            kept = [(key, item) for key, item in parse_qsl(query, keep_blank_values=True) if key != name]
            return path + (f"?{urlencode(kept)}" if kept else "")

        paths = ("agi_network_script", "agi_request")
        headers = {key: stripped(value) if key in paths else value for key, value in self.headers.items()}
        return replace(self, headers=headers)

    def get(self, name: str) -> str | None:
        """A header value, with Asterisk's ``unknown`` placeholder (and empty) read as missing."""
        value = self.headers.get(name)
        return None if value in (None, "", "unknown") else value


@dataclass(frozen=True, slots=True)
class AgiResponse:
    """One final answer: ``200 result=<result> (<data>) endpos=<endpos>``."""

    status: AgiStatus
    result: int
    data: str = ""
    endpos: int | None = None
    raw: str = ""


_STATUS_LINE = re.compile(r"(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)\Z", re.DOTALL)
# res_agi prints result= with "%d": a C int, then a blank or the end. "result=12abc" is not 12.
_RESULT = re.compile(r"result=(?P<result>-?\d{1,10})(?P<tail>(?:\s.*)?)\Z", re.DOTALL)
RESULT_RANGE = range(-(2**31), 2**31)
_ENDPOS = re.compile(r"(?:^|\s)endpos=(?P<endpos>-?\d+)\s*\Z")
_COMMAND_WORDS = re.compile(r"[A-Z]+(?: [A-Z]+)*\Z")


def quote(argument: str | int) -> str:
    """One argument, quoted and escaped for res_agi's ``parse_args`` (refuses CR, LF and NUL)."""
    text = str(argument)
    for bad, name in (("\r", "CR"), ("\n", "LF"), ("\0", "NUL")):
        if bad in text:
            # The value is often caller data (a caller-ID name): say where, never what.
            raise AgiArgumentError(
                f"AGI argument contains {name} at position {text.index(bad)} of {len(text)}; refusing to send it"
            )
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(command: str, *arguments: str | int) -> bytes:
    """``STREAM FILE "sac/pt_BR/welcome" "0123456789*#"`` plus the newline, as bytes."""
    if not _COMMAND_WORDS.match(command):
        raise AgiArgumentError(f"not an AGI command name: {command!r}")
    line = " ".join([command, *(quote(a) for a in arguments)])
    data = line.encode("utf-8")
    if len(data) > MAX_COMMAND:
        raise AgiArgumentError(f"{command}: command line is {len(data)} bytes, res_agi reads at most {MAX_COMMAND}")
    return data + b"\n"


def parse_status_line(line: str) -> tuple[int, bool, str]:
    """``(code, continues, text)`` of ``200 result=1`` / ``520-Invalid...``; raises AgiProtocolError."""
    match = _STATUS_LINE.match(line)
    if not match:
        raise AgiProtocolError(f"unexpected line from Asterisk: {line[:80]!r}")
    return int(match["code"]), match["sep"] == "-", match["rest"]


def parse_result(code: int, text: str, raw: str) -> AgiResponse:
    """The ``result=N (data) endpos=N`` part of a 100/200 line."""
    match = _RESULT.match(text)
    if not match or int(match["result"]) not in RESULT_RANGE:
        raise AgiProtocolError(f"answer without an integer result=: {raw[:80]!r}")
    tail = match["tail"].strip()
    endpos: int | None = None
    found = _ENDPOS.search(tail)
    if found:
        endpos = int(found["endpos"])
        tail = tail[: found.start()].strip()
    if tail.startswith("(") and tail.endswith(")"):
        tail = tail[1:-1]  # the value may itself hold parentheses: keep everything between the outer pair
    return AgiResponse(AgiStatus(code), int(match["result"]), tail, endpos, raw)


def _decode(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("utf-8", errors="replace")


async def read_line(reader: asyncio.StreamReader, timeout: float) -> str | None:
    """One line without its newline, within `timeout`; None at a clean EOF."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_line(reader)
    except TimeoutError as exc:
        raise AgiTimeout(f"no line from Asterisk within {timeout:g} s") from exc


async def _read_line(reader: asyncio.StreamReader) -> str | None:
    """One line without its newline; None at a clean EOF. Bounded in size; in time by the caller (a
    deadline round the whole header block, or an exchange's `LazyDeadline`)."""
    try:
        data = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise AgiConnectionLost(f"Asterisk closed the connection inside a line ({len(exc.partial)} bytes)") from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise AgiProtocolError(f"line longer than {MAX_LINE} bytes from Asterisk") from exc
    except ConnectionError as exc:
        raise AgiConnectionLost(f"connection to Asterisk lost: {exc}") from exc
    return _decode(data)


async def read_request(reader: asyncio.StreamReader, *, timeout: float) -> AgiRequest:
    """Read the ``agi_*`` block up to its empty line. EOF before that is an `AgiProtocolError`."""
    headers: dict[str, str] = {}
    try:
        async with asyncio.timeout(timeout):
            return await _read_headers(reader, headers)
    except TimeoutError as exc:
        raise AgiTimeout(f"no complete agi_* block within {timeout:g} s ({len(headers)} lines read)") from exc


async def _read_headers(reader: asyncio.StreamReader, headers: dict[str, str]) -> AgiRequest:
    malformed: list[str] = []
    previous = ""
    for _ in range(MAX_HEADER_LINES):
        try:
            line = await _read_line(reader)  # read_request bounds the whole block
        except AgiConnectionLost as exc:
            raise AgiProtocolError(
                "peer closed the connection before the end of the agi_* block, inside a line "
                f"({len(headers)} lines read)"
            ) from exc
        if line is None:
            raise AgiProtocolError(
                f"peer closed the connection before the end of the agi_* block ({len(headers)} lines read)"
            )
        if line == "":
            return AgiRequest(headers, tuple(malformed))
        name, sep, value = line.partition(": ")
        if sep and name.startswith("agi_") and name not in headers:
            previous = name
            if not has_control(value):
                headers[name] = value
                continue
        elif not previous:
            raise AgiProtocolError(f"expected 'agi_<name>: <value>' in the header block, got {line[:80]!r}")
        # A value holding a control character, or the rest of the previous one, cut by a line break (a
        # repeated name is such a rest too): the previous header is incomplete, and it is dropped.
        headers.pop(previous, None)
        if previous not in malformed:
            malformed.append(previous)
    raise AgiProtocolError(f"agi_* block longer than {MAX_HEADER_LINES} lines")


class AgiConnection:
    """One call's socket: sends a command, reads its one answer, notes an out-of-band ``HANGUP``.

    Commands are paired with answers under a lock (one command in flight). After a timeout or a
    protocol error the connection is closed: a late answer would otherwise be read as the answer to
    the next command.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: AgiRequest) -> None:
        self.request = request
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._hangup_seen = False
        self._broken: AgiError | None = None
        self._deadline = LazyDeadline(self._timed_out)  # one timer for the call's exchanges
        self._in_flight = ("", 0.0)  # the exchange's command and bound, for the time-out's message

    @property
    def peer(self) -> str:
        """The Asterisk at the other end: its address (one unit may serve several)."""
        peer = self._writer.get_extra_info("peername")
        return str(peer[0]) if peer else ""

    @property
    def hung_up(self) -> bool:
        """True once Asterisk said HANGUP or 511, or closed the socket."""
        return self._hangup_seen

    async def execute(
        self, command: str, *arguments: str | int, timeout: float, after_hangup: bool = False
    ) -> AgiResponse:
        """Send one command and return its final 200 answer.

        Raises `AgiHangup` (HANGUP seen, or 511), `AgiCommandError` (510/520/503), `AgiTimeout`,
        `AgiProtocolError`, `AgiConnectionLost`, `AgiArgumentError` (nothing sent). With
        ``after_hangup`` a command res_agi runs on a dead channel (GET VARIABLE) is still sent and
        answered after a HANGUP, to learn how the call ended.
        """
        line = format_command(command, *arguments)
        async with self._lock:
            if self._broken is not None:
                raise AgiConnectionLost(f"{command}: connection already closed after: {self._broken}")
            if self._hangup_seen and not after_hangup:
                raise AgiHangup(f"{command}: the caller already hung up")
            try:
                answer = await self._exchange(line, command, timeout)
            except (AgiTimeout, AgiProtocolError) as exc:
                self._break(exc)
                raise
            except CallerHangup:
                raise
            except ConnectionError as exc:
                self._hangup_seen = True
                raise AgiConnectionLost(f"{command}: connection to Asterisk lost: {exc}") from exc
        if self._hangup_seen and not after_hangup:
            raise AgiHangup(f"{command}: the caller hung up ({answer.raw})")
        return answer

    async def hangup_follows(self, grace_s: float) -> bool:
        """After a ``result=-1`` answer: does a HANGUP line (or EOF) follow within ``grace_s``?

        res_agi answers an interrupted command first and writes HANGUP on its next loop turn, so a
        -1 caused by a hang-up is followed by HANGUP at once; a -1 for another reason (a missing sound
        file) is followed by nothing.
        """
        async with self._lock:
            if self._hangup_seen:
                return True
            try:
                line = await read_line(self._reader, grace_s)
            except AgiTimeout:
                return False
            except AgiConnectionLost:
                line = None
            if line is None or line == "HANGUP":
                self._hangup_seen = True
                return True
            error = AgiProtocolError(f"unexpected line between commands: {line[:80]!r}")
            self._break(error)
            raise error

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Close the socket (Asterisk then continues the dialplan after ``AGI()``).

        A peer that stops reading leaves unsent bytes in the buffer, and ``wait_closed`` waits for them
        for ever: past `timeout_s` the transport is aborted, so a stalled Asterisk never holds a call task.
        """
        self._deadline.stop()
        if not self._writer.is_closing():
            self._writer.close()
        try:
            async with asyncio.timeout(timeout_s):
                await self._writer.wait_closed()
        except ConnectionError:
            pass  # the peer went first; the socket is closed either way
        except TimeoutError:
            self._writer.transport.abort()

    def _timed_out(self) -> None:
        command, timeout = self._in_flight
        # The pending read fails with it; the exchange then breaks the connection.
        self._reader.set_exception(AgiTimeout(f"{command}: no answer from Asterisk within {timeout:g} s"))

    def _break(self, error: AgiError) -> None:
        self._broken = error
        self._deadline.stop()
        self._writer.close()

    async def _exchange(self, line: bytes, command: str, timeout: float) -> AgiResponse:
        """Write the command and read lines until its final answer, all within one deadline."""
        self._in_flight = (command, timeout)
        self._deadline.start(timeout)
        try:
            self._writer.write(line)
            await self._writer.drain()
            for _ in range(MAX_TRYING + 2):
                answer = await self._next_line(command)
                code, continues, text = parse_status_line(answer)
                if code == AgiStatus.TRYING:
                    continue
                if code == AgiStatus.SUCCESS:
                    return parse_result(code, text, answer)
                if code == AgiStatus.DEAD_CHANNEL:
                    self._hangup_seen = True
                    raise AgiHangup(f"{command}: {answer}")
                if continues:
                    text = await self._read_usage(command, text)
                raise AgiCommandError(code, text, command)
        finally:
            self._deadline.end()
        raise AgiProtocolError(f"{command}: more than {MAX_TRYING} '100 Trying' lines")

    async def _next_line(self, command: str) -> str:
        """The next line that is not an out-of-band HANGUP (which is noted)."""
        for _ in range(3):  # res_agi writes HANGUP when the channel goes, and again as its loop ends
            line = await _read_line(self._reader)  # _exchange bounds the whole exchange
            if line is None:
                self._hangup_seen = True
                raise AgiConnectionLost(f"{command}: Asterisk closed the connection before answering")
            if line != "HANGUP":
                return line
            self._hangup_seen = True
        raise AgiProtocolError(f"{command}: HANGUP repeated instead of an answer")

    async def _read_usage(self, command: str, first: str) -> str:
        """The rest of a ``520-`` answer, up to the ``520 End of proper usage.`` line."""
        lines = [first]
        for _ in range(MAX_USAGE_LINES):
            line = await self._next_line(command)
            if line.startswith(f"{AgiStatus.USAGE_ERROR.value} "):
                return "\n".join(lines)
            lines.append(line)
        raise AgiProtocolError(f"{command}: 520 usage text longer than {MAX_USAGE_LINES} lines")
