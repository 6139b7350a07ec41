"""``record``: let the caller speak freely (a complaint in their own words) and keep it.

    complaint_words:
      record: {prompt: tell_us_what_happened, into: complaint_text, max_s: 60, transcribe: true}
      next: open_complaint

Without ``transcribe`` the variable holds the recording's file name; with it, the transcript, and the
recording is deleted once heard (it is personal data) unless ``keep: true``: then its file name is in
``<into>_audio``, for the team to listen to. What is kept is deleted after the retention period (settings
``asterisk.recordings_retention_days``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from ivr.engine.steps import GoTo, Next
from ivr.engine.verbs.base import PROMPT_ALLOWANCE_S, Continues, Prompts, VarName

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class Record(Continues):
    kind = "record"
    waits_for_caller = True

    prompt: Prompts = Field(min_length=1)
    into: VarName
    max_s: float = Field(default=60.0, gt=0, le=300)
    silence_s: float = Field(default=3.0, gt=0, le=10)
    beep: bool = True
    transcribe: bool = False
    keep: bool = False  # with transcribe: keep the audio too (its file name in <into>_audio)

    def prompt_ids(self) -> list[str]:
        return list(self.prompt)

    def time_limit_s(self) -> float:
        return PROMPT_ALLOWANCE_S + self.max_s

    async def run(self, call: CallContext) -> Next:
        caller, state = call.caller, call.state
        await caller.play(self.prompt, interruptible=False)
        heard = await caller.channel.listen(max_seconds=self.max_s, silence_seconds=self.silence_s, beep=self.beep)
        audio = str(heard.audio) if heard.audio else ""
        masked = f"<{heard.duration_s:.0f} s>"  # the caller's words are personal data: only their length
        if self.transcribe:
            state.keep(self.into, (await caller.hear(heard, keep_audio=self.keep)).text, masked=masked)
            state.variables[f"{self.into}_audio"] = audio if self.keep else ""
        else:
            state.keep(self.into, audio or (heard.transcript or ""), masked=masked)
        recorded = "recorded" if state.variables[self.into] else "silent"
        return GoTo(self.next, input=masked, result=recorded)
