"""Rules about what a flow uses from outside itself: prompts from the catalogue, operations from the
registry (by name, with the arguments each one declares)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from difflib import get_close_matches
from enum import Enum
from typing import Any

from ivr.engine.flow import Node, Position, Problem
from ivr.engine.operations import Arg, OperationRegistry, OperationSpec
from ivr.flows.rules_paths import CallGraph
from ivr.voice.catalogue import Catalogue

#: Verb settings that hold prompt ids.
PROMPT_KEYS = frozenset({"prompt", "prompts", "before", "after"})

_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


def missing_prompts(graph: CallGraph, catalogue: Catalogue) -> Iterator[Problem]:
    for flow in graph.flows.values():
        for node in flow.nodes.values():
            missing = {p for p in node.verb.prompt_ids() if not catalogue.has(p)}
            placed: set[str] = set()
            for prompt_id, position in _prompt_places(node):
                if prompt_id in missing:
                    placed.add(prompt_id)
                    yield _missing_prompt(node, prompt_id, position, catalogue)
            for prompt_id in sorted(missing - placed):
                yield _missing_prompt(node, prompt_id, node.position_of(node.verb.kind), catalogue)


def _missing_prompt(node: Node, prompt_id: str, position: Position, catalogue: Catalogue) -> Problem:
    close = get_close_matches(prompt_id, catalogue.ids(), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return Problem(
        position,
        f"node '{node.name}' plays prompt '{prompt_id}', which is not in the prompt catalogue{hint}: add its "
        f"text to a prompts file or fix the id",
    )


def _prompt_places(node: Node) -> Iterator[tuple[str, Position]]:
    """Each prompt id written in the node, with where it is written."""
    kind = node.verb.kind
    for path, value in _leaves(node.verb.model_dump(by_alias=True), ()):
        keys = [part for part in path if isinstance(part, str)]
        if keys and keys[-1] in PROMPT_KEYS and isinstance(value, str):
            written = [".".join([kind, *map(str, path)])]
            if path[0] == node.verb.shorthand:  # ``play: [welcome, menu]`` lists the ids under the verb
                written.append(".".join([kind, *map(str, path[1:])]))
            found = [node.key_positions[p] for p in written if p in node.key_positions]
            yield value, found[0] if found else node.position_of(written[0])


def _leaves(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def operation_calls(graph: CallGraph, registry: OperationRegistry) -> Iterator[Problem]:
    known = [spec.name for spec in registry]
    for flow in graph.flows.values():
        for node in flow.nodes.values():
            for name, args in node.verb.operations():
                spec = registry.get(name)
                if spec is None:
                    close = get_close_matches(name, known, n=1)
                    hint = f"did you mean '{close[0]}'?" if close else f"known operations: {', '.join(known)}"
                    yield Problem(
                        _operation_position(node),
                        f"node '{node.name}' calls operation '{name}', which does not exist ({hint})",
                    )
                else:
                    yield from _argument_problems(node, spec, args)


def _argument_problems(node: Node, spec: OperationSpec, args: dict[str, object]) -> Iterator[Problem]:
    declared = {arg.name: arg for arg in spec.args}
    for name, value in args.items():
        arg = declared.get(name)
        if arg is None:
            yield Problem(
                _arg_position(node, name),
                f"node '{node.name}': operation '{spec.name}' takes no argument '{name}' "
                f"({_takes(spec.args)})",
            )
        elif not _fits(value, arg):
            yield Problem(
                _arg_position(node, name),
                f"node '{node.name}': argument '{name}' of operation '{spec.name}' must be {_words(arg)}, "
                f"not {value!r}",
            )
    for arg in spec.args:
        if arg.required and arg.name not in args:
            what = f" ({arg.description})" if arg.description else ""
            yield Problem(
                node.position_of(f"{node.verb.kind}.args"),
                f"node '{node.name}': operation '{spec.name}' needs the argument '{arg.name}'{what}",
            )


def _fits(value: object, arg: Arg) -> bool:
    """Whether a written value suits the argument; templates are only known during the call."""
    if isinstance(value, str) and "{{" in value:
        return True
    if arg.type is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if arg.type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if issubclass(arg.type, Enum):
        return value in {member.value for member in arg.type}
    return isinstance(value, arg.type)


def _words(arg: Arg) -> str:
    """What a flow may write for the argument."""
    if issubclass(arg.type, Enum):
        return "one of " + ", ".join(str(member.value) for member in arg.type)
    return _TYPE_WORDS.get(arg.type, arg.type.__name__)


def _takes(args: Iterable[Arg]) -> str:
    names = [arg.name for arg in args]
    return f"it takes: {', '.join(names)}" if names else "it takes none"


def _operation_position(node: Node) -> Position:
    return node.position_of(f"{node.verb.kind}.operation")


def _arg_position(node: Node, name: str) -> Position:
    kind = node.verb.kind
    for path in (f"{kind}.args.{name}", f"{kind}.{name}"):
        if path in node.key_positions:
            return node.key_positions[path]
    return node.position_of(f"{kind}.args")
