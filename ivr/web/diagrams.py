"""The console's diagrams: a flow drawn by Graphviz (`ivr.flows.graph`) with what a page marks on it (a
call's path, the drop-off per node, a diff's changes), as SVG markup inline in the page.

The markup is Graphviz's, made from DOT text where every name and label is quoted, so what a supervisor
wrote in a flow arrives as escaped text; it carries no script, and the page's CSP would run none inline.
`dot` runs in a worker thread, `RENDERS_AT_ONCE` at a time (the machine also answers calls) and bounded in
time; drawings are kept by their DOT text, which holds the flow's version and the overlay, so a page seen
again costs no layout.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from ivr.engine.flow import Flow
from ivr.flows.checks import flow_files
from ivr.flows.diff import FileChange, node_changes
from ivr.flows.graph import START, GraphError, Mark, Overlay, flow_dot, render
from ivr.flows.library import FlowLibrary, UnknownRelease
from ivr.flows.loader import FlowLoadError, load_flow
from ivr.store.history import CallTrace, Step
from ivr.store.reports import DropOff

RENDER_TIMEOUT_S = 20.0
RENDERS_AT_ONCE = 2
DRAWINGS_KEPT = 32  # the main flow's drawing is ~0.5 MB

VISITED, TAKEN = "#fde68a", "#b45309"
ADDED, REMOVED, CHANGED = "#bbf7d0", "#fecaca", "#fed7aa"
_ADDED, _REMOVED = Mark(ADDED, "added", "added"), Mark(REMOVED, "removed", "removed")
#: The fill of a node by the share of its visits that dropped off there: (below this share, fill).
HEAT = ((0.10, "#fee2e2"), (0.25, "#fecaca"), (0.50, "#fca5a5"), (0.75, "#f87171"), (float("inf"), "#ef4444"))


@dataclass(frozen=True, slots=True)
class Drawing:
    """One diagram of a page: its SVG, or None with `note` saying why there is none."""

    title: str
    svg: Markup | None
    note: str = ""


class Diagrams:
    """Draws flows for the pages, keeping the latest drawings and the published flows already read."""

    def __init__(self) -> None:
        self._drawn: OrderedDict[str, Markup] = OrderedDict()
        self._turns = asyncio.Semaphore(RENDERS_AT_ONCE)
        self._flows: dict[tuple[str, str], Flow] = {}  # by (name, version): a version's text never changes
        self._releases: dict[Path, dict[str, Flow]] = {}  # by release directory: a release never changes

    async def drawing(self, flow: Flow, overlay: Overlay, title: str, note: str = "") -> Drawing:
        dot = flow_dot(flow, overlay=overlay)
        key = hashlib.sha256(dot.encode("utf-8")).hexdigest()
        svg = self._drawn.get(key)
        if svg is None:
            try:
                async with self._turns:
                    drawn = await asyncio.to_thread(render, dot, "svg", timeout_s=RENDER_TIMEOUT_S, quick=True)
            except GraphError as exc:
                return Drawing(title, None, f"The diagram could not be drawn: {exc}.")
            text = drawn.decode("utf-8")
            svg = self._drawn[key] = Markup(text[text.index("<svg") :])  # without the XML prolog and doctype
            while len(self._drawn) > DRAWINGS_KEPT:
                self._drawn.popitem(last=False)
        self._drawn.move_to_end(key)
        return Drawing(title, svg, note)

    async def published_flow(self, library: FlowLibrary, name: str, version: str) -> Flow | None:
        if (name, version) not in self._flows:
            flow = await asyncio.to_thread(library.published_flow, name, version)
            if flow is None:
                return None
            self._flows[name, version] = flow
        return self._flows[name, version]

    async def current_flows(self, library: FlowLibrary) -> dict[str, Flow]:
        """The current release's flows by name; raises UnknownRelease when nothing is published."""
        directory = (await asyncio.to_thread(library.side, "current")).directory
        if directory not in self._releases:
            self._releases[directory] = await asyncio.to_thread(_loaded, directory)
        return self._releases[directory]


def _loaded(directory: Path) -> dict[str, Flow]:
    flows = {}
    for path in flow_files([directory]):
        try:
            flow = load_flow(path)
        except FlowLoadError:
            continue  # a release was checked when published; one that no longer loads is simply not drawn
        flows[flow.name] = flow
    return flows


# --- a call's path --------------------------------------------------------------------------------------


async def path_drawings(diagrams: Diagrams, library: FlowLibrary, seen: CallTrace) -> list[Drawing]:
    """One diagram per flow (and version) the call went through, in the order it first reached each."""
    drawings = []
    for name, version in dict.fromkeys((step.flow, step.flow_version) for step in seen.path):
        title = f"flow {name} (version {version})"
        flow = await diagrams.published_flow(library, name, version)
        if flow is None:
            note = "No published release here holds this version, so it cannot be drawn."
            drawings.append(Drawing(title, None, note))
        else:
            drawings.append(await diagrams.drawing(flow, path_overlay(seen.path, flow), title))
    return drawings


def path_overlay(path: Sequence[Step], flow: Flow) -> Overlay:
    """The call's steps in one flow: each node visited marked with its step numbers (1 is the call's first
    node, as in the path's table), each edge taken with the number of the step it led to; the rest dimmed.
    Of several edges between two nodes (a lookup's found / not_found), the one named by the step's result."""
    labelled = {(node.name, target, label) for node in flow.nodes.values() for label, target in node.verb.targets()}
    visits: dict[str, list[int]] = {}
    taken: dict[tuple[str, ...], list[int]] = {}
    previous: Step | None = None  # the step before, when it was in this flow
    for number, step in enumerate(path, start=1):
        if (step.flow, step.flow_version) != (flow.name, flow.version):
            previous = None
            continue
        visits.setdefault(step.node, []).append(number)
        if previous is None:  # the call entered this flow: at its start
            edge: tuple[str, ...] = (START, step.node)
        else:  # a visit records its result ("found", a menu's key); the edge's label may say "option <key>"
            named = [(previous.node, step.node, label) for label in (previous.outcome, f"option {previous.outcome}")]
            edge = next((key for key in named if key in labelled), (previous.node, step.node))
        taken.setdefault(edge, []).append(number)
        previous = step

    def numbers(steps: list[int]) -> str:
        return " ".join(f"#{n}" for n in steps)

    return Overlay(
        nodes={node: Mark(VISITED, numbers(steps), "visited") for node, steps in visits.items()},
        edges={edge: Mark(TAKEN, numbers(steps), "taken") for edge, steps in taken.items()},
        dim=True,
        caption="the call's path: #n is the n-th node it reached",
    )


# --- drop-off per node ------------------------------------------------------------------------------------


async def drop_off_drawings(diagrams: Diagrams, library: FlowLibrary, drop_off: Iterable[DropOff]) -> list[Drawing]:
    """One diagram per flow where callers dropped off, on the current release's version of the flow."""
    by_flow: dict[str, list[DropOff]] = {}
    for node in drop_off:
        by_flow.setdefault(node.flow, []).append(node)
    if not by_flow:
        return []
    try:
        flows = await diagrams.current_flows(library)
    except UnknownRelease as exc:
        return [Drawing("drop-off per node", None, f"No diagram: {exc}.")]
    drawings = []
    for name, nodes in by_flow.items():
        title = f"flow {name}"
        if name not in flows:
            drawings.append(Drawing(title, None, "The current release has no such flow, so it cannot be drawn."))
            continue
        gone = [node.node for node in nodes if node.node not in flows[name].nodes]
        note = f"Also dropped off at nodes the current release no longer has: {', '.join(gone)}." if gone else ""
        drawings.append(await diagrams.drawing(flows[name], drop_off_overlay(nodes), title, note))
    return drawings


def drop_off_overlay(nodes: Iterable[DropOff]) -> Overlay:
    """Each node where calls ended badly, labelled with how many and what share of its visits, filled by
    that share (`HEAT`)."""
    return Overlay(
        nodes={
            node.node: Mark(
                next(fill for below, fill in HEAT if node.share < below),
                f"{node.hung_up + node.input_failed + node.failed} of {node.visits} dropped ({100 * node.share:.1f}%)"
                f"\nhung up {node.hung_up}, input failed {node.input_failed}, failed {node.failed}",
                "dropoff",
            )
            for node in nodes
        },
        caption="drop-off per node: calls that hung up, failed input or failed there, of the node's visits",
    )


# --- a diff ---------------------------------------------------------------------------------------------


async def diff_drawings(diagrams: Diagrams, files: Iterable[FileChange]) -> Mapping[str, Drawing]:
    """A diagram per changed flow file (by its name): nodes added green, removed red (drawn as they were),
    changed orange. A file that does not load on either side has none (its summary says why)."""
    drawings = {}
    for change in files:
        drawn = diff_overlay(change)
        if drawn is not None:
            flow, overlay = drawn
            drawings[change.name] = await diagrams.drawing(flow, overlay, f"flow {flow.name}")
    return drawings


def diff_overlay(change: FileChange) -> tuple[Flow, Overlay] | None:
    """The flow to draw and its marks: the new side with the old side's removed nodes beside it."""
    old, new = change.old, change.new
    caption = "green: added, red: removed (as it was), orange: changed"
    if new is None:
        return (old, Overlay(nodes=dict.fromkeys(old.nodes, _REMOVED), caption=caption)) if old else None
    if old is None:
        return new, Overlay(nodes=dict.fromkeys(new.nodes, _ADDED), caption=caption)
    nodes = node_changes(old, new)
    marks = {
        **dict.fromkeys(nodes.added, _ADDED),
        **dict.fromkeys(nodes.removed, _REMOVED),
        **{name: Mark(CHANGED, f"changed{how}", "changed") for name, how in nodes.changed},
    }
    return new, Overlay(nodes=marks, extra={name: old.nodes[name] for name in nodes.removed}, caption=caption)
