"""Rules about a flow's shape: every edge lands somewhere, every node can be reached, no loop spins without
the caller, and every menu says what happens when the caller is silent or presses a wrong key."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from difflib import get_close_matches

from ivr.engine.flow import Flow, Node, Position, Problem, Severity
from ivr.engine.verbs.menu import Menu
from ivr.engine.verbs.subflow import Subflow
from ivr.flows.rules_paths import CallGraph, describe, waits_for_caller


def target_position(node: Node, index: int, label: str) -> Position:
    """Where the `index`-th edge of `node` (as listed by `Verb.targets`) is written in the file."""
    kind = node.verb.kind
    if label == "next":
        return node.position_of("next" if "next" in node.key_positions else f"{kind}.next")
    if label.startswith("option "):
        return node.position_of(f"{kind}.options.{label.removeprefix('option ')}.go")
    if label.startswith("if "):  # branch lists its `when` cases first, in order
        return node.position_of(f"{kind}.when.{index}.go")
    if label == kind:  # goto's shorthand: the target is the verb's own value
        return node.position_of(kind)
    return node.position_of(f"{kind}.{label}")


def unknown_targets(graph: CallGraph) -> Iterator[Problem]:
    for flow in graph.flows.values():
        for node in flow.nodes.values():
            for index, (label, target) in enumerate(node.verb.targets()):
                if target not in flow.nodes:
                    yield Problem(
                        target_position(node, index, label),
                        f"node '{node.name}' goes to '{target}' ({label}), but flow '{flow.name}' has no node "
                        f"'{target}'{_suggestion(target, flow.nodes)}",
                    )


def unknown_flows(graph: CallGraph) -> Iterator[Problem]:
    for flow in graph.flows.values():
        for node in flow.nodes.values():
            if isinstance(node.verb, Subflow) and graph.subflow_of(node) is None:
                wanted = node.verb.flow
                yield Problem(
                    node.position_of(node.verb.kind),
                    f"node '{node.name}' runs flow '{wanted}', but there is no flow named '{wanted}' among "
                    f"the flow files{_suggestion(wanted, graph.flows)}",
                )


def unreachable_nodes(graph: CallGraph) -> Iterator[Problem]:
    for flow in graph.flows.values():
        seen = reachable(flow)
        for node in flow.nodes.values():
            if node.name not in seen:
                yield Problem(
                    node.position,
                    f"node '{node.name}' can never be reached from the start node '{flow.start}': link it from "
                    f"another node or remove it",
                    Severity.WARNING,
                )


def reachable(flow: Flow) -> set[str]:
    """Names of the nodes reachable from the flow's start, following edges inside the flow."""
    seen: set[str] = set()
    todo = [flow.start]
    while todo:  # bounded: each node is added once
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(t for _, t in flow.nodes[current].verb.targets() if t in flow.nodes)
    return seen


def spinning_loops(graph: CallGraph) -> Iterator[Problem]:
    for cycle in graph.cycles(waits_for_caller):
        home = cycle[0][0]
        first = graph.node(cycle[0])
        if len(cycle) == 2:
            what = f"node '{first.name}' leads back to itself"
        else:
            what = f"the nodes {' → '.join(describe(v, home) for v in cycle)} can go round"
        yield Problem(
            first.position,
            f"{what} forever without asking the caller anything: put a menu, collect or record in the loop, "
            f"or let it end",
        )


def menu_retries(graph: CallGraph) -> Iterator[Problem]:
    for flow in graph.flows.values():
        for node in flow.nodes.values():
            if not isinstance(node.verb, Menu):
                continue
            for key, what in (("no_input", "presses nothing"), ("no_match", "presses a key that is not an option")):
                if f"menu.{key}" not in node.key_positions:
                    yield Problem(
                        node.position_of("menu"),
                        f"menu '{node.name}' does not say what happens when the caller {what}: add "
                        f"'{key}: {{retries: 2, prompt: ...}}'",
                        Severity.WARNING,
                    )


#: Keys every menu keeps for itself (DECISIONS.md): "*" repeats the prompt, "#" goes back.
RESERVED_KEYS = {"*": "repeat the menu", "#": "go back"}


def menu_keys(graph: CallGraph) -> Iterator[Problem]:
    for flow in graph.flows.values():
        for node in flow.nodes.values():
            if isinstance(node.verb, Menu):
                for key in sorted(RESERVED_KEYS.keys() & node.verb.options.keys()):
                    yield Problem(
                        node.position_of(f"menu.options.{key}"),
                        f"option '{key}' of menu '{node.name}' hides the key callers press to "
                        f"{RESERVED_KEYS[key]} (the same in every menu): use another key",
                        Severity.WARNING,
                    )


def _suggestion(wrong: str, known: Iterable[str]) -> str:
    close = get_close_matches(wrong, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
