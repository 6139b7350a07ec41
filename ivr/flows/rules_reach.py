"""What a caller is *sure* to reach from a node, whatever happens that the caller does not choose.

Two questions are asked of every node, each answered as the least fixpoint of a rule per verb over the
whole call graph (loops that never get there count as not getting there):

- `PersonReach`: is the caller sure to reach a person without keying data? A ``queue`` or ``transfer``
  is a person. A ``menu`` is when its option ``0`` is (pressing 0 is not data); a ``collect`` asks for
  data, so only its way out to a person counts (the edge `Collect.targets` labels ``person``). Every
  other verb decides nothing for the caller, so all of its outcomes must get there: a ``branch`` on a
  condition the caller cannot meet is not a way out, nor a ``lookup`` that reaches a person only when
  the back-end fails. ``record`` goes on in silence, so it counts as its ``next``; ``hangup`` never does.
- `OpensReach`: does choosing an option lead to opening a ticket of one kind (a complaint, a
  cancellation)? Every choice on the way (a category menu's options, ``0`` aside) must lead there,
  while one outcome the caller does not choose is enough (a cancellation opened once the account is
  confirmed, the retention queue otherwise).

A ``subflow`` node gets what its flow gets from its start, where the flow's ``return`` counts as the
subflow node's ``next``: each node is solved twice, once for a return that gets there and once for one
that does not. A flow that did not load is not guessed at: calls into it count as getting there, so
nothing is reported because of it (its load problems are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ivr.engine.flow import Node
from ivr.engine.verbs.branch import Branch
from ivr.engine.verbs.collect import Collect
from ivr.engine.verbs.hangup import Hangup
from ivr.engine.verbs.hours import Hours
from ivr.engine.verbs.menu import Menu
from ivr.engine.verbs.subflow import Return, Subflow
from ivr.flows.rules_paths import HUMAN_VERBS, CallGraph, Vertex

#: The operation that opens tickets; its ``kind`` argument says what kind.
TICKET_OPERATION = "open_ticket"
#: The label of a collect's edge to a person (taken when the caller presses ``*``), in `Verb.targets`.
PERSON_EDGE = "person"
PERSON_KEY = "0"

#: Decides one node from what its targets (in its own flow) get: `leads(target)`.
Decide = Callable[[Node, Callable[[str], bool]], bool]


class Reach:
    """The least solution of "node gets there" = `decide(node, what its targets get)` over the graph."""

    def __init__(self, graph: CallGraph, decide: Decide) -> None:
        self.graph = graph
        self._decide = decide
        self._gets: dict[tuple[Vertex, bool], bool] = {}
        self._solve()

    def holds(self, vertex: Vertex, returning_gets_there: bool = False) -> bool:
        """Whether `vertex` gets there; in a subflow, `returning_gets_there` says what its ``return`` gets."""
        return self._gets[(vertex, returning_gets_there)]

    def target_holds(self, flow: str, target: str, returning_gets_there: bool) -> bool:
        """Whether the node `target` of `flow` gets there (a node that does not exist does not)."""
        if target not in self.graph.flows[flow].nodes:
            return False
        return self._gets[((flow, target), returning_gets_there)]

    def _solve(self) -> None:
        states = [(vertex, returning) for vertex in self.graph.vertices() for returning in (False, True)]
        self._gets = dict.fromkeys(states, False)
        # Flows are written top-down (a node's targets mostly below it): from the bottom up, most states
        # settle in the first pass (sac.yaml: 5 passes instead of 16).
        states.reverse()
        changed = True
        while changed:  # bounded: each pass turns at least one of the finitely many states true
            changed = False
            for state in states:
                if not self._gets[state] and self._evaluate(*state):
                    self._gets[state] = changed = True

    def _evaluate(self, vertex: Vertex, returning: bool) -> bool:
        flow, node = vertex[0], self.graph.node(vertex)
        verb = node.verb
        if isinstance(verb, Return):
            return returning
        if isinstance(verb, Subflow):
            if verb.flow in self.graph.broken:
                return True  # not guessed: the broken file is reported, not what it would do
            if verb.flow not in self.graph.flows:
                return False
            after = self.target_holds(flow, verb.next, returning)
            return self._gets[(self.graph.start_of(verb.flow), after)]
        return self._decide(node, lambda target: self.target_holds(flow, target, returning))


def person_ways(node: Node) -> list[tuple[str, str]]:
    """The edges that must all lead to a person for `node` to (a person node needs none)."""
    verb = node.verb
    if isinstance(verb, Menu):
        return [(f"option {PERSON_KEY}", verb.options[PERSON_KEY].go)] if PERSON_KEY in verb.options else []
    if isinstance(verb, Collect):
        return [(label, target) for label, target in verb.targets() if label == PERSON_EDGE]
    return verb.targets()


def _reaches_person(node: Node, leads: Callable[[str], bool]) -> bool:
    if isinstance(node.verb, HUMAN_VERBS):
        return True
    ways = person_ways(node)
    return bool(ways) and all(leads(target) for _, target in ways)


def opened_kinds(node: Node) -> set[str]:
    """The kinds of ticket `node` opens (written as plain values, not templates)."""
    return {
        str(args["kind"])
        for name, args in node.verb.operations()
        if name == TICKET_OPERATION and isinstance(args.get("kind"), str)
    }


def opens_kind(kind: str) -> Decide:
    def decide(node: Node, leads: Callable[[str], bool]) -> bool:
        if kind in opened_kinds(node):
            return True
        verb = node.verb
        if isinstance(verb, HUMAN_VERBS):
            return False  # the call is handed over: what opens after a queue is not this option's doing
        if isinstance(verb, Menu):
            choices = [option.go for key, option in verb.options.items() if key != PERSON_KEY]
            return bool(choices) and all(leads(go) for go in choices)
        return any(leads(target) for _, target in verb.targets())

    return decide


class PersonReach(Reach):
    def __init__(self, graph: CallGraph) -> None:
        super().__init__(graph, _reaches_person)

    def offers_person(self, vertex: Vertex) -> bool:
        """A person node, or a menu or collect from which the caller can take a sure way to a person."""
        node = self.graph.node(vertex)
        return isinstance(node.verb, HUMAN_VERBS) or (isinstance(node.verb, Menu | Collect) and self.holds(vertex))

    def miss(self, start: Vertex) -> Miss | None:
        """How a caller sent to `start` (which is not sure to reach a person) can miss one: the nodes
        passed and why. None when the way leads to a node or flow that does not exist (reported as such)."""
        graph = self.graph
        path: list[Vertex] = []
        seen: set[tuple[Vertex, bool, int]] = set()
        # Where each subflow being walked returns to, and what that return gets.
        returns: list[tuple[Vertex, bool]] = []
        vertex, returning = start, False
        while True:  # bounded by `seen`: each (node, return value, depth) is visited once
            if vertex[1] not in graph.flows[vertex[0]].nodes:
                return None
            if (vertex, returning, len(returns)) in seen or len(returns) > len(graph.flows):
                return Miss(path, "goes round without ever reaching a person")
            seen.add((vertex, returning, len(returns)))
            path.append(vertex)
            node, flow = graph.node(vertex), vertex[0]
            verb = node.verb
            if isinstance(verb, Return):
                if not returns:
                    why = "returns to the flow that ran this one: a subflow's own menus must reach a person"
                    return Miss(path, why)
                vertex, returning = returns.pop()
                continue
            if isinstance(verb, Subflow):
                if verb.flow not in graph.flows:
                    return None
                returns.append(((flow, verb.next), returning))
                vertex, returning = graph.start_of(verb.flow), self.target_holds(flow, verb.next, returning)
                continue
            ways = person_ways(node)
            if not ways:
                return Miss(path, _dead_end(node))
            if any(target not in graph.flows[flow].nodes for _, target in ways):
                return None
            missing = [(label, target) for label, target in ways if not self.target_holds(flow, target, returning)]
            if len(missing) < len(ways):  # the caller cannot choose the outcomes that do reach one
                reaching = [label for label, target in ways if (label, target) not in missing]
                good = " or ".join(outcome_words(node, label) for label in reaching)
                label, target = missing[0]
                return Miss(
                    path,
                    f"reaches a person only when {good} (when {outcome_words(node, label)}, the caller goes to "
                    f"'{target}', with no person)",
                )
            vertex = (flow, missing[0][1])


class OpensReach(Reach):
    def __init__(self, graph: CallGraph, kind: str) -> None:
        super().__init__(graph, opens_kind(kind))


@dataclass(frozen=True, slots=True)
class Miss:
    path: list[Vertex]  # from the node a caller is sent to, to where the way to a person is lost
    why: str  # completes "…, which {why}"


def _dead_end(node: Node) -> str:
    verb = node.verb
    if isinstance(verb, Hangup):
        return "ends the call"
    if isinstance(verb, Menu):
        return f"is menu '{node.name}', which has no option '{PERSON_KEY}'"
    if isinstance(verb, Collect):
        return "asks the caller to key data"
    return "leads nowhere"


def outcome_words(node: Node, label: str) -> str:
    """When a node takes the edge `label`, in words: "the team is open", "'open_ticket' fails"..."""
    verb = node.verb
    if isinstance(verb, Hours):
        return {"open": "the team is open", "closed": "the team is closed"}.get(label, "it is a holiday")
    if isinstance(verb, Branch):
        return f"'{label.removeprefix('if ')}' is true" if label.startswith("if ") else "no condition is true"
    operations = verb.operations()
    if operations:
        name = operations[0][0]
        return {
            "found": f"'{name}' finds it",
            "not_found": f"'{name}' finds nothing",
            "error": f"'{name}' fails",
            "timeout": f"'{name}' is slow",
            "next": f"'{name}' succeeds",
        }.get(label, f"'{name}' answers {label}")
    return f"it goes on by '{label}'"

