"""``ivr flow graph``: draw a flow with Graphviz, so a supervisor sees the call at a glance.

Every node is a box saying what it does; every edge carries its label (the key pressed, ``no_input``,
``found``...). Nodes with errors are red, with warnings orange, and the problems are their tooltips (hover
in a browser); unreachable nodes are dashed and grey. Menus, the keying of data (collect) and the ways to a
person (queue, transfer) each have their own colour. The DOT text is built here; the ``dot`` binary from
Debian's graphviz package turns it into SVG, PNG or PDF.

A page of the web console draws over the same picture with an `Overlay`: marked nodes and edges (a call's
path, the drop-off per node, a diff's changes) with a note added to their labels, the rest dimmed or not,
and nodes of another version drawn beside the flow's own (a diff's removed nodes). Every node's SVG id is
``node:<name>`` and a mark's class is added to its element, so a style sheet or a test can find it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.engine.flow import Flow, Node, Position, Problem, Severity
from ivr.engine.verbs.base import Verb
from ivr.engine.verbs.subflow import Subflow
from ivr.flows.rules_paths import HUMAN_VERBS, announces_protocol
from ivr.flows.rules_structure import reachable

#: Output formats `dot` renders; anything else is refused before Graphviz runs.
RENDERED_FORMATS = ("svg", "png", "pdf")
DOT_TIMEOUT_S = 60.0
#: The DOT name of the dot the start edge comes from (an overlay marks that edge as ("start:", first node)).
START = "start:"
#: Fewer passes at removing crossings and balancing ranks: the main flow lays out in ~1 s instead of ~4 s.
QUICK_LAYOUT = ("-Gnslimit=2", "-Gmclimit=0.2")
_DIMMED = {"fillcolor": "#f3f4f6", "color": "#d1d5db", "fontcolor": "#9ca3af"}

_FILL = {"menu": "#dbeafe", "collect": "#fef3c7", "record": "#fef3c7", **{v.kind: "#dcfce7" for v in HUMAN_VERBS}}
_SHAPE = {"hangup": "oval", "return": "oval", "branch": "diamond", "hours": "diamond"}
_PROBLEM_COLOUR = {Severity.ERROR: "red", Severity.WARNING: "orange"}


class GraphError(RuntimeError):
    """Graphviz is missing or could not draw the flow."""


@dataclass(frozen=True, slots=True)
class Mark:
    """How an overlay marks a node (its fill) or an edge (its stroke)."""

    colour: str
    note: str = ""  # a line added to the label: the order of visits, the figures of a node
    css: str = ""  # a class added to the SVG element (letters only: Graphviz writes "-" as "&#45;")


@dataclass(frozen=True, slots=True)
class Overlay:
    """What a page draws over a flow: marked nodes (by name) and edges (by (from, to), `START` for the start
    edge, or (from, to, label) for one of several edges between two nodes); with `dim`, whatever is not
    marked is greyed; `extra` nodes (another version's) are drawn too."""

    nodes: Mapping[str, Mark] = field(default_factory=dict)
    edges: Mapping[tuple[str, ...], Mark] = field(default_factory=dict)
    dim: bool = False
    extra: Mapping[str, Node] = field(default_factory=dict)
    caption: str = ""  # a line under the title: what the marks mean


def flow_dot(flow: Flow, problems: Iterable[Problem] = (), overlay: Overlay | None = None) -> str:
    """The flow as Graphviz DOT text; `problems` are the checker's findings for its file, `overlay` what a
    page marks on it."""
    over = overlay or Overlay()
    by_node = _problems_by_node(flow, problems)
    seen = reachable(flow) | over.extra.keys()  # another version's nodes are not this flow's to reach
    nodes = {**flow.nodes, **over.extra}
    title = f"flow {flow.name}" + (f"\n{over.caption}" if over.caption else "")
    lines = [
        f"digraph {_quote(flow.name)} {{",
        '  graph [rankdir=TB, fontname="Helvetica", labelloc=t, label=' + _quote(title) + "];",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
        f'  {_quote(START)} [shape=circle, label="", width=0.2, style=filled, fillcolor=black];',
        f"  {_quote(START)} -> {_quote(flow.start)} [{_attributes(_edge_marked({}, over, (START, flow.start)))}];",
    ]
    outside: list[str] = []  # other flows and missing nodes, drawn once each
    for node in nodes.values():
        attributes = _node_attributes(node, by_node.get(node.name, []), node.name in seen)
        lines.append(f"  {_quote(node.name)} [{_attributes(_node_marked(attributes, over, node.name))}];")
        for label, target in node.verb.targets():
            if target in nodes:
                edge = _edge_marked({"label": label}, over, (node.name, target))
                lines.append(f"  {_quote(node.name)} -> {_quote(target)} [{_attributes(edge)}];")
            else:
                missing = f"missing:{target}"
                if missing not in outside:
                    outside.append(missing)
                    lines.append(
                        f"  {_quote(missing)} [label={_quote(f'{target}?')}, color=red, fontcolor=red, "
                        f"style=dashed, tooltip={_quote(f'there is no node {target!r}')}];"
                    )
                lines.append(f"  {_quote(node.name)} -> {_quote(missing)} [label={_quote(label)}, color=red];")
        if isinstance(node.verb, Subflow):
            other = f"flow:{node.verb.flow}"
            if other not in outside:
                outside.append(other)
                lines.append(f"  {_quote(other)} [shape=folder, style=filled, fillcolor=\"#f3f4f6\"];")
            lines.append(f"  {_quote(node.name)} -> {_quote(other)} [label=\"runs\", style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot: str, fmt: str, *, timeout_s: float = DOT_TIMEOUT_S, quick: bool = False) -> bytes:
    """Run Graphviz's ``dot`` on DOT text; `quick` trades some crossings for time (`QUICK_LAYOUT`)."""
    if fmt not in RENDERED_FORMATS:
        raise GraphError(f"cannot draw to '.{fmt}': use one of .{', .'.join(RENDERED_FORMATS)} or .dot")
    binary = shutil.which("dot")
    if binary is None:
        raise GraphError("Graphviz's 'dot' program is not installed (Debian package 'graphviz')")
    try:
        done = subprocess.run(
            [binary, f"-T{fmt}", *(QUICK_LAYOUT if quick else ())],
            input=dot.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GraphError(f"Graphviz took more than {timeout_s:.0f} s to draw the flow") from exc
    if done.returncode != 0:
        raise GraphError(f"Graphviz failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


def write_graph(flow: Flow, problems: Iterable[Problem], output: Path) -> None:
    """Write the drawing; the file's extension chooses DOT text or a rendered format."""
    dot = flow_dot(flow, problems)
    fmt = output.suffix.lstrip(".").lower()
    if fmt == "dot":
        output.write_text(dot, encoding="utf-8")
    else:
        output.write_bytes(render(dot, fmt))


def _node_attributes(node: Node, problems: list[Problem], reached: bool) -> dict[str, str]:
    verb = node.verb
    label = f"{node.name}\n{_what(verb)}"
    attributes = {
        "fillcolor": _FILL.get(verb.kind, "white"),
        "shape": _SHAPE.get(verb.kind, "box"),
    }
    if announces_protocol(node):
        attributes["penwidth"] = "2"
    if not reached:
        label += "\n(unreachable)"
        attributes.update(style="dashed,rounded,filled", fillcolor="#e5e7eb", fontcolor="#6b7280")
    if problems:
        worst = Severity.ERROR if any(p.severity is Severity.ERROR for p in problems) else Severity.WARNING
        colour = _PROBLEM_COLOUR[worst]
        attributes.update(color=colour, fontcolor=colour, penwidth="2")
        attributes["tooltip"] = "\n".join(f"{p.severity.value}: {p.message}" for p in problems)
    else:
        # The file's name and line, not its path: a drawing in the console tells nothing of the server's disks.
        attributes["tooltip"] = f"{node.position.file.name}:{node.position.line}"
    attributes["label"] = label
    attributes["id"] = f"node:{node.name}"
    return attributes


def _node_marked(attributes: dict[str, str], overlay: Overlay, name: str) -> dict[str, str]:
    mark = overlay.nodes.get(name)
    if mark is not None:
        attributes.update(fillcolor=mark.colour, penwidth="2", style="rounded,filled", fontcolor="black")
        attributes["label"] += f"\n{mark.note}" if mark.note else ""
        attributes["class"] = mark.css
    elif overlay.dim:
        attributes.update(_DIMMED)
    return attributes


def _edge_marked(attributes: dict[str, str], overlay: Overlay, edge: tuple[str, str]) -> dict[str, str]:
    mark = overlay.edges.get((*edge, attributes.get("label", ""))) or overlay.edges.get(edge)
    if mark is not None:
        attributes.update(color=mark.colour, fontcolor=mark.colour, penwidth="2.5", **{"class": mark.css})
        attributes["label"] = " ".join(part for part in (attributes.get("label", ""), mark.note) if part)
    elif overlay.dim:
        attributes.update(color=_DIMMED["color"], fontcolor=_DIMMED["fontcolor"])
    return attributes


def _attributes(attributes: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in attributes.items())


def _what(verb: Verb) -> str:
    """One line saying what the node does: its verb and the setting a supervisor looks for first."""
    detail = {
        "queue": "name",
        "transfer": "number",
        "subflow": "flow",
        "goto": "target",
        "lookup": "operation",
        "action": "operation",
        "notify": "via",
        "say": "what",
    }.get(verb.kind)
    if detail is not None:
        return f"{verb.kind}: {getattr(verb, detail)}"
    prompts = verb.prompt_ids()
    return f"{verb.kind}: {prompts[0]}" if prompts else verb.kind


def _problems_by_node(flow: Flow, problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    """Problems of this flow's nodes: a problem belongs to the node whose name or key it points at."""
    owner: dict[Position, str] = {}
    for node in flow.nodes.values():
        owner[node.position] = node.name
        for position in node.key_positions.values():
            owner[position] = node.name
    grouped: dict[str, list[Problem]] = {}
    for problem in problems:
        name = owner.get(problem.position)
        if name is not None:
            grouped.setdefault(name, []).append(problem)
    return grouped


def _quote(text: str) -> str:
    """A DOT double-quoted string (line breaks become DOT's centred ``\\n``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
