"""Each bad fixture flow yields exactly the problems its ``# expect:`` lines name, at their line and column;
each good one yields none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.config import REPO_ROOT
from ivr.engine.flow import Problem
from ivr.engine.operations import OperationRegistry
from ivr.flows.checks import check_paths
from ivr.voice.catalogue import Catalogue

GOOD = REPO_ROOT / "tests" / "data" / "flows" / "good"
BAD = REPO_ROOT / "tests" / "data" / "flows" / "bad"

# "# expect: 12:7 error: <the start of the message, or a part of it>"
EXPECT = re.compile(r"^# expect: (?P<line>\d+):(?P<column>\d+) (?P<severity>error|warning): (?P<text>.+)$")


def expectations(path: Path) -> list[tuple[int, int, str, str]]:
    found = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if m := EXPECT.match(text):
            found.append((int(m["line"]), int(m["column"]), m["severity"], m["text"]))
    return found


def unmatched(problems: tuple[Problem, ...], expected: list[tuple[int, int, str, str]]) -> tuple[list, list]:
    """Pair problems with expectations one to one; return what is left on each side."""
    left = list(problems)
    missing = []
    for line, column, severity, text in expected:
        match = next(
            (
                p
                for p in left
                if (p.position.line, p.position.column, p.severity.value) == (line, column, severity)
                and text in p.message
            ),
            None,
        )
        if match is None:
            missing.append((line, column, severity, text))
        else:
            left.remove(match)
    return missing, [str(p) for p in left]


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_fixture_yields_exactly_its_expected_problems(
    path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} must name its expected problems in '# expect:' lines"
    report = check_paths([path], catalogue=catalogue, registry=registry)
    assert {p.position.file for p in report.problems} == {path}
    missing, unexpected = unmatched(report.problems, expected)
    assert (missing, unexpected) == ([], [])
    assert report.ok == all(severity == "warning" for _, _, severity, _ in expected)


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda p: p.stem)
def test_good_fixture_has_no_problem(path: Path, catalogue: Catalogue, registry: OperationRegistry) -> None:
    report = check_paths([path], catalogue=catalogue, registry=registry)
    assert [str(p) for p in report.problems] == []
    assert [f.source for f in report.flows.values()] == [path]


def test_good_directory_checks_clean_as_a_set(catalogue: Catalogue, registry: OperationRegistry) -> None:
    report = check_paths([GOOD], catalogue=catalogue, registry=registry)
    assert report.problems == ()
    assert sorted(report.flows) == ["conventions", "journeys", "journeys_identify", "minimal"]
    assert report.summary() == "0 errors, 0 warnings in 4 flows"

