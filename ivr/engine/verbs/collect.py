"""``collect``: ask for data by keys (a CNPJ, a protocol number) or as free speech, and keep it.

    ask_cnpj:
      collect:
        prompt: type_cnpj
        into: cnpj
        min_digits: 14
        max_digits: 14
        validator: cnpj              # cnpj | protocol | none
        invalid: {retries: 2, prompt: cnpj_invalid}
        no_input: {retries: 2, prompt: didnt_hear}
        then: agent                  # when the retries run out
      next: find_by_cnpj

With ``validator: protocol`` the kind of number is kept too (``<into>_kind``: call_protocol or ticket).
Values keyed here are caller data: node-visit events only carry them masked.

With ``speech: true`` the caller answers aloud. Without a validator the transcript is kept as said (a
description in their own words). With one, the number is taken from the words ("um dois três",
"cento e vinte e três": `ivr.engine.intents.spoken_digits`); a key pressed while listening, or words
the recogniser could not make out (the caller is then told to use the keys), turn the question to keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from ivr import cnpj
from ivr.engine.intents import USE_KEYS_PROMPT, Said, spoken_digits
from ivr.engine.verbs.base import PROMPT_ALLOWANCE_S, Continues, Prompts, Retry, VarName
from ivr.protocol_number import kind_of

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class Collect(Continues):
    kind = "collect"
    waits_for_caller = True

    prompt: Prompts = Field(min_length=1)
    into: VarName
    min_digits: int = Field(default=1, ge=1, le=40)
    max_digits: int = Field(default=20, ge=1, le=40)
    terminator: Literal["#", "*", ""] = "#"
    first_timeout_s: float = Field(default=8.0, gt=0, le=60)
    inter_digit_timeout_s: float = Field(default=4.0, gt=0, le=30)
    validator: Literal["cnpj", "protocol", "none"] = "none"
    speech: bool = False  # take a free transcript instead of keys
    speech_max_s: float = Field(default=15.0, gt=0, le=120)
    no_input: Retry = Retry()
    invalid: Retry = Retry()
    then: str

    @model_validator(mode="after")
    def _lengths(self) -> Collect:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) is more than max_digits ({self.max_digits})")
        return self

    @property
    def attempts(self) -> int:
        # + 1 for the one time unclear speech turns the question to keys.
        return self.no_input.retries + self.invalid.retries + 2 + self.speech

    def time_limit_s(self) -> float:
        keying = self.first_timeout_s + self.max_digits * self.inter_digit_timeout_s
        return self.attempts * (PROMPT_ALLOWANCE_S + max(keying, self.speech_max_s))

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("then", self.then)]

    @property
    def keys_allowed(self) -> bool:
        """A number can be keyed instead of said; free words cannot."""
        return not self.speech or self.validator != "none"

    def prompt_ids(self) -> list[str]:
        extra = [USE_KEYS_PROMPT] if self.speech and self.keys_allowed else []
        return [*self.prompt, *(r.prompt for r in (self.no_input, self.invalid) if r.prompt), *extra]

    async def run(self, call: CallContext) -> str | None:
        no_inputs = invalids = 0
        by_voice = self.speech
        for _ in range(self.attempts):
            if by_voice:
                said = await self._hear(call)
                if said is None or (said.unclear and self.keys_allowed):
                    # The caller keyed instead of speaking, or could not be understood (then told to
                    # use the keys): the question takes keys from now on.
                    by_voice = False
                    if said is not None:
                        await call.play([USE_KEYS_PROMPT])
                    continue
                value = said.text if self.validator == "none" else spoken_digits(said.text)
            else:
                value = await self._keys(call)
            if not value:
                no_inputs += 1
                if no_inputs > self.no_input.retries:
                    call.note(outcome="no_input")
                    return self.then
                await call.play([self.no_input.prompt] if self.no_input.prompt else [])
            elif not self._valid(value):
                invalids += 1
                if invalids > self.invalid.retries:
                    call.note(input=self._masked(value), outcome="invalid")
                    return self.then
                await call.play([self.invalid.prompt] if self.invalid.prompt else [])
            else:
                call.variables[self.into] = value
                if self.validator == "protocol":
                    call.variables[f"{self.into}_kind"] = kind_of(value).value  # type: ignore[union-attr]
                call.note(input=self._masked(value), outcome="collected")
                return self.next
        call.note(outcome="invalid")
        return self.then

    async def _keys(self, call: CallContext) -> str:
        await call.play(self.prompt)
        keyed = call.take_keys()
        done = (self.terminator and self.terminator in keyed) or len(keyed) >= self.max_digits
        if not done:
            digits = await call.channel.read_digits(
                max_digits=self.max_digits - len(keyed),
                first_timeout_s=self.first_timeout_s if not keyed else self.inter_digit_timeout_s,
                inter_digit_timeout_s=self.inter_digit_timeout_s,
                terminator=self.terminator,
            )
            keyed += digits.digits
        if self.terminator:
            keyed, _, ahead = keyed.partition(self.terminator)
            call.typeahead += ahead
        return keyed[: self.max_digits]

    async def _hear(self, call: CallContext) -> Said | None:
        """What the caller said; None when they pressed a key instead (kept as type-ahead)."""
        await call.play(self.prompt, interruptible=False)
        heard = await call.channel.listen(max_seconds=self.speech_max_s, silence_seconds=2.0)
        if heard.interrupted_by and self.keys_allowed:
            call.typeahead += heard.interrupted_by
            return None
        return await call.hear(heard)

    def _valid(self, value: str) -> bool:
        if self.validator == "cnpj":
            return cnpj.is_valid(value)
        if self.validator == "protocol":
            return kind_of(value) is not None
        return not self.keys_allowed or (value.isdigit() and self.min_digits <= len(value) <= self.max_digits)

    def _masked(self, value: str) -> str:
        if self.validator == "cnpj":
            return cnpj.mask(value)
        if self.validator == "protocol":
            return value  # our own numbers, not personal data
        return f"<{len(value)} chars>"
