"""The flows of a set seen as one graph, for the checks that follow a caller's possible paths.

A vertex is ``(flow name, node name)``. A node's edges go to the nodes its verb names (`Verb.targets`);
a ``subflow`` node also enters the start of the flow it runs, and continues to its ``next`` only if that
flow can come back (reach a ``return`` node) on the walk being made. Edges to nodes or flows that do not
exist are left out here: the structure rules report them.

A flow file that does not load is a `BrokenFlow`: its load problems are reported once, and nothing is
guessed about it. Calls into it are not followed, and the flows it may run (those its text names) are
not taken for flows a call starts in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ivr.engine.flow import Flow, Node
from ivr.engine.verbs.collect import Collect
from ivr.engine.verbs.menu import Menu
from ivr.engine.verbs.queue import Queue
from ivr.engine.verbs.say import Say
from ivr.engine.verbs.subflow import Return, Subflow
from ivr.engine.verbs.transfer import Transfer

Vertex = tuple[str, str]  # (flow, node)
#: Says whether a walk must stop at a node (it is not passed through; the walk notes it as reached).
Stop = Callable[[Node], bool]
Analysis = TypeVar("Analysis")

#: The verbs that put the caller through to a person.
HUMAN_VERBS = (Queue, Transfer)


def is_human(node: Node) -> bool:
    return isinstance(node.verb, HUMAN_VERBS)


def is_menu(node: Node) -> bool:
    return isinstance(node.verb, Menu)


def menu_of(node: Node) -> Menu:
    assert isinstance(node.verb, Menu), f"node '{node.name}' is not a menu"
    return node.verb


def is_collect(node: Node) -> bool:
    """A node that makes the caller key data (a CNPJ, a protocol...)."""
    return isinstance(node.verb, Collect)


def announces_protocol(node: Node) -> bool:
    return isinstance(node.verb, Say) and node.verb.announces_protocol


def waits_for_caller(node: Node) -> bool:
    return node.verb.waits_for_caller


def never(node: Node) -> bool:
    return False


def describe(vertex: Vertex, home: str) -> str:
    """A vertex as a supervisor reads it: the node name, prefixed by its flow when not in `home`."""
    flow, node = vertex
    return node if flow == home else f"{flow}:{node}"


@dataclass(frozen=True, slots=True)
class Walk:
    """Where a walk went: `passed` maps each vertex passed through to the one it came from (None for the
    start); `stopped` maps each vertex the walk stopped at to the one it came from."""

    passed: dict[Vertex, Vertex | None]
    stopped: dict[Vertex, Vertex | None]

    def path_to(self, vertex: Vertex) -> list[Vertex]:
        """The path the walk took from its start to `vertex` (passed or stopped at)."""
        path = [vertex]
        step = self.stopped[vertex] if vertex in self.stopped else self.passed[vertex]
        while step is not None:
            path.append(step)
            step = self.passed[step]
        return path[::-1]


@dataclass(frozen=True, slots=True)
class BrokenFlow:
    """A flow file that did not load: the name it gives itself (or its file's stem) and every word in it,
    a superset of the flows it runs."""

    name: str
    source: Path
    words: frozenset[str]


class CallGraph:
    def __init__(self, flows: Mapping[str, Flow], broken: Iterable[BrokenFlow] = ()) -> None:
        self.flows = flows
        self.broken = {b.name: b for b in broken if b.name not in flows}
        self._can_return: dict[tuple[str, Stop], bool] = {}
        self._analyses: dict[Callable[[CallGraph], Any], Any] = {}

    def analysis(self, build: Callable[[CallGraph], Analysis]) -> Analysis:
        """What `build` works out about this graph, built once however many rules ask for it."""
        if build not in self._analyses:
            self._analyses[build] = build(self)
        result: Analysis = self._analyses[build]
        return result

    def node(self, vertex: Vertex) -> Node:
        return self.flows[vertex[0]].nodes[vertex[1]]

    def start_of(self, flow: str) -> Vertex:
        return (flow, self.flows[flow].start)

    def vertices(self) -> Iterator[Vertex]:
        for name, flow in self.flows.items():
            for node in flow.nodes:
                yield (name, node)

    def subflow_of(self, node: Node) -> str | None:
        """The known flow a ``subflow`` node runs, if any."""
        if not isinstance(node.verb, Subflow):
            return None
        return node.verb.flow if node.verb.flow in self.flows else None

    def runs_broken(self, node: Node) -> bool:
        """Whether `node` runs a flow whose file did not load."""
        return isinstance(node.verb, Subflow) and node.verb.flow in self.broken

    def run_by_broken(self, flow: str) -> list[BrokenFlow]:
        """The files that did not load and may run `flow` (their text names it)."""
        return [b for b in self.broken.values() if flow in b.words]

    def called_flows(self) -> set[str]:
        """Flows another flow runs as a subflow."""
        return {
            sub
            for vertex in self.vertices()
            if (sub := self.subflow_of(self.node(vertex))) is not None and sub != vertex[0]
        }

    def entry_flows(self) -> list[str]:
        """Flows no other flow runs as a subflow: calls begin there. A flow a broken file may run is not
        one: whether it is cannot be known until that file loads."""
        called = self.called_flows()
        return [name for name in self.flows if name not in called and not self.run_by_broken(name)]

    def first_menus(self) -> list[Vertex]:
        """The menus a caller can hear first, from the start of any entry flow."""
        firsts: list[Vertex] = []
        for entry in self.entry_flows():
            walk = self.walk([self.start_of(entry)], is_menu)
            firsts.extend(v for v in walk.stopped if v not in firsts)
        return firsts

    def predecessors(self, vertex: Vertex) -> list[Vertex]:
        """The nodes of the same flow with an edge to `vertex` (a subflow node's edge is to its ``next``)."""
        return self.analysis(_predecessors).get(vertex, [])

    def successors(self, vertex: Vertex, stop: Stop = never) -> Iterator[Vertex]:
        flow = self.flows[vertex[0]]
        node = flow.nodes[vertex[1]]
        sub = self.subflow_of(node)
        if sub is not None:
            yield self.start_of(sub)
        for label, target in node.verb.targets():
            if target not in flow.nodes:
                continue
            if isinstance(node.verb, Subflow) and label == "next" and (sub is None or not self.can_return(sub, stop)):
                continue
            yield (vertex[0], target)

    def walk(self, starts: Iterable[Vertex], stop: Stop = never) -> Walk:
        """Breadth-first from `starts`, not passing through nodes where `stop` is true."""
        passed: dict[Vertex, Vertex | None] = {}
        stopped: dict[Vertex, Vertex | None] = {}
        frontier: list[tuple[Vertex, Vertex | None]] = [(s, None) for s in starts]
        while frontier:  # bounded: each vertex enters `passed` or `stopped` once
            following: list[tuple[Vertex, Vertex | None]] = []
            for vertex, parent in frontier:
                if vertex in passed or vertex in stopped:
                    continue
                if stop(self.node(vertex)):
                    stopped[vertex] = parent
                    continue
                passed[vertex] = parent
                following.extend((nxt, vertex) for nxt in self.successors(vertex, stop))
            frontier = following
        return Walk(passed, stopped)

    def can_return(self, flow: str, stop: Stop) -> bool:
        """Whether `flow`, run as a subflow, can reach one of its ``return`` nodes without a `stop` node.

        A flow that (indirectly) runs itself counts as not returning while it is being worked out, so
        recursion ends.
        """
        key = (flow, stop)
        if key not in self._can_return:
            self._can_return[key] = False
            walk = self.walk([self.start_of(flow)], stop)
            self._can_return[key] = any(
                v[0] == flow and isinstance(self.node(v).verb, Return) for v in walk.passed
            )
        return self._can_return[key]

    def cycles(self, stop: Stop) -> list[list[Vertex]]:
        """One cycle for each strongly connected group of nodes that are not `stop` nodes and that can
        go round without one (Tarjan's algorithm, iterative so large flows cannot exhaust the stack)."""
        inside = [v for v in self.vertices() if not stop(self.node(v))]
        allowed = set(inside)
        edges = {v: [w for w in self.successors(v, stop) if w in allowed] for v in inside}
        index: dict[Vertex, int] = {}
        low: dict[Vertex, int] = {}
        on_stack: set[Vertex] = set()
        stack: list[Vertex] = []
        groups: list[list[Vertex]] = []
        for root in inside:
            if root in index:
                continue
            work: list[tuple[Vertex, int]] = [(root, 0)]
            while work:
                vertex, i = work.pop()
                if i == 0:
                    index[vertex] = low[vertex] = len(index)
                    stack.append(vertex)
                    on_stack.add(vertex)
                children = edges[vertex]
                if i < len(children):
                    work.append((vertex, i + 1))
                    child = children[i]
                    if child not in index:
                        work.append((child, 0))
                    elif child in on_stack:
                        low[vertex] = min(low[vertex], index[child])
                    continue
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[vertex])
                if low[vertex] == index[vertex]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == vertex:
                            break
                    if len(group) > 1 or vertex in edges[vertex]:
                        groups.append(group)
        return [self._cycle_through(group, edges) for group in groups]

    def _cycle_through(self, group: list[Vertex], edges: dict[Vertex, list[Vertex]]) -> list[Vertex]:
        """A shortest cycle from the group's first vertex (in flow order) back to itself."""
        order = {v: i for i, v in enumerate(self.vertices())}
        members = set(group)
        first = min(group, key=order.__getitem__)
        parents: dict[Vertex, Vertex] = {}
        frontier = [first]
        while frontier:  # bounded by the group's size
            following = []
            for vertex in frontier:
                for child in edges[vertex]:
                    if child == first:
                        path = [vertex]
                        while path[-1] != first:
                            path.append(parents[path[-1]])
                        return [*path[::-1], first]
                    if child in members and child not in parents:
                        parents[child] = vertex
                        following.append(child)
            frontier = following
        raise AssertionError("a strongly connected group always has a cycle through its members")


def _predecessors(graph: CallGraph) -> dict[Vertex, list[Vertex]]:
    found: dict[Vertex, list[Vertex]] = {}
    for vertex in graph.vertices():
        for _, target in graph.node(vertex).verb.targets():
            if target in graph.flows[vertex[0]].nodes:
                found.setdefault((vertex[0], target), []).append(vertex)
    return found
