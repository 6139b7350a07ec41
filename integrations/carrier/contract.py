"""The carrier API's contract (carrier_api.openapi.yaml) as the validator of every body received.

The schemas in the OpenAPI file are JSON Schema 2020-12 (OpenAPI 3.1), so the file itself checks the
responses: the documentation and the checks cannot drift apart. Values the schemas leave as strings
(money, dates, instants) are parsed here into the types the flows get.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from ruamel.yaml import YAML

from ivr.engine.operations import BackendError

CONTRACT = Path(__file__).with_name("carrier_api.openapi.yaml")
_BASE_URI = "urn:sac-ivr:carrier-api"


class BadResponse(BackendError):
    """The carrier API answered something that is not the contract's: not JSON, too large, or a body
    that does not match its schema."""


@cache
def contract() -> dict[str, Any]:
    """The OpenAPI document, parsed once."""
    document = YAML(typ="safe").load(CONTRACT.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or "components" not in document:
        raise RuntimeError(f"{CONTRACT}: expected an OpenAPI document with components")
    return document


@cache
def validator(schema: str) -> Draft202012Validator:
    """A validator for ``components/schemas/<schema>``, resolving references inside the document."""
    document = contract()
    if schema not in document["components"]["schemas"]:
        raise KeyError(f"{CONTRACT.name} has no schema {schema!r}")
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_BASE_URI, resource)
    return Draft202012Validator(
        {"$ref": f"{_BASE_URI}#/components/schemas/{schema}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def check(schema: str, body: Any, what: str) -> None:
    """Raise `BadResponse` naming where `body` departs from `schema`. The offending value is left out
    of the message: it may be a caller's phone number or CNPJ, and messages end up in logs."""
    error = best_match(validator(schema).iter_errors(body))
    if error is None:
        return
    where = error.json_path
    if error.validator == "required":
        problem = error.message.replace("'", "")
    else:
        problem = f"expected {error.validator} {str(error.validator_value)[:80]}"
    raise BadResponse(f"{what}: the answer does not match schema {schema} at {where}: {problem}")


def money(value: str, what: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise BadResponse(f"{what}: {value!r} is not an amount") from exc


def day(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadResponse(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from exc


def instant(value: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadResponse(f"{what}: {value!r} is not an RFC 3339 instant") from exc
    if moment.tzinfo is None:
        raise BadResponse(f"{what}: instant {value!r} has no offset")
    return moment
