"""Flow tests a supervisor writes in YAML (``flows/tests/*.yaml``) and `ivr flow test` runs.

    flow: ../sac.yaml                      # relative to this file
    at: "2026-11-25 10:00"                 # the moment of every case that gives none
    cases:
      - name: technical support for a known caller
        caller: "3133334444"               # null for a withheld number
        inputs: ["1", "1"]                 # keys, barge:1, say:<words>, silence, hangup
        queues: {technical: answered}      # how queues answer (default: answered)
        queue_state: {technical: {waiting: 3, agents: 2, talk_s: 240}}   # how a queue stands before the
                                           # caller joins (position and wait said); not stated: unknown,
                                           # as with AMI down (the caller joins, told nothing)
        operations: {open_ticket: error}   # back-ends that fail on this call: error, timeout, not_found
        announcements:                     # posted by supervisors (`ivr announce add`) for this case only;
          - {text: "...", scope: "city:Belo Horizonte", until: 2h}   # until: a date and time, or a duration
                                           # from the case's moment ("-1h": expired an hour ago)
        at: "2026-11-28 21:00"             # this case's own moment (opening hours, holidays)
        expect:
          path: [main_menu, technical_queue]   # these nodes, in this order (others may come between)
          outcome: queue:technical             # queue:<name>, transfer:<number>, hangup, ended
          tickets: [technical]                 # types of the tickets opened
          summary: [email, whatsapp]           # how the written summary of what it opened went
          heard: ["suporte técnico"]           # phrases the caller heard (case and accents as written)
          not_heard: ["CNPJ"]                  # phrases the caller must not hear
          max_seconds: 40                      # at most this many seconds of audio up to the outcome

Each case runs a whole call through the engine with the real operations (`ivr.app.demo_services`),
the way `ivr flow simulate` does, and reports what differs from the expectation.

Time: `at` is a local time in the carrier's time zone (or carries its own offset). It is the moment
everything in the call reads (opening hours, holidays, deadlines and business days, due invoices, the
protocol's year), and the demo data is seeded relative to it (an invoice overdue, maintenance in two
days). The cases of a file without their own `at` share one store, in order: what one case opens, the
next can find. A case with its own `at` runs alone on a store seeded as of its moment. A file without
`at` runs at the moment `ivr flow test` started.

Seconds: each case reports the seconds of audio the caller heard up to the call's outcome, the built
lengths of the prompts played (``audio/manifest.json``; a prompt cut short by a key counts in full, as
the script does not say when the key came). Without built audio, or with audio older than its prompt,
the seconds are unknown and a case with `max_seconds` fails for that reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from ivr.clock import Clock, ManualClock, local, moment_from
from ivr.config import Settings
from ivr.engine.channel import QueueOutcome, TransferOutcome
from ivr.engine.flow import Flow
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.operations import OperationContext, OperationRegistry, OperationResult, OperationStatus
from ivr.engine.ports import Announcement, AnnouncementRefused, CallInfo, QueueLoad, Scope, Services
from ivr.engine.scripted import ScriptedChannel, StatedQueues, parse_item
from ivr.flows.loader import flows_beside, load_flow
from ivr.voice.build import (
    AUDIO_SUBDIR,
    BuildError,
    MissingAudio,
    announcement_texts,
    out_of_date,
    total_duration,
)
from ivr.voice.catalogue import Catalogue

#: Services over a fresh demo store seeded as of ``clock()``, every part of the call reading `clock`
#: (`ivr.app.demo_services`), so the demo data sits where the cases expect it on any day they run.
ServicesFactory = Callable[[Clock], AbstractAsyncContextManager[Services]]


class FlowTestError(ValueError):
    """A flow-test file that cannot be run; the message names the file and what is wrong."""


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: list[str] = []
    outcome: str | None = None
    tickets: list[str] | None = None
    heard: list[str] = []
    not_heard: list[str] = []
    max_seconds: float | None = Field(default=None, gt=0)
    summary: list[Literal["email", "whatsapp"]] | None = None  # how the written summary of the call went
    agent: dict[str, str] = {}  # what the agent who takes the call is shown (the queue's context), in part


class StatedQueue(BaseModel):
    """A queue's live state as a case states it (`QueueLoad`'s fields)."""

    model_config = ConfigDict(extra="forbid")

    waiting: int = Field(ge=0)
    agents: int = Field(ge=0)
    available: int = Field(default=0, ge=0)
    hold_s: int = Field(default=0, ge=0)
    talk_s: int = Field(default=0, ge=0)


class StatedAnnouncement(BaseModel):
    """An announcement a case posts (`ivr announce add`), ended when the case is over."""

    model_config = ConfigDict(extra="forbid")

    text: str
    scope: str = "all"
    until: str | datetime = "1h"  # a date and time, or a duration from the case's moment; "-1h": expired


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    caller: str | None
    inputs: list[str] = []
    queues: dict[str, QueueOutcome] = {}
    queue_state: dict[str, StatedQueue | Literal["unknown"]] = {}
    transfer: TransferOutcome = TransferOutcome.ANSWERED
    operations: dict[str, Literal["error", "timeout", "not_found"]] = {}
    announcements: list[StatedAnnouncement] = []
    at: datetime | None = None
    expect: Expect

    @field_validator("inputs", mode="before")
    @classmethod
    def _items(cls, items: list[object]) -> list[str]:
        return [parse_item(str(item)) for item in items]


class FlowTestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow: str
    at: datetime | None = None  # the moment of every case that gives none (opening hours!)
    cases: list[Case] = Field(min_length=1)


@dataclasses.dataclass(slots=True)
class CaseResult:
    file: Path
    case: Case
    result: CallResult
    heard_text: str
    seconds: float | None  # of audio heard up to the outcome; None when unknown
    seconds_unknown: str  # why `seconds` is None ("" when known)
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def read_test_file(path: Path) -> tuple[FlowTestFile, Flow]:
    try:
        data = YAML().load(path.read_text(encoding="utf-8"))  # round trip: it keeps the lines, for errors
    except OSError as exc:
        raise FlowTestError(f"{path}: cannot read ({exc.strerror})") from exc
    except YAMLError as exc:
        raise FlowTestError(f"{path}: not valid YAML: {exc}") from exc
    try:
        spec = FlowTestFile.model_validate(data)
    except ValidationError as exc:
        raise FlowTestError(_explain(path, data, exc)) from exc
    return spec, load_flow(path.parent / spec.flow)


def _explain(path: Path, data: object, exc: ValidationError) -> str:
    """One line per problem: where (file:line, the case), the setting, and what was expected."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if loc[:1] == ["cases"] and len(loc) > 1 and isinstance(data, dict):
            try:
                where = f"case '{data['cases'][loc[1]]['name']}': " + ".".join(str(p) for p in loc[2:])
            except (KeyError, IndexError, TypeError):
                pass
        lines.append(f"{path}:{_line(data, loc)}: {where}: {err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _line(data: object, loc: Sequence[int | str]) -> int:
    """The line of the deepest part of `loc` that the file has (the case, when a setting is missing)."""
    line, node = 1, data
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
        else:
            break
        node = node[part]
    return line


@dataclasses.dataclass(frozen=True, slots=True)
class AudioLengths:
    """The built length of the prompts (``audio/manifest.json``), to time what a caller heard."""

    audio_dir: Path
    stale: frozenset[str]  # prompts changed since their audio was built: their length is not theirs

    @classmethod
    def of(cls, settings: Settings, catalogue: Catalogue) -> AudioLengths:
        voice = settings.voice
        try:
            stale = out_of_date(
                catalogue, settings.prompts_dir, voice=voice.espeak_voice, words_per_minute=voice.words_per_minute
            )
        except BuildError:
            stale = []  # an unreadable manifest: measuring says so, for every case
        return cls(settings.prompts_dir / AUDIO_SUBDIR, frozenset(stale))

    def seconds(self, prompt_ids: Collection[str]) -> tuple[float | None, str]:
        """The seconds these prompts last back to back, or None and why they cannot be told."""
        try:
            seconds = total_duration(prompt_ids, self.audio_dir)
        except (MissingAudio, BuildError) as exc:
            return None, str(exc)
        changed = sorted(self.stale.intersection(prompt_ids))
        if changed:
            return None, f"prompt {changed[0]!r} changed since its audio was built; run `ivr prompts build`"
        return seconds, ""


async def run_case(
    case: Case, flow: Flow, services: Services, settings: Settings, catalogue: Catalogue, audio: AudioLengths,
    *, file: Path, flows: Mapping[str, Flow] = {},
) -> CaseResult:
    """One call through `flow`, at the moment of `services.clock`. Its back-ends answer at once in the
    call's time, however long the machine takes: the hold prompt, timed by the wall clock, is left out."""
    settings = settings.model_copy(update={"hold": settings.hold.model_copy(update={"prompt": ""})})
    if case.operations:
        failing = _failing(services.operations, case.operations, where=f"{file}: case '{case.name}'")
        services = dataclasses.replace(services, operations=failing)
    loads = {name: QueueLoad(**state.model_dump()) for name, state in case.queue_state.items() if state != "unknown"}
    services = dataclasses.replace(services, queues=StatedQueues(loads))
    channel = ScriptedChannel(
        CallInfo(caller_id=case.caller, dialled=settings.page.sac_number, unique_id=f"flowtest-{case.name}"),
        case.inputs,
        queue_outcomes=case.queues,
        transfer_outcome=case.transfer,
    )
    posted = await _post(case, services, settings, where=f"{file}: case '{case.name}'")
    try:
        result = await run_call(flow, channel, services, flows=flows, settings=settings)
    finally:
        for announcement in posted:  # the next case of the file, on the same store, does not hear them
            with contextlib.suppress(AnnouncementRefused):  # expired already
                await services.announcements.end(announcement.id)
    heard_text = catalogue.render_text(channel.heard, announcement_texts(audio.audio_dir, channel.heard))
    seconds, unknown = audio.seconds(channel.heard)
    failures = _differences(case.expect, result, heard_text, channel.agent_context)
    failures += _over_time(case.expect, seconds, unknown)
    return CaseResult(file, case, result, heard_text, seconds, unknown, failures)


async def _post(case: Case, services: Services, settings: Settings, *, where: str) -> list[Announcement]:
    """The case's announcements, posted as of its moment; one that has expired was posted before it."""
    now = services.clock()
    posted = []
    for stated in case.announcements:
        try:
            until = (
                local(stated.until, settings.timezone)
                if isinstance(stated.until, datetime)
                else moment_from(stated.until, now, settings.timezone)
            )
            start = min(now, until - timedelta(hours=1))
            posted.append(
                await services.announcements.post(
                    stated.text, Scope.parse(stated.scope), until, by="flow test", starts_at=start
                )
            )
        except (ValueError, BuildError) as exc:  # AnnouncementRefused is a ValueError
            raise FlowTestError(f"{where}: announcements: {exc}") from exc
    return posted


def _failing(registry: OperationRegistry, failing: Mapping[str, str], *, where: str) -> OperationRegistry:
    """The same operations, but those named answer with the given status (a back-end down or slow)."""
    unknown = sorted(set(failing) - {spec.name for spec in registry})
    if unknown:
        raise FlowTestError(f"{where}: operations: {', '.join(unknown)} not registered")
    return registry.with_handlers({name: partial(_fail, OperationStatus(status)) for name, status in failing.items()})


async def _fail(status: OperationStatus, ctx: OperationContext, **args: object) -> OperationResult:
    return OperationResult(status, {}, "failed on purpose by the flow test")


def _differences(expect: Expect, result: CallResult, heard: str, agent: Mapping[str, str]) -> list[str]:
    failures = []
    for name, shown in expect.agent.items():
        if agent.get(name) != shown:
            failures.append(f"agent: expected {name} {shown!r}; shown {agent.get(name, '(no queue joined)')!r}")
    if expect.path and not _is_subsequence(expect.path, result.path):
        failures.append(f"path: expected {' > '.join(expect.path)} in order; went {' > '.join(result.path)}")
    if expect.outcome is not None and expect.outcome != result.summary:
        failures.append(f"outcome: expected {expect.outcome}; got {result.summary}{_why(result)}")
    if expect.tickets is not None and sorted(expect.tickets) != sorted(t.type for t in result.tickets):
        got = ", ".join(t.type for t in result.tickets) or "none"
        failures.append(f"tickets: expected {', '.join(expect.tickets) or 'none'}; opened {got}")
    if expect.summary is not None and sorted(expect.summary) != sorted(result.summary_sent_by):
        sent = ", ".join(result.summary_sent_by) or "nothing"
        failures.append(f"summary: expected by {', '.join(expect.summary) or 'nothing'}; sent by {sent}")
    plain = heard.casefold()
    for phrase in expect.heard:
        if phrase.casefold() not in plain:
            failures.append(f"heard: the caller never heard \"{phrase}\"")
    for phrase in expect.not_heard:
        if phrase.casefold() in plain:
            failures.append(f"not_heard: the caller heard \"{phrase}\"")
    return failures


def _over_time(expect: Expect, seconds: float | None, unknown: str) -> list[str]:
    if expect.max_seconds is None:
        return []
    if seconds is None:
        return [f"max_seconds: seconds unknown: {unknown}"]
    if seconds > expect.max_seconds:
        return [f"max_seconds: took {seconds:.1f} s of audio, more than {expect.max_seconds:g}"]
    return []


def _why(result: CallResult) -> str:
    return f" ({result.reason})" if result.reason else ""


def _is_subsequence(wanted: Sequence[str], path: Sequence[str]) -> bool:
    steps = iter(path)
    return all(any(step == node for step in steps) for node in wanted)


def find_test_files(paths: Sequence[Path]) -> list[Path]:
    """The flow-test files named, directories expanded to their *.yaml files."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return files


async def run_files(
    paths: Sequence[Path], make_services: ServicesFactory, settings: Settings, *, now: datetime
) -> list[CaseResult]:
    """Run every case of every file; a file that cannot be read raises `FlowTestError`. `now` is the
    moment of files without `at` (the moment the run started, read once)."""
    catalogue = Catalogue.load(Path(settings.prompts_dir))
    audio = AudioLengths.of(settings, catalogue)
    loaded = [(path, *read_test_file(path)) for path in find_test_files(paths)]
    results: list[CaseResult] = []
    for path, spec, flow in loaded:
        flows = flows_beside(flow)
        run = partial(run_case, flow=flow, settings=settings, catalogue=catalogue, audio=audio, file=path, flows=flows)
        file_moment = local(spec.at, settings.timezone) if spec.at else now
        async with make_services(ManualClock(file_moment)) as shared:
            for case in spec.cases:
                if case.at is None:
                    results.append(await run(case, services=shared))
                else:  # its demo data must be dated as of its own moment
                    async with make_services(ManualClock(local(case.at, settings.timezone))) as own:
                        results.append(await run(case, services=own))
    return results


def report(results: Sequence[CaseResult], *, verbose: bool = False) -> str:
    """Each case with its seconds of audio (``ok    ( 41.3 s)  name``), what failed, then the totals."""
    lines: list[str] = []
    current: Path | None = None
    for r in results:
        if r.file != current:
            current = r.file
            lines.append(str(r.file))
        seconds = "    ?" if r.seconds is None else f"{r.seconds:5.1f}"
        lines.append(f"  {'ok  ' if r.passed else 'FAIL'}  ({seconds} s)  {r.case.name}")
        for failure in r.failures:
            lines.append(f"          {failure}")
        if r.failures or verbose:
            lines.append(f"          heard: {r.heard_text}")
    for why in dict.fromkeys(r.seconds_unknown for r in results if r.seconds_unknown):
        lines.append(f"seconds unknown: {why}")
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)

