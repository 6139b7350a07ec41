"""`ivr flow graph`: a drawing a supervisor can read, with the checker's findings on it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.config import REPO_ROOT
from ivr.engine.operations import OperationRegistry
from ivr.flows.checks import Report, check_paths
from ivr.flows.graph import GraphError, flow_dot, render, write_graph
from ivr.voice.catalogue import Catalogue

FIXTURES = REPO_ROOT / "tests" / "data" / "flows"


def checked(path: Path, catalogue: Catalogue, registry: OperationRegistry) -> Report:
    return check_paths([path], catalogue=catalogue, registry=registry)


def node_line(dot: str, name: str) -> str:
    [line] = [text for text in dot.splitlines() if text.strip().startswith(f'"{name}" [')]
    return line


def test_dot_labels_options_and_branches(catalogue: Catalogue, registry: OperationRegistry) -> None:
    report = checked(FIXTURES / "good" / "journeys.yaml", catalogue, registry)
    dot = flow_dot(report.flows["journeys"], report.problems)
    assert '"main_menu" -> "hold" [label="option 0"];' in dot
    assert '"main_menu" -> "hold" [label="then"];' in dot
    assert '"confirmed" -> "billing_menu" [label="if call.confirmed"];' in dot
    assert '"confirmed" -> "billing_hours" [label="else"];' in dot
    assert '"who" -> "flow:journeys_identify" [label="runs", style=dashed];' in dot
    assert "agent\\nqueue: technical" in node_line(dot, "agent")
    assert "red" not in dot and "unreachable" not in dot


def test_dot_marks_errors_in_red_with_the_message(catalogue: Catalogue, registry: OperationRegistry) -> None:
    report = checked(FIXTURES / "bad" / "unknown_target.yaml", catalogue, registry)
    dot = flow_dot(report.flows["unknown_target"], report.problems)
    menu = node_line(dot, "main_menu")
    assert "color=\"red\"" in menu
    assert "tooltip=\"error: node 'main_menu' goes to 'agnet' (option 0)" in menu
    assert '"main_menu" -> "missing:agnet" [label="option 0", color=red];' in dot
    assert 'color="red"' not in node_line(dot, "agent")


def test_dot_marks_unreachable_nodes(catalogue: Catalogue, registry: OperationRegistry) -> None:
    report = checked(FIXTURES / "bad" / "unreachable.yaml", catalogue, registry)
    dot = flow_dot(report.flows["unreachable"], report.problems)
    old = node_line(dot, "old_menu")
    assert "(unreachable)" in old and "dashed" in old and 'color="orange"' in old
    assert "(unreachable)" not in node_line(dot, "main_menu")


def test_dot_quotes_names_safely(catalogue: Catalogue, registry: OperationRegistry, tmp_path: Path) -> None:
    path = tmp_path / "quotes.yaml"
    text = (FIXTURES / "good" / "minimal.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("flow: minimal", 'flow: "say \\"hi\\""'), encoding="utf-8")
    report = checked(path, catalogue, registry)
    dot = flow_dot(next(iter(report.flows.values())))
    assert dot.startswith('digraph "say \\"hi\\"" {')


def test_svg_has_labelled_edges_and_red_errors(
    catalogue: Catalogue, registry: OperationRegistry, tmp_path: Path
) -> None:
    report = checked(FIXTURES / "bad" / "unknown_target.yaml", catalogue, registry)
    out = tmp_path / "flow.svg"
    write_graph(report.flows["unknown_target"], report.problems, out)
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml")
    labels = set(re.findall(r"<text[^>]*>([^<]+)</text>", svg))
    assert {"option 0", "option 4", "then", "no_agents", "main_menu", "agnet?"} <= labels
    assert 'stroke="red"' in svg
    assert "goes to &#39;agnet&#39;" in svg or "goes to 'agnet'" in svg  # the error as the node's tooltip


def test_unknown_format_is_refused_before_graphviz_runs() -> None:
    with pytest.raises(GraphError, match="use one of .svg, .png, .pdf or .dot"):
        render("digraph {}", "jpeg2000")


def test_cli_draws_svg_and_dot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.cli import main

    flow = REPO_ROOT / "flows" / "sac.yaml"
    assert main(["flow", "graph", str(flow), "-o", str(tmp_path / "sac.svg")]) == 0
    assert "<svg" in (tmp_path / "sac.svg").read_text(encoding="utf-8")
    assert main(["flow", "graph", str(flow), "-o", str(tmp_path / "sac.dot")]) == 0
    assert (tmp_path / "sac.dot").read_text(encoding="utf-8").startswith('digraph "sac" {')
    assert "drew flow 'sac'" in capsys.readouterr().out


def test_cli_cannot_draw_a_flow_that_does_not_load(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from ivr.cli import main

    assert main(["flow", "graph", str(FIXTURES / "bad" / "yaml_syntax.yaml"), "-o", str(tmp_path / "x.dot")]) == 1
    err = capsys.readouterr().err
    assert "yaml_syntax.yaml:9:1: error: not valid YAML" in err
    assert "cannot be loaded, so it cannot be drawn" in err
    assert not (tmp_path / "x.dot").exists()
