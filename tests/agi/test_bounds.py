"""An announcement is bounded by its own built length, like a prompt: a 25 s one is not cut at the
instant commands' bound, sending the caller to the fallback queue."""

from __future__ import annotations

import json
from pathlib import Path

from ivr.agi.bounds import CommandBounds
from ivr.config import load_settings


def test_an_announcement_is_bounded_by_its_built_length(tmp_path: Path) -> None:
    conf = load_settings().model_copy(update={"prompts_dir": tmp_path})
    (tmp_path / "audio" / "announce").mkdir(parents=True)
    entry = {"source": "tts", "hash": "h", "voice": "pt-br", "duration_s": 25.0, "text": "Aviso."}
    (tmp_path / "audio" / "announce" / "a1.json").write_text(json.dumps(entry), encoding="utf-8")
    bounds = CommandBounds(conf)
    bounds.refresh()

    bound = bounds.prompt("announce/a1")
    assert bound.seconds == 25.0 + conf.agi.margin_s and "announce/a1 lasts 25.0 s" in bound.why
    assert bounds.prompt("announce/unknown").seconds == conf.agi.command_timeout_s
