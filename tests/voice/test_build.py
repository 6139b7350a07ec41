import argparse
import array
import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.cli import prompts as cli
from ivr.config import settings
from ivr.voice.build import (
    BuildError,
    MissingAudio,
    build_prompts,
    prompt_duration,
    read_manifest,
    total_duration,
)
from ivr.voice.catalogue import Catalogue

pytestmark = pytest.mark.skipif(
    not (shutil.which("sox") and shutil.which("espeak-ng")), reason="needs sox and espeak-ng installed"
)

TEXTS = "hello: Olá, bem-vindo ao atendimento.\ndigit/7: sete\npause/short: ','\n"


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    directory = tmp_path / "pt_BR"
    directory.mkdir()
    (directory / "a.yaml").write_text(TEXTS, encoding="utf-8")
    return directory


def build(directory: Path, **kwargs: object) -> object:
    return build_prompts(Catalogue.load(directory), directory, **kwargs)  # type: ignore[arg-type]


def decode(path: Path, as_type: str) -> array.array:
    """16-bit samples of a raw G.711 file decoded as `as_type` ("al" or "ul")."""
    raw = subprocess.run(
        ["sox", "-t", as_type, "-r", "8000", "-c", "1", str(path), "-t", "s16", "-"],
        capture_output=True, check=True,
    ).stdout
    return array.array("h", raw)


def correlation(a: array.array, b: array.array) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return dot / norm


def test_builds_alaw_and_ulaw_for_every_prompt(prompts: Path) -> None:
    result = build(prompts)
    assert sorted(result.built) == ["digit/7", "hello", "pause/short"]
    audio = prompts / "audio"
    manifest = read_manifest(audio)
    for prompt_id in result.built:
        alaw, ulaw = audio / f"{prompt_id}.alaw", audio / f"{prompt_id}.ulaw"
        # one byte per 8 kHz sample, same length in both laws, and the manifest says so
        assert alaw.stat().st_size == ulaw.stat().st_size
        assert manifest[prompt_id].duration_s == pytest.approx(alaw.stat().st_size / 8000, abs=0.001)
    assert 1.0 < prompt_duration("hello", audio) < 5.0  # a short sentence
    assert 0.15 < prompt_duration("digit/7", audio) < 1.2  # one word
    assert prompt_duration("pause/short", audio) == 0.3
    assert manifest["hello"].source == "tts" and manifest["hello"].voice == "pt-br"


def test_files_really_are_alaw_and_ulaw(prompts: Path) -> None:
    build(prompts)
    alaw, ulaw = prompts / "audio" / "hello.alaw", prompts / "audio" / "hello.ulaw"
    as_alaw, as_ulaw = decode(alaw, "al"), decode(ulaw, "ul")
    assert correlation(as_alaw, as_ulaw) > 0.999  # the same speech under both laws
    # read with the other law, each file is badly distorted
    assert correlation(as_ulaw, decode(alaw, "ul")) < 0.9
    assert correlation(as_alaw, decode(ulaw, "al")) < 0.9


def test_leading_silence_is_trimmed(prompts: Path) -> None:
    build(prompts)
    start = decode(prompts / "audio" / "digit" / "7.alaw", "al")[:400]  # first 50 ms
    assert max(abs(s) for s in start) > 300  # speech starts at once, so fragments join without gaps


def test_rebuilds_only_what_changed(prompts: Path) -> None:
    build(prompts)
    audio = prompts / "audio"
    hello_mtime = (audio / "hello.alaw").stat().st_mtime_ns
    again = build(prompts)
    assert again.built == [] and sorted(again.unchanged) == ["digit/7", "hello", "pause/short"]

    (prompts / "a.yaml").write_text(TEXTS.replace("sete", "sete, sete"), encoding="utf-8")
    (audio / "pause" / "short.ulaw").unlink()
    changed = build(prompts)
    assert sorted(changed.built) == ["digit/7", "pause/short"]
    assert (audio / "hello.alaw").stat().st_mtime_ns == hello_mtime

    forced = build(prompts, force=True)
    assert len(forced.built) == 3


def test_voice_change_rebuilds(prompts: Path) -> None:
    build(prompts)
    assert sorted(build(prompts, words_per_minute=120).built) == ["digit/7", "hello"]  # a pause has no voice
    assert sorted(build(prompts, voice="pt-BR").built) == ["digit/7", "hello"]


def test_removed_prompt_loses_its_audio(prompts: Path) -> None:
    build(prompts)
    (prompts / "a.yaml").write_text("hello: Olá.\n", encoding="utf-8")
    result = build(prompts)
    assert result.removed == ["digit/7", "pause/short"]
    assert not (prompts / "audio" / "digit" / "7.alaw").exists()
    assert set(read_manifest(prompts / "audio")) == {"hello"}


def make_recording(path: Path, *, silent: bool = False) -> None:
    """1 s of tone after 0.5 s of silence, 44.1 kHz stereo, as a supervisor's recorder might give."""
    path.parent.mkdir(parents=True, exist_ok=True)
    effects = ["synth", "1", "sine", "440", "vol", "0" if silent else "0.5", "pad", "0.5", "0"]
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(path), *effects], check=True)


def test_recording_replaces_synthesis(prompts: Path) -> None:
    build(prompts)
    recording = prompts / "recorded" / "digit" / "7.wav"
    make_recording(recording)
    result = build(prompts)
    assert result.built == ["digit/7"]
    entry = read_manifest(prompts / "audio")["digit/7"]
    assert entry.source == "recording" and entry.voice is None
    assert entry.duration_s == pytest.approx(1.08, abs=0.03)  # leading silence gone, short tail added

    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(recording), "synth", "2", "sine", "300"], check=True)
    assert build(prompts).built == ["digit/7"]  # a new recording is picked up
    recording.unlink()
    assert build(prompts).built == ["digit/7"]  # back to synthesis
    assert read_manifest(prompts / "audio")["digit/7"].source == "tts"


def test_stray_and_silent_recordings(prompts: Path) -> None:
    make_recording(prompts / "recorded" / "helo.wav")
    make_recording(prompts / "recorded" / "hello.wav", silent=True)
    with pytest.raises(BuildError, match=r"hello: the recording .*hello\.wav is silent"):
        build(prompts)
    manifest = read_manifest(prompts / "audio")
    assert "hello" not in manifest and "digit/7" in manifest  # the other prompts were still built
    (prompts / "recorded" / "hello.wav").unlink()
    assert build(prompts).stray_recordings == [prompts / "recorded" / "helo.wav"]


def test_missing_tools_are_named(prompts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(BuildError, match="sox and espeak-ng not found on PATH"):
        build(prompts)


def test_espeak_needed_only_for_synthesis(prompts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    only_sox = tmp_path / "bin"
    only_sox.mkdir()
    sox = shutil.which("sox")
    assert sox is not None
    (only_sox / "sox").symlink_to(sox)
    (prompts / "a.yaml").write_text("hello: Olá.\npause/short: ','\n", encoding="utf-8")
    make_recording(prompts / "recorded" / "hello.wav")
    monkeypatch.setenv("PATH", str(only_sox))
    assert len(build(prompts).built) == 2
    (prompts / "a.yaml").write_text("hello: Olá.\nbye: Tchau.\n", encoding="utf-8")
    with pytest.raises(BuildError, match="^espeak-ng not found on PATH"):
        build(prompts)


def test_unknown_voice_is_refused(prompts: Path) -> None:
    with pytest.raises(BuildError, match="espeak-ng has no voice 'no-such-voice'"):
        build(prompts, voice="no-such-voice")


def test_tool_failure_names_the_prompt(prompts: Path) -> None:
    (prompts / "recorded").mkdir()
    (prompts / "recorded" / "hello.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(BuildError, match=r"hello \(recording\): sox failed: "):
        build(prompts)


def test_corrupt_manifest(prompts: Path) -> None:
    build(prompts)
    (prompts / "audio" / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BuildError, match="unreadable manifest.*--force"):
        build(prompts)
    assert len(build(prompts, force=True).built) == 3


def test_durations(prompts: Path) -> None:
    audio = prompts / "audio"
    with pytest.raises(MissingAudio, match="no prompt audio built"):
        prompt_duration("hello", audio)
    build(prompts)
    both = total_duration(["hello", "pause/short"], audio)
    assert both == pytest.approx(prompt_duration("hello", audio) + 0.3)
    with pytest.raises(MissingAudio, match="'nope' has no built audio"):
        total_duration(["hello", "nope"], audio)


def test_cli_build_and_list(prompts: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(prompts))
    settings.cache_clear()
    try:
        parser = argparse.ArgumentParser()
        cli.register(parser.add_subparsers())

        def run(*argv: str) -> int:
            args = parser.parse_args(list(argv))
            return args.handler(args)

        assert run("prompts", "list") == 0
        before = capsys.readouterr().out
        assert "hello" in before and "not built" in before
        assert run("prompts", "build") == 0
        assert capsys.readouterr().out.startswith("built 3, unchanged 0, removed 0 in ")
        assert run("prompts", "build") == 0
        assert capsys.readouterr().out.startswith("built 0, unchanged 3")
        assert run("prompts", "build", "--force") == 0
        assert capsys.readouterr().out.startswith("built 3, unchanged 0")
        assert run("prompts", "list") == 0
        listing = capsys.readouterr().out
        assert "digit/7" in listing and "a.yaml:2" in listing and "tts" in listing

        (prompts / "a.yaml").write_text("Bad id: x\n", encoding="utf-8")
        assert run("prompts", "build") == 1
        assert "a.yaml:1: bad prompt id 'Bad id'" in capsys.readouterr().err
    finally:
        settings.cache_clear()  # the next settings() sees the environment monkeypatch restores


def test_cli_say(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["prompts", "say", "number", "2", "-o", "gender=f"])
    assert args.handler(args) == 0
    assert capsys.readouterr().out == "num/2_f\nduas\n"
    args = parser.parse_args(["prompts", "say", "money", "abc"])
    assert args.handler(args) == 1
    assert "money: expected an amount" in capsys.readouterr().err
