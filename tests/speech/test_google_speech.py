"""The real google-cloud-speech client against the local Speech fake: what is sent, what comes back,
and how failures reach the engine."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.cloud import speech_v1

from integrations.speech import NoSpeechBackend
from integrations.speech.google import GoogleRecognizer
from ivr.app import build_services
from ivr.clock import system_clock
from ivr.config import ConfigError, SpeechSettings, load_settings
from ivr.engine.ports import Heard, RecognitionError

from .fake_speech import FakeSpeech, Reply

HINTS = ["segunda via", "boleto", "suporte técnico"]


@pytest.fixture
async def recognizer(speech_settings: SpeechSettings) -> AsyncIterator[GoogleRecognizer]:
    client = GoogleRecognizer(speech_settings)
    try:
        yield client
    finally:
        await client.aclose()


def samples(wav: Path) -> bytes:
    """The recording's samples as sox decodes them (independently of the code under test)."""
    return subprocess.run(["sox", str(wav), "-t", "s16", "-"], check=True, capture_output=True).stdout


async def test_the_request_says_a_phone_call_in_brazilian_portuguese_with_the_recorded_audio(
    recognizer: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.reply = Reply(transcript="segunda via do boleto", confidence=0.87)
    recognition = await recognizer.recognise(Heard(audio=spoken_wav, duration_s=1.5), phrase_hints=HINTS)

    assert (recognition.transcript, recognition.confidence) == ("segunda via do boleto", pytest.approx(0.87))
    [request] = fake_speech.requests
    config = request.config
    assert config.language_code == "pt-BR"
    assert config.model == "telephony"
    assert config.sample_rate_hertz == 8000
    assert config.encoding == speech_v1.RecognitionConfig.AudioEncoding.LINEAR16
    assert [list(context.phrases) for context in config.speech_contexts] == [HINTS]
    audio = samples(spoken_wav)
    assert len(audio) > 8000  # espeak really said something
    assert request.audio.content == audio  # the samples exactly, without the WAV header


async def test_silence_comes_back_as_an_empty_transcript(
    recognizer: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.reply = Reply(transcript="")
    recognition = await recognizer.recognise(Heard(audio=spoken_wav))
    assert recognition.transcript == ""
    assert not fake_speech.requests[0].config.speech_contexts  # no hints, no empty context


async def test_a_back_end_error_is_a_recognition_error(
    recognizer: GoogleRecognizer, fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.reply = Reply(fail=grpc.StatusCode.RESOURCE_EXHAUSTED)
    with pytest.raises(RecognitionError, match="speech back-end failed") as caught:
        await recognizer.recognise(Heard(audio=spoken_wav))
    assert caught.value.__cause__ is not None
    assert len(fake_speech.requests) == 1  # no retry while the caller waits


async def test_a_slow_back_end_is_given_up_within_the_timeout(
    fake_speech: FakeSpeech, spoken_wav: Path
) -> None:
    fake_speech.reply = Reply(transcript="boleto", delay_s=30)
    client = GoogleRecognizer(SpeechSettings(endpoint=fake_speech.endpoint, insecure=True, timeout_s=0.5))
    try:
        started = time.monotonic()
        with pytest.raises(RecognitionError):
            await client.recognise(Heard(audio=spoken_wav))
        assert time.monotonic() - started < 1.5
    finally:
        await client.aclose()


async def test_a_back_end_that_is_down_is_a_recognition_error_within_the_timeout(spoken_wav: Path) -> None:
    down = FakeSpeech()
    await down.start()
    endpoint = down.endpoint
    await down.stop()  # the port is now closed
    client = GoogleRecognizer(SpeechSettings(endpoint=endpoint, insecure=True, timeout_s=1.0))
    try:
        started = time.monotonic()
        with pytest.raises(RecognitionError):
            await client.recognise(Heard(audio=spoken_wav))
        assert time.monotonic() - started < 2.0
    finally:
        await client.aclose()


async def test_a_recording_it_cannot_take_is_refused_before_sending(
    recognizer: GoogleRecognizer, fake_speech: FakeSpeech, tmp_path: Path
) -> None:
    wideband = tmp_path / "wideband.wav"
    tone = ["synth", "0.2", "sine", "440"]
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(wideband), *tone], check=True)
    with pytest.raises(RecognitionError, match="expected 8000 Hz 16-bit mono PCM, got 16000 Hz 16-bit 1 channel"):
        await recognizer.recognise(Heard(audio=wideband))
    with pytest.raises(RecognitionError, match="cannot read the recording"):
        await recognizer.recognise(Heard(audio=tmp_path / "missing.wav"))
    long = tmp_path / "long.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(long), "trim", "0", "61"], check=True)
    with pytest.raises(RecognitionError, match="61 s of audio, Recognize takes 60 s at most"):
        await recognizer.recognise(Heard(audio=long))
    assert fake_speech.requests == []


async def test_production_without_credentials_fails_at_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        GoogleRecognizer(SpeechSettings(endpoint="speech.example.invalid:443"))


def test_the_endpoint_must_be_host_and_port() -> None:
    with pytest.raises(ConfigError, match="speech.endpoint: .*expected host:port"):
        load_settings(speech={"endpoint": "speech.example.invalid"})


async def test_services_use_google_only_when_an_endpoint_is_configured(
    fake_speech: FakeSpeech, spoken_wav: Path, tmp_path: Path
) -> None:
    base = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}", "var_dir": tmp_path}
    async with build_services(load_settings(**base), clock=system_clock) as services:
        assert isinstance(services.recognizer, NoSpeechBackend)
    fake_speech.reply = Reply(transcript="boleto", confidence=0.95)
    speech = {"endpoint": fake_speech.endpoint, "insecure": True}
    async with build_services(load_settings(**base, speech=speech), clock=system_clock) as services:
        recognition = await services.recognizer.recognise(Heard(audio=spoken_wav))
    assert recognition.transcript == "boleto"
    assert len(fake_speech.requests) == 1
