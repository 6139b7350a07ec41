"""What changed between two sets of flows (two releases, or the draft in a flows directory and a release).

Two views, because a supervisor reads both: the unified text diff of each flow file, and a summary of the
loaded flows (nodes added, removed or changed; a menu's options added, removed or sent elsewhere). The
summary compares what the loader made of the YAML, so moving a node or editing a comment changes the
text but not a node, and a file that no longer loads says so instead of being guessed at.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from ivr.engine.flow import Flow, Node
from ivr.engine.verbs.menu import Menu
from ivr.flows.checks import flow_files
from ivr.flows.loader import FlowLoadError, load_flow


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: its flow directory and how the supervisor named it ("2 (3f2a...)")."""

    label: str
    directory: Path


@dataclass(frozen=True, slots=True)
class FileChange:
    """One flow file that differs: its text diff and, from the loaded flows, what changed in it."""

    name: str  # the file's name, e.g. sac.yaml
    text: tuple[str, ...]  # unified diff lines, without line ends
    summary: tuple[str, ...]  # one line each: "node added: survey", "node changed: main_menu (...)"
    # The flow as each side loads it, to draw: None on the side without the file, and on both sides when
    # either does not load (nothing sure to draw).
    old: Flow | None = None
    new: Flow | None = None


@dataclass(frozen=True, slots=True)
class NodeChanges:
    """The nodes of one flow that differ between two versions, by name; `changed` says how each did."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[tuple[str, str], ...]  # (name, " (menu → say)"...)


def node_changes(old: Flow, new: Flow) -> NodeChanges:
    return NodeChanges(
        added=tuple(name for name in new.nodes if name not in old.nodes),
        removed=tuple(name for name in old.nodes if name not in new.nodes),
        changed=tuple(
            (name, _how(old.nodes[name], node))
            for name, node in new.nodes.items()
            if name in old.nodes and old.nodes[name].verb != node.verb
        ),
    )


@dataclass(frozen=True, slots=True)
class FlowsDiff:
    a: Side
    b: Side
    files: tuple[FileChange, ...]  # in name order; files that are the same are left out

    @property
    def identical(self) -> bool:
        return not self.files

    def render(self) -> str:
        """The text diffs, then the summary per file; "no differences" when there are none."""
        if self.identical:
            return f"no differences between {self.a.label} and {self.b.label}"
        lines = [line for change in self.files for line in change.text]
        lines += ["", f"summary ({self.a.label} → {self.b.label}):"]
        for change in self.files:
            lines.append(f"  {change.name}:")
            lines += [f"    {line}" for line in change.summary]
        return "\n".join(lines)


def diff_flows(a: Side, b: Side) -> FlowsDiff:
    """Compare the flow files (*.yaml) of two directories, file by file."""
    old, new = _files(a.directory), _files(b.directory)
    changes = []
    for name in sorted(old.keys() | new.keys()):
        old_text = old[name].read_text(encoding="utf-8", errors="replace") if name in old else ""
        new_text = new[name].read_text(encoding="utf-8", errors="replace") if name in new else ""
        if name in old and name in new and old_text == new_text:
            continue
        text = difflib.unified_diff(
            old_text.splitlines(),
            new_text.splitlines(),
            fromfile=f"{a.label}/{name}" if name in old else "/dev/null",
            tofile=f"{b.label}/{name}" if name in new else "/dev/null",
            lineterm="",
        )
        was, now = _loaded(old.get(name)), _loaded(new.get(name))
        drawn = (None, None) if isinstance(was, str) or isinstance(now, str) else (was, now)
        changes.append(FileChange(name, tuple(text), tuple(_summary(was, now)), *drawn))
    return FlowsDiff(a, b, tuple(changes))


def _files(directory: Path) -> dict[str, Path]:
    return {path.name: path for path in flow_files([directory])}


def _summary(old: Flow | str | None, new: Flow | str | None) -> list[str]:
    if old is None:
        return ["file added"]
    if new is None:
        return ["file removed"]
    if isinstance(old, str) or isinstance(new, str):
        unloaded = [line for line in (old, new) if isinstance(line, str)]
        return [f"does not load, so its nodes cannot be compared: {line}" for line in unloaded]
    lines = []
    if old.name != new.name:
        lines.append(f"flow renamed: {old.name} → {new.name}")
    if old.start != new.start:
        lines.append(f"start: {old.start} → {new.start}")
    nodes = node_changes(old, new)
    lines += [f"node added: {name}" for name in nodes.added]
    lines += [f"node removed: {name}" for name in nodes.removed]
    lines += [f"node changed: {name}{how}" for name, how in nodes.changed]
    return lines or ["no node changed (layout or comments only)"]


def _loaded(path: Path | None) -> Flow | str | None:
    """The flow, its first load problem as one line, or None for a file that is not there."""
    if path is None:
        return None
    try:
        return load_flow(path)
    except FlowLoadError as exc:
        return str(exc.problems[0])


def _how(before: Node, after: Node) -> str:
    """What changed in a node, briefly: its verb, a menu's options by key, and the other settings by name."""
    old, new = before.verb, after.verb
    if old.kind != new.kind:
        return f" ({old.kind} → {new.kind})"
    parts = []
    if isinstance(old, Menu) and isinstance(new, Menu):
        was, now = old.options, new.options
        if added := [key for key in now if key not in was]:
            parts.append("options added: " + ", ".join(f"{key} → {now[key].go}" for key in added))
        if removed := [key for key in was if key not in now]:
            parts.append("options removed: " + ", ".join(f"{key} → {was[key].go}" for key in removed))
        if moved := [key for key in now if key in was and now[key].go != was[key].go]:
            parts.append("options going elsewhere: " + ", ".join(f"{key} → {now[key].go}" for key in moved))
    settings = [field for field in type(new).model_fields if getattr(old, field) != getattr(new, field)]
    if settings := [field for field in settings if not (parts and field == "options")]:
        parts.append("changed: " + ", ".join(settings))
    return f" ({'; '.join(parts)})"
