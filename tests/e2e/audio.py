"""Is this recording the speech we streamed? Asterisk re-encodes the call's audio (G.711 in, 16-bit WAV
out), so bytes never match: the loudness envelopes (20 ms frames) are compared instead, at the lag
where they line up best. Pure Python: a few seconds of 8 kHz audio is a few hundred frames.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

FRAME = 160  # samples: 20 ms at 8 kHz


def ulaw_to_linear(data: bytes) -> array[int]:
    """G.711 mu-law bytes as 16-bit linear samples (ITU-T G.711 expansion)."""
    samples = array("h")
    for byte in data:
        code = ~byte & 0xFF
        exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
        magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
        samples.append(-magnitude if code & 0x80 else magnitude)
    return samples


def linear16(data: bytes) -> array[int]:
    """Little-endian signed 16-bit samples (a WAV's frames, LINEAR16 for Speech-to-Text)."""
    samples = array("h")
    samples.frombytes(data[: len(data) // 2 * 2])
    return samples


def envelope(samples: Sequence[int]) -> list[float]:
    """RMS loudness per 20 ms frame."""
    frames = len(samples) // FRAME
    return [
        math.sqrt(sum(s * s for s in samples[i * FRAME : (i + 1) * FRAME]) / FRAME) for i in range(frames)
    ]


def voiced_s(env: Sequence[float], threshold: float = 0.1) -> float:
    """Seconds from the first to the last frame louder than `threshold` of the loudest one."""
    loud = [i for i, value in enumerate(env) if value > threshold * max(env, default=0.0)]
    return (loud[-1] - loud[0] + 1) * FRAME / 8000 if loud else 0.0


def best_correlation(source: Sequence[float], heard: Sequence[float]) -> float:
    """The highest Pearson correlation of the source's voiced envelope with an equal stretch of `heard`."""
    loud = [i for i, value in enumerate(source) if value > 0.1 * max(source, default=0.0)]
    if not loud or len(heard) < loud[-1] - loud[0] + 1:
        return 0.0
    voiced = list(source[loud[0] : loud[-1] + 1])
    return max(_pearson(voiced, heard[lag : lag + len(voiced)]) for lag in range(len(heard) - len(voiced) + 1))


def _pearson(a: Sequence[float], b: Sequence[float]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum((x - mean_a) ** 2 for x in a) * sum((y - mean_b) ** 2 for y in b))
    return cov / norm if norm else 0.0
