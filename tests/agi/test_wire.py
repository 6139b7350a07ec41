"""The AGI wire on its own: quoting against res_agi's parser, answers as res_agi writes them."""

from __future__ import annotations

import asyncio

import pytest

from ivr.agi.wire import (
    MAX_COMMAND,
    AgiArgumentError,
    AgiConnection,
    AgiProtocolError,
    AgiRequest,
    AgiStatus,
    AgiTimeout,
    format_command,
    parse_result,
    parse_status_line,
    read_request,
)
from ivr.engine.channel import ChannelError

from .fake_asterisk import header_block, parse_args

HOSTILE_NAMES = [
    'Evil" "x',
    "back\\slash\\",
    '"\\"',
    "tab\tand  spaces",
    'HANGUP" EXEC System "rm -rf /',
    "João da Silva (Matriz)",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_any_argument_reaches_asterisk_as_one_word(name: str) -> None:
    line = format_command("SET VARIABLE", "IVR_CALLER_NAME", name)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert parse_args(line[:-1].decode()) == ["SET", "VARIABLE", "IVR_CALLER_NAME", name]


@pytest.mark.parametrize("bad", ["a\nEXEC System x", "a\rb", "nul\0"])
def test_line_breaks_and_nul_are_refused(bad: str) -> None:
    with pytest.raises(AgiArgumentError, match="refusing"):
        format_command("SET VARIABLE", "X", bad)


def test_argument_errors_are_channel_errors_and_value_errors() -> None:
    with pytest.raises(ChannelError):
        format_command("SET VARIABLE", "X", "\n")
    with pytest.raises(ValueError, match="res_agi reads at most"):
        format_command("SET VARIABLE", "X", "x" * MAX_COMMAND)
    with pytest.raises(ValueError, match="not an AGI command"):
        format_command("STREAM FILE\nEXEC", "x")


@pytest.mark.parametrize(
    ("line", "result", "data", "endpos"),
    [
        ("200 result=0 endpos=11520", 0, "", 11520),
        ("200 result=49 endpos=3040", 49, "", 3040),
        ("200 result=-1 endpos=0", -1, "", 0),
        ("200 result=1 (1764070000.17)", 1, "1764070000.17", None),
        ("200 result=1 (PJSIP/agent (sala 2))", 1, "PJSIP/agent (sala 2)", None),
        ("200 result=0", 0, "", None),
        ("200 result=35 (dtmf) endpos=16000", 35, "dtmf", 16000),
        ("200 result=-1 (hangup) endpos=800", -1, "hangup", 800),
        ("200 result=0 (timeout) endpos=40000", 0, "timeout", 40000),
        ("100 result=0 Trying...", 0, "Trying...", None),
    ],
)
def test_answers_as_res_agi_writes_them(line: str, result: int, data: str, endpos: int | None) -> None:
    code, continues, text = parse_status_line(line)
    answer = parse_result(code, text, line)
    assert (answer.result, answer.data, answer.endpos, continues) == (result, data, endpos, False)


@pytest.mark.parametrize(
    "line", ["200 result=12abc", "200 result=abc", "200 result=", "200 result=99999999999", "200 result=1.5"]
)
def test_a_result_that_is_not_a_c_int_is_a_protocol_error(line: str) -> None:
    code, _, text = parse_status_line(line)
    with pytest.raises(AgiProtocolError, match="integer result="):
        parse_result(code, text, line)


class _StalledWriter:
    """A socket whose peer stopped reading: wait_closed never returns, until the transport is aborted."""

    def __init__(self) -> None:
        self.aborted = asyncio.Event()
        self.transport = self

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted.set()

    async def wait_closed(self) -> None:
        await self.aborted.wait()


async def test_closing_a_connection_to_a_stalled_peer_is_bounded_and_aborts_it() -> None:
    writer = _StalledWriter()
    conn = AgiConnection(asyncio.StreamReader(), writer, AgiRequest({}))  # type: ignore[arg-type]
    async with asyncio.timeout(2):
        await conn.close(timeout_s=0.05)
    assert writer.aborted.is_set()


def test_usage_answer_continues_and_codes_are_named() -> None:
    assert parse_status_line("520-Invalid command syntax.  Proper usage follows:") == (
        AgiStatus.USAGE_ERROR,
        True,
        "Invalid command syntax.  Proper usage follows:",
    )
    assert AgiStatus(511) is AgiStatus.DEAD_CHANNEL
    with pytest.raises(AgiProtocolError):
        parse_status_line("garbage")


async def _reader_with(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=8192)
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_header_block_is_read_up_to_the_blank_line() -> None:
    reader = await _reader_with(header_block("sac?lang=pt_BR&x=1") + b"STREAM...")
    request = await read_request(reader, timeout=1)
    assert request.flow == "sac"
    assert request.params == {"lang": "pt_BR", "x": "1"}
    assert request.get("agi_calleridname") is None  # Asterisk's "unknown"
    assert await reader.read() == b"STREAM..."  # nothing after the block is eaten


async def test_header_values_with_bad_bytes_are_decoded_with_replacement() -> None:
    reader = await _reader_with(b"agi_network: yes\nagi_calleridname: Jo\xe3o\n\n")
    request = await read_request(reader, timeout=1)
    assert request.headers["agi_calleridname"] == "Jo\ufffdo"


@pytest.mark.parametrize(
    ("number", "name"),
    [
        ("3133334444\n5", "Ana"),  # a line break splits the number's line: the rest is no header
        ("3133334444\nagi_network_script: billing", "Ana"),  # nor is a header name seen before
        ("3133334444\n\x1b[2J", "An\ra"),  # a control character where a value should be text
    ],
    ids=["rest-of-value", "injected-header", "control-characters"],
)
async def test_a_caller_id_broken_by_control_characters_is_dropped_and_the_block_read_on(
    number: str, name: str
) -> None:
    reader = await _reader_with(header_block(agi_callerid=number, agi_calleridname=name) + b"STREAM...")
    request = await read_request(reader, timeout=1)
    assert request.get("agi_callerid") is None and request.flow == "sac"
    assert request.headers["agi_threadid"] == "140248394311360"  # what followed is read as usual
    assert "agi_callerid" in request.malformed
    assert ("agi_calleridname" in request.malformed) == (name != "Ana")
    assert await reader.read() == b"STREAM..."


async def test_a_peer_that_is_not_asterisk_is_refused_at_its_first_line() -> None:
    with pytest.raises(AgiProtocolError, match="expected 'agi_<name>: <value>'"):
        await read_request(await _reader_with(b"GET / HTTP/1.1\nHost: x\n\n"), timeout=1)


@pytest.mark.parametrize(
    "data", [b"", b"agi_network: yes\n", b"agi_network: yes\nagi_request: agi://127.0.0.1/sa"]
)
async def test_eof_before_the_end_of_the_block_is_an_error_not_a_hang(data: bytes) -> None:
    with pytest.raises(AgiProtocolError, match="before the end of the agi_"):
        await read_request(await _reader_with(data), timeout=1)


async def test_a_silent_peer_times_out() -> None:
    with pytest.raises(AgiTimeout, match="agi_\\* block"):
        await read_request(await _reader_with(b"agi_network: yes\n", eof=False), timeout=0.05)


async def test_oversized_header_line_is_refused() -> None:
    with pytest.raises(AgiProtocolError, match="longer than"):
        await read_request(await _reader_with(b"agi_x: " + b"a" * 9000 + b"\n\n"), timeout=1)


async def test_request_path_without_network_script_falls_back_to_agi_request() -> None:
    reader = await _reader_with(b"agi_request: agi://127.0.0.1:4574/billing?lang=pt_BR\n\n")
    request = await read_request(reader, timeout=1)
    assert (request.flow, request.params) == ("billing", {"lang": "pt_BR"})


async def _connection_to(answers: list[tuple[float, bytes]]) -> AgiConnection:
    """A connection to a peer that answers each command line with `answers`' next line after its delay
    (None: never)."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for delay, answer in answers:
            await reader.readline()
            await asyncio.sleep(delay)
            writer.write(answer)
        await reader.read()  # then silent until the IVR closes

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    server.close()
    return AgiConnection(reader, writer, AgiRequest({}))


async def test_each_exchange_is_bounded_by_its_own_time_out_after_a_longer_one() -> None:
    conn = await _connection_to([(0.0, b"200 result=0\n"), (60.0, b"200 result=0\n")])
    loop = asyncio.get_running_loop()
    assert (await conn.execute("ANSWER", timeout=30)).result == 0
    started = loop.time()
    with pytest.raises(AgiTimeout, match=r"^WAIT FOR DIGIT: no answer from Asterisk within 0.2 s$"):
        await conn.execute("WAIT FOR DIGIT", 100, timeout=0.2)
    assert 0.2 <= loop.time() - started < 5  # not the first exchange's 30 s
    await conn.close()


async def test_a_longer_exchange_outlives_the_bound_of_the_shorter_one_before_it() -> None:
    conn = await _connection_to([(0.0, b"200 result=0\n"), (0.4, b"200 result=49\n")])
    assert (await conn.execute("ANSWER", timeout=0.1)).result == 0
    # The first exchange's bound passes while this one waits: it still gets its answer.
    assert (await conn.execute("WAIT FOR DIGIT", 5000, timeout=5)).result == 49
    await conn.close()
