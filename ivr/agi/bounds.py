"""How long each AGI command may take: what the command does by design, plus a margin.

A single time-out for every command cuts whatever lasts longer than it: a 30 s bound stopped a 30.4 s
menu prompt mid-sentence and sent the caller to the fallback queue. So each command is bounded by its
own length:

* ``STREAM FILE`` by the prompt's built length (the audio build's manifest, re-read when rebuilt; an
  announcement's from the file beside its audio); ``EXEC Background`` of several prompts by their sum;
* ``WAIT FOR DIGIT`` by its wait, ``RECORD FILE`` by its longest recording;
* ``EXEC Queue``/``EXEC Dial`` by the call's own limit (``TIMEOUT(absolute)`` in the dialplan): they
  return only when the conversation with the agent or the outside number ends, which nothing else bounds;
* everything else (ANSWER, SET/GET VARIABLE, HANGUP) answers at once: ``agi.command_timeout_s``.

Each bound says why it is what it is, so a time-out names its real cause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.config import Settings
from ivr.voice.build import AUDIO_SUBDIR, MANIFEST, BuildError, announcement_entry, is_announcement, read_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bound:
    seconds: float
    # Why, said only when a command runs past its bound: worked out then, not for every command.
    reason: Callable[[], str]

    @property
    def why(self) -> str:
        """E.g. "prompt main_menu lasts 30.4 s, + 5 s margin"."""
        return self.reason()


class CommandBounds:
    """The bound of each kind of command, from the settings and the prompts' built lengths."""

    def __init__(self, settings: Settings) -> None:
        self._instant = settings.agi.command_timeout_s
        self._margin = settings.agi.margin_s
        self._call_s = settings.asterisk.max_call_s
        self._audio_dir = settings.prompts_dir / AUDIO_SUBDIR
        self._lengths: dict[str, float] = {}
        self._announced: dict[str, float] = {}  # announcements' lengths, by prompt id
        self._stamp: int | None = -1  # the manifest's mtime when read (None: there is none); -1: never read
        self._instant_bound = Bound(self._instant, lambda: "agi.command_timeout_s")

    def refresh(self) -> bool:
        """Re-read the prompts' lengths if `ivr prompts build` rewrote the manifest (one stat per call);
        whether it had changed since the last call."""
        try:
            stamp = (self._audio_dir / MANIFEST).stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return False
        try:
            self._lengths = {pid: entry.duration_s for pid, entry in read_manifest(self._audio_dir).items()}
        except BuildError as exc:
            log.error("prompt lengths unknown, keeping the previous ones: %s", exc)
            return True
        self._stamp = stamp
        if not self._lengths:
            log.error("no prompt audio manifest in %s: prompts are bounded by agi.command_timeout_s", self._audio_dir)
        return True

    def instant(self) -> Bound:
        return self._instant_bound

    def prompt(self, prompt_id: str) -> Bound:
        length = self._length(prompt_id)
        if length is None:
            return Bound(self._instant, lambda: f"prompt {prompt_id} has no built length: agi.command_timeout_s")
        margin = self._margin
        return Bound(length + margin, lambda: f"prompt {prompt_id} lasts {length:.1f} s, + {margin:g} s margin")

    def prompts(self, prompt_ids: Sequence[str]) -> Bound:
        """Several prompts played by one command, one after the other (a prompt of unknown length counts as
        `instant`)."""
        total, unknown = 0.0, 0
        for prompt_id in prompt_ids:
            length = self._length(prompt_id)
            if length is None:
                unknown += 1
                length = self._instant
            total += length
        margin = self._margin

        def why() -> str:
            said = f"prompts {prompt_ids[0]} .. {prompt_ids[-1]} ({len(prompt_ids)}) last {total:.1f} s"
            if unknown:
                said += f" ({unknown} without a built length counted as agi.command_timeout_s)"
            return f"{said}, + {margin:g} s margin"

        return Bound(total + margin, why)

    def _length(self, prompt_id: str) -> float | None:
        return self._announcement_length(prompt_id) if is_announcement(prompt_id) else self._lengths.get(prompt_id)

    def _announcement_length(self, prompt_id: str) -> float | None:
        # Its name is a hash of its words and voice, so the length read once stays its length.
        if prompt_id not in self._announced:
            try:
                entry = announcement_entry(self._audio_dir, prompt_id)
            except BuildError as exc:
                log.error("announcement length unknown: %s", exc)
                return None
            if entry is None:
                return None
            self._announced[prompt_id] = entry.duration_s
        return self._announced[prompt_id]

    def wait(self, what: str, seconds: float) -> Bound:
        margin = self._margin
        return Bound(seconds + margin, lambda: f"{what} of {seconds:g} s, + {margin:g} s margin")

    def conversation(self) -> Bound:
        call_s, margin = self._call_s, self._margin
        return Bound(
            call_s + margin,
            lambda: f"a conversation ends only with the call: asterisk.max_call_s {call_s} s, + {margin:g} s margin",
        )
