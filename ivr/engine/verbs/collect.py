"""``collect``: ask for data by keys (a CNPJ, a protocol number, a month) or as free speech, and keep it.

    ask_cnpj:
      collect:
        prompt: type_cnpj
        into: cnpj
        min_digits: 14
        max_digits: 14
        validator: cnpj              # cnpj | protocol | month | due_day | phone | none
        invalid: {retries: 1, prompt: cnpj_invalid}
        no_input: {retries: 1, prompt: didnt_hear}
        then: agent                  # when the retries run out
        person: agent                # "*": the caller leaves to a person at once
      next: find_by_cnpj

``0`` is a digit inside a CNPJ, a month or a ticket number, so in data prompts ``*`` leaves to a person and
``#`` ends the entry. The first data prompt of a call says so (once per call); a ``#`` pressed right after
an entry that filled ``max_digits`` only ends it and is not taken as the next answer.

What the validators keep in ``into``:

- ``cnpj``: the 14 digits (check digits verified);
- ``protocol``: a ticket (9 digits) or call protocol (12), check digit verified; ``<into>_kind`` says
  which (call_protocol or ticket);
- ``month``: a month keyed as 1 or 2 digits (10 = October), kept as ``YYYY-MM`` of the latest such month
  that is not in the future (in December 2026, 12 is December 2026 and 1 is January 2026);
- ``due_day``: a day of the month the carrier offers for invoices to fall due (settings
  ``billing.due_days``);
- ``phone``: a Brazilian landline or mobile with its area code (``3133334444``, ``31999998888``), not
  toll-free, premium or shared (0800, 0300, 3003...): a number someone can call back.

Values keyed here are caller data: node-visit events only carry them masked.

With ``speech: true`` the caller answers aloud. Without a validator the transcript is kept as said (a
description in their own words). With one, the number is taken from the words ("um dois três",
"cento e vinte e três": `ivr.engine.intents.spoken_digits`); a key pressed while listening, or words
the recogniser could not make out (the caller is then told to use the keys), turn the question to keys.
Where no speech can be heard (no recogniser), a number is asked by keys at once, and a question of free
words is skipped as unanswered (to ``no_input.go``, else ``then``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from ivr import cnpj, phone
from ivr.engine.intents import USE_KEYS_PROMPT, Said, spoken_digits
from ivr.engine.steps import GoTo, Next
from ivr.engine.verbs.base import PROMPT_ALLOWANCE_S, Continues, Prompts, Retry, VarName, retry_edges
from ivr.protocol_number import kind_of

if TYPE_CHECKING:
    from ivr.engine.caller import Caller
    from ivr.engine.context import CallContext

#: The key that leaves a data prompt for a person (0 is a digit there).
PERSON_KEY = "*"
#: Said once per call, with the first data prompt that has a way to a person.
PERSON_HINT_PROMPT = "data/star_for_person"
#: How long a "#" may take to follow an entry that already filled max_digits.
TERMINATOR_GRACE_S = 1.5

Validator = Literal["cnpj", "protocol", "month", "due_day", "phone", "none"]


class Collect(Continues):
    kind = "collect"
    waits_for_caller = True

    prompt: Prompts = Field(min_length=1)
    into: VarName
    min_digits: int = Field(default=1, ge=1, le=40)
    max_digits: int = Field(default=20, ge=1, le=40)
    terminator: Literal["#", ""] = "#"
    first_timeout_s: float = Field(default=8.0, gt=0, le=60)
    inter_digit_timeout_s: float = Field(default=4.0, gt=0, le=30)
    validator: Validator = "none"
    speech: bool = False  # take a free transcript instead of keys
    speech_max_s: float = Field(default=15.0, gt=0, le=120)
    no_input: Retry = Retry()
    invalid: Retry = Retry()
    then: str
    person: str | None = None  # where "*" goes: a person, without any data

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
        keying = self.first_timeout_s + self.max_digits * self.inter_digit_timeout_s + TERMINATOR_GRACE_S
        return self.attempts * (PROMPT_ALLOWANCE_S + max(keying, self.speech_max_s))

    def targets(self) -> list[tuple[str, str]]:
        edges = [("next", self.next), ("then", self.then)]
        edges += retry_edges(no_input=self.no_input, invalid=self.invalid)
        return edges + ([("person", self.person)] if self.person else [])

    @property
    def keys_allowed(self) -> bool:
        """A number can be keyed instead of said; free words cannot."""
        return not self.speech or self.validator != "none"

    def prompt_ids(self) -> list[str]:
        extra = [USE_KEYS_PROMPT] if self.speech and self.keys_allowed else []
        extra += [PERSON_HINT_PROMPT] if self.person else []
        return [*self.prompt, *(r.prompt for r in (self.no_input, self.invalid) if r.prompt), *extra]

    async def run(self, call: CallContext) -> Next:
        caller, variables = call.caller, call.state.variables
        no_inputs = invalids = 0
        if self.speech and not (caller.listening or self.keys_allowed):
            # Free words, and nothing on this call can hear them.
            return GoTo(self.no_input.go or self.then, result="no_speech")
        by_voice = self.speech and caller.listening
        for _ in range(self.attempts):
            if by_voice:
                said = await self._hear(caller)
                if said is None or (said.unclear and self.keys_allowed):
                    # The caller keyed instead of speaking, or could not be understood (then told to
                    # use the keys): the question takes keys from now on.
                    by_voice = False
                    if said is not None:
                        await caller.play([USE_KEYS_PROMPT])
                    continue
                value = said.text if self.validator == "none" else spoken_digits(said.text)
            else:
                value = await self._keys(caller)
                if self.person and PERSON_KEY in value:
                    return GoTo(self.person, result="person")
            if not value:
                no_inputs += 1
                if no_inputs > self.no_input.retries:
                    return GoTo(self.no_input.go or self.then, result="no_input")
                await caller.play([self.no_input.prompt] if self.no_input.prompt else [])
                continue
            kept = self._parse(value, call)
            if kept is None:
                invalids += 1
                if invalids > self.invalid.retries:
                    return GoTo(self.invalid.go or self.then, input=self._masked(value), result="invalid")
                await caller.play([self.invalid.prompt] if self.invalid.prompt else [])
                continue
            masked = self._masked(kept)
            call.state.keep(self.into, kept, masked=masked)
            if self.validator == "protocol":
                variables[f"{self.into}_kind"] = kind_of(kept).value  # type: ignore[union-attr]
            return GoTo(self.next, input=masked, result="collected")
        return GoTo(self.then, result="invalid")

    async def _keys(self, caller: Caller) -> str:
        """The keys of one entry, without its terminator; "*" in it when the caller asked for a person."""
        hint = caller.once(PERSON_HINT_PROMPT) if self.person else []
        await caller.play([*self.prompt, *hint])
        keyed = caller.take_keys()
        ends = self.terminator + (PERSON_KEY if self.person else "")
        done = any(key in keyed for key in ends) or len(keyed) >= self.max_digits
        if not done:
            digits = await caller.channel.read_digits(
                max_digits=self.max_digits - len(keyed),
                first_timeout_s=self.first_timeout_s if not keyed else self.inter_digit_timeout_s,
                inter_digit_timeout_s=self.inter_digit_timeout_s,
                terminator=ends,
            )
            keyed += digits.digits + digits.key
        if PERSON_KEY in ends and PERSON_KEY in keyed:
            return PERSON_KEY
        if self.terminator and self.terminator in keyed:
            keyed, _, ahead = keyed.partition(self.terminator)
            caller.keep_keys(ahead)
        elif self.terminator and len(keyed) >= self.max_digits:
            caller.keep_keys(keyed[self.max_digits :])
            keyed = keyed[: self.max_digits]
            await self._swallow_terminator(caller)
        return keyed[: self.max_digits]

    async def _swallow_terminator(self, caller: Caller) -> None:
        """After a full-length entry, a "#" the prompt asked for ends it and is not the next answer."""
        if ahead := caller.take_keys():
            caller.keep_keys(ahead.removeprefix(self.terminator))
            return
        late = await caller.channel.late_key(self.terminator, within_s=TERMINATOR_GRACE_S)
        if late != self.terminator:
            caller.keep_keys(late)

    async def _hear(self, caller: Caller) -> Said | None:
        """What the caller said; None when they pressed a key instead (kept as type-ahead)."""
        await caller.play(self.prompt, interruptible=False)
        heard = await caller.channel.listen(max_seconds=self.speech_max_s, silence_seconds=2.0)
        if heard.interrupted_by and self.keys_allowed:
            caller.keyed_instead(heard)
            return None
        return await caller.hear(heard)

    def _parse(self, value: str, call: CallContext) -> str | None:
        """What `into` keeps for a valid answer, or None when it is not one."""
        match self.validator:
            case "cnpj":
                return value if cnpj.is_valid(value) else None
            case "protocol":
                return value if kind_of(value) is not None else None
            case "month":
                return latest_month(value, call.now()) if value.isdigit() else None
            case "due_day":
                return str(int(value)) if value.isdigit() and int(value) in call.due_days else None
            case "phone":
                return phone.callback_number(value) if value.isdigit() else None
        if not self.keys_allowed:
            return value
        return value if value.isdigit() and self.min_digits <= len(value) <= self.max_digits else None

    def _masked(self, value: str) -> str:
        match self.validator:
            case "cnpj":
                return cnpj.mask(value)
            case "protocol" | "month" | "due_day":
                return value  # our own numbers and calendar values, not personal data
            case "phone":
                return phone.mask(value)
        return f"<{len(value)} chars>"


def latest_month(keyed: str, now: datetime) -> str | None:
    """ "10" -> "2026-10" in December 2026; "12" in March 2027 -> "2026-12" (never a future month)."""
    month = int(keyed)
    if not 1 <= month <= 12:
        return None
    year = now.year if month <= now.month else now.year - 1
    return f"{year:04d}-{month:02d}"
