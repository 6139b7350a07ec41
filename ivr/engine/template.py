"""Templates in flows (``"{{ call.protocol }}"``) and conditions (``call.identified and cnpj``).

Rendered by jinja2's sandbox with only the call's variables in scope: a flow file can read what the call
gathered but can never reach Python (no attribute tricks, no imports, no globals beyond jinja's own), nor
make a huge number or text with ``**`` or ``*`` (refused by the checker when constant, and when rendered).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: What one operation in a template may make: a number of this many bits, a text or list this long.
MAX_INT_BITS = 4096
MAX_SEQUENCE = 100_000


def bounded_binop(operator: str, left: Any, right: Any) -> Any:
    """``left ** right`` or ``left * right``, refused (`SecurityError`) when the result would be huge."""
    if operator == "**":
        if _is_int(left) and _is_int(right) and abs(left) > 1 and right * abs(left).bit_length() > MAX_INT_BITS:
            raise SecurityError(f"{left} ** {right} is a number of more than {MAX_INT_BITS} bits")
        return left**right
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and _is_int(times) and len(sequence) * times > MAX_SEQUENCE:
            raise SecurityError(f"a text or list repeated {times} times is longer than {MAX_SEQUENCE}")
    if _is_int(left) and _is_int(right) and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
        raise SecurityError(f"a product of more than {MAX_INT_BITS} bits")
    return left * right


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with ``**`` and ``*`` bounded. Jinja folds constant expressions while compiling, so
    ``{{ 9 ** 9999999 }}`` in a flow would burn a CPU in the checker before any call: an intercepted
    operator is never folded, and runs through `bounded_binop` when rendered."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return bounded_binop(operator, left, right)


_ENV = _BoundedEnvironment(autoescape=False, keep_trailing_newline=False)

__all__ = ["TemplateSyntaxError", "check_expression", "check_template", "evaluate", "render"]


@lru_cache(maxsize=1024)
def _template(text: str) -> Any:
    return _ENV.from_string(text)


@lru_cache(maxsize=1024)
def _expression(text: str) -> Any:
    return _ENV.compile_expression(text)


def render(text: str, variables: dict[str, Any]) -> str:
    if "{" not in text:
        return text
    return str(_template(text).render(variables))


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    return _expression(expression)(**variables)


def check_template(text: str) -> str:
    """Raise ValueError with jinja's reason when the template does not parse, or computes a huge constant
    (for schema validation)."""
    try:
        _template(text)
        _refuse_huge_constants(_ENV.parse(text))
    except TemplateSyntaxError as exc:
        raise ValueError(f"template does not parse: {exc.message}") from exc
    except SecurityError as exc:
        raise ValueError(f"template computes too much: {exc}") from exc
    return text


def check_expression(text: str) -> str:
    try:
        _expression(text)
        _refuse_huge_constants(_ENV.parse(f"{{{{ {text} }}}}"))
    except TemplateSyntaxError as exc:
        raise ValueError(f"condition does not parse: {exc.message}") from exc
    except SecurityError as exc:
        raise ValueError(f"condition computes too much: {exc}") from exc
    return text


class _NotConstant(Exception):
    pass


def _refuse_huge_constants(tree: nodes.Node) -> None:
    """Raise `SecurityError` for a ``**`` or ``*`` of constants whose result is huge: a call would fail
    there every time, so the checker says so at the flow's line."""
    for node in tree.find_all((nodes.Pow, nodes.Mul)):
        try:
            _constant(node)
        except _NotConstant:
            pass  # it depends on the call's data: bounded when rendered
        except (TypeError, ArithmeticError):
            pass  # fails fast when rendered ("a" + 1, 2.0 ** 9999): not a matter of size


def _constant(node: nodes.Node) -> Any:
    """The value of a constant expression, each ``**`` and ``*`` in it bounded."""
    match node:
        case nodes.Const():
            return node.value
        case nodes.List() | nodes.Tuple():
            return [_constant(item) for item in node.items]
        case nodes.Neg():
            return -_constant(node.node)
        case nodes.Pow() | nodes.Mul():
            return bounded_binop(node.operator, _constant(node.left), _constant(node.right))
        case nodes.Add() | nodes.Sub():
            left, right = _constant(node.left), _constant(node.right)
            return left + right if isinstance(node, nodes.Add) else left - right
    raise _NotConstant
