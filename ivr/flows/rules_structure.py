"""Rules about a flow's shape: every edge lands somewhere, every node can be reached, no loop spins without
the caller, every menu says what happens when the caller is silent or presses a wrong key and offers at
most five choices besides the keys every menu has; and what a flow file that did not load kept from
being checked."""

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
            if isinstance(node.verb, Subflow) and graph.subflow_of(node) is None and not graph.runs_broken(node):
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


#: Keys every menu has whatever its size: "0" a person, "*" repeat, "#" back.
CONVENTION_KEYS = {"0", *RESERVED_KEYS}
MAX_CHOICES = 5


def menu_size(graph: CallGraph) -> Iterator[Problem]:
    for flow in graph.flows.values():
        for node in flow.nodes.values():
            if not isinstance(node.verb, Menu):
                continue
            choices = [key for key in node.verb.options if key not in CONVENTION_KEYS]
            if len(choices) > MAX_CHOICES:
                yield Problem(
                    node.position_of("menu.options"),
                    f"menu '{node.name}' offers {len(choices)} choices besides '0' ({', '.join(choices)}); callers "
                    f"keep at most {MAX_CHOICES} in mind: move some to where callers look for them",
                )


def broken_flow_effects(graph: CallGraph) -> Iterator[Problem]:
    """One line per flow that a flow file that does not load kept from being checked in full."""
    called = graph.called_flows()
    for flow in graph.flows.values():
        skipped = []
        callers = sorted(b.source.name for b in graph.run_by_broken(flow.name))
        if callers and flow.name not in called:
            skipped.append(
                f"not checked as a flow a call starts in (protocol first, the first menu, no data before a "
                f"person), as {_and(callers)}, which may run it, {_do(callers)} not load"
            )
        runs = sorted(
            {node.verb.flow for node in flow.nodes.values() if isinstance(node.verb, Subflow)} & graph.broken.keys()
        )
        if runs:
            files = sorted(graph.broken[name].source.name for name in runs)
            skipped.append(
                f"the calls into {_and([repr(r) for r in runs])} are not followed, as {_and(files)} {_do(files)} "
                f"not load"
            )
        if skipped:
            yield Problem(
                flow.key_positions.get("flow", Position(flow.source, 1, 1)), "; ".join(skipped), Severity.WARNING
            )


def _do(things: list[str]) -> str:
    return "does" if len(things) == 1 else "do"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _suggestion(wrong: str, known: Iterable[str]) -> str:
    close = get_close_matches(wrong, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
