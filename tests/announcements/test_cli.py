"""What a supervisor sees and does: `ivr announce add` (audio built at once, bad input refused with one
line and exit 2, nothing kept), `list` (`--all`), `end`. The command reads the system clock, so times
are written as durations from now, or far in the past."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.cli import announce as cli
from ivr.clock import system_clock
from ivr.config import settings
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.seed import seed

TEXT = "Atenção: manutenção emergencial em Belo Horizonte até as dezoito horas."


@pytest.fixture
def prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The announcements' audio goes to a directory of the test's own."""
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(tmp_path / "prompts"))
    settings.cache_clear()
    yield tmp_path / "prompts"
    settings.cache_clear()


@pytest.fixture
async def url(tmp_path: Path) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"
    store = Store(database)
    await upgrade(store)
    await seed(store, now=system_clock())
    await store.aclose()
    return database


async def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["announce", *argv, "--url", url])
    status = await args.handler(args)
    out, err = capsys.readouterr()
    return status, out, err


async def test_add_list_and_end(prompts: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = await run(
        capsys, url, "add", "--text", TEXT, "--scope", "city:belo horizonte", "--until", "2h", "--by", "marta"
    )
    assert (status, err) == (0, "")
    found = re.fullmatch(
        r'announcement 1: city:Belo Horizonte until \d{4}-\d\d-\d\d \d\d:\d\d, (\d+\.\d) s of audio: "(.*)"\n', out
    )
    assert found and 2.0 < float(found[1]) <= 30.0 and found[2] == TEXT
    assert len(list((prompts / "audio" / "announce").glob("*.alaw"))) == 1

    status, out, _ = await run(capsys, url, "list")
    assert status == 0 and out.startswith("#1 in force: city:Belo Horizonte until ") and out.endswith(", by marta\n")

    assert (await run(capsys, url, "end", "1"))[:2] == (
        0, f'announcement 1 ended: callers hear it no more (city:Belo Horizonte: "{TEXT}")\n',
    )  # fmt: skip
    assert (await run(capsys, url, "list"))[1] == "no announcements in force\n"
    assert (await run(capsys, url, "list", "--all"))[1].startswith("#1 ended: city:Belo Horizonte")
    status, _, err = await run(capsys, url, "end", "1")
    assert status == 1 and "no announcement 1 in force" in err


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--text", " ", "--scope", "all", "--until", "2h"], "the text is empty"),
        (["--text", TEXT, "--scope", "everyone", "--until", "2h"], "scope 'everyone': write all, city:<city>"),
        (["--text", TEXT, "--scope", "city:Belo Horizonte", "--until", "2000-01-01 10:00"], "is already past"),
        (["--text", TEXT, "--scope", "city:Belo Horizonte", "--until", "amanhã"], "--until 'amanhã' is not a date"),
        (["--text", TEXT, "--scope", "city:Recife", "--until", "2h"], "no customer has a circuit there"),
    ],
)
async def test_bad_input_is_refused_in_one_line_and_nothing_kept(
    prompts: Path, url: str, capsys: pytest.CaptureFixture[str], argv: list[str], why: str
) -> None:
    status, out, err = await run(capsys, url, "add", *argv)
    assert status == 2 and out == "" and why in err
    assert err.startswith("ivr announce add: ") and err.endswith("; nothing was kept\n") and err.count("\n") == 1
    assert (await run(capsys, url, "list", "--all"))[1] == "no announcements\n"
