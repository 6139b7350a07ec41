"""``ivr flow check``: everything that can be known about a set of flows without running a call.

Each problem points at a file, line and column and says, in one sentence, what a supervisor should change.
Errors stop a flow set from being published; warnings do not. The rules live beside this module:

- ``rules_structure``: unknown nodes and flows, unreachable nodes, loops that spin without the caller,
  menus without no-input/no-match handling or using the keys kept for repeat (*) and back (#);
- ``rules_resources``: prompts missing from the catalogue, unknown operations and their arguments;
- ``rules_sac``: Brazil's customer-service rules (protocol first, a human from every menu, no data
  before a human, complaints and cancellation in the first menu).

Flows call each other (``subflow``), so a check always sees the whole directory a file lives in, and
reports only the files it was asked about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from integrations.registry import OperationRegistry
from ivr.engine.flow import Flow, Position, Problem, Severity
from ivr.flows import rules_resources, rules_sac, rules_structure
from ivr.flows.loader import FlowLoadError, load_flow
from ivr.flows.rules_paths import CallGraph
from ivr.voice.catalogue import Catalogue, CatalogueError

FLOW_GLOB = "*.yaml"

Rule = Callable[[CallGraph], Iterable[Problem]]

#: Rules that need nothing but the flows.
GRAPH_RULES: tuple[Rule, ...] = (
    rules_structure.unknown_targets,
    rules_structure.unknown_flows,
    rules_structure.unreachable_nodes,
    rules_structure.spinning_loops,
    rules_structure.menu_retries,
    rules_structure.menu_keys,
    rules_sac.protocol_before_menus,
    rules_sac.first_menu_rights,
    rules_sac.menus_offer_humans,
    rules_sac.no_data_before_human,
)


@dataclass(frozen=True, slots=True)
class Report:
    problems: tuple[Problem, ...]  # sorted by file, line and column
    flows: Mapping[str, Flow]  # the checked flows that loaded, by name (read-only)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """True when nothing stops these flows from being published (warnings allowed)."""
        return not self.errors

    def summary(self) -> str:
        errors, warnings = len(self.errors), len(self.warnings)
        counted = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        return f"{counted} in {len(self.flows)} flow{'s' * (len(self.flows) != 1)}"

    def render(self) -> str:
        """Errors first, then warnings, one per line, then the summary."""
        lines = [str(p) for p in (*self.errors, *self.warnings)]
        return "\n".join([*lines, self.summary()])


def flow_files(paths: Iterable[Path]) -> list[Path]:
    """The flow files named by `paths`: a directory stands for the ``*.yaml`` files directly in it."""
    files: list[Path] = []
    for path in map(Path, paths):
        for file in sorted(path.glob(FLOW_GLOB)) if path.is_dir() else [path]:
            if file not in files:
                files.append(file)
    return files


def check_paths(
    paths: Iterable[Path],
    *,
    catalogue: Catalogue | None = None,
    registry: OperationRegistry | None = None,
) -> Report:
    """Check flow files (or directories of them); the catalogue and registry default to the configured ones."""
    wanted = flow_files(paths)
    problems: list[Problem] = []
    if not wanted:
        return Report((), MappingProxyType({}))
    if catalogue is None:
        catalogue = _configured_catalogue(problems)
    if registry is None:
        from integrations.catalog import declared_registry

        registry = declared_registry()

    context = [f for f in flow_files(sorted({f.parent for f in wanted})) if f not in wanted]
    flows: dict[str, Flow] = {}
    checked: set[Path] = set()
    for file in [*wanted, *context]:
        try:
            flow = load_flow(file)
        except FlowLoadError as exc:
            problems.extend(exc.problems)
            continue
        if flow.name in flows:
            first = flows[flow.name].source
            problems.append(
                Problem(
                    flow.key_positions.get("flow", Position(file, 1, 1)),
                    f"flow name '{flow.name}' is already used by {first}: each flow needs its own name",
                )
            )
            continue
        flows[flow.name] = flow
        if file in wanted:
            checked.add(file)

    graph = CallGraph(flows)
    problems.extend(_run(graph, catalogue, registry))
    others = set(context)  # loaded to follow subflows; their own problems are not what was asked about
    reported = sorted(
        {p for p in problems if p.position.file not in others},
        key=lambda p: (str(p.position.file), p.position.line, p.position.column, p.message),
    )
    loaded = MappingProxyType({name: f for name, f in flows.items() if f.source in checked})
    return Report(tuple(reported), loaded)


def _run(graph: CallGraph, catalogue: Catalogue | None, registry: OperationRegistry) -> Iterator[Problem]:
    for rule in GRAPH_RULES:
        yield from rule(graph)
    if catalogue is not None:
        yield from rules_resources.missing_prompts(graph, catalogue)
    yield from rules_resources.operation_calls(graph, registry)


_CATALOGUE_PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)$")


def _configured_catalogue(problems: list[Problem]) -> Catalogue | None:
    """The catalogue from settings; when it cannot be read its problems are reported and prompts go unchecked."""
    from ivr.config import settings

    try:
        return Catalogue.load(settings().prompts_dir)
    except CatalogueError as exc:
        for text in exc.problems:  # documented as "file:line: what is wrong"
            match = _CATALOGUE_PROBLEM.match(text)
            if match:
                where, what = Position(Path(match["file"]), int(match["line"]), 1), match["message"]
            else:
                where, what = Position(settings().prompts_dir, 1, 1), text
            problems.append(Problem(where, f"prompt catalogue: {what}"))
        return None
