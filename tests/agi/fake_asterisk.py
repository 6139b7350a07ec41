"""Asterisk's side of a FastAGI call, over a real loopback socket, replaying res_agi's answers.

The answers below are the lines res_agi.c writes (``ast_agi_send`` format strings in Asterisk 22).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from ivr.config import Settings, load_settings
from ivr.voice.build import AUDIO_SUBDIR, MANIFEST, ManifestEntry

#: Every wait in these tests is bounded by this (an event that never comes fails the test).
WAIT_S = 5.0


def header_block(script: str = "sac?lang=pt_BR", **overrides: str) -> bytes:
    """The block res_agi's launch_netscript + setup_env send, in their order."""
    headers = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:4574/{script}",
        "agi_channel": "PJSIP/carrier-00000007",
        "agi_language": "pt_BR",
        "agi_type": "PJSIP",
        "agi_uniqueid": "1764070000.17",
        "agi_version": "22.6.0",
        "agi_callerid": "1133334444",
        "agi_calleridname": "unknown",
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": "30033336",
        "agi_rdnis": "unknown",
        "agi_context": "sac-inbound",
        "agi_extension": "30033336",
        "agi_priority": "3",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140248394311360",
    }
    headers.update(overrides)
    return "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n"


def parse_args(line: str) -> list[str]:
    """res_agi.c's parse_args(), line for line: how Asterisk splits a command into words."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                argv.append("")
                whitespace = False
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            if cur is not None:
                argv[-1] = "".join(cur)
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            argv.append("")
            whitespace = False
        assert cur is not None
        cur.append(ch)
        escaped = False
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv


class FakeAsterisk:
    """One call as Asterisk: sends the header block, then answers each command it expects."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    #: Every peer made, so a fixture can close the ones a test leaves open.
    opened: list[FakeAsterisk] = []

    @classmethod
    async def call(cls, port: int, block: bytes | None = None, **headers: str) -> FakeAsterisk:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT_S)
        writer.write(header_block(**headers) if block is None else block)
        await writer.drain()
        peer = cls(reader, writer)
        cls.opened.append(peer)
        return peer

    async def started(self, linked_id: str = "1764070000.17") -> None:
        """The first command of every call: the channel asks for Asterisk's linkedid."""
        await self.expect('GET VARIABLE "CHANNEL(linkedid)"', f"200 result=1 ({linked_id})")

    async def command(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), WAIT_S)
        assert line.endswith(b"\n"), f"expected a command line, got {line!r} (EOF?)"
        return line[:-1].decode()

    async def expect(self, command: str, *answer: str) -> str:
        line = await self.command()
        assert line == command, f"expected {command!r}, got {line!r}"
        await self.send(*answer)
        return line

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(f"{line}\n" for line in lines).encode())
        await self.writer.drain()

    async def closed_by_ivr(self) -> bool:
        """True when the IVR closed the socket (EOF) without sending anything more."""
        rest = await asyncio.wait_for(self.reader.read(), WAIT_S)
        assert rest == b"", f"unexpected bytes before EOF: {rest!r}"
        self.close()
        return True

    def close(self) -> None:
        self.writer.close()


def settings_for_tests(
    tmp_path: Path, prompt_lengths: Mapping[str, float] | None = None, **agi: float | str
) -> Settings:
    """Settings for one test; `prompt_lengths` is the audio build's manifest it sees (none: no prompt
    has a built length)."""
    values: dict[str, float | str] = {"command_timeout_s": 2.0, "drain_timeout_s": 2.0, "header_timeout_s": 2.0, **agi}
    prompts = tmp_path / "prompts"
    if prompt_lengths is not None:
        entries = {pid: ManifestEntry("tts", "", "pt-br", seconds, "") for pid, seconds in prompt_lengths.items()}
        (prompts / AUDIO_SUBDIR).mkdir(parents=True)
        (prompts / AUDIO_SUBDIR / MANIFEST).write_text(
            json.dumps({"prompts": {k: asdict(v) for k, v in entries.items()}})
        )
    return load_settings(
        agi=values, asterisk={"recordings_dir": str(tmp_path)}, var_dir=str(tmp_path), prompts_dir=str(prompts)
    )
