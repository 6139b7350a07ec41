"""Rules that span flows (subflows are followed into, only entry flows must meet the SAC rules alone, a
file that does not load is reported once), and what the checker reads from prompts and operations."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from ivr.engine.operations import OperationRegistry
from ivr.flows.checks import Report, check_paths
from ivr.flows.rules_prompts import announced_keys
from ivr.voice.build import ManifestEntry
from ivr.voice.catalogue import Catalogue

MAIN_MENU = """
  main_menu:
    menu:
      prompt: main_menu
      options:
        "1": {go: one}
        "4": {go: complaint}
        "5": {go: cancellation}
        "0": {go: agent}
      no_input: {retries: 2, prompt: didnt_hear}
      no_match: {retries: 2, prompt: invalid_option}
      then: agent
  agent:
    queue: {name: technical, no_agents: goodbye, timeout: goodbye}
  goodbye:
    hangup: goodbye
  complaint:
    action: {operation: open_ticket, args: {kind: complaint}, error: agent}
    next: agent
  cancellation:
    action: {operation: open_ticket, args: {kind: cancellation}, error: agent}
    next: agent
"""
PROTOCOL = 'start: protocol\nnodes:\n  protocol: {say: {protocol: "{{ call.protocol }}"}, next: main_menu}\n'


def check(
    tmp_path: Path,
    catalogue: Catalogue,
    registry: OperationRegistry,
    built_audio: Mapping[str, ManifestEntry] | None = None,
    **files: str,
) -> Report:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(f"flow: {name}\n{text}", encoding="utf-8")
    return check_paths([tmp_path], catalogue=catalogue, registry=registry, built_audio=built_audio)


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
        "  ask: {collect: {prompt: type_cnpj, into: cnpj, then: done, person: done}, next: done}\n"
        "  done: {return: null}\n",
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
    menu = MAIN_MENU.replace('"0": {go: agent}', '"0": {go: to_agent}')
    report = check(
        tmp_path, catalogue, registry,
        main='start: protocol\nnodes:\n  protocol: {say: {protocol: "{{ call.protocol }}"}, next: main_menu}\n'
        "  one: {play: sent, next: agent}\n  to_agent: {subflow: people, next: goodbye}\n" + menu,
        people="start: q\nnodes:\n"
        "  q: {queue: {name: billing, no_agents: done, timeout: done}}\n  done: {return: null}\n",
    )  # fmt: skip
    assert messages(report) == []


IDENTIFY = (
    "start: ask_cnpj\nnodes:\n"
    "  ask_cnpj: {collect: {prompt: type_cnpj, into: cnpj, then: done, person: done}, next: done}\n"
    "  done: {return: null}\n"
)


def test_a_typo_in_the_main_flow_is_said_once(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    """The subflow it runs is not taken for where a call starts (it would ask for data before a person)."""
    main = PROTOCOL + "  one: {subflow: identify, next: agent\n" + MAIN_MENU  # the flow mapping is never closed
    report = check(tmp_path, catalogue, registry, main=main, identify=IDENTIFY)
    assert [m.split(": not valid YAML")[0] for m in messages(report)] == [
        "identify:1: not checked as a flow a call starts in (protocol first, the first menu, no data before a "
        "person), as main.yaml, which may run it, does not load",
        "main:7",
    ]
    assert len(report.errors) == 1


def test_calls_into_a_flow_that_does_not_load_are_not_followed(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    report = check(
        tmp_path, catalogue, registry,
        main=PROTOCOL + "  one: {subflow: identify, next: agent}\n" + MAIN_MENU,
        identify=IDENTIFY.replace("collect:", "colect:"),
    )  # fmt: skip
    assert messages(report) == [
        "identify:4: node 'ask_cnpj': unknown verb 'colect' (known verbs: action, announce, branch, collect, goto, "
        "hangup, hours, lookup, menu, notify, play, queue, record, return, say, set, subflow, transfer)",
        "main:1: the calls into 'identify' are not followed, as identify.yaml does not load",
    ]


def test_a_subflow_that_may_come_back_without_a_person_is_no_way_to_one(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    """A subflow's ``return`` leads where the node that ran it goes next; a subflow's own menu gets no help
    from its callers."""
    report = check(
        tmp_path, catalogue, registry,
        main=PROTOCOL + "  one: {play: sent, next: agent}\n  to_agent: {subflow: people, next: goodbye}\n"
        + MAIN_MENU.replace('"0": {go: agent}', '"0": {go: to_agent}'),
        people="start: check\nnodes:\n"
        "  check: {branch: {when: [{if: call.identified, go: q}], else: done}}\n"
        "  q: {queue: {name: billing, no_agents: pick, timeout: pick}}\n"
        "  pick:\n    menu:\n      prompt: submenu\n      options: {'1': {go: q}, '0': {go: done}}\n"
        "      no_input: {prompt: didnt_hear}\n      no_match: {prompt: invalid_option}\n      then: done\n"
        "  done: {return: null}\n",
    )  # fmt: skip
    assert messages(report) == [
        "main:15: option '0' of menu 'main_menu' goes to 'to_agent' → 'people:check', which reaches a person only "
        "when 'call.identified' is true (when no condition is true, the caller goes to 'done', with no person): "
        "'0' must reach a person whatever happens, without asking for data (Decreto 11.034/2022)",
        "people:9: option '0' of menu 'pick' goes to 'done', which returns to the flow that ran this one: a "
        "subflow's own menus must reach a person: '0' must reach a person whatever happens, without asking for "
        "data (Decreto 11.034/2022)",
    ]


def test_a_cancellation_opened_after_identification_counts(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    """The caller chose cancellation; whether it is opened or a person takes over depends on the account."""
    menu = MAIN_MENU.replace('"5": {go: cancellation}', '"5": {go: who}')
    report = check(
        tmp_path, catalogue, registry,
        main=PROTOCOL + "  one: {play: sent, next: agent}\n  who: {subflow: identify, next: known}\n"
        "  known: {branch: {when: [{if: call.confirmed, go: cancellation}], else: agent}}\n" + menu,
        identify=IDENTIFY,
    )  # fmt: skip
    assert messages(report) == []
    for kind in ("complaint", "cancellation"):  # the same flow without the opener is refused
        bare = menu.replace(f"args: {{kind: {kind}}}", "args: {kind: other}")
        (tmp_path / kind).mkdir()
        refused = check(
            tmp_path / kind, catalogue, registry,
            main=PROTOCOL + "  one: {play: sent, next: agent}\n  who: {subflow: identify, next: known}\n"
            "  known: {branch: {when: [{if: call.confirmed, go: cancellation}], else: agent}}\n" + bare,
            identify=IDENTIFY,
        )  # fmt: skip
        assert [m.split(", so ")[1][:45] for m in messages(refused)] == [
            f"one of its options must lead to opening a {kind}"[:45]
        ]


@pytest.mark.parametrize(
    ("operation", "args"), [("register_lead", "{}"), ("attach_to_incident", "{}"), ("open_ticket", "{kind: complaint}")]
)
def test_silence_never_opens_what_the_operations_declare_as_opening(
    tmp_path: Path, catalogue: Catalogue, operation: str, args: str
) -> None:
    """The rule reads `OperationSpec.opens` from the real declarations."""
    from integrations.catalog import declared_registry

    menu = MAIN_MENU.replace("then: agent", "then: silent", 1)
    report = check(
        tmp_path, catalogue, declared_registry(),
        main=PROTOCOL + f"  one: {{play: sent, next: agent}}\n  silent: {{action: {{operation: {operation}, "
        f"args: {args}, error: agent}}, next: agent}}\n" + menu.replace("kind: complaint", "kind: complaint, "
        "description: x").replace("    action: {operation: open_ticket, args: {kind: cancellation}",
                                  "    action: {operation: open_ticket, args: {kind: cancellation, description: x}"),
    )  # fmt: skip
    assert [m.split(" which opens")[0] for m in messages(report)] == [
        "main:18: a caller who presses nothing (or only wrong keys) at menu 'main_menu' is taken by its 'then' to "
        "'silent',"
    ]


def test_a_value_the_declaration_does_not_list_is_refused_where_the_flow_writes_it(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    """The checker reads an argument's values (an enum) from the real declarations."""
    from integrations.catalog import declared_registry

    one = "  one: {action: {operation: latest_ticket, args: {kind: bgp_requests}, error: agent}, next: agent}\n"
    report = check(tmp_path, catalogue, declared_registry(), main=PROTOCOL + one + MAIN_MENU)
    assert messages(report) == [
        "main:5: node 'one': argument 'kind' of operation 'latest_ticket' must be one of technical_failure, "
        "service_request, billing_doubt, billing_dispute, boleto_copy, nota_fiscal_copy, complaint, cancellation, "
        "due_date_change, maintenance_reschedule, bgp_request, callback_request, not 'bgp_requests'"
    ]


def test_prompts_last_as_built_when_their_audio_is_up_to_date(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    main = PROTOCOL + "  one: {play: sent, next: agent}\n" + MAIN_MENU
    built = ManifestEntry("tts", "hash", "pt-br", 16.25, catalogue.text("main_menu"))
    report = check(tmp_path, catalogue, registry, built_audio={"main_menu": built}, main=main)
    assert messages(report) == [
        "main:9: the prompt of menu 'main_menu' lasts 16.2 s as built, over 15 s: callers lose the thread; say "
        "less, or move options to where callers look for them"
    ]
    # Audio built from an older text is out of date: the length comes from today's 19 words (8 s).
    stale = ManifestEntry("tts", "hash", "pt-br", 16.25, "Um texto antigo.")
    assert check(tmp_path, catalogue, registry, built_audio={"main_menu": stale}, main=main).problems == ()


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("Para suporte, digite 1. Para financeiro, digite 2.", ["1", "2"]),
        ("Financeiro, 2. Técnico, 1.", ["2", "1"]),
        ("0, a qualquer momento, para falar com um atendente.", ["0"]),
        ("Para ouvir de novo, digite asterisco. Para voltar, digite Sustenido.", ["*", "#"]),
        ("Ligue para 3003-3336, das 8 às 18h, fatura de R$ 1,50 ou de 2026, 24x7.", ["8"]),
    ],
)
def test_keys_are_announced_as_numerals_or_named(text: str, keys: list[str]) -> None:
    assert announced_keys(text) == keys


def test_a_data_prompt_counts_as_a_way_to_a_person_by_its_person_exit(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry
) -> None:
    """Pressing "*" in a data prompt is not data: its `person:` counts, when it is sure to reach one."""
    ask = "  ask: {collect: {prompt: type_cnpj, into: cnpj, person: PERSON, then: agent}, next: agent}\n"
    menu = MAIN_MENU.replace('"0": {go: agent}', '"0": {go: ask}')
    (tmp_path / "sure").mkdir()
    sure = check(
        tmp_path / "sure", catalogue, registry,
        main=PROTOCOL + "  one: {play: sent, next: agent}\n" + ask.replace("PERSON", "agent") + menu,
    )  # fmt: skip
    assert messages(sure) == []
    (tmp_path / "ends").mkdir()
    ends = check(
        tmp_path / "ends", catalogue, registry,
        main=PROTOCOL + "  one: {play: sent, next: agent}\n" + ask.replace("PERSON", "goodbye") + menu,
    )  # fmt: skip
    assert [m.split(": '0' must")[0] for m in messages(ends)] == [
        "main:6: node 'ask' asks the caller to key data before any way to a person is offered (path: protocol → "
        "main_menu → ask): offer one first, e.g. option '0' in an earlier menu (Decreto 11.034/2022)",
        "main:15: option '0' of menu 'main_menu' goes to 'ask' → 'goodbye', which ends the call",
    ]
