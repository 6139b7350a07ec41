"""``menu``: ask the caller to choose, by key or by voice.

    main_menu:
      menu:
        prompt: main_menu
        options:
          "1": {go: technical, say_it: [suporte, internet, sem conexão]}
          "0": {go: agent, role: human}
        no_input: {retries: 2, prompt: didnt_hear}
        no_match: {retries: 2, prompt: invalid_option}
        then: agent           # when the retries run out
        back: main_menu       # where "#" goes (optional)

A key pressed during the prompt stops it and counts as the choice (DTMF barge-in); keys pressed earlier
are used first. ``*`` repeats the prompt, ``#`` goes back when ``back:`` is set. When any option has
``say_it`` words, the menu listens after its prompt and matches what the caller says against them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ivr.engine.channel import DTMF_KEYS
from ivr.engine.verbs.base import PROMPT_ALLOWANCE_S, Prompts, Retry, Verb

if TYPE_CHECKING:
    from ivr.engine.context import CallContext

#: How often "*" may replay the prompt before it counts as a wrong key (keeps the loop bounded).
MAX_REPEATS = 3


class MenuOption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    go: str
    say_it: list[str] = []  # words or phrases that choose this option by voice
    role: Literal["human", "complaint", "cancellation"] | None = None  # what the SAC checks look for


class Menu(Verb):
    kind = "menu"
    waits_for_caller = True

    prompt: Prompts = Field(min_length=1)
    options: dict[str, MenuOption] = Field(min_length=1)
    no_input: Retry = Retry()
    no_match: Retry = Retry()
    then: str
    back: str | None = None
    input_timeout_s: float = Field(default=5.0, gt=0, le=30)
    speech_max_s: float = Field(default=5.0, gt=0, le=20)

    @model_validator(mode="before")
    @classmethod
    def _keys_as_text(cls, data: Any) -> Any:
        # YAML reads an unquoted 1: as a number; the caller presses the key "1" either way.
        if isinstance(data, dict) and isinstance(data.get("options"), dict):
            data = {**data, "options": {str(k): v for k, v in data["options"].items()}}
        return data

    @field_validator("options")
    @classmethod
    def _dtmf_keys(cls, options: dict[str, MenuOption]) -> dict[str, MenuOption]:
        for key in options:
            if len(key) != 1 or key not in DTMF_KEYS:
                raise ValueError(f"option '{key}' is not a phone key (one of {' '.join(DTMF_KEYS)})")
        return options

    @property
    def listens(self) -> bool:
        return any(option.say_it for option in self.options.values())

    @property
    def attempts(self) -> int:
        return self.no_input.retries + self.no_match.retries + MAX_REPEATS + 2

    def time_limit_s(self) -> float:
        return self.attempts * (PROMPT_ALLOWANCE_S + self.input_timeout_s + self.speech_max_s)

    def targets(self) -> list[tuple[str, str]]:
        edges = [(f"option {key}", option.go) for key, option in self.options.items()]
        edges.append(("then", self.then))
        if self.back:
            edges.append(("back", self.back))
        return edges

    def prompt_ids(self) -> list[str]:
        extra = [r.prompt for r in (self.no_input, self.no_match) if r.prompt]
        return [*self.prompt, *extra]

    async def run(self, call: CallContext) -> str | None:
        no_inputs = no_matches = repeats = 0
        for _ in range(self.attempts):
            key, said = await self._ask(call)
            if key in self.options:
                call.note(input=key, outcome=key)
                return self.options[key].go
            if key == "#" and self.back:
                call.note(input=key, outcome="back")
                return self.back
            if key == "*" and repeats < MAX_REPEATS:
                repeats += 1
                continue
            if said and (chosen := self._match(said)) is not None:
                call.note(input=said, outcome=chosen)
                return self.options[chosen].go
            if not key and not said:
                no_inputs += 1
                if no_inputs > self.no_input.retries:
                    call.note(outcome="no_input")
                    return self.then
                await call.play(_prompts(self.no_input.prompt))
            else:
                no_matches += 1
                if no_matches > self.no_match.retries:
                    call.note(input=key or said, outcome="no_match")
                    return self.then
                await call.play(_prompts(self.no_match.prompt))
        call.note(outcome="no_match")
        return self.then

    async def _ask(self, call: CallContext) -> tuple[str, str]:
        """Play the prompt unless keys were typed ahead; return (key, words said)."""
        await call.play(self.prompt)
        if key := call.take_key():
            return key, ""
        if self.listens:
            heard = await call.channel.listen(max_seconds=self.speech_max_s, silence_seconds=1.5)
            if heard.interrupted_by:
                call.typeahead += heard.interrupted_by[1:]
                return heard.interrupted_by[:1], ""
            hints = [word for option in self.options.values() for word in option.say_it]
            return "", await call.transcript(heard, hints)
        digits = await call.channel.read_digits(
            max_digits=1, first_timeout_s=self.input_timeout_s, inter_digit_timeout_s=self.input_timeout_s, terminator=""
        )
        return digits.digits[:1], ""

    def _match(self, said: str) -> str | None:
        """The option whose words appear in what the caller said (accents and case ignored)."""
        text = f" {_plain(said)} "
        for key, option in self.options.items():
            if any(f" {_plain(word)} " in text for word in option.say_it):
                return key
        return None


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[a-z0-9]+", letters))


def _prompts(prompt: str | None) -> list[str]:
    return [prompt] if prompt else []
