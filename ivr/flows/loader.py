"""Load a flow file into a `Flow`, keeping the line and column of every node and key.

A flow file looks like::

    flow: sac
    start: greet
    nodes:
      greet:
        play: welcome
        next: main_menu
      ...

Every mistake found while loading becomes a `Problem` pointing at the offending key, and all of them are
raised together in one `FlowLoadError` so a supervisor can fix a file in one pass.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, NodeEvent

from ivr.engine.flow import Flow, Node, Position, Problem
from ivr.engine.verbs.factory import VERBS, make_verb

#: Keys a node may carry beside its one verb.
NODE_KEYS = ("next",)
TOP_KEYS = ("flow", "start", "nodes", "description")


class FlowLoadError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_flow(path: Path) -> Flow:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowLoadError([Problem(Position(path, 1, 1), f"cannot read the flow file ({exc.strerror})")]) from exc
    return parse_flow(text, path)


def flows_beside(flow: Flow) -> dict[str, Flow]:
    """The other flows in the same directory, by name: those ``subflow:`` nodes may call."""
    flows = {}
    for path in sorted(flow.source.parent.glob("*.yaml")):
        if path != flow.source:
            other = load_flow(path)
            flows[other.name] = other
    return flows


#: A flow file is read again at each check, reload, flow test and console page, and round-trip YAML is
#: parsed in pure Python (~40 ms for sac.yaml): the same text at the same path is parsed once per process
#: (flows are frozen once loaded), the last few texts kept.
_PARSED_KEPT = 32
#: Where a YAML anchor or alias could start: at a line's start, after a space or a flow indicator.
_MAYBE_ANCHOR_OR_ALIAS = re.compile(r"(?:^|[\s\[{,])[&*]", re.MULTILINE)


def parse_flow(text: str, path: Path) -> Flow:
    """Parse flow YAML text; ``path`` names it in problems and becomes `Flow.source`."""
    return _parse_flow(text, Path(path))


@functools.lru_cache(maxsize=_PARSED_KEPT)
def _parse_flow(text: str, path: Path) -> Flow:
    try:
        yaml = YAML(typ="rt")
        if _MAYBE_ANCHOR_OR_ALIAS.search(text) and (shared := _anchors_and_aliases(yaml, text, path)):
            raise FlowLoadError(shared)
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = Position(path, mark.line + 1, mark.column + 1) if mark else Position(path, 1, 1)
        raise FlowLoadError([Problem(at, f"not valid YAML: {exc.problem or exc.context}")]) from exc
    except YAMLError as exc:
        raise FlowLoadError([Problem(Position(path, 1, 1), f"not valid YAML: {exc}")]) from exc
    top = Position(path, 1, 1)
    if not isinstance(data, CommentedMap):
        raise FlowLoadError([Problem(top, "a flow file is a mapping with 'flow', 'start' and 'nodes'")])

    problems: list[Problem] = []
    top_positions = {str(k): _key_position(path, data, k) for k in data}
    for key in data:
        if key not in TOP_KEYS:
            problems.append(
                Problem(top_positions[str(key)], f"unknown key '{key}' (expected one of: {', '.join(TOP_KEYS)})")
            )
    name, start = data.get("flow"), data.get("start")
    for key, value in (("flow", name), ("start", start)):
        if not isinstance(value, str) or not value:
            problems.append(
                Problem(
                    top_positions.get(key, top), f"'{key}' must name the {'flow' if key == 'flow' else 'first node'}"
                )
            )
    raw_nodes = data.get("nodes")
    nodes: dict[str, Node] = {}
    if not isinstance(raw_nodes, CommentedMap) or not raw_nodes:
        problems.append(Problem(top_positions.get("nodes", top), "'nodes' must be a mapping of node names to nodes"))
    else:
        for node_name in raw_nodes:
            node = _load_node(path, raw_nodes, node_name, problems)
            if node is not None:
                nodes[node.name] = node
        if isinstance(start, str) and start and start not in raw_nodes:
            problems.append(Problem(top_positions["start"], f"start node '{start}' is not among the nodes"))
    if problems:
        raise FlowLoadError(problems)
    return Flow(
        name=str(name),
        start=str(start),
        nodes=nodes,
        source=path,
        version=text_version(text),
        key_positions=top_positions,
    )


def _anchors_and_aliases(yaml: YAML, text: str, path: Path) -> list[Problem]:
    """Each YAML anchor (``&name``) and alias (``*name``) in the text, as a problem at its line.

    An alias repeats a value without repeating its text: nested ones ("billion laughs") make a few lines
    into millions of nodes for the loader and the checks to walk. Flow files write every value out. The
    events are read before anything is built, so the scan costs one pass over the text; a text where no
    ``&`` or ``*`` could start one (`_MAYBE_ANCHOR_OR_ALIAS`) is not scanned.
    """
    problems = []
    for event in yaml.parse(text):
        at = Position(path, event.start_mark.line + 1, event.start_mark.column + 1)
        if isinstance(event, AliasEvent):
            problems.append(Problem(at, f"YAML alias '*{event.anchor}' is not allowed in a flow: write the value out"))
        elif isinstance(event, NodeEvent) and event.anchor:
            problems.append(Problem(at, f"YAML anchor '&{event.anchor}' is not allowed in a flow: write the value out"))
    return problems


def text_version(text: str) -> str:
    """A flow's version: the hash of its YAML text, which a call stores with its path."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _load_node(path: Path, raw_nodes: CommentedMap, name: Any, problems: list[Problem]) -> Node | None:
    here = _key_position(path, raw_nodes, name)
    raw = raw_nodes[name]
    if not isinstance(name, str):
        problems.append(Problem(here, f"node name {name!r} must be text"))
        return None
    if not isinstance(raw, CommentedMap):
        problems.append(Problem(here, f"node '{name}' must be a mapping with one verb (e.g. 'play:', 'menu:')"))
        return None
    positions: dict[str, Position] = {}
    _collect_positions(path, raw, "", positions)
    verb_keys = [k for k in raw if k not in NODE_KEYS]
    unknown = [k for k in verb_keys if k not in VERBS]
    for key in unknown:
        problems.append(
            Problem(
                positions[str(key)], f"node '{name}': unknown verb '{key}' (known verbs: {', '.join(sorted(VERBS))})"
            )
        )
    known = [k for k in verb_keys if k in VERBS]
    if len(known) != 1:
        if not unknown:
            what = "has no verb" if not known else f"has {len(known)} verbs ({', '.join(known)})"
            problems.append(Problem(here, f"node '{name}' {what}; a node holds exactly one verb"))
        return None
    kind = known[0]
    next_node = raw.get("next")
    if "next" in raw and not isinstance(next_node, str):
        problems.append(Problem(positions["next"], f"node '{name}': 'next' must name a node"))
        return None
    try:
        verb = make_verb(kind, raw[kind], next_node)
    except ValidationError as exc:
        problems.extend(_validation_problems(name, kind, exc, positions, here))
        return None
    return Node(name=name, verb=verb, position=here, key_positions=positions)


def _validation_problems(
    node: str, kind: str, exc: ValidationError, positions: dict[str, Position], fallback: Position
) -> Iterable[Problem]:
    known = ", ".join(VERBS[kind].model_fields)
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not _is_pydantic_tag(p)]
        key_path = ".".join(loc) if loc[:1] == ["next"] else ".".join([kind, *loc])
        at = _nearest(positions, key_path, fallback)
        where = _describe(kind, loc[:-1])
        field = loc[-1] if loc else kind
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            sentence = f"'{field}' is required"
        elif err["type"] == "extra_forbidden" and loc == ["next"]:
            sentence = f"a {kind} node does not take 'next' (it says itself where the call goes)"
        elif err["type"] == "extra_forbidden" and len(loc) == 1:
            sentence = f"'{field}' is not a setting of {kind} (expected one of: {known})"
        elif err["type"] == "extra_forbidden":
            settings = _settings_at(VERBS[kind], loc[:-1])
            sentence = f"'{field}' is not one of its settings" + (f" ({', '.join(settings)})" if settings else "")
        else:
            sentence = f"'{field}': {message[0].lower()}{message[1:]}" if loc else message
        yield Problem(at, f"node '{node}': {sentence}" if loc == ["next"] else f"node '{node}': {where}: {sentence}")


def _describe(kind: str, loc: list[str]) -> str:
    """Where in a verb an error is, in words: "menu option '3'", "branch when #2", "collect no_input"."""
    if kind == "menu" and loc[:1] == ["options"] and len(loc) >= 2:
        return " ".join([f"menu option '{loc[1]}'", *loc[2:]])
    words = [kind]
    for part in loc:
        words.append(f"#{int(part) + 1}" if part.isdigit() and kind != "menu" else part)
    return " ".join(words)


def _settings_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The settings of the part of a verb at `loc` (e.g. a menu option's: go, say_it); [] if not a model."""
    annotation: Any = model
    for part in loc:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]  # past a mapping's key or a list's index
        else:
            return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _is_pydantic_tag(part: Any) -> bool:
    # pydantic adds the validator's name to a loc for some unions and functional validators
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _nearest(positions: dict[str, Position], key_path: str, fallback: Position) -> Position:
    parts = key_path.split(".")
    while parts:
        if ".".join(parts) in positions:
            return positions[".".join(parts)]
        parts.pop()
    return fallback


def _collect_positions(path: Path, node: Any, prefix: str, out: dict[str, Position]) -> None:
    if isinstance(node, CommentedMap):
        for key in node:
            dotted = f"{prefix}{key}"
            out[dotted] = _key_position(path, node, key)
            _collect_positions(path, node[key], dotted + ".", out)
    elif isinstance(node, CommentedSeq):
        for i, item in enumerate(node):
            dotted = f"{prefix}{i}"
            line, col = node.lc.item(i)
            out[dotted] = Position(path, line + 1, col + 1)
            _collect_positions(path, item, dotted + ".", out)


def _key_position(path: Path, mapping: CommentedMap, key: Any) -> Position:
    line, col = mapping.lc.key(key)
    return Position(path, line + 1, col + 1)
