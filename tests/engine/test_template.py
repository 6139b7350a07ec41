"""Templates cannot be made to burn CPU or memory: ``**`` and ``*`` bounded, when checked and when rendered."""

from __future__ import annotations

import time

import pytest
from jinja2.exceptions import SecurityError

from ivr.engine.flow import FlowError
from ivr.engine.state import CallState
from ivr.engine.template import check_expression, check_template, evaluate, render


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{ 9 ** 9999999 }}", "more than 4096 bits"),  # jinja's constant folding would compute it while checking
        ('{{ "a" * 10 ** 9 }}', "repeated 1000000000 times"),
        ("{{ [0] * 10 ** 6 }}", "repeated 1000000 times"),
        ("{{ -(2 ** 99999) }}", "more than 4096 bits"),
        ('{{ "%100000000s" % 1 }}', "width or precision over 100000"),
        ('{{ "a"|center(10 ** 9) }}', "filter 'center' given 1000000000"),
        ('{{ "a"|indent(width=200000) }}', "filter 'indent' given 200000"),
    ],
)
def test_a_huge_constant_is_a_checker_error_found_at_once(template: str, says: str) -> None:
    started = time.process_time()
    with pytest.raises(ValueError, match=f"template computes too much: .*{says}"):
        check_template(template)
    with pytest.raises(ValueError, match=f"condition computes too much: .*{says}"):
        check_expression(template[3:-3])
    assert time.process_time() - started < 0.5


def test_a_huge_result_from_the_calls_data_is_refused_when_rendered() -> None:
    check_template("{{ n ** e }}")  # depends on the call: only rendering can tell
    with pytest.raises(SecurityError, match="more than 4096 bits"):
        render("{{ n ** e }}", {"n": 9, "e": 99_999_999})
    with pytest.raises(SecurityError, match="repeated"):
        evaluate("s * n", {"s": "ab", "n": 10**9})
    with pytest.raises(SecurityError, match="width or precision"):
        render("{{ f % 1 }}", {"f": "%999999999d"})


def test_ordinary_arithmetic_is_untouched() -> None:
    assert render("{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ n * 2 }} {{ 9**9**9 }}", {"n": 21}) == (
        f"1024 ababab 42 {(9**9) ** 9}"  # jinja's ** groups from the left
    )
    assert evaluate("2 * x > 3", {"x": 2}) is True
    assert render('{{ "%05d" % n }} {{ 7 % 3 }} {{ "%s-%s" % (1, 2) }} {{ "ab"|center(6) }}', {"n": 42}) == (
        "00042 1 1-2   ab  "
    )


def test_jinjas_globals_and_the_calls_variables_are_in_scope_the_calls_first() -> None:
    assert render("{% for i in range(n) %}{{ i }}{% endfor %} {{ dict(a=1)['a'] }}", {"n": 3}) == "012 1"
    assert evaluate("range(n) | list", {"n": 2}) == [0, 1]
    assert evaluate("range", {"range": "a flow variable"}) == "a flow variable"
    assert evaluate("missing", {}) is None and evaluate("missing is defined", {}) is False
    assert render("{{ a }}{{ missing }}", {"a": "x"}) == "x"


def test_a_calls_values_are_rendered_with_its_variables_and_a_failing_one_is_named() -> None:
    state = CallState(protocol="260310000001", caller_id="3133334444", dialled="30033336", listening=False)
    state.variables["ticket"] = "800001028"
    args = {"number": "{{ ticket }}", "kind": "failure", "count": 2, "who": "{{ call.caller_id }}/{{ call.protocol }}"}
    assert state.render_values(args) == {
        "number": "800001028", "kind": "failure", "count": 2, "who": "3133334444/260310000001",
    }  # fmt: skip
    assert state.render("{{ ticket }}#") == "800001028#" and state.render("plain {text") == "plain {text"
    with pytest.raises(FlowError, match=r"template '\{\{ ticket\(\) \}\}' failed"):
        state.render_values({"number": "{{ ticket() }}"})
