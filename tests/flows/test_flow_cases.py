"""Every case in flows/tests/*.yaml, one pytest test each, run against the seeded store."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.clock import system_clock
from ivr.config import REPO_ROOT, load_settings
from ivr.flows.flowtest import ServicesFactory, find_test_files, read_test_file, report, run_files

CASE_FILES = find_test_files([REPO_ROOT / "flows" / "tests"])
CASES = [(path, case.name) for path in CASE_FILES for case in read_test_file(path)[0].cases]


def test_there_are_flow_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
async def test_flow_cases(path: Path, seeded_services: ServicesFactory) -> None:
    results = await run_files([path], seeded_services, load_settings(), now=system_clock())
    assert [r.case.name for r in results] == [name for p, name in CASES if p == path]
    assert all(r.passed for r in results), report(results)
