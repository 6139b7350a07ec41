"""The menu: keys, barge-in and type-ahead, repeats, going back, retries and spoken choices."""

from pathlib import Path

from ivr.config import REPO_ROOT, load_settings
from ivr.engine.context import Outcome
from ivr.engine.interpreter import run_call
from ivr.engine.ports import Heard
from ivr.engine.scripted import ScriptedChannel
from ivr.engine.verbs.menu import SPEECH_HINT_PROMPT as HINT
from ivr.voice.catalogue import Catalogue

from .fakes import caller, flow, run, services

CATALOGUE = Catalogue.load(REPO_ROOT / "prompts" / "pt_BR")
#: What to press, for the menu below (1, 2 and 0).
KEYS = ["menu/press", "digit/1", "word/ou", "digit/2", "pause/short", "menu/or_zero_person", "menu/star_repeats"]

MENU = """
flow: t
start: greet
nodes:
  greet:
    play: welcome
    next: main
  main:
    menu:
      prompt: main_menu
      options:
        "1": {go: one, say_it: [segunda via, boleto]}
        "2": {go: two, say_it: [suporte técnico]}
        "0": {go: person}
      no_input: {retries: 2, prompt: didnt_hear}
      no_match: {retries: 1, prompt: invalid_option}
      back: greet
      then: person
  one:
    queue: {name: billing, no_agents: person, timeout: person}
  two:
    queue: {name: technical, no_agents: person, timeout: person}
  person:
    queue: {name: commercial, no_agents: bye, timeout: bye}
  bye:
    hangup: goodbye
"""


async def test_a_key_chooses_its_option() -> None:
    result, chan, _ = await run(MENU, ["2"])
    assert (result.outcome, result.target) == (Outcome.QUEUE, "technical")
    assert result.path == ["greet", "main", "two"]
    assert chan.heard == ["welcome", "main_menu", HINT]


async def test_a_key_pressed_during_the_menu_prompt_stops_it_and_counts() -> None:
    result, chan, _ = await run(MENU.replace("start: greet", "start: main"), ["barge:2"])
    assert result.target == "technical"
    assert chan.heard == ["main_menu", HINT]
    assert [e.detail for e in chan.events if e.kind == "keys"] == ["2 (during the prompt)"]


async def test_a_key_pressed_during_an_earlier_prompt_answers_the_menu_unheard() -> None:
    result, chan, _ = await run(MENU, ["barge:1"])
    assert result.target == "billing"
    assert chan.heard == ["welcome"]


async def test_each_key_pressed_during_a_prompt_answers_the_next_question() -> None:
    text = MENU.replace('"1": {go: one', '"1": {go: main2').replace(
        "  one:\n",
        "  main2:\n    menu: {prompt: sub_menu, options: {'3': {go: one}, '0': {go: person}}, then: person}\n  one:\n",
    )
    result, chan, _ = await run(text, ["barge:13"])
    assert result.target == "billing"
    assert result.path == ["greet", "main", "main2", "one"]
    # "1" stopped the welcome and answered the main menu unheard; "3" stopped the sub-menu prompt
    assert chan.heard == ["welcome", "sub_menu"]


async def test_star_repeats_the_prompt_without_counting_as_a_mistake() -> None:
    result, chan, _ = await run(MENU, ["*", "*", "1"])
    assert result.target == "billing"
    assert chan.heard == ["welcome", "main_menu", HINT, "main_menu", "main_menu"]


async def test_a_menu_that_listens_says_so_once_per_call() -> None:
    text = MENU.replace('"1": {go: one', '"1": {go: main2').replace(
        "  one:\n",
        "  main2:\n    menu: {prompt: sub_menu, options: {'3': {go: one, say_it: [três]}, '0': {go: person}},"
        " then: person}\n  one:\n",
    )
    result, chan, _ = await run(text, ["1", "3"])
    assert result.target == "billing"
    assert chan.heard == ["welcome", "main_menu", HINT, "sub_menu"]


async def test_without_a_recogniser_a_menu_neither_listens_nor_says_it_does() -> None:
    svc = services()
    svc.recognizer.listens = False
    result, chan, _ = await run(MENU, ["say:boleto", "2"], svc=svc, hears_words=False)
    assert result.target == "technical"
    assert HINT not in chan.heard
    assert [e.kind for e in chan.events if e.kind in ("keys", "say", "silence")] == ["silence", "keys"]


async def test_hash_goes_back_where_back_is_set() -> None:
    result, _, _ = await run(MENU, ["#", "2"])
    assert result.path == ["greet", "main", "greet", "main", "two"]


async def test_silence_is_asked_again_with_its_own_prompt_then_goes_to_then() -> None:
    result, chan, services = await run(MENU, ["silence", "silence", "silence"])
    assert result.path == ["greet", "main", "person"]
    # After the first time, only the retry prompt and what to press: not the whole menu again.
    assert chan.heard == ["welcome", "main_menu", HINT, "didnt_hear", *KEYS, "didnt_hear", *KEYS]
    assert (
        CATALOGUE.render_text(KEYS)
        == "Digite um ou dois, ou zero para falar com um atendente. Asterisco repete as opções."
    )
    visit = next(v for v in services.events.visits if v.node == "main")
    assert visit.outcome == "no_input"


async def test_wrong_keys_have_their_own_retry_count() -> None:
    result, chan, services = await run(MENU, ["7", "silence", "9"])
    assert result.path == ["greet", "main", "person"]
    assert chan.heard == ["welcome", "main_menu", HINT, "invalid_option", *KEYS, "didnt_hear", *KEYS]
    assert next(v for v in services.events.visits if v.node == "main").outcome == "no_match"


async def test_a_spoken_choice_matches_its_words_whatever_the_accents() -> None:
    result, _, services = await run(MENU, ["say:Preciso de SUPORTE TECNICO por favor"])
    assert result.target == "technical"
    visit = next(v for v in services.events.visits if v.node == "main")
    assert (visit.input, visit.outcome) == ("Preciso de SUPORTE TECNICO por favor", "2")


async def test_words_that_match_no_option_are_a_no_match() -> None:
    result, chan, _ = await run(MENU, ["say:quero uma pizza", "say:boleto"])
    assert result.target == "billing"
    assert "invalid_option" in chan.heard


async def test_a_menu_without_spoken_options_reads_one_key() -> None:
    text = MENU.replace(", say_it: [segunda via, boleto]", "").replace(", say_it: [suporte técnico]", "")
    result, chan, _ = await run(text, ["2"])
    assert result.target == "technical"
    assert [e.kind for e in chan.events if e.kind in ("keys", "say")] == ["keys"]


def test_what_to_press_names_a_run_of_keys_as_a_span() -> None:
    menu = flow(MENU).nodes["main"].verb
    five = menu.model_copy(update={"options": {k: menu.options["1"] for k in "123450"}})
    assert CATALOGUE.render_text(five.keys_hint()) == (
        "Digite de um a cinco, ou zero para falar com um atendente. Asterisco repete as opções."
    )
    three = menu.model_copy(update={"options": {k: menu.options["1"] for k in "129"}})
    assert CATALOGUE.render_text(three.keys_hint()) == "Digite um, dois ou nove. Asterisco repete as opções."


async def test_a_key_pressed_while_listening_answers_and_leaves_no_recording_behind(tmp_path: Path) -> None:
    recorded = tmp_path / "said.wav"

    class KeyAfterWords(ScriptedChannel):
        async def listen(self, *, max_seconds: float, silence_seconds: float, beep: bool = False) -> Heard:
            recorded.write_bytes(b"RIFF")  # what RECORD FILE left when the key stopped it
            return Heard(audio=recorded, duration_s=1.0, interrupted_by="2")

    channel = KeyAfterWords(caller(), [], hears_words=False)
    result = await run_call(flow(MENU), channel, services(), settings=load_settings())
    assert result.target == "technical"
    assert not recorded.exists()
