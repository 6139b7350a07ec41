"""The JSON Schema editors use must describe the language the loader accepts, and be committed up to date."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from ivr.config import REPO_ROOT, settings
from ivr.flows.checks import flow_files
from ivr.flows.loader import parse_flow
from ivr.flows.schema import SCHEMA_FILE, flow_schema, render_schema

FIXTURES = REPO_ROOT / "tests" / "data" / "flows"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = flow_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def test_committed_schema_is_up_to_date() -> None:
    committed = (REPO_ROOT / "flows" / SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == render_schema(), "run: ivr flow schema -o flows/flow.schema.json"


@pytest.mark.parametrize(
    "path",
    [*flow_files([settings().flows_dir]), *flow_files([FIXTURES / "good"])],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_flows_the_loader_accepts_match_the_schema(path: Path, validator: Draft202012Validator) -> None:
    text = path.read_text(encoding="utf-8")
    parse_flow(text, path)  # the loader accepts it...
    assert [e.message for e in validator.iter_errors(load(text))] == []  # ...and so does the schema


SHORT_FORMS = """
flow: short
start: a
nodes:
  a: {play: welcome, next: b}
  b: {set: {journey: billing, tries: 2}, next: c}
  c: {subflow: identify, next: d}
  d: {goto: e}
  e: {hangup: goodbye}
  f: {return: null}
  g: {hangup: null}
"""


def test_short_forms_are_valid(validator: Draft202012Validator) -> None:
    parse_flow(SHORT_FORMS, Path("short.yaml"))
    assert [e.message for e in validator.iter_errors(load(SHORT_FORMS))] == []


@pytest.mark.parametrize(
    "node",
    [
        "{plya: welcome, next: b}",  # unknown verb
        "{play: welcome}",  # play goes on: needs next
        "{play: welcome, menu: {prompt: x, options: {'1': {go: a}}, then: a}, next: b}",  # two verbs
        "{menu: {prompt: x, options: {'1': {go: a}}}}",  # menu without then
        "{menu: {prompt: x, options: {'1': {go: a, role: complaint}}, then: a}}",  # options are not labelled
        "{queue: {name: technical, no_agents: a, timeout: a, colour: red}}",  # unknown setting
        "{goto: b, next: c}",  # goto does not go on
    ],
)
def test_nodes_the_loader_refuses_are_refused_by_the_schema(node: str, validator: Draft202012Validator) -> None:
    text = f"flow: f\nstart: a\nnodes:\n  a: {node}\n  b: {{hangup: goodbye}}\n  c: {{hangup: goodbye}}\n"
    with pytest.raises(ValueError):
        parse_flow(text, Path("f.yaml"))
    assert list(validator.iter_errors(load(text)))


def test_schema_file_is_written_by_the_cli(tmp_path: Path) -> None:
    from ivr.cli import main

    out = tmp_path / SCHEMA_FILE
    assert main(["flow", "schema", "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == flow_schema()
