"""The audio build: every catalogue prompt as 8 kHz mono G.711, ready for Asterisk's STREAM FILE.

Each prompt becomes ``audio/<id>.alaw`` and ``audio/<id>.ulaw`` (raw G.711, the extensions Asterisk's
format_pcm knows), so both A-law calls (Brazil's public network) and mu-law calls play without
transcoding. Ids with a slash (``digit/7``) become subfolders, the layout STREAM FILE expects.

Where the words come from, per prompt:
- a supervisor's recording ``recorded/<id>.wav`` (any rate or channel count) when there is one;
- silence, for a pause fragment (a text made only of punctuation);
- otherwise espeak-ng's Brazilian Portuguese voice.
All go through one sox chain: mono, leading and trailing silence trimmed (so fragments join without
gaps), a short tail so words do not run together, 8 kHz, gain normalised.

``audio/manifest.json`` records per prompt a hash of what produced it (text, voice and speed, or the
recording's bytes) and its duration, so a rebuild redoes only what changed, and `prompt_duration`
tells tests how long an uninterruptible prompt lasts.

Supervisors' announcements (`ivr announce add`) are built the same way, one at a time, as
``audio/announce/<name>.alaw|ulaw`` with their own ``<name>.json`` beside them (text, duration): they
come and go outside the catalogue, so the prompts' build never removes them, and two units building
different ones never write the same file. They play as the prompt id ``announce/<name>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from ivr.voice.catalogue import Catalogue, CatalogueError, is_pause
from ivr.voice.speak import MASKED_DIGIT

SAMPLE_RATE = 8000  # G.711: one byte per sample, so a file's size / 8000 is its length in seconds
FORMATS = {"alaw": "al", "ulaw": "ul"}  # Asterisk's file extension -> sox's raw type
MANIFEST = "manifest.json"
ANNOUNCE_NAMESPACE = "announce"  # prompt ids of announcements: announce/<name>
AUDIO_SUBDIR = "audio"
RECORDED_SUBDIR = "recorded"
PAUSE_SECONDS = 0.3
TAIL_SECONDS = 0.08
# Bump when the sox chain changes: every prompt is rebuilt.
PIPELINE_VERSION = 1
_SOX_CLEANUP = [
    "channels", "1",
    "silence", "1", "0.02", "-45d",  # leading silence
    "reverse", "silence", "1", "0.02", "-45d", "reverse",  # trailing silence
    "rate", "-v", str(SAMPLE_RATE),
    "gain", "-n", "-3",
    "pad", "0", str(TAIL_SECONDS),
]  # fmt: skip
_TOOL_TIMEOUT_S = 60.0


class BuildError(RuntimeError):
    """The audio could not be built; the message names the prompt and what went wrong."""


class MissingAudio(LookupError):
    """A prompt has no built audio (or no manifest exists)."""


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    source: str  # "tts", "recording" or "pause"
    hash: str
    voice: str | None  # the espeak-ng voice, for synthesised prompts
    duration_s: float
    text: str


@dataclass(slots=True)
class BuildResult:
    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # ids no longer in the catalogue
    stray_recordings: list[Path] = field(default_factory=list)  # recordings named after no prompt id
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"built {len(self.built)}, unchanged {len(self.unchanged)}, removed {len(self.removed)}"
            f" in {self.seconds:.1f} s"
        )


@dataclass(frozen=True, slots=True)
class _Job:
    prompt_id: str
    source: str
    text: str
    recording: Path | None
    hash: str


@dataclass(frozen=True, slots=True)
class _Tools:
    sox: str
    espeak: str | None
    voice: str
    words_per_minute: int


def build_prompts(
    catalogue: Catalogue,
    prompts_dir: Path,
    *,
    force: bool = False,
    voice: str = "pt-br",
    words_per_minute: int = 150,
    workers: int = 2,
) -> BuildResult:
    """Build the audio of every prompt whose source changed (all of them with `force`)."""
    started = time.monotonic()
    audio_dir = prompts_dir / AUDIO_SUBDIR
    recorded_dir = prompts_dir / RECORDED_SUBDIR
    try:
        previous = read_manifest(audio_dir)
    except BuildError:
        if not force:
            raise
        previous = {}  # --force rebuilds everything, so a damaged manifest does not matter
    old = {} if force else previous
    jobs = [_job(pid, catalogue.text(pid), recorded_dir, voice, words_per_minute) for pid in catalogue.ids()]
    result = BuildResult(stray_recordings=_stray_recordings(recorded_dir, catalogue))
    manifest: dict[str, ManifestEntry] = {}
    todo: list[_Job] = []
    for job in jobs:
        entry = old.get(job.prompt_id)
        if entry is not None and entry.hash == job.hash and _outputs_exist(audio_dir, job.prompt_id):
            manifest[job.prompt_id] = entry
            result.unchanged.append(job.prompt_id)
        else:
            todo.append(job)
    failures: list[str] = []
    if todo:
        tools = _find_tools(
            need_espeak=any(job.source == "tts" for job in todo), voice=voice, words_per_minute=words_per_minute
        )
        audio_dir.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="prompt-build") as pool:
            futures = [(job, pool.submit(_render, job, audio_dir, tools)) for job in todo]
            for job, future in futures:
                try:
                    manifest[job.prompt_id] = future.result()
                    result.built.append(job.prompt_id)
                except BuildError as exc:
                    failures.append(str(exc))
    for prompt_id in sorted(set(previous) - {job.prompt_id for job in jobs}):
        for ext in FORMATS:
            audio_path(audio_dir, prompt_id, ext).unlink(missing_ok=True)
        result.removed.append(prompt_id)
    if todo or result.removed:
        _write_manifest(audio_dir, manifest)  # successes are kept even when some prompts failed
    result.seconds = time.monotonic() - started
    if failures:
        raise BuildError(f"{len(failures)} prompt(s) failed to build:\n  " + "\n  ".join(failures))
    return result


def prompt_duration(prompt_id: str, audio_dir: Path) -> float:
    """Seconds the audio of `prompt_id` built in `audio_dir` lasts."""
    return total_duration([prompt_id], audio_dir)


def total_duration(prompt_ids: Iterable[str], audio_dir: Path) -> float:
    """Seconds a sequence of prompts (announcements too) built in `audio_dir` lasts when played back to back."""
    manifest = read_manifest(audio_dir)
    if not manifest:
        raise MissingAudio(f"{audio_dir / MANIFEST}: no prompt audio built; run `ivr prompts build`")
    total = 0.0
    for prompt_id in prompt_ids:
        entry = announcement_entry(audio_dir, prompt_id) if is_announcement(prompt_id) else manifest.get(prompt_id)
        if entry is None:
            raise MissingAudio(f"prompt {prompt_id!r} has no built audio in {audio_dir}; run `ivr prompts build`")
        total += entry.duration_s
    return total


def audio_path(audio_dir: Path, prompt_id: str, ext: str) -> Path:
    return audio_dir / f"{prompt_id}.{ext}"


# --- announcements ---------------------------------------------------------------------------------


def is_announcement(prompt_id: str) -> bool:
    return prompt_id.startswith(f"{ANNOUNCE_NAMESPACE}/")


def announcement_name(text: str, *, voice: str, words_per_minute: int) -> str:
    """The audio's name for this text in this voice: the same words are one audio, whoever posts them."""
    return "a" + _hash(ANNOUNCE_NAMESPACE, voice, str(words_per_minute), " ".join(text.split()))[:16]


def build_announcement(
    name: str, text: str, prompts_dir: Path, *, voice: str = "pt-br", words_per_minute: int = 150
) -> ManifestEntry:
    """The audio of an announcement as prompt ``announce/<name>``, built like a prompt's unless it already
    is (for these words in this voice). Raises `BuildError`."""
    audio_dir = prompts_dir / AUDIO_SUBDIR
    prompt_id = f"{ANNOUNCE_NAMESPACE}/{name}"
    job = _job(prompt_id, " ".join(text.split()), prompts_dir / RECORDED_SUBDIR, voice, words_per_minute)
    entry = announcement_entry(audio_dir, prompt_id)
    if entry is not None and entry.hash == job.hash and _outputs_exist(audio_dir, prompt_id):
        return entry
    tools = _find_tools(need_espeak=job.source == "tts", voice=voice, words_per_minute=words_per_minute)
    entry = _render(job, audio_dir, tools)
    sidecar = _sidecar(audio_dir, prompt_id)
    # Its own temporary name: two units (or test runs) may build the same words at once.
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=sidecar.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
    os.replace(tmp.name, sidecar)
    return entry


def install_announcement(name: str, prompts_dir: Path, sounds_dir: Path) -> None:
    """Copy an announcement's built audio to where Asterisk plays prompts from (`sounds_dir`, ours holds a
    copy of the prompts made when it was set up, before the announcement existed), unless it is there."""
    prompt_id = f"{ANNOUNCE_NAMESPACE}/{name}"
    for ext in FORMATS:
        target = audio_path(sounds_dir, prompt_id, ext)
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # Asterisk never sees half a file
        shutil.copyfile(audio_path(prompts_dir / AUDIO_SUBDIR, prompt_id, ext), tmp)
        os.replace(tmp, target)


def remove_announcement(name: str, prompts_dir: Path) -> None:
    """Delete the audio of an announcement that was refused (too long), so nothing is left of it."""
    prompt_id = f"{ANNOUNCE_NAMESPACE}/{name}"
    audio_dir = prompts_dir / AUDIO_SUBDIR
    for path in (*(audio_path(audio_dir, prompt_id, ext) for ext in FORMATS), _sidecar(audio_dir, prompt_id)):
        path.unlink(missing_ok=True)


def announcement_entry(audio_dir: Path, prompt_id: str) -> ManifestEntry | None:
    """The built audio of announcement `prompt_id` (its text and length), None when it is not built."""
    try:
        return ManifestEntry(**json.loads(_sidecar(audio_dir, prompt_id).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise BuildError(f"{_sidecar(audio_dir, prompt_id)}: unreadable ({exc}); post the announcement again") from exc


def announcement_texts(audio_dir: Path, prompt_ids: Iterable[str]) -> dict[str, str]:
    """The words of the announcements among `prompt_ids` that are built, to show them like prompts."""
    entries = {pid: announcement_entry(audio_dir, pid) for pid in prompt_ids if is_announcement(pid)}
    return {pid: entry.text for pid, entry in entries.items() if entry is not None}


def heard_lines(prompts_dir: Path, plays: Sequence[Sequence[str]]) -> list[str]:
    """What each of a call's stored plays said, a line each, in the words of the catalogue as it is now:
    a masked digit as •, an announcement's words while it is built, an id no longer in the catalogue in
    brackets. A catalogue that does not load leaves the ids as they are."""
    try:
        files = tuple((path.name, path.stat().st_mtime_ns) for path in sorted(prompts_dir.glob("*.yaml")))
        catalogue = _catalogue_as_of(prompts_dir, files)
    except (CatalogueError, OSError):
        return [" ".join(ids) for ids in plays]
    lines = []
    for ids in plays:
        others = {MASKED_DIGIT: "•", **announcement_texts(prompts_dir / AUDIO_SUBDIR, ids)}
        others.update({p: f"[{p}]" for p in ids if p not in others and not catalogue.has(p)})
        lines.append(catalogue.render_text(ids, others))
    return lines


@lru_cache(maxsize=2)
def _catalogue_as_of(prompts_dir: Path, files: tuple[tuple[str, int], ...]) -> Catalogue:
    """The catalogue loaded once per state of its files (names and modification times)."""
    return Catalogue.load(prompts_dir)


def _sidecar(audio_dir: Path, prompt_id: str) -> Path:
    return audio_dir / f"{prompt_id}.json"


# --- planning --------------------------------------------------------------------------------------


def _job(prompt_id: str, text: str, recorded_dir: Path, voice: str, words_per_minute: int) -> _Job:
    recording = recorded_dir / f"{prompt_id}.wav"
    if recording.is_file():
        digest = hashlib.sha256(recording.read_bytes()).hexdigest()
        return _Job(prompt_id, "recording", text, recording, _hash("recording", digest))
    if is_pause(text):
        return _Job(prompt_id, "pause", text, None, _hash("pause", str(PAUSE_SECONDS)))
    return _Job(prompt_id, "tts", text, None, _hash("tts", voice, str(words_per_minute), text))


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join([str(PIPELINE_VERSION), *parts]).encode()).hexdigest()


def _outputs_exist(audio_dir: Path, prompt_id: str) -> bool:
    return all(audio_path(audio_dir, prompt_id, ext).is_file() for ext in FORMATS)


def _stray_recordings(recorded_dir: Path, catalogue: Catalogue) -> list[Path]:
    if not recorded_dir.is_dir():
        return []
    return sorted(
        path
        for path in recorded_dir.rglob("*.wav")
        if not catalogue.has(path.relative_to(recorded_dir).with_suffix("").as_posix())
    )


def _find_tools(*, need_espeak: bool, voice: str, words_per_minute: int) -> _Tools:
    sox = shutil.which("sox")
    espeak = shutil.which("espeak-ng")
    missing = [] if sox else ["sox"]
    if need_espeak and not espeak:
        missing.append("espeak-ng")
    if sox is None or missing:
        raise BuildError(
            f"{' and '.join(missing)} not found on PATH: the prompt audio build needs it "
            "(Debian packages: sox, espeak-ng)"
        )
    if need_espeak and espeak and voice.split("+")[0].lower() not in _espeak_voices(espeak):
        # espeak-ng quietly falls back to another language for an unknown voice: refuse instead
        raise BuildError(f"espeak-ng has no voice {voice!r} (see `espeak-ng --voices=pt`)")
    return _Tools(sox, espeak, voice, words_per_minute)


def _espeak_voices(espeak: str) -> set[str]:
    """Every name espeak-ng accepts for -v: language codes, voice names and voice files."""
    names: set[str] = set()
    for listing in ("--voices", "--voices=mb"):
        out = subprocess.run([espeak, listing], capture_output=True, text=True, check=True, timeout=_TOOL_TIMEOUT_S)
        for line in out.stdout.splitlines()[1:]:
            columns = line.split()
            if len(columns) >= 5:  # Pty Language Age/Gender VoiceName File ...
                names.update(c.lower() for c in (columns[1], columns[3], columns[4], columns[4].rsplit("/", 1)[-1]))
    return names


# --- rendering (runs in worker threads) ------------------------------------------------------------


def _render(job: _Job, audio_dir: Path, tools: _Tools) -> ManifestEntry:
    target = audio_path(audio_dir, job.prompt_id, "alaw")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=audio_dir, prefix=".build-") as tmp_name:
        tmp = Path(tmp_name)
        clean = tmp / "clean.wav"
        if job.source == "pause":
            _run(job, [tools.sox, "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(clean),
                       "trim", "0", str(PAUSE_SECONDS)])  # fmt: skip
        else:
            source = job.recording
            if source is None:
                source = tmp / "speech.wav"
                assert tools.espeak is not None  # _find_tools requires it when a tts job exists
                _run(job, [tools.espeak, "-v", tools.voice, "-s", str(tools.words_per_minute),
                           "-w", str(source), "--stdin"], stdin=job.text)  # fmt: skip
            _run(job, [tools.sox, str(source), "-b", "16", str(clean), *_SOX_CLEANUP])
        for ext, sox_type in FORMATS.items():
            _run(job, [tools.sox, str(clean), "-t", sox_type, str(tmp / f"out.{ext}")])
        size = (tmp / "out.alaw").stat().st_size
        if size <= TAIL_SECONDS * SAMPLE_RATE and job.source != "pause":
            what = f"recording {job.recording}" if job.recording else "synthesised speech"
            raise BuildError(f"{job.prompt_id}: the {what} is silent")
        for ext in FORMATS:
            os.replace(tmp / f"out.{ext}", audio_path(audio_dir, job.prompt_id, ext))
    voice = tools.voice if job.source == "tts" else None
    return ManifestEntry(job.source, job.hash, voice, round(size / SAMPLE_RATE, 3), job.text)


def _run(job: _Job, command: list[str], *, stdin: str | None = None) -> None:
    tool = Path(command[0]).name
    try:
        subprocess.run(command, input=stdin, capture_output=True, text=True, check=True, timeout=_TOOL_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise BuildError(f"{job.prompt_id} ({job.source}): {tool} failed: {' / '.join(detail) or exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{job.prompt_id} ({job.source}): {tool} took over {_TOOL_TIMEOUT_S:.0f} s") from exc


# --- manifest --------------------------------------------------------------------------------------


def out_of_date(catalogue: Catalogue, prompts_dir: Path, *, voice: str, words_per_minute: int) -> list[str]:
    """Ids whose audio a build would (re)make: never built, files missing, or text/recording changed."""
    audio_dir = prompts_dir / AUDIO_SUBDIR
    manifest = read_manifest(audio_dir)
    stale = []
    for prompt_id in catalogue.ids():
        job = _job(prompt_id, catalogue.text(prompt_id), prompts_dir / RECORDED_SUBDIR, voice, words_per_minute)
        entry = manifest.get(prompt_id)
        if entry is None or entry.hash != job.hash or not _outputs_exist(audio_dir, prompt_id):
            stale.append(prompt_id)
    return stale


def read_manifest(audio_dir: Path) -> dict[str, ManifestEntry]:
    path = audio_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {pid: ManifestEntry(**entry) for pid, entry in data["prompts"].items()}
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{path}: unreadable manifest ({exc}); run `ivr prompts build --force`") from exc


def _write_manifest(audio_dir: Path, manifest: dict[str, ManifestEntry]) -> None:
    path = audio_dir / MANIFEST
    data = {
        "pipeline_version": PIPELINE_VERSION,
        "sample_rate": SAMPLE_RATE,
        "formats": sorted(FORMATS),
        "prompts": {pid: asdict(manifest[pid]) for pid in sorted(manifest)},
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
