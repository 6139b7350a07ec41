"""Shared pieces for the checker's tests: the fixture flows, their prompt catalogue and operations."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.config import REPO_ROOT, settings
from ivr.engine.operations import Arg, OperationContext, OperationRegistry, OperationResult, OperationSpec
from ivr.voice.catalogue import Catalogue

FIXTURES = REPO_ROOT / "tests" / "data" / "flows"


async def _never_called(ctx: OperationContext, **args: object) -> OperationResult:
    raise AssertionError("the checker never runs an operation")


def fixture_registry() -> OperationRegistry:
    """The operations the fixture flows may call, declared like the built-in ones."""
    registry = OperationRegistry()
    for name, args in (
        ("customer_by_caller_id", ()),
        ("customer_by_cnpj", (Arg("cnpj", str),)),
        (
            "open_ticket",
            (Arg("kind", str), Arg("description", str, required=False), Arg("priority", int, required=False)),
        ),
        ("send_document", (Arg("kind", str), Arg("month", str, required=False))),
    ):
        registry.register(OperationSpec(name, f"fixture {name}", args, (), opens=name == "open_ticket"), _never_called)
    return registry


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue.load(FIXTURES / "prompts")


@pytest.fixture(scope="session")
def registry() -> OperationRegistry:
    return fixture_registry()


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings for CLI runs: the fixture prompt catalogue and a private var dir (returned)."""
    var_dir = tmp_path / "var"
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(FIXTURES / "prompts"))
    monkeypatch.setenv("IVR_VAR_DIR", str(var_dir))
    settings.cache_clear()
    yield var_dir
    settings.cache_clear()


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A flow directory holding a copy of the good `minimal` flow."""
    directory = tmp_path / "flows"
    directory.mkdir()
    shutil.copy(FIXTURES / "good" / "minimal.yaml", directory)
    return directory
