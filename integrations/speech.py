"""Speech recognition back-ends.

Until a speech endpoint is configured, `NoSpeechBackend` refuses audio: the engine then treats the
answer as not heard and falls back to DTMF, which every menu offers. Typed transcripts (the simulator,
flow tests) never reach a recogniser.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivr.engine.channel import Heard
from ivr.engine.services import Recognition, RecognitionError


class NoSpeechBackend:
    async def recognise(self, heard: Heard, *, phrase_hints: Sequence[str] = ()) -> Recognition:
        raise RecognitionError("no speech back-end is configured")
