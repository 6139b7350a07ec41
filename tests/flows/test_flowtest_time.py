"""A flow test's `at:` governs everything the call sees: the demo data is seeded relative to it, and the
operations, deadlines (business days, holidays) and the protocol's year follow it, whatever day the test
runs on."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.app import demo_services
from ivr.clock import Clock
from ivr.config import load_settings
from ivr.engine.operations import OperationContext, OperationResult, OperationStatus
from ivr.engine.ports import Services
from ivr.flows.flowtest import ServicesFactory, report, run_files

# The caller's circuit has maintenance two days after the seed moment; a boleto copy is due in three
# business days (weekends and national holidays skipped). Numbers and dates only: no prompt of the flows.
DATED_FLOW = """\
flow: dated
start: identify
nodes:
  identify:
    lookup: {operation: customer_by_caller_id, found: confirm, not_found: goodbye, error: goodbye}
  confirm:
    lookup: {operation: customer_by_cnpj, args: {cnpj: "11222333"}, found: protocol, not_found: goodbye,
             error: goodbye}
  protocol:
    say: {protocol: "{{ call.protocol }}"}
    next: maintenance
  maintenance:
    lookup: {operation: open_incidents, into: incident, found: maintenance_date, not_found: goodbye,
             error: goodbye}
  maintenance_date:
    say: {date: "{{ incident.maintenance_date }}", options: {weekday: true}}
    next: copy
  copy:
    lookup: {operation: open_ticket, args: {kind: boleto_copy}, into: ticket, found: copy_due, not_found: goodbye,
             error: goodbye}
  copy_due:
    say: {date: "{{ ticket.expected_date }}", options: {weekday: true}}
    next: goodbye
  goodbye:
    hangup: goodbye
"""


def demo(tmp_path: Path) -> ServicesFactory:
    @asynccontextmanager
    async def fresh(clock: Clock) -> AsyncIterator[Services]:
        async with demo_services(load_settings(), Path(tempfile.mkdtemp(dir=tmp_path)), clock=clock) as services:
            yield services

    return fresh


def write_tests(tmp_path: Path, text: str) -> Path:
    """The dated flow in flows/, the test file in flows/tests/, as in a checkout."""
    tests = tmp_path / "flows" / "tests"
    tests.mkdir(parents=True)
    (tests.parent / "dated.yaml").write_text(DATED_FLOW, encoding="utf-8")
    (tests / "dated.yaml").write_text(text, encoding="utf-8")
    return tests / "dated.yaml"


async def test_the_files_moment_and_a_cases_own_moment_each_date_the_data_and_the_deadlines(tmp_path: Path) -> None:
    tests = write_tests(
        tmp_path,
        "flow: ../dated.yaml\n"
        "at: '2026-12-24 10:00'\n"  # Thursday; Christmas, then a weekend
        "cases:\n"
        "  - name: on Christmas Eve\n"
        "    caller: '3133334444'\n"
        "    expect:\n"
        "      heard: ['dois mil e vinte e seis', 'sábado, vinte e seis de dezembro',\n"
        "              'quarta-feira, trinta de dezembro']\n"
        "  - name: in July of the next year, on data seeded as of then\n"
        "    caller: '3133334444'\n"
        "    at: '2027-07-14 10:00'\n"  # Wednesday
        "    expect:\n"
        "      heard: ['dois mil e vinte e sete', 'sexta-feira, dezesseis de julho',\n"
        "              'segunda-feira, dezenove de julho']\n",
    )
    results = await run_files(
        [tests], demo(tmp_path), load_settings(), now=datetime(2031, 1, 1, tzinfo=ZoneInfo("UTC"))
    )
    assert [r.case.name for r in results] == ["on Christmas Eve", "in July of the next year, on data seeded as of then"]
    assert all(r.passed for r in results), report(results)


async def test_a_file_without_a_moment_runs_at_the_moment_the_run_started(tmp_path: Path) -> None:
    tests = write_tests(
        tmp_path,
        "flow: ../dated.yaml\n"
        "cases:\n"
        "  - name: the Wednesday before Easter 2030\n"
        "    caller: '3133334444'\n"
        "    expect:\n"  # Good Friday (19 April) is a holiday: the copy is due on Tuesday
        "      heard: ['dois mil e trinta', 'sexta-feira, dezenove de abril', 'terça-feira, vinte e três de abril']\n",
    )
    started = datetime(2030, 4, 17, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    [result] = await run_files([tests], demo(tmp_path), load_settings(), now=started)
    assert result.passed, report([result])


async def test_a_slow_back_end_takes_no_time_in_a_case_the_caller_hears_no_hold_prompt(tmp_path: Path) -> None:
    """Whether a case hears "Um momento" must not depend on how loaded the machine running it is."""
    settings = load_settings()
    settings = settings.model_copy(update={"hold": settings.hold.model_copy(update={"after_s": 0.001})})

    async def slow_lookup(ctx: OperationContext, **args: object) -> OperationResult:
        await asyncio.sleep(0.05)
        return OperationResult(OperationStatus.NOT_FOUND, {})

    @asynccontextmanager
    async def slow(clock: Clock) -> AsyncIterator[Services]:
        async with demo(tmp_path)(clock) as services:
            operations = services.operations.with_handlers({"customer_by_caller_id": slow_lookup})
            yield dataclasses.replace(services, operations=operations)

    tests = write_tests(
        tmp_path,
        "flow: ../dated.yaml\n"
        "at: '2026-12-24 10:00'\n"
        "cases:\n"
        "  - name: an unknown caller, after a slow lookup\n"
        "    caller: '3133334444'\n"
        "    expect: {path: [identify, goodbye], not_heard: ['Um momento']}\n",
    )
    [result] = await run_files([tests], slow, settings, now=datetime(2031, 1, 1, tzinfo=ZoneInfo("UTC")))
    assert result.passed, report([result])
    assert result.result.path == ["identify", "goodbye"]
