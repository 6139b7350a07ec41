"""Templates in flows (``"{{ call.protocol }}"``) and conditions (``call.identified and cnpj``).

Rendered by jinja2's sandbox with only the call's variables in scope: a flow file can read what the call
gathered but can never reach Python (no attribute tricks, no imports, no globals beyond jinja's own), nor
make a huge number or text with ``**``, ``*``, ``%`` or a filter's width (refused by the checker when
constant; the operators also when rendered). Nothing is computed while compiling: checking a flow costs no more
than parsing it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import consume

#: What one operation in a template may make: a number of this many bits, a text or list this long.
MAX_INT_BITS = 4096
MAX_SEQUENCE = 100_000
_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*)(?:\.(\d*))?")  # width and precision of a %-format


def bounded_binop(operator: str, left: Any, right: Any) -> Any:
    """``left ** right``, ``left * right`` or ``left % right``, refused (`SecurityError`) when the result
    would be huge."""
    if operator == "%":
        specs = _FORMAT_SPEC.finditer(left) if isinstance(left, str) else iter(())
        if any(n and int(n) > MAX_SEQUENCE for spec in specs for n in spec.groups()):
            raise SecurityError(f"a %-format width or precision over {MAX_SEQUENCE}")
        return left % right
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


class _NothingFolded(CodeGenerator):
    """Jinja computes a constant expression while compiling (its optimiser, and here for what ``{{ }}``
    outputs): ``{{ 9 ** 9999999 }}`` or ``{{ "a"|center(10 ** 9) }}`` would burn a CPU or fill the memory
    in the flow checker, before any call. Only literal text is taken as it is; the rest runs when rendered."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, nodes.TemplateData | nodes.Const):
            raise nodes.Impossible()
        return str(super()._output_child_to_const(node, frame, finalize))


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, compiling without folding anything, with ``**``, ``*`` and ``%`` bounded when rendered."""

    code_generator_class = _NothingFolded
    intercepted_binops = frozenset({"**", "*", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return bounded_binop(operator, left, right)


_ENV = _BoundedEnvironment(autoescape=False, keep_trailing_newline=False, optimized=False)

__all__ = ["TemplateSyntaxError", "check_expression", "check_template", "evaluate", "render"]


#: What jinja sets beside a template's variables (``range``, ``dict``, ...), merged into them once per
#: render here: `Template.render` and `TemplateExpression` copied them through a ChainMap each time, half
#: of a condition's ~8 µs (twenty conditions and templates a call).
_GLOBALS = dict(_ENV.globals)


@lru_cache(maxsize=1024)
def _template(text: str) -> Template:
    return _ENV.from_string(text)


@lru_cache(maxsize=1024)
def _expression(text: str) -> Template:
    """The condition as jinja compiles it: a template that stores its value in ``result``."""
    return _ENV.compile_expression(text)._template


def _context(template: Template, variables: dict[str, Any]) -> Context:
    return template.new_context({**_GLOBALS, **variables}, shared=True)


def render(text: str, variables: dict[str, Any]) -> str:
    if "{" not in text:
        return text
    template = _template(text)
    return str(_ENV.concat(template.root_render_func(_context(template, variables))))


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    template = _expression(expression)
    context = _context(template, variables)
    consume(template.root_render_func(context))
    result = context.vars["result"]
    return None if isinstance(result, Undefined) else result  # as `TemplateExpression` gives it


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
    for node in tree.find_all((nodes.Pow, nodes.Mul, nodes.Mod, nodes.Filter)):
        try:
            if isinstance(node, nodes.Filter):
                _refuse_huge_filter_argument(node)
            else:
                _constant(node)
        except _NotConstant:
            pass  # it depends on the call's data: bounded when rendered
        except (TypeError, ArithmeticError):
            pass  # fails fast when rendered ("a" + 1, 2.0 ** 9999): not a matter of size


def _refuse_huge_filter_argument(node: nodes.Filter) -> None:
    """A filter given a huge constant number (``center(10 ** 9)``, ``indent(...)``) makes a text that long."""
    for argument in [*node.args, *(keyword.value for keyword in node.kwargs)]:
        try:
            value = _constant(argument)
        except _NotConstant:
            continue
        if _is_int(value) and value > MAX_SEQUENCE:
            raise SecurityError(f"filter '{node.name}' given {value}, more than {MAX_SEQUENCE}")


def _constant(node: nodes.Node) -> Any:
    """The value of a constant expression, each ``**`` and ``*`` in it bounded."""
    match node:
        case nodes.Const():
            return node.value
        case nodes.List() | nodes.Tuple():
            return [_constant(item) for item in node.items]
        case nodes.Neg():
            return -_constant(node.node)
        case nodes.Pow() | nodes.Mul() | nodes.Mod():
            return bounded_binop(node.operator, _constant(node.left), _constant(node.right))
        case nodes.Add() | nodes.Sub():
            left, right = _constant(node.left), _constant(node.right)
            return left + right if isinstance(node, nodes.Add) else left - right
    raise _NotConstant
