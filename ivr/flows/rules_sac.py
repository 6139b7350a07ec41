"""Brazil's customer-service rules (Decreto 11.034/2022, the "SAC decree", and Anatel's RGC), checked on
every path a caller can take, read strictly even though our callers are businesses:

- the call's protocol number is announced before the first menu;
- every menu offers a way to a human agent, and that way never asks the caller to key data (on key "0",
  the house convention: a warning otherwise);
- no caller is asked to key data before being offered a human agent;
- the first menu offers complaints ("reclamação") and cancellation.

Calls begin in the *entry flows* (those no other flow runs as a subflow); a subflow is followed into.
"""

from __future__ import annotations

from collections.abc import Iterator

from ivr.engine.flow import Node, Problem, Severity
from ivr.engine.verbs.menu import Menu
from ivr.flows.rules_paths import (
    CallGraph,
    Vertex,
    announces_protocol,
    describe,
    is_collect,
    is_human,
    is_menu,
)

DECREE = "Decreto 11.034/2022"
PROTOCOL_HINT = "announce it first with a node like 'say: {protocol: \"{{ call.protocol }}\"}'"


def protocol_before_menus(graph: CallGraph) -> Iterator[Problem]:
    for entry in graph.entry_flows():
        walk = graph.walk([graph.start_of(entry)], _announces_or_menu)
        for vertex in walk.stopped:
            node = graph.node(vertex)
            if is_menu(node):
                yield Problem(
                    node.position,
                    f"a caller can reach menu '{node.name}' before hearing the call's protocol number "
                    f"({_route(walk.path_to(vertex), entry)}): {PROTOCOL_HINT} ({DECREE} and Anatel RGC)",
                )


def first_menu_rights(graph: CallGraph) -> Iterator[Problem]:
    firsts: list[Vertex] = []
    for entry in graph.entry_flows():
        walk = graph.walk([graph.start_of(entry)], is_menu)
        firsts.extend(v for v in walk.stopped if v not in firsts)
    for vertex in firsts:
        node = graph.node(vertex)
        roles = {option.role for option in _menu(node).options.values()}
        for role, words in (("complaint", 'complaints ("reclamação")'), ("cancellation", "cancellation")):
            if role not in roles:
                yield Problem(
                    node.position_of("menu.options"),
                    f"menu '{node.name}' is the first menu callers hear, so it must offer {words}: add an "
                    f"option with 'role: {role}' ({DECREE})",
                )


class HumanWays:
    """Which menus offer a human agent, and how (computed once per check)."""

    def __init__(self, graph: CallGraph) -> None:
        self.graph = graph
        self._offers: dict[Vertex, bool] = {}

    def option_reaches_human(self, vertex: Vertex, target: str, stop_at_collect: bool = True) -> bool:
        """Whether choosing an option that goes to `target` puts the caller through to a person without
        another menu (and, by default, without keying data)."""
        flow = self.graph.flows[vertex[0]]
        if target not in flow.nodes:
            return False
        stop = _menu_or_collect if stop_at_collect else is_menu
        walk = self.graph.walk([(vertex[0], target)], stop)
        return any(is_human(self.graph.node(v)) for v in walk.passed)

    def offers_human(self, vertex: Vertex) -> bool:
        if vertex not in self._offers:
            options = _menu(self.graph.node(vertex)).options.values()
            self._offers[vertex] = any(self.option_reaches_human(vertex, o.go) for o in options)
        return self._offers[vertex]


def menus_offer_humans(graph: CallGraph) -> Iterator[Problem]:
    ways = HumanWays(graph)
    for vertex in graph.vertices():
        node = graph.node(vertex)
        if not is_menu(node):
            continue
        options = _menu(node).options
        known = graph.flows[vertex[0]].nodes  # an unknown target is reported once, as such
        zero = options.get("0")
        if not ways.offers_human(vertex):
            after_data = any(ways.option_reaches_human(vertex, o.go, stop_at_collect=False) for o in options.values())
            why = (
                "its options reach an agent only after the caller keys data"
                if after_data
                else "none of its options leads to a queue or transfer"
            )
            yield Problem(
                node.position_of("menu.options"),
                f"menu '{node.name}' offers no way to a human agent ({why}): add an option, usually '0', that "
                f"goes to a queue or transfer without asking for data ({DECREE})",
            )
        elif zero is None or (zero.go in known and not ways.option_reaches_human(vertex, zero.go)):
            yield Problem(
                node.position_of("menu.options"),
                f"menu '{node.name}' puts callers through to a person, but not on key '0', which callers use in "
                f"every other menu",
                Severity.WARNING,
            )
        for key, option in options.items():
            if option.role == "human" and option.go in known and not ways.option_reaches_human(vertex, option.go):
                yield Problem(
                    node.position_of(f"menu.options.{key}"),
                    f"option '{key}' of menu '{node.name}' is marked 'role: human' but does not lead to a queue "
                    f"or transfer without another menu or asking for data",
                )


def no_data_before_human(graph: CallGraph) -> Iterator[Problem]:
    ways = HumanWays(graph)
    # Nodes are told apart by where they are written: a node's position is unique in the set.
    offering = {graph.node(v).position for v in graph.vertices() if is_menu(graph.node(v)) and ways.offers_human(v)}
    for entry in graph.entry_flows():
        walk = graph.walk([graph.start_of(entry)], lambda n: is_human(n) or n.position in offering)
        asking = [v for v in walk.passed if is_collect(graph.node(v))]
        for vertex in asking:
            node = graph.node(vertex)
            yield Problem(
                node.position,
                f"node '{node.name}' asks the caller to key data before any way to a human agent is offered "
                f"({_route(walk.path_to(vertex), entry)}): offer an agent first, e.g. option '0' in an earlier "
                f"menu ({DECREE})",
            )
        if not asking and not walk.stopped:
            flow = graph.flows[entry]
            yield Problem(
                flow.key_positions.get("start", flow.start_node.position),
                f"no path from the start of flow '{entry}' reaches a human agent (a queue or transfer) "
                f"({DECREE})",
            )


# Stops for walks, defined once so the graph's memory of which subflows can return is reused.
def _announces_or_menu(node: Node) -> bool:
    return announces_protocol(node) or is_menu(node)


def _menu_or_collect(node: Node) -> bool:
    return is_menu(node) or is_collect(node)


def _menu(node: Node) -> Menu:
    assert isinstance(node.verb, Menu), f"node '{node.name}' is not a menu"
    return node.verb


def _route(path: list[Vertex], home: str) -> str:
    return "path: " + " → ".join(describe(v, home) for v in path)
