"""Flow tests a supervisor writes in YAML (``flows/tests/*.yaml``) and `ivr flow test` runs.

    flow: ../sac.yaml                      # relative to this file
    at: "2026-11-25 10:00"                 # the call's local time, unless a case gives its own
    cases:
      - name: technical support for a known caller
        caller: "3133334444"               # null for a withheld number
        inputs: ["1", "1"]                 # keys, barge:1, say:<words>, silence, hangup
        queues: {technical: answered}      # how queues answer (default: answered)
        operations: {open_ticket: error}   # back-ends that fail on this call: error, timeout, not_found
        at: "2026-11-28 21:00"             # this case's local time (opening hours, holidays)
        expect:
          path: [main_menu, technical_queue]   # these nodes, in this order (others may come between)
          outcome: queue:technical             # queue:<name>, transfer:<number>, hangup, ended
          tickets: [technical]                 # types of the tickets opened
          heard: ["suporte técnico"]           # phrases the caller heard (case and accents as written)
          not_heard: ["CNPJ"]                  # phrases the caller must not hear

Each case runs a whole call through the engine with the real operations (`ivr.app.build_services`),
the way `ivr flow simulate` does, and reports what differs from the expectation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from integrations.registry import OperationContext, OperationRegistry, OperationResult, OperationStatus
from ivr.config import Settings
from ivr.engine.channel import CallInfo, QueueOutcome, TransferOutcome
from ivr.engine.flow import Flow
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.scripted import ScriptedChannel, parse_item
from ivr.engine.services import Services
from ivr.flows.loader import flows_beside, load_flow
from ivr.voice.catalogue import Catalogue

#: Services over a store seeded as of the given moment (the test file's `at`; None: now), so the demo
#: data (invoices due, maintenance in two days) sits where the cases expect it on any day they run.
ServicesFactory = Callable[[datetime | None], AbstractAsyncContextManager[Services]]


class FlowTestError(ValueError):
    """A flow-test file that cannot be run; the message names the file and what is wrong."""


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: list[str] = []
    outcome: str | None = None
    tickets: list[str] | None = None
    heard: list[str] = []
    not_heard: list[str] = []


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    caller: str | None
    inputs: list[str] = []
    queues: dict[str, QueueOutcome] = {}
    transfer: TransferOutcome = TransferOutcome.ANSWERED
    operations: dict[str, Literal["error", "timeout", "not_found"]] = {}
    at: datetime | None = None
    expect: Expect

    @field_validator("inputs", mode="before")
    @classmethod
    def _items(cls, items: list[object]) -> list[str]:
        return [parse_item(str(item)) for item in items]


class FlowTestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow: str
    at: datetime | None = None  # the local time of every case that gives none (opening hours!)
    cases: list[Case] = Field(min_length=1)


@dataclasses.dataclass(slots=True)
class CaseResult:
    file: Path
    case: Case
    result: CallResult
    heard_text: str
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def read_test_file(path: Path) -> tuple[FlowTestFile, Flow]:
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FlowTestError(f"{path}: cannot read ({exc.strerror})") from exc
    except YAMLError as exc:
        raise FlowTestError(f"{path}: not valid YAML: {exc}") from exc
    try:
        spec = FlowTestFile.model_validate(data)
    except ValidationError as exc:
        raise FlowTestError(f"{path}: {_explain(data, exc)}") from exc
    return spec, load_flow(path.parent / spec.flow)


def _explain(data: object, exc: ValidationError) -> str:
    sentences = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if loc[:1] == ["cases"] and len(loc) > 1 and isinstance(data, dict):
            try:
                where = f"case '{data['cases'][loc[1]]['name']}': " + ".".join(str(p) for p in loc[2:])
            except (KeyError, IndexError, TypeError):
                pass
        sentences.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(sentences)


async def run_case(
    case: Case, flow: Flow, services: Services, settings: Settings, catalogue: Catalogue, *, file: Path,
    flows: Mapping[str, Flow] = {}, at: datetime | None = None,
) -> CaseResult:
    when = case.at or at
    if case.operations:
        failing = _failing(services.operations, case.operations, where=f"{file}: case '{case.name}'")
        services = dataclasses.replace(services, operations=failing)
    if when is not None:
        moment = _aware(when, settings)
        services = dataclasses.replace(services, clock=lambda: moment)
    channel = ScriptedChannel(
        CallInfo(caller_id=case.caller, dialled=settings.page.sac_number, unique_id=f"flowtest-{case.name}"),
        case.inputs,
        queue_outcomes=case.queues,
        transfer_outcome=case.transfer,
    )
    result = await run_call(flow, channel, services, flows=flows, settings=settings)
    heard_text = catalogue.render_text(channel.heard)
    return CaseResult(file, case, result, heard_text, _differences(case.expect, result, heard_text))


def _failing(registry: OperationRegistry, failing: Mapping[str, str], *, where: str) -> OperationRegistry:
    """The same operations, but those named answer with the given status (a back-end down or slow)."""
    unknown = sorted(set(failing) - {spec.name for spec in registry})
    if unknown:
        raise FlowTestError(f"{where}: operations: {', '.join(unknown)} not registered")
    changed = OperationRegistry(registry.default_timeout_s)
    for spec in registry:
        if spec.name in failing:
            status = OperationStatus(failing[spec.name])

            async def answer(
                ctx: OperationContext, _status: OperationStatus = status, **args: object
            ) -> OperationResult:
                return OperationResult(_status, {}, "failed on purpose by the flow test")

            spec = dataclasses.replace(spec, handler=answer)
        changed.register(spec)
    return changed


def _differences(expect: Expect, result: CallResult, heard: str) -> list[str]:
    failures = []
    if expect.path and not _is_subsequence(expect.path, result.path):
        failures.append(f"path: expected {' > '.join(expect.path)} in order; went {' > '.join(result.path)}")
    if expect.outcome is not None and expect.outcome != result.summary:
        failures.append(f"outcome: expected {expect.outcome}; got {result.summary}{_why(result)}")
    if expect.tickets is not None and sorted(expect.tickets) != sorted(t.type for t in result.tickets):
        got = ", ".join(t.type for t in result.tickets) or "none"
        failures.append(f"tickets: expected {', '.join(expect.tickets) or 'none'}; opened {got}")
    plain = heard.casefold()
    for phrase in expect.heard:
        if phrase.casefold() not in plain:
            failures.append(f"heard: the caller never heard \"{phrase}\"")
    for phrase in expect.not_heard:
        if phrase.casefold() in plain:
            failures.append(f"not_heard: the caller heard \"{phrase}\"")
    return failures


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
    paths: Sequence[Path], make_services: ServicesFactory, settings: Settings
) -> list[CaseResult]:
    """Run every case of every file; a file that cannot be read raises `FlowTestError`."""
    catalogue = Catalogue.load(Path(settings.prompts_dir))
    loaded = [(path, *read_test_file(path)) for path in find_test_files(paths)]
    results: list[CaseResult] = []
    for path, spec, flow in loaded:
        flows = flows_beside(flow)
        seeded_at = _aware(spec.at, settings) if spec.at else None
        async with make_services(seeded_at) as services:
            for case in spec.cases:
                results.append(
                    await run_case(case, flow, services, settings, catalogue, file=path, flows=flows, at=spec.at)
                )
    return results


def _aware(moment: datetime, settings: Settings) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(settings.timezone))


def report(results: Sequence[CaseResult], *, verbose: bool = False) -> str:
    lines: list[str] = []
    current: Path | None = None
    for r in results:
        if r.file != current:
            current = r.file
            lines.append(str(r.file))
        lines.append(f"  {'ok  ' if r.passed else 'FAIL'}  {r.case.name}")
        for failure in r.failures:
            lines.append(f"          {failure}")
        if r.failures or verbose:
            lines.append(f"          heard: {r.heard_text}")
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)

