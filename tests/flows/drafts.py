"""A supervisor's draft of flows in a temporary directory, edited and handed to `ivr flow ...`: shared by the
tests of releases (history, diff, rollback) and of the impact of a draft."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "data" / "flows"


def new_draft(tmp_path: Path) -> Path:
    """A flows directory holding the minimal good flow."""
    directory = tmp_path / "flows"
    directory.mkdir()
    shutil.copy(FIXTURES / "good" / "minimal.yaml", directory)
    return directory


def edit(draft: Path, old: str, new: str) -> None:
    path = draft / "minimal.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`ivr flow <args>`: its exit status, what it printed and what it said on stderr."""
    status = main(["flow", *args])
    out, err = capsys.readouterr()
    return status, out, err
