"""``menu``: ask the caller to choose, by key or by voice.

    main_menu:
      menu:
        prompt: main_menu
        options:
          "1": {go: technical, say_it: [suporte, internet, sem conexão]}
          "0": {go: agent, say_it: [atendente]}
        no_input: {retries: 2, prompt: didnt_hear}
        no_match: {retries: 2, prompt: invalid_option}
        then: agent           # when the retries run out
        back: main_menu       # where "#" goes (optional)

A key pressed during the prompt stops it and counts as the choice (DTMF barge-in); keys pressed earlier
are used first. ``*`` repeats the prompt, ``#`` goes back when ``back:`` is set. After no answer or a
wrong one the caller hears the retry prompt and, instead of the whole menu again, only what to press
("Digite de 1 a 5, ou 0 para falar com um atendente. Asterisco repete as opções.").

When any option has ``say_it`` words and speech can be heard (a recogniser is configured), the menu listens
after its prompt and matches what the caller says against them (`ivr.engine.intents.choose`); the first
menu of a call that listens says so, once. Words the recogniser could not make out (it failed, or was
unsure) get one more try by keys: the caller hears ``speech/use_keys`` and the prompt again, and the menu
stops listening. Without a recogniser a menu waits for keys only and records nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ivr.engine.channel import DTMF_KEYS
from ivr.engine.intents import USE_KEYS_PROMPT, Said, choose
from ivr.engine.steps import GoTo, Next
from ivr.engine.verbs.base import PROMPT_ALLOWANCE_S, Prompts, Retry, Verb, retry_edges
from ivr.voice.speak import PAUSE

if TYPE_CHECKING:
    from ivr.engine.caller import Caller
    from ivr.engine.context import CallContext

#: How often "*" may replay the prompt before it counts as a wrong key (keeps the loop bounded).
MAX_REPEATS = 3
#: Said once per call, after the first menu that listens for words.
SPEECH_HINT_PROMPT = "speech/you_can_say"
#: The fixed words of `Menu.keys_hint` (digits and "ou" are speaking fragments, like any number said).
KEYS_HINT_PROMPTS = [
    "menu/press",
    "menu/from",
    "menu/to",
    "menu/or_zero_person",
    "menu/zero_person",
    "menu/star_repeats",
]


class MenuOption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    go: str
    say_it: list[str] = []  # words or phrases that choose this option by voice


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
        # + 1 for the one time unclear speech turns the menu to keys.
        return self.no_input.retries + self.no_match.retries + MAX_REPEATS + 2 + self.listens

    def time_limit_s(self) -> float:
        return self.attempts * (PROMPT_ALLOWANCE_S + self.input_timeout_s + self.speech_max_s)

    def targets(self) -> list[tuple[str, str]]:
        edges = [(f"option {key}", option.go) for key, option in self.options.items()]
        edges.append(("then", self.then))
        edges += retry_edges(no_input=self.no_input, no_match=self.no_match)
        if self.back:
            edges.append(("back", self.back))
        return edges

    def prompt_ids(self) -> list[str]:
        extra = [r.prompt for r in (self.no_input, self.no_match) if r.prompt]
        speech = [USE_KEYS_PROMPT, SPEECH_HINT_PROMPT] if self.listens else []
        return [*self.prompt, *extra, *speech, *KEYS_HINT_PROMPTS]

    async def run(self, call: CallContext) -> Next:
        caller = call.caller
        no_inputs = no_matches = repeats = 0
        by_voice = self.listens and caller.listening
        whole = True  # the whole prompt, or (after a retry) only what to press
        for _ in range(self.attempts):
            key, said = await self._ask(caller, by_voice=by_voice, whole=whole)
            whole = False
            if key in self.options:
                return GoTo(self.options[key].go, input=key, result=key)
            if key == "#" and self.back:
                return GoTo(self.back, input=key, result="back")
            if key == "*" and repeats < MAX_REPEATS:
                repeats += 1
                whole = True
                continue
            if said.unclear:
                # Asked once more, by keys only: the caller is told to use them.
                by_voice = False
                whole = True
                await caller.play([USE_KEYS_PROMPT])
                continue
            if said.text and (chosen := choose(said.text, self.synonyms)) is not None:
                return GoTo(self.options[chosen].go, input=said.for_the_record, result=chosen)
            if not key and said.nothing:
                no_inputs += 1
                if no_inputs > self.no_input.retries:
                    return GoTo(self.no_input.go or self.then, result="no_input")
                await caller.play([*_prompts(self.no_input.prompt), *self.keys_hint()])
            else:
                no_matches += 1
                if no_matches > self.no_match.retries:
                    return GoTo(self.no_match.go or self.then, input=key or said.for_the_record, result="no_match")
                await caller.play([*_prompts(self.no_match.prompt), *self.keys_hint()])
        return GoTo(self.then, result="no_match")

    @property
    def synonyms(self) -> dict[str, list[str]]:
        """Every option's words (any option can also be chosen by saying its key)."""
        return {key: option.say_it for key, option in self.options.items()}

    def keys_hint(self) -> list[str]:
        """What to press, said after a retry prompt: "Digite de 1 a 5, ou 0 para falar com um atendente.
        Asterisco repete as opções." (keys in a run from 1 as a span, others listed)."""
        keys = sorted(key for key in self.options if key.isdigit() and key != "0")
        ids = ["menu/press"]
        if len(keys) >= 3 and keys == [str(n) for n in range(1, len(keys) + 1)]:
            ids += ["menu/from", f"digit/{keys[0]}", "menu/to", f"digit/{keys[-1]}"]
        elif keys:  # "1", "1 ou 2", "1, 2 ou 9"
            *first, last = keys
            for index, key in enumerate(first):
                ids += [f"digit/{key}", *([PAUSE] if index < len(first) - 1 else [])]
            ids += ["word/ou", f"digit/{last}"] if first else [f"digit/{last}"]
        if "0" in self.options:
            ids += [PAUSE, "menu/or_zero_person"] if keys else ["menu/zero_person"]
        return [*ids, "menu/star_repeats"]

    async def _ask(self, caller: Caller, *, by_voice: bool, whole: bool) -> tuple[str, Said]:
        """Play the prompt (when `whole`) unless keys were typed ahead; return (key, words said)."""
        if whole:
            await caller.play([*self.prompt, *(caller.once(SPEECH_HINT_PROMPT) if by_voice else [])])
        if key := caller.take_key():
            return key, Said("")
        if by_voice:
            heard = await caller.channel.listen(max_seconds=self.speech_max_s, silence_seconds=1.5)
            if heard.interrupted_by:
                caller.keyed_instead(heard)
                return caller.take_key(), Said("")
            hints = [word for words in self.synonyms.values() for word in words]
            return "", await caller.hear(heard, hints)
        digits = await caller.channel.read_digits(
            max_digits=1,
            first_timeout_s=self.input_timeout_s,
            inter_digit_timeout_s=self.input_timeout_s,
            terminator="",
        )
        return digits.digits[:1], Said("")


def _prompts(prompt: str | None) -> list[str]:
    return [prompt] if prompt else []
