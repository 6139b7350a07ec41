"""``ivr flow graph``: draw a flow with Graphviz, so a supervisor sees the call at a glance.

Every node is a box saying what it does; every edge carries its label (the key pressed, ``no_input``,
``found``...). Nodes with errors are red, with warnings orange, and the problems are their tooltips (hover
in a browser); unreachable nodes are dashed and grey. Menus, the keying of data (collect) and the ways to a
person (queue, transfer) each have their own colour. The DOT text is built here; the ``dot`` binary from
Debian's graphviz package turns it into SVG, PNG or PDF.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ivr.engine.flow import Flow, Node, Position, Problem, Severity
from ivr.engine.verbs.base import Verb
from ivr.engine.verbs.subflow import Subflow
from ivr.flows.rules_paths import HUMAN_VERBS, announces_protocol
from ivr.flows.rules_structure import reachable

#: Output formats `dot` renders; anything else is refused before Graphviz runs.
RENDERED_FORMATS = ("svg", "png", "pdf")
DOT_TIMEOUT_S = 60.0

_FILL = {"menu": "#dbeafe", "collect": "#fef3c7", "record": "#fef3c7", **{v.kind: "#dcfce7" for v in HUMAN_VERBS}}
_SHAPE = {"hangup": "oval", "return": "oval", "branch": "diamond", "hours": "diamond"}
_PROBLEM_COLOUR = {Severity.ERROR: "red", Severity.WARNING: "orange"}


class GraphError(RuntimeError):
    """Graphviz is missing or could not draw the flow."""


def flow_dot(flow: Flow, problems: Iterable[Problem] = ()) -> str:
    """The flow as Graphviz DOT text; `problems` are the checker's findings for its file."""
    by_node = _problems_by_node(flow, problems)
    seen = reachable(flow)
    lines = [
        f"digraph {_quote(flow.name)} {{",
        '  graph [rankdir=TB, fontname="Helvetica", labelloc=t, label=' + _quote(f"flow {flow.name}") + "];",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
        '  "start:" [shape=circle, label="", width=0.2, style=filled, fillcolor=black];',
        f'  "start:" -> {_quote(flow.start)};',
    ]
    outside: list[str] = []  # other flows and missing nodes, drawn once each
    for node in flow.nodes.values():
        attributes = _node_attributes(node, by_node.get(node.name, []), node.name in seen)
        lines.append(f"  {_quote(node.name)} [{attributes}];")
        for label, target in node.verb.targets():
            if target in flow.nodes:
                lines.append(f"  {_quote(node.name)} -> {_quote(target)} [label={_quote(label)}];")
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


def render(dot: str, fmt: str) -> bytes:
    """Run Graphviz's ``dot`` on DOT text."""
    if fmt not in RENDERED_FORMATS:
        raise GraphError(f"cannot draw to '.{fmt}': use one of .{', .'.join(RENDERED_FORMATS)} or .dot")
    binary = shutil.which("dot")
    if binary is None:
        raise GraphError("Graphviz's 'dot' program is not installed (Debian package 'graphviz')")
    try:
        done = subprocess.run(
            [binary, f"-T{fmt}"], input=dot.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise GraphError(f"Graphviz took more than {DOT_TIMEOUT_S:.0f} s to draw the flow") from exc
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


def _node_attributes(node: Node, problems: list[Problem], reached: bool) -> str:
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
        attributes["tooltip"] = f"{node.position}"
    attributes["label"] = label
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
