"""The flow model: what a loaded YAML flow is, and where each part of it came from.

A `Flow` is a set of named `Node`s, each holding one validated verb (`ivr.engine.verbs`). Every node and
every key keeps its `Position` in the YAML file, so the loader and `ivr flow check` can point a supervisor
at the exact line and column of a mistake (`Problem`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.engine.verbs.base import Verb


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a flow file; line and column are 1-based, as editors show them."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class FlowError(Exception):
    """On a live call, the flow asked for something that does not exist or cannot be done (a node, a
    flow, a template that fails); the call fails over."""


class Severity(str, Enum):
    ERROR = "error"  # the flow cannot be published
    WARNING = "warning"  # publishable, but a supervisor should look


@dataclass(frozen=True, slots=True)
class Problem:
    position: Position
    message: str  # one plain sentence a supervisor understands
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.position}: {self.severity.value}: {self.message}"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    verb: Verb
    position: Position  # of the node's name
    # Position of every key inside the node, by dotted path relative to the node:
    # "menu", "menu.options", "menu.options.3", "menu.options.3.go", "next"...
    key_positions: dict[str, Position] = field(default_factory=dict)

    def position_of(self, path: str) -> Position:
        """The position of a key, or of the nearest enclosing key that exists (else the node)."""
        parts = path.split(".")
        while parts:
            found = self.key_positions.get(".".join(parts))
            if found is not None:
                return found
            parts.pop()
        return self.position


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    start: str
    nodes: dict[str, Node]
    source: Path
    version: str  # content hash of the YAML text: the same text always gives the same version
    key_positions: dict[str, Position] = field(default_factory=dict)  # top-level keys: "flow", "start"...

    @property
    def start_node(self) -> Node:
        return self.nodes[self.start]
