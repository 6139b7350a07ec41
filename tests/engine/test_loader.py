from pathlib import Path

import pytest

from ivr.engine.flow import Position, Severity
from ivr.engine.verbs.menu import Menu
from ivr.flows.loader import FlowLoadError, load_flow, parse_flow

GOOD = """\
flow: demo
start: greet
nodes:
  greet:
    play: welcome
    next: main_menu
  main_menu:
    menu:
      prompt: main_menu
      options:
        1: {go: greet, say_it: [suporte]}
        "0": {go: agent}
      then: agent
  agent:
    queue: {name: technical, no_agents: bye, timeout: bye}
  bye:
    hangup: goodbye
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(FlowLoadError) as caught:
        parse_flow(text, Path("f.yaml"))
    return [str(p) for p in caught.value.problems]


def test_a_good_flow_keeps_the_position_of_every_node_and_key() -> None:
    loaded = parse_flow(GOOD, Path("flows/demo.yaml"))
    assert loaded.name == "demo" and loaded.start == "greet"
    menu = loaded.nodes["main_menu"]
    assert isinstance(menu.verb, Menu)
    assert menu.position == Position(Path("flows/demo.yaml"), 7, 3)
    assert menu.key_positions["menu.options.0.go"] == Position(Path("flows/demo.yaml"), 12, 15)
    assert menu.position_of("menu.options.1.say_it.0").line == 11
    assert set(menu.verb.options) == {"1", "0"}  # an unquoted YAML key is still the phone key "1"
    assert menu.verb.targets() == [("option 1", "greet"), ("option 0", "agent"), ("then", "agent")]


def test_the_version_is_a_hash_of_the_text() -> None:
    assert parse_flow(GOOD, Path("a.yaml")).version == parse_flow(GOOD, Path("b.yaml")).version
    assert parse_flow(GOOD, Path("a.yaml")).version != parse_flow(GOOD + "\n# edited\n", Path("a.yaml")).version


def test_a_missing_go_is_reported_at_the_option_with_a_plain_sentence() -> None:
    text = GOOD.replace('"0": {go: agent}', '"3": {say_it: [x]}')
    [problem] = problems_of(text)
    assert problem == "f.yaml:12:9: error: node 'main_menu': menu option '3': 'go' is required"


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("play: welcome", "ply: welcome").replace("hangup: goodbye", "hangup: goodbye\n    next: greet")
    text = text.replace("name: technical", "name: Technical Support")
    found = problems_of(text)
    assert len(found) == 3
    assert found[0].startswith("f.yaml:5:5: error: node 'greet': unknown verb 'ply'")
    assert "f.yaml:15:" in found[1] and "'name'" in found[1]
    assert (
        found[2]
        == "f.yaml:18:5: error: node 'bye': a hangup node does not take 'next' (it says itself where the call goes)"
    )


def test_a_node_holds_exactly_one_verb() -> None:
    text = GOOD.replace("    play: welcome\n", "    play: welcome\n    goto: bye\n")
    assert problems_of(text) == [
        "f.yaml:4:3: error: node 'greet' has 2 verbs (play, goto); a node holds exactly one verb"
    ]


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        ("start: greet", "f.yaml:2:1: error: start node 'nowhere' is not among the nodes"),
        ("flow: demo", "f.yaml:1:1: error: 'flow' must name the flow"),
    ],
)
def test_top_level_mistakes(replace: str, expected: str) -> None:
    bad = {"start: greet": "start: nowhere", "flow: demo": "flow: ''"}[replace]
    assert problems_of(GOOD.replace(replace, bad)) == [expected]


def test_yaml_syntax_and_duplicate_keys_point_at_the_line() -> None:
    [syntax] = problems_of(GOOD.replace("then: agent", "then: [agent"))
    assert syntax.startswith("f.yaml:") and "not valid YAML" in syntax
    [duplicate] = problems_of(GOOD.replace("  bye:\n", "  agent:\n"))
    assert "f.yaml:16:" in duplicate and "not valid YAML" in duplicate


def test_bad_templates_and_conditions_are_caught_when_loading() -> None:
    [problem] = problems_of(
        GOOD.replace("    play: welcome\n", "    branch: {when: [{if: 'call.identified ==', go: bye}], else: bye}\n")
        .replace("    next: main_menu\n", "", 1)
    )
    assert "f.yaml:5:22:" in problem and "condition does not parse" in problem


def test_a_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(FlowLoadError) as caught:
        load_flow(tmp_path / "none.yaml")
    assert caught.value.problems[0].severity is Severity.ERROR
    assert "cannot read the flow file" in caught.value.problems[0].message


def test_the_shipped_flows_load() -> None:
    from ivr.config import REPO_ROOT

    for path in (REPO_ROOT / "flows").glob("*.yaml"):
        assert load_flow(path).nodes




@pytest.mark.parametrize(
    "written",
    [
        "    play: &w welcome",  # after a key
        "    play: [&w welcome]",  # in a flow sequence
        "    play: {prompt: *w}",  # a flow mapping's value
        "    play: [a,*w]",  # after a comma, no space
        "    play:\n      - *w",  # a block sequence item
    ],
)
def test_an_anchor_or_alias_is_refused_wherever_yaml_lets_one_start(written: str) -> None:
    text = GOOD.replace("    play: welcome", written)
    assert any("YAML a" in problem for problem in problems_of(text)), text  # anchor or alias named


def test_a_text_parsed_again_is_the_same_flow_and_a_changed_one_is_parsed_anew() -> None:
    first = parse_flow(GOOD, Path("flows/demo.yaml"))
    assert parse_flow(GOOD, Path("flows/demo.yaml")) is first  # read again at each check, reload, test
    changed = parse_flow(GOOD.replace("hangup: goodbye", "hangup: bye"), Path("flows/demo.yaml"))
    assert changed.version != first.version
    assert parse_flow(GOOD, Path("flows/other.yaml")).source == Path("flows/other.yaml")
