"""Menus and questions answered aloud, end to end: the channel hands over a recording (as a real call
does), the real Google client sends it to the local Speech fake, and the engine acts on the words."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest

from integrations.speech import NoSpeechBackend
from integrations.speech.google import GoogleRecognizer
from ivr.config import SpeechSettings, load_settings
from ivr.engine.context import Outcome
from ivr.engine.intents import USE_KEYS_PROMPT
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.ports import Heard, Recognizer
from ivr.engine.scripted import Event, ScriptedChannel
from ivr.engine.verbs.menu import SPEECH_HINT_PROMPT as HINT
from tests.engine.fakes import caller, flow, services

from .fake_speech import FakeSpeech, Reply

MENU = """
flow: t
start: main
nodes:
  main:
    menu:
      prompt: main_menu
      options:
        "1": {go: technical, say_it: [suporte técnico, internet, sem conexão]}
        "2": {go: billing, say_it: [segunda via, boleto, fatura]}
        "5": {go: cancellation, say_it: [cancelar, cancelamento]}
        "0": {go: technical, say_it: [atendente]}
      no_input: {retries: 1, prompt: didnt_hear}
      no_match: {retries: 1, prompt: invalid_option}
      then: technical
  technical:
    queue: {name: technical, no_agents: bye, timeout: bye}
  billing:
    queue: {name: billing, no_agents: bye, timeout: bye}
  cancellation:
    queue: {name: commercial, no_agents: bye, timeout: bye}
  bye:
    hangup: goodbye
"""

#: What to press after a retry prompt in MENU (1, 2, 5 and 0).
KEYS = flow(MENU).nodes["main"].verb.keys_hint()  # type: ignore[attr-defined]

COLLECT = """
flow: t
start: ask
nodes:
  ask:
    collect:
      prompt: type_cnpj
      into: cnpj
      min_digits: 14
      max_digits: 14
      validator: cnpj
      speech: true
      invalid: {retries: 1, prompt: cnpj_invalid}
      no_input: {retries: 1, prompt: didnt_hear}
      then: bye
    next: thanks
  thanks:
    hangup: goodbye
  bye:
    hangup: goodbye
"""


@dataclasses.dataclass
class RecordingCaller(ScriptedChannel):
    """A scripted caller whose ``say:`` items reach the IVR as a recording, like a real call's
    RECORD FILE: the words in the script are only a label, the fake back-end decides the transcript."""

    recording: Path | None = None
    hears_words: bool = False  # its words reach the IVR as audio, for the recogniser
    recorded: list[Path] = dataclasses.field(default_factory=list)  # one file per answer, in order

    async def listen(self, *, max_seconds: float, silence_seconds: float, beep: bool = False) -> Heard:
        item = await self._peek()
        if not item.startswith("say:") or self.recording is None:
            return await super().listen(max_seconds=max_seconds, silence_seconds=silence_seconds, beep=beep)
        self._take()
        self._record(Event("say", item.removeprefix("say:")))
        # Each answer is a file of its own, as RECORD FILE writes one per question.
        copy = self.recording.with_name(f"{uuid.uuid4().hex}.wav")
        shutil.copyfile(self.recording, copy)
        self.recorded.append(copy)
        return Heard(audio=copy, duration_s=1.5)


@pytest.fixture
async def google(speech_settings: SpeechSettings) -> AsyncIterator[GoogleRecognizer]:
    client = GoogleRecognizer(speech_settings)
    try:
        yield client
    finally:
        await client.aclose()


async def call(
    text: str, script: Sequence[str], recognizer: Recognizer, recording: Path
) -> tuple[CallResult, RecordingCaller]:
    channel = RecordingCaller(caller(), list(script), recording=recording)
    svc = dataclasses.replace(services(), recognizer=recognizer)
    settings = load_settings(speech={"min_confidence": 0.6})
    return await run_call(flow(text), channel, svc, settings=settings), channel


def kinds(channel: RecordingCaller) -> list[str]:
    return [e.kind for e in channel.events if e.kind in ("say", "keys", "silence")]


async def test_a_spoken_choice_routes_the_call(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.scripted.append(Reply(transcript="Quero a SEGUNDA VIA do boleto, por favor.", confidence=0.92))
    result, channel = await call(MENU, ["say:segunda via do boleto"], google, spoken_wav)

    assert (result.outcome, result.target) == (Outcome.QUEUE, "billing")
    assert channel.heard == ["main_menu", HINT]  # the first menu that listens says so
    assert channel.recorded and not channel.recorded[0].exists()  # deleted once heard: personal data
    [request] = fake_speech.requests
    hints = list(request.config.speech_contexts[0].phrases)
    assert {"segunda via", "boleto", "cancelar", "atendente"} <= set(hints)
    assert request.config.language_code == "pt-BR"


async def test_the_visit_keeps_the_words_with_digits_hidden(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.scripted.append(Reply(transcript="boleto do CNPJ 11.222.333/0001-81", confidence=0.9))
    channel = RecordingCaller(caller(), ["say:boleto"], recording=spoken_wav)
    svc = dataclasses.replace(services(), recognizer=google)
    await run_call(flow(MENU), channel, svc, settings=load_settings())
    visit = next(v for v in svc.events.visits if v.node == "main")  # type: ignore[attr-defined]
    assert (visit.input, visit.outcome) == ("boleto do CNPJ ##.###.###/####-##", "2")


async def test_accents_and_plurals_do_not_matter(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.scripted.append(Reply(transcript="estou sem conexao", confidence=0.9))
    result, _ = await call(MENU, ["say:estou sem conexão"], google, spoken_wav)
    assert result.target == "technical"


async def test_words_pointing_to_two_options_are_asked_again(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.scripted.extend([Reply("quero cancelar a fatura", 0.9), Reply("cancelamento", 0.9)])
    result, channel = await call(MENU, ["say:quero cancelar a fatura", "say:cancelamento"], google, spoken_wav)

    assert result.target == "commercial"
    assert channel.heard == ["main_menu", HINT, "invalid_option", *KEYS]
    assert len(fake_speech.requests) == 2


async def test_low_confidence_asks_once_more_by_keys(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.reply = Reply(transcript="boleto", confidence=0.3)
    # After the caller is told to use the keys, the menu reads keys: words said then are no answer.
    result, channel = await call(MENU, ["say:boleto", "say:boleto", "2"], google, spoken_wav)

    assert result.target == "billing"
    assert channel.heard == ["main_menu", HINT, USE_KEYS_PROMPT, "main_menu", "didnt_hear", *KEYS]
    assert kinds(channel) == ["say", "silence", "keys"]
    assert len(fake_speech.requests) == 1  # the unsure transcript was never acted on, nor asked again


@pytest.mark.parametrize(
    "failure",
    [Reply(fail=grpc.StatusCode.UNAVAILABLE), Reply(transcript="boleto", delay_s=30)],
    ids=["back-end error", "back-end too slow"],
)
async def test_a_recogniser_failure_turns_the_menu_to_keys(
    failure: Reply, google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.reply = failure
    result, channel = await call(MENU, ["say:boleto", "barge:2"], google, spoken_wav)

    assert result.target == "billing"
    assert channel.heard == ["main_menu", HINT, USE_KEYS_PROMPT]  # a key during the apology answers at once


async def test_without_a_speech_back_end_a_menu_waits_for_keys_and_records_nothing(spoken_wav: Path) -> None:
    # Words said to a menu nobody can hear are silence: the caller is not invited to speak, nothing
    # is recorded, and the retry says which keys to press.
    result, channel = await call(MENU, ["say:boleto", "5"], NoSpeechBackend(), spoken_wav)
    assert result.target == "commercial"
    assert channel.heard == ["main_menu", "didnt_hear", *KEYS]
    assert kinds(channel) == ["silence", "keys"]


async def test_a_cnpj_said_in_groups_is_collected_as_digits(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    said = "onze, duzentos e vinte e dois, trezentos e trinta e três, zero zero zero um, oitenta e um"
    fake_speech.scripted.append(Reply(transcript=said, confidence=0.85))
    result, channel = await call(COLLECT, ["say:o CNPJ"], google, spoken_wav)

    assert result.variables["cnpj"] == "11222333000181"
    assert result.path == ["ask", "thanks"]


async def test_a_cnpj_that_could_not_be_made_out_is_keyed_instead(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.reply = Reply(transcript="onze duzentos", confidence=0.2)
    result, channel = await call(COLLECT, ["say:o CNPJ", "11222333000181"], google, spoken_wav)

    assert result.variables["cnpj"] == "11222333000181"
    assert channel.heard[:3] == ["type_cnpj", USE_KEYS_PROMPT, "type_cnpj"]


async def test_a_wrong_cnpj_said_is_refused_like_a_wrong_one_keyed(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.reply = Reply(transcript="um dois três quatro", confidence=0.9)
    result, channel = await call(COLLECT, ["say:o CNPJ", "say:o CNPJ"], google, spoken_wav)

    assert "cnpj" not in result.variables
    assert result.path == ["ask", "bye"]
    assert "cnpj_invalid" in channel.heard


async def test_a_key_pressed_while_listening_switches_the_question_to_keys(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    result, channel = await call(COLLECT, ["1", "1222333000181#"], google, spoken_wav)
    assert result.variables["cnpj"] == "11222333000181"
    assert fake_speech.requests == []


async def test_a_request_in_the_callers_words_is_kept_as_text_and_audio_when_the_flow_keeps_it(
    google: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    text = """
flow: t
start: words
nodes:
  words:
    record: {prompt: tell_us, into: complaint, transcribe: true, keep: true}
    next: bye
  bye:
    hangup: goodbye
"""
    # An unsure transcript of free words is still worth keeping for the agent who reads it.
    fake_speech.scripted.append(Reply(transcript="o técnico não apareceu", confidence=0.4))
    result, channel = await call(text, ["say:o técnico não apareceu"], google, spoken_wav)
    assert result.variables["complaint"] == "o técnico não apareceu"
    [kept] = channel.recorded
    assert result.variables["complaint_audio"] == str(kept) and kept.exists()  # the flow keeps this one
    assert fake_speech.requests[0].audio.content  # the recording itself was sent
