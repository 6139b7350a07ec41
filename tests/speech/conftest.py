"""The speech fake and a real recording made the way Asterisk makes one (8 kHz 16-bit mono WAV)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.config import SpeechSettings

from .fake_speech import FakeSpeech


@pytest.fixture
async def fake_speech() -> AsyncIterator[FakeSpeech]:
    server = FakeSpeech()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def speech_settings(fake_speech: FakeSpeech) -> SpeechSettings:
    return SpeechSettings(endpoint=fake_speech.endpoint, insecure=True, timeout_s=1.0, min_confidence=0.6)


@pytest.fixture(scope="session")
def spoken_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """"segunda via do boleto" said by espeak-ng, resampled by sox to what RECORD FILE writes."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("needs espeak-ng and sox installed")
    folder = tmp_path_factory.mktemp("speech")
    raw, wav = folder / "raw.wav", folder / "said.wav"
    subprocess.run(["espeak-ng", "-v", "pt-br", "-w", str(raw), "segunda via do boleto"], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(wav)], check=True)
    return wav
