"""The caller's side of a call: what they hear, the keys they pressed ahead, and what they say.

Keys pressed during a prompt stop it and are kept as type-ahead (DTMF barge-in): the next question
takes them before it plays anything. Verbs ask the caller through `Caller`, and reach the channel
directly only for what has no type-ahead to keep (reading keys after a prompt, queues, transfers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ivr.engine.channel import Channel
from ivr.engine.intents import Said
from ivr.engine.ports import Heard, RecognitionError, Recognizer
from ivr.voice.speak import DIGIT_PREFIX, MASKED_DIGIT

log = logging.getLogger(__name__)


class Caller:
    def __init__(self, channel: Channel, recognizer: Recognizer, *, protocol: str, min_confidence: float) -> None:
        self.channel = channel
        self._recognizer = recognizer
        self._protocol = protocol  # names the call in logs
        self._min_confidence = min_confidence  # settings.speech.min_confidence
        self._typeahead = ""  # keys pressed during prompts, not yet used
        self._said_once: set[str] = set()  # hints this call has heard (prompt ids)
        self.heard: list[str] = []  # every prompt id played, in order; a spelled digit as MASKED_DIGIT

    @property
    def listening(self) -> bool:
        """Whether questions listen for words: a recogniser is configured, or the caller's words arrive as
        text (simulator, flow tests). Otherwise they wait for keys only, recording nothing."""
        return self.channel.hears_words or self._recognizer.listens

    async def play(self, prompt_ids: Sequence[str], *, interruptible: bool = True) -> None:
        """Play prompts; a key pressed during them stops them and is kept as type-ahead. Prompts are
        skipped when the caller has already keyed ahead (they know what they want)."""
        if not prompt_ids or (interruptible and self._typeahead):
            return
        self.heard += [MASKED_DIGIT if p.startswith(DIGIT_PREFIX) else p for p in prompt_ids]
        key = await self.channel.play(prompt_ids, interruptible=interruptible)
        if interruptible and key:
            self._typeahead += key

    def once(self, prompt_id: str) -> list[str]:
        """[prompt_id] the first time a call asks for it, then []: a hint is said once per call."""
        if prompt_id in self._said_once:
            return []
        self._said_once.add(prompt_id)
        return [prompt_id]

    def take_key(self) -> str:
        """The first key typed ahead, or ""."""
        key, self._typeahead = self._typeahead[:1], self._typeahead[1:]
        return key

    def take_keys(self) -> str:
        """Every key typed ahead (possibly "")."""
        keys, self._typeahead = self._typeahead, ""
        return keys

    def keep_keys(self, keys: str) -> None:
        """Keep keys the caller pressed beyond what a question took: they answer the next one."""
        self._typeahead += keys

    def keyed_instead(self, heard: Heard) -> None:
        """The caller pressed keys instead of speaking: they are kept as type-ahead, and whatever was
        recorded before them is not heard, so it is deleted (a recording is personal data)."""
        if heard.audio is not None:
            heard.audio.unlink(missing_ok=True)
        self._typeahead += heard.interrupted_by

    async def hear(self, heard: Heard, hints: Sequence[str] = (), *, keep_audio: bool = False) -> Said:
        """What the caller said. Typed words (simulator, flow tests) are taken as said; audio goes to the
        recogniser with `hints` (the words the question expects). A recogniser failure, or a confidence
        under the configured minimum, makes the answer unclear: the question then asks for keys.
        A recording is personal data: it is deleted once heard, unless `keep_audio` (the flow keeps it)."""
        if heard.transcript is not None:
            return Said(heard.transcript.strip())
        if heard.audio is None:
            return Said("")
        try:
            recognition = await self._recognizer.recognise(heard, phrase_hints=hints)
        except RecognitionError as exc:
            log.warning("call %s: speech recognition failed (%s)", self._protocol, exc)
            return Said("", unclear=True)
        finally:
            if not keep_audio:
                heard.audio.unlink(missing_ok=True)
        text = recognition.transcript.strip()
        if text and recognition.confidence < self._min_confidence:
            log.info("call %s: speech confidence %.2f is too low to act on", self._protocol, recognition.confidence)
            return Said(text, unclear=True)
        return Said(text)
