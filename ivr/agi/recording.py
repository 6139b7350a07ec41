"""What ``RECORD FILE`` left on disk: does it hold a voice, or only silence (or nothing at all)? And how
much of it is kept, for how long.

A recording is personal data: one that holds no voice is deleted at once rather than kept or sent to
the recogniser; one transcribed is deleted once heard unless its flow keeps it for the team
(``record``'s ``keep``); what is kept is deleted once older than the retention (`delete_older`, run by
``ivr serve``). "Voice" is judged as Asterisk's own silence detector does (main/dsp.c,
``__ast_dsp_silence_noise``): a 20 ms frame whose mean absolute sample is under the threshold
(``DEFAULT_SILENCE_THRESHOLD``, 256: we ship no dsp.conf) is silence.
"""

from __future__ import annotations

import sys
import wave
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: Asterisk's DEFAULT_SILENCE_THRESHOLD (main/dsp.c).
SILENCE_THRESHOLD = 256
#: 20 ms at 8 kHz, the frame Asterisk's detector judges.
FRAME_SAMPLES = 160


def holds_voice(path: Path) -> bool:
    """True when some 20 ms frame of the 16-bit WAV at `path` is louder than Asterisk's silence
    threshold; False for silence, a header without audio, or no readable file."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                return True  # not what RECORD FILE "wav" writes: keep it for someone to look at
            frames = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error):
        return False
    samples = array("h")
    samples.frombytes(frames[: len(frames) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    return any(
        sum(map(abs, samples[start : start + FRAME_SAMPLES])) >= SILENCE_THRESHOLD * FRAME_SAMPLES
        for start in range(0, len(samples), FRAME_SAMPLES)
    )



@dataclass(frozen=True, slots=True)
class RecordingsKept:
    files: int
    size: int  # bytes
    oldest: datetime | None  # the oldest file's modification time


def recordings_kept(directory: Path) -> RecordingsKept:
    """What the recordings directory holds now (a missing directory holds nothing)."""
    files = [path.stat() for path in _recordings(directory)]
    oldest = min((stat.st_mtime for stat in files), default=None)
    return RecordingsKept(
        len(files), sum(stat.st_size for stat in files), None if oldest is None else datetime.fromtimestamp(oldest, UTC)
    )


def delete_older(directory: Path, before: datetime) -> int:
    """Delete the recordings last written before `before`; returns how many. One deleted meanwhile (the
    call that made it) is not an error."""
    limit = before.timestamp()
    deleted = 0
    for path in _recordings(directory):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            continue
    return deleted


def _recordings(directory: Path) -> list[Path]:
    try:
        return [path for path in directory.iterdir() if path.is_file()]
    except FileNotFoundError:
        return []
