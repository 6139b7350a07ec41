"""Rules that span flows: subflows are followed into, and only entry flows must meet the SAC rules alone."""

from __future__ import annotations

from pathlib import Path

from integrations.registry import OperationRegistry
from ivr.flows.checks import Report, check_paths
from ivr.voice.catalogue import Catalogue

MAIN_MENU = """
  main_menu:
    menu:
      prompt: main_menu
      options:
        "1": {go: one}
        "4": {go: agent, role: complaint}
        "5": {go: agent, role: cancellation}
        "0": {go: agent, role: human}
      no_input: {retries: 2, prompt: didnt_hear}
      no_match: {retries: 2, prompt: invalid_option}
      then: agent
  agent:
    queue: {name: technical, no_agents: goodbye, timeout: goodbye}
  goodbye:
    hangup: goodbye
"""


def check(tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry, **files: str) -> Report:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(f"flow: {name}\n{text}", encoding="utf-8")
    return check_paths([tmp_path], catalogue=catalogue, registry=registry)


def messages(report: Report) -> list[str]:
    return [f"{p.position.file.stem}:{p.position.line}: {p.message}" for p in report.problems]


def test_protocol_announced_by_a_subflow_counts(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    report = check(
        tmp_path, catalogue, registry,
        main="start: hello\nnodes:\n  hello: {subflow: greeting, next: main_menu}\n  one: {play: sent, next: agent}\n"
        + MAIN_MENU,
        greeting="start: protocol\nnodes:\n"
        '  protocol: {say: {protocol: "{{ call.protocol }}"}, next: done}\n  done: {return: null}\n',
    )  # fmt: skip
    assert messages(report) == []


def test_a_subflow_that_may_skip_the_protocol_does_not_count(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    report = check(
        tmp_path, catalogue, registry,
        main="start: hello\nnodes:\n  hello: {subflow: greeting, next: main_menu}\n  one: {play: sent, next: agent}\n"
        + MAIN_MENU,
        greeting="start: known\nnodes:\n"
        "  known: {branch: {when: [{if: call.identified, go: done}], else: protocol}}\n"
        '  protocol: {say: {protocol: "{{ call.protocol }}"}, next: done}\n  done: {return: null}\n',
    )  # fmt: skip
    assert messages(report) == [
        "main:7: a caller can reach menu 'main_menu' before hearing the call's protocol number "
        "(path: hello → main_menu): announce it first with a node like "
        "'say: {protocol: \"{{ call.protocol }}\"}' (Decreto 11.034/2022 and Anatel RGC)"
    ]


def test_loops_through_subflows(tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry) -> None:
    head = 'start: protocol\nnodes:\n  protocol: {say: {protocol: "{{ call.protocol }}"}, next: main_menu}\n'
    (tmp_path / "spin").mkdir()
    (tmp_path / "asks").mkdir()
    spin = check(
        tmp_path / "spin", catalogue, registry,
        main=head + "  one: {subflow: again, next: one}\n" + MAIN_MENU,
        again="start: done\nnodes:\n  done: {return: null}\n",
    )  # fmt: skip
    assert messages(spin) == [
        "main:5: node 'one' leads back to itself forever without asking the caller anything: put a menu, collect "
        "or record in the loop, or let it end"
    ]
    asks = check(
        tmp_path / "asks", catalogue, registry,
        main=head + "  one: {subflow: again, next: one}\n" + MAIN_MENU,
        again="start: ask\nnodes:\n"
        "  ask: {collect: {prompt: type_cnpj, into: cnpj, then: done}, next: done}\n  done: {return: null}\n",
    )  # fmt: skip
    assert messages(asks) == []


def test_duplicate_flow_names(tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry) -> None:
    text = 'start: protocol\nnodes:\n  protocol: {say: {protocol: "{{ call.protocol }}"}, next: main_menu}\n'
    text += "  one: {play: sent, next: agent}\n" + MAIN_MENU
    (tmp_path / "a.yaml").write_text("flow: same\n" + text, encoding="utf-8")
    (tmp_path / "b.yaml").write_text("flow: same\n" + text, encoding="utf-8")
    report = check_paths([tmp_path], catalogue=catalogue, registry=registry)
    assert messages(report) == [
        f"b:1: flow name 'same' is already used by {tmp_path / 'a.yaml'}: each flow needs its own name"
    ]


def test_a_human_behind_a_subflow_counts(tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry) -> None:
    menu = MAIN_MENU.replace('"0": {go: agent, role: human}', '"0": {go: to_agent, role: human}')
    report = check(
        tmp_path, catalogue, registry,
        main='start: protocol\nnodes:\n  protocol: {say: {protocol: "{{ call.protocol }}"}, next: main_menu}\n'
        "  one: {play: sent, next: agent}\n  to_agent: {subflow: people, next: goodbye}\n" + menu,
        people="start: q\nnodes:\n"
        "  q: {queue: {name: billing, no_agents: done, timeout: done}}\n  done: {return: null}\n",
    )  # fmt: skip
    assert messages(report) == []
