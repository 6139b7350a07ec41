"""A whole call while the speech endpoint is down: the caller's spoken answer cannot be understood, so
the menu asks for keys, and the call goes on by keys to where the caller wanted."""

from __future__ import annotations

import time
import wave
from collections.abc import Mapping
from pathlib import Path

from ivr.app import build_services
from ivr.clock import ManualClock
from ivr.config import load_settings
from ivr.engine.context import Outcome
from ivr.engine.flow import Flow
from ivr.voice.catalogue import Catalogue
from tests.speech.test_spoken_answers import RecordingCaller

from .conftest import TUESDAY_10H, call, free_port, seeded_sqlite, words


def recording(path: Path) -> Path:
    """A second of what RECORD FILE writes (8 kHz 16-bit mono WAV); nobody will transcribe it."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * 8000)
    return path


async def test_speech_down_the_menu_falls_back_to_keys(
    tmp_path: Path, sac_flows: Mapping[str, Flow], catalogue: Catalogue
) -> None:
    settings = load_settings(
        database_url=await seeded_sqlite(tmp_path),
        var_dir=tmp_path,
        speech={"endpoint": f"127.0.0.1:{free_port()}", "insecure": True, "timeout_s": 1.0},
    )
    async with build_services(settings, clock=ManualClock(TUESDAY_10H)) as services:
        started = time.monotonic()
        result, line = await call(
            sac_flows, services, settings, ["say:suporte técnico", "1", "0"],
            channel=RecordingCaller, recording=recording(tmp_path / "said.wav"),
        )  # fmt: skip
        elapsed = time.monotonic() - started
    heard = words(catalogue, line)
    assert catalogue.render_text(["speech/use_keys"]) in heard
    assert (result.outcome, result.target) == (Outcome.QUEUE, "technical")
    assert result.path[-2:] == ["technical", "technical_queue"] and "main_menu" in result.path
    assert elapsed < settings.speech.timeout_s + 2  # the caller waited one recognition time-out at most
