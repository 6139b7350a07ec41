"""Brazil's customer-service rules (Decreto 11.034/2022, the "SAC decree", and Anatel's RGC), checked on
every path a caller can take, read strictly even though our callers are businesses:

- the call's protocol number is announced before the first menu;
- supervisors' announcements (`announce`) play after the protocol, which comes first, and, where a flow
  set has them, on every way to the first menu, so every caller in their scope hears them;
- every menu's option ``0`` is sure to reach a person without asking for data (`rules_reach.PersonReach`);
- no caller is asked to key data before a way to a person is offered;
- the first menu has an option that leads to opening a complaint, and one that leads to opening a
  cancellation (by where the options lead, `rules_reach.OpensReach`, not by what they are called);
- silence never consents: when a caller says nothing (or only presses wrong keys), a menu's or
  collect's ``then`` never leads to an operation that opens something (`OperationSpec.opens`).

Calls begin in the *entry flows* (those no other flow runs as a subflow); a subflow is followed into.
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import Environment, nodes
from jinja2.parser import Parser

from ivr.engine.flow import Node, Problem, Severity
from ivr.engine.operations import OperationRegistry
from ivr.engine.verbs.announce import Announce
from ivr.engine.verbs.branch import Branch
from ivr.engine.verbs.collect import Collect
from ivr.engine.verbs.menu import Menu
from ivr.engine.verbs.record import Record
from ivr.engine.verbs.set import Set
from ivr.flows.rules_paths import (
    CallGraph,
    Vertex,
    Walk,
    announces_protocol,
    describe,
    is_collect,
    is_menu,
    menu_of,
)
from ivr.flows.rules_reach import PERSON_KEY, TICKET_OPERATION, OpensReach, PersonReach

DECREE = "Decreto 11.034/2022"
PROTOCOL_HINT = "announce it first with a node like 'say: {protocol: \"{{ call.protocol }}\"}'"
#: The ticket kinds the first menu must lead to, as a supervisor reads them.
FIRST_MENU_KINDS = {"complaint": 'complaint ("reclamação")', "cancellation": "cancellation"}


def protocol_before_menus(graph: CallGraph) -> Iterator[Problem]:
    for entry in graph.entry_flows():
        walk = graph.walk([graph.start_of(entry)], _announces_or_menu)
        for vertex in walk.stopped:
            node = graph.node(vertex)
            if is_menu(node):
                yield Problem(
                    node.position,
                    f"a caller can reach menu '{node.name}' before hearing the call's protocol number "
                    f"({_route(walk, vertex, entry)}): {PROTOCOL_HINT} ({DECREE} and Anatel RGC)",
                )


def announcements_after_protocol(graph: CallGraph) -> Iterator[Problem]:
    for entry in graph.entry_flows():
        if not any(_plays_announcements(graph.node(v)) for v in graph.walk([graph.start_of(entry)]).passed):
            continue  # a flow without announcements is not held to where they go
        walk = graph.walk([graph.start_of(entry)], _announces_protocol_or_announcements)
        for vertex in walk.stopped:
            node = graph.node(vertex)
            if _plays_announcements(node):
                yield Problem(
                    node.position,
                    f"node '{node.name}' plays the supervisors' announcements before the call's protocol number "
                    f"({_route(walk, vertex, entry)}): the protocol comes first ({DECREE} and Anatel RGC), so "
                    "move it after the protocol, before the first menu",
                )
        walk = graph.walk([graph.start_of(entry)], _announcements_or_menu)
        for vertex in walk.stopped:
            node = graph.node(vertex)
            if is_menu(node):
                yield Problem(
                    node.position,
                    f"callers can reach the first menu '{node.name}' without the supervisors' announcements "
                    f"({_route(walk, vertex, entry)}): put the 'announce' node on every way from the protocol "
                    "to it, identified callers or not",
                    Severity.WARNING,
                )


def first_menu_rights(graph: CallGraph) -> Iterator[Problem]:
    firsts = graph.first_menus()
    if not firsts:
        return
    for kind, words in FIRST_MENU_KINDS.items():
        reach = OpensReach(graph, kind)
        for vertex in firsts:
            node = graph.node(vertex)
            options = menu_of(node).options.values()
            if not any(reach.target_holds(vertex[0], option.go, False) for option in options):
                yield Problem(
                    node.position_of("menu.options"),
                    f"menu '{node.name}' is the first menu callers hear, so one of its options must lead to "
                    f"opening a {words}: add one that goes to '{TICKET_OPERATION}' with 'kind: {kind}' (a menu "
                    f"on the way counts when all its options lead there) ({DECREE})",
                )


def menus_offer_persons(graph: CallGraph) -> Iterator[Problem]:
    reach = graph.analysis(PersonReach)
    for vertex in graph.vertices():
        node = graph.node(vertex)
        if not is_menu(node) or reach.holds(vertex):
            continue
        zero = menu_of(node).options.get(PERSON_KEY)
        if zero is None:
            yield Problem(
                node.position_of("menu.options"),
                f"menu '{node.name}' has no option '{PERSON_KEY}': callers press 0 for a person in every menu, "
                f"so add '{PERSON_KEY}' going to a queue or transfer ({DECREE})",
            )
            continue
        miss = reach.miss((vertex[0], zero.go))
        if miss is None:
            continue  # '0' goes to a node or flow that does not exist, reported as such
        route = " → ".join(f"'{describe(v, vertex[0])}'" for v in miss.path)
        yield Problem(
            node.position_of(f"menu.options.{PERSON_KEY}"),
            f"option '{PERSON_KEY}' of menu '{node.name}' goes to {route}, which {miss.why}: '0' must reach a "
            f"person whatever happens, without asking for data ({DECREE})",
        )


def no_data_before_person(graph: CallGraph) -> Iterator[Problem]:
    reach = graph.analysis(PersonReach)
    # Nodes are told apart by where they are written: a node's position is unique in the set.
    offering = {graph.node(v).position for v in graph.vertices() if reach.offers_person(v)}

    def stop(node: Node) -> bool:
        # A flow that did not load may offer a person: nothing after it is judged.
        return node.position in offering or graph.runs_broken(node)

    for entry in graph.entry_flows():
        walk = graph.walk([graph.start_of(entry)], stop)
        asking = [v for v in walk.passed if is_collect(graph.node(v))]
        for vertex in asking:
            node = graph.node(vertex)
            yield Problem(
                node.position,
                f"node '{node.name}' asks the caller to key data before any way to a person is offered "
                f"({_route(walk, vertex, entry)}): offer one first, e.g. option '0' in an earlier menu ({DECREE})",
            )
        if not asking and not walk.stopped:
            flow = graph.flows[entry]
            yield Problem(
                flow.key_positions.get("start", flow.start_node.position),
                f"no path from the start of flow '{entry}' reaches a person (a queue or transfer) ({DECREE})",
            )


def silence_never_consents(graph: CallGraph, registry: OperationRegistry) -> Iterator[Problem]:
    for vertex in graph.vertices():
        node = graph.node(vertex)
        verb = node.verb
        if not isinstance(verb, Menu | Collect):
            continue
        unanswered = frozenset({verb.into}) if isinstance(verb, Collect) else frozenset()
        for where, target in _unanswered_exits(verb):
            if target not in graph.flows[vertex[0]].nodes:
                continue
            found = _opener_in_silence(graph, registry, (vertex[0], target), unanswered)
            if found is None:
                continue
            path, operation = found
            route = " → ".join(describe(v, vertex[0]) for v in path)
            yield Problem(
                node.position_of(f"{verb.kind}.{where}"),
                f"a caller who presses nothing (or only wrong keys) at {verb.kind} '{node.name}' is taken by its "
                f"'{where}' to '{describe(path[-1], vertex[0])}', which opens something ('{operation}') they never "
                f"asked for (path: {route}): silence never consents, so let it reach a person or say goodbye",
            )


def _unanswered_exits(verb: Menu | Collect) -> Iterator[tuple[str, str]]:
    """Where a menu or collect goes when the caller gave no usable answer: ``then``, and the retries' ``go``."""
    yield "then", verb.then
    wrong = verb.no_match if isinstance(verb, Menu) else verb.invalid
    for where, retry in (("no_input", verb.no_input), ("no_match" if isinstance(verb, Menu) else "invalid", wrong)):
        if retry.go:
            yield f"{where}.go", retry.go


def data_prompts_offer_a_person(graph: CallGraph) -> Iterator[Problem]:
    """Every question answered by keys has `person:`: 0 is a digit there, so "*" is the way to a person."""
    for vertex in graph.vertices():
        node = graph.node(vertex)
        verb = node.verb
        if isinstance(verb, Collect) and verb.keys_allowed and verb.person is None:
            yield Problem(
                node.position_of("collect"),
                f"collect '{node.name}' asks for keys with no way to a person: 0 is a digit here, so add "
                f"'person:' with the node '*' leaves to, a queue or transfer ({DECREE})",
            )


def _opener_in_silence(
    graph: CallGraph, registry: OperationRegistry, start: Vertex, unanswered: frozenset[str]
) -> tuple[list[Vertex], str] | None:
    """The nearest node from `start` that opens something, on a path where the caller says nothing; with
    the path there. A ``record`` goes on in silence, leaving its transcript empty: a branch that needs
    it is not taken. `unanswered` names the variables left empty so far."""
    if _waits_with_words(graph.node(start)):
        return None  # the caller is asked again
    parents: dict[tuple[Vertex, frozenset[str]], tuple[Vertex, frozenset[str]] | None] = {(start, unanswered): None}
    frontier = [(start, unanswered)]
    while frontier:  # bounded: each (node, empty variables) pair is queued once
        following = []
        for state in frontier:
            vertex, empty = state
            node = graph.node(vertex)
            for name, _ in node.verb.operations():
                spec = registry.get(name)
                if spec is not None and spec.opens:
                    path = [vertex]
                    step = parents[state]
                    while step is not None:
                        path.append(step[0])
                        step = parents[step]
                    return path[::-1], name
            for successor in _silent_successors(graph, vertex, empty):
                if successor not in parents:
                    parents[successor] = state
                    following.append(successor)
        frontier = following
    return None


def _waits_with_words(node: Node) -> bool:
    """A node that needs the caller to answer to go on (a record goes on in silence)."""
    return node.verb.waits_for_caller and not isinstance(node.verb, Record)


def _silent_successors(
    graph: CallGraph, vertex: Vertex, empty: frozenset[str]
) -> Iterator[tuple[Vertex, frozenset[str]]]:
    verb = graph.node(vertex).verb
    if isinstance(verb, Record) and verb.transcribe:
        empty = empty | {verb.into}
    elif isinstance(verb, Set):
        empty = empty.difference(verb.values)
    if isinstance(verb, Branch):
        known = graph.flows[vertex[0]].nodes
        targets = [case.go for case in verb.when if not _false_when_empty(case.condition, empty)] + [verb.otherwise]
        yield from (((vertex[0], t), empty) for t in targets if t in known)
        return
    for successor in graph.successors(vertex, _waits_with_words):
        if not _waits_with_words(graph.node(successor)):
            yield successor, empty


_CONDITIONS = Environment()


def _false_when_empty(condition: str, empty: frozenset[str]) -> bool:
    """Whether `condition` is false whatever the call holds, given that the variables `empty` are empty."""
    return _surely_false(Parser(_CONDITIONS, condition, state="variable").parse_expression(), empty)


def _surely_false(expression: nodes.Node, empty: frozenset[str]) -> bool:
    if isinstance(expression, nodes.Name):
        return expression.name in empty
    if isinstance(expression, nodes.Getattr | nodes.Getitem):  # a part of an empty text is undefined: false
        return _surely_false(expression.node, empty)
    if isinstance(expression, nodes.And):
        return _surely_false(expression.left, empty) or _surely_false(expression.right, empty)
    if isinstance(expression, nodes.Or):
        return _surely_false(expression.left, empty) and _surely_false(expression.right, empty)
    return False


# Stops for walks, defined once so the graph's memory of which subflows can return is reused.
def _announces_or_menu(node: Node) -> bool:
    return announces_protocol(node) or is_menu(node)


def _plays_announcements(node: Node) -> bool:
    return isinstance(node.verb, Announce)


def _announces_protocol_or_announcements(node: Node) -> bool:
    return announces_protocol(node) or _plays_announcements(node)


def _announcements_or_menu(node: Node) -> bool:
    return _plays_announcements(node) or is_menu(node)


def _route(walk: Walk, vertex: Vertex, home: str) -> str:
    return "path: " + " → ".join(describe(v, home) for v in walk.path_to(vertex))
