"""Templates in flows (``"{{ call.protocol }}"``) and conditions (``call.identified and cnpj``).

Rendered by jinja2's sandbox with only the call's variables in scope: a flow file can read what the call
gathered but can never reach Python (no attribute tricks, no imports, no globals beyond jinja's own).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False)

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
    """Raise ValueError with jinja's reason when the template does not parse (for schema validation)."""
    try:
        _template(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template does not parse: {exc.message}") from exc
    return text


def check_expression(text: str) -> str:
    try:
        _expression(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"condition does not parse: {exc.message}") from exc
    return text
