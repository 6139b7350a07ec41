"""Speech recognition back-ends: what they share.

Until a speech endpoint is configured, `NoSpeechBackend` refuses audio: the engine then treats the
answer as not understood and falls back to DTMF, which every menu offers. Typed transcripts (the
simulator, flow tests) never reach a recogniser. `read_recording` turns the WAV file Asterisk's
``RECORD FILE ... wav`` wrote into the raw samples a recogniser is sent.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

from ivr.engine.ports import Heard, Recognition, RecognitionError

#: Asterisk's "wav" format: 8 kHz, 16-bit signed little-endian, mono (what a phone call carries).
SAMPLE_RATE_HZ = 8000
SAMPLE_WIDTH_BYTES = 2


class NoSpeechBackend:
    listens = False

    async def recognise(self, heard: Heard, *, phrase_hints: Sequence[str] = ()) -> Recognition:
        raise RecognitionError("no speech back-end is configured")

    async def aclose(self) -> None:
        """Nothing to release (the same lifecycle as `GoogleRecognizer`)."""


def read_recording(path: Path) -> bytes:
    """The LINEAR16 samples of a recording, header stripped; `RecognitionError` when the file is missing
    or not 8 kHz 16-bit mono PCM (sending anything else would be transcribed as noise)."""
    try:
        with wave.open(str(path), "rb") as wav:
            shape = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getcomptype())
            if shape != (1, SAMPLE_WIDTH_BYTES, SAMPLE_RATE_HZ, "NONE"):
                channels, width, rate, compression = shape
                raise RecognitionError(
                    f"{path}: expected 8000 Hz 16-bit mono PCM, got {rate} Hz {8 * width}-bit "
                    f"{channels} channel(s) ({compression})"
                )
            return wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise RecognitionError(f"{path}: cannot read the recording ({exc})") from exc
