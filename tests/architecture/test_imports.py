"""The house's import rule (ARCHITECTURE.md): each package imports only from the layers below it and
its own, so there are no cycles; the engine imports no adapter and the store no integration.

Every `import` counts, also the ones inside functions and under TYPE_CHECKING: a lazy import is still a
dependency, only a slower one to notice.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("ivr", "integrations")

#: Lowest first. A unit is a package of `ivr` or `integrations` or a top-level module of either.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer)
    for layer in (
        # the business's words and the tools everything uses
        {
            "ivr.config",
            "ivr.clock",
            "ivr.logs",
            "ivr.phone",
            "ivr.email_address",
            "ivr.cnpj",
            "ivr.protocol_number",
            "ivr.domain",
            "ivr.text",
        },
        {"ivr.voice"},  # prompts and pt-BR speaking
        {"ivr.engine"},  # the flow engine and its ports, the operation contract among them
        {"ivr.agi", "ivr.ami", "ivr.flows"},  # the call's line, Asterisk's manager, flow tooling
        {"ivr.store"},  # our database
        {  # adapters to the outside, by what they talk to
            "integrations.accounts",
            "integrations.answers",
            "integrations.backend",
            "integrations.builtin",
            "integrations.carrier",
            "integrations.messaging",
            "integrations.speech",
            "integrations.catalog",
        },
        {"ivr.asterisk"},  # our Asterisk: its root, configuration and test calls
        # a running unit's wiring, its metrics, health, call backs; the console
        {"ivr.app", "ivr.metrics", "ivr.doctor", "ivr.dialer", "ivr.supervisor", "ivr.web"},
        {"ivr.cli"},  # the `ivr` command
    )
)

#: Libraries that talk to the outside world: the engine reaches them only through its ports.
ADAPTER_LIBRARIES = frozenset(
    {"sqlalchemy", "alembic", "aiohttp", "panoramisk", "aiosmtplib", "google", "grpc", "prometheus_client"}
)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for file in (REPO / package).rglob("*.py"):
            parts = file.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


MODULES = _modules()


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _imports(file: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every import in the file; `from p import m` names the module p.m."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule if submodule in MODULES else node.module, node.lineno))
    return found


def _layer(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(
        f"{unit} is in no layer of LAYERS in {Path(__file__).name}: add it there and to ARCHITECTURE.md"
    )


def _edges() -> dict[str, dict[str, str]]:
    """unit -> {unit it imports: the first place it does, as file:line}."""
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for module, file in sorted(MODULES.items()):
        for imported, line in _imports(file):
            if imported.split(".")[0] in PACKAGES and _unit(imported) != _unit(module):
                edges[_unit(module)].setdefault(_unit(imported), f"{file.relative_to(REPO)}:{line}")
    return edges


def test_every_unit_has_a_layer() -> None:
    for module in MODULES:
        if module not in PACKAGES:
            _layer(_unit(module))


def test_packages_import_only_from_layers_below_or_their_own() -> None:
    broken = [
        f"{where}: {unit} (layer {_layer(unit)}) imports {imported} (layer {_layer(imported)})"
        for unit, targets in _edges().items()
        for imported, where in targets.items()
        if imported not in PACKAGES and _layer(imported) > _layer(unit)
    ]
    assert not broken, "imports against ARCHITECTURE.md's layers:\n" + "\n".join(broken)


def test_no_package_cycles() -> None:
    edges = _edges()
    state: dict[str, str] = {}

    def cycle_from(unit: str, path: list[str]) -> list[str] | None:
        state[unit] = "open"
        for imported in sorted(edges.get(unit, {})):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported] if imported in path else [unit, imported]
            if imported not in state and (found := cycle_from(imported, [*path, imported])):
                return found
        state[unit] = "done"
        return None

    for unit in sorted(edges):
        if unit not in state and (cycle := cycle_from(unit, [unit])):
            raise AssertionError("package cycle: " + " -> ".join(cycle))


@pytest.mark.parametrize(
    ("lower", "forbidden"),
    [
        ("ivr.engine", ("integrations", "ivr.store", "ivr.agi", "ivr.ami", "ivr.asterisk", "ivr.app", "ivr.cli")),
        ("ivr.store", ("integrations", "ivr.app", "ivr.cli")),
        ("ivr.flows", ("integrations", "ivr.store", "ivr.app", "ivr.cli")),
        ("ivr.app", ("ivr.web",)),  # the console is its own process: nothing but the command imports it
        ("ivr.doctor", ("ivr.web",)),
        ("ivr.dialer", ("ivr.web",)),
    ],
)
def test_the_lower_packages_never_reach_up(lower: str, forbidden: tuple[str, ...]) -> None:
    found = [
        f"{file.relative_to(REPO)}:{line}: {imported}"
        for module, file in MODULES.items()
        if _unit(module) == lower
        for imported, line in _imports(file)
        if any(imported == name or imported.startswith(name + ".") for name in forbidden)
    ]
    assert not found, f"{lower} imports what it must not:\n" + "\n".join(found)


def test_the_engine_talks_to_the_outside_only_through_its_ports() -> None:
    found = [
        f"{file.relative_to(REPO)}:{line}: {imported}"
        for module, file in MODULES.items()
        if _unit(module) == "ivr.engine"
        for imported, line in _imports(file)
        if imported.split(".")[0] in ADAPTER_LIBRARIES
    ]
    assert not found, "the engine imports an adapter's library:\n" + "\n".join(found)


def test_the_rule_sees_a_broken_import(tmp_path: Path) -> None:
    """The walk finds imports inside functions too, the way a lazy import would slip past a grep."""
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def later():\n    from integrations.catalog import declared_registry\n")
    assert _imports(sneaky) == [("integrations.catalog", 2)]
