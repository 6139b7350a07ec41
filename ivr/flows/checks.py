"""``ivr flow check``: everything that can be known about a set of flows without running a call.

Each problem points at a file, line and column and says, in one sentence, what a supervisor should change.
Errors stop a flow set from being published; warnings do not. The rules live beside this module:

- ``rules_structure``: unknown nodes and flows, unreachable nodes, loops that spin without the caller,
  menus without no-input/no-match handling, using the keys kept for repeat (*) and back (#), or
  offering more than five choices;
- ``rules_resources``: prompts missing from the catalogue, unknown operations and their arguments;
- ``rules_prompts``: menus announce exactly their keys, the first menu says "0" first, prompts that are
  too long to follow;
- ``rules_sac``: Brazil's customer-service rules (protocol first, a person on "0" in every menu, no data
  before a person, complaints and cancellation in the first menu, silence never consents), on what a
  caller is sure to reach (``rules_reach``).

Flows call each other (``subflow``), so a check always sees the whole directory a file lives in, and
reports only the files it was asked about. A file that does not load is reported once: nothing is
guessed about it, and each flow it kept from being checked in full says so in one warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ivr.engine.flow import Flow, Position, Problem, Severity
from ivr.engine.operations import OperationRegistry
from ivr.flows import rules_prompts, rules_resources, rules_sac, rules_structure
from ivr.flows.loader import FlowLoadError, load_flow
from ivr.flows.rules_paths import BrokenFlow, CallGraph
from ivr.flows.rules_prompts import PromptLengths
from ivr.voice.build import AUDIO_SUBDIR, BuildError, ManifestEntry, read_manifest
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
    rules_structure.menu_size,
    rules_structure.broken_flow_effects,
    rules_sac.protocol_before_menus,
    rules_sac.announcements_after_protocol,
    rules_sac.first_menu_rights,
    rules_sac.menus_offer_persons,
    rules_sac.no_data_before_person,
    rules_sac.data_prompts_offer_a_person,
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
    catalogue: Catalogue | Path,
    registry: OperationRegistry,
    built_audio: Mapping[str, ManifestEntry] | None = None,
    words_per_minute: int = 150,
) -> Report:
    """Check flow files (or directories of them). `catalogue` is the prompt catalogue, or the directory to
    load it from (a catalogue that does not load is reported, and prompts go unchecked); `registry` holds
    the operations flows may call (`integrations.catalog.declared_registry()`).

    Prompts' lengths come from `built_audio` (the audio manifest's entries: by default the audio built in
    the catalogue's directory when a directory is given, else none), and are estimated from their words
    at `words_per_minute` (settings.voice) where no audio is built.
    """
    wanted = flow_files(paths)
    problems: list[Problem] = []
    if not wanted:
        return Report((), MappingProxyType({}))
    prompts: Catalogue | None = catalogue if isinstance(catalogue, Catalogue) else None
    if isinstance(catalogue, Path):
        prompts = _loaded_catalogue(catalogue, problems)
        if built_audio is None:
            built_audio = _built_audio(catalogue)

    context = [f for f in flow_files(sorted({f.parent for f in wanted})) if f not in wanted]
    flows: dict[str, Flow] = {}
    broken: list[BrokenFlow] = []
    checked: set[Path] = set()
    for file in [*wanted, *context]:
        try:
            flow = load_flow(file)
        except FlowLoadError as exc:
            problems.extend(exc.problems)
            broken.append(_broken(file))
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

    graph = CallGraph(flows, broken)
    problems.extend(_run(graph, prompts, registry, built_audio or {}, words_per_minute))
    others = set(context)  # loaded to follow subflows; their own problems are not what was asked about
    reported = sorted(
        {p for p in problems if p.position.file not in others},
        key=lambda p: (str(p.position.file), p.position.line, p.position.column, p.message),
    )
    loaded = MappingProxyType({name: f for name, f in flows.items() if f.source in checked})
    return Report(tuple(reported), loaded)


def _run(
    graph: CallGraph,
    catalogue: Catalogue | None,
    registry: OperationRegistry,
    built_audio: Mapping[str, ManifestEntry],
    words_per_minute: int,
) -> Iterator[Problem]:
    for rule in GRAPH_RULES:
        yield from rule(graph)
    if catalogue is not None:
        lengths = PromptLengths(catalogue, built_audio, words_per_minute)
        yield from rules_resources.missing_prompts(graph, catalogue)
        yield from rules_prompts.announced_keys_are_real_keys(graph, catalogue)
        yield from rules_prompts.first_menu_says_person_first(graph, catalogue)
        yield from rules_prompts.long_menu_prompts(graph, catalogue, lengths)
    yield from rules_resources.operation_calls(graph, registry)
    yield from rules_sac.silence_never_consents(graph, registry)


_FLOW_NAME = re.compile(r"^flow:\s*[\"']?([\w-]+)", re.MULTILINE)
_WORD = re.compile(r"[\w-]+")


def _broken(file: Path) -> BrokenFlow:
    """What a flow file that does not load still says: its name and the flows it may run (any word)."""
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    name = _FLOW_NAME.search(text)
    return BrokenFlow(name[1] if name else file.stem, file, frozenset(_WORD.findall(text)))


def _built_audio(prompts_dir: Path) -> Mapping[str, ManifestEntry]:
    """The audio built for the prompts in `prompts_dir`; none when it is not built or its manifest is
    unreadable (the lengths are then estimated, and `ivr doctor` and `ivr prompts build` say what is wrong)."""
    try:
        return read_manifest(prompts_dir / AUDIO_SUBDIR)
    except BuildError:
        return {}


_CATALOGUE_PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)$")


def _loaded_catalogue(prompts_dir: Path, problems: list[Problem]) -> Catalogue | None:
    """The catalogue in `prompts_dir`; when it cannot be read its problems are reported and prompts go
    unchecked."""
    try:
        return Catalogue.load(prompts_dir)
    except CatalogueError as exc:
        for text in exc.problems:  # documented as "file:line: what is wrong"
            match = _CATALOGUE_PROBLEM.match(text)
            if match:
                where, what = Position(Path(match["file"]), int(match["line"]), 1), match["message"]
            else:
                where, what = Position(prompts_dir, 1, 1), text
            problems.append(Problem(where, f"prompt catalogue: {what}"))
        return None
