"""carrier_api.openapi.yaml is a sound contract, and the adapter's requests keep to it."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from integrations.carrier.contract import contract, validator
from ivr.engine.operations import OperationRegistry

from .carrier_fake import KNOWN_CALLER, CarrierFake
from .conftest import Caller

METHODS = ("get", "post", "put", "patch", "delete")


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_every_schema_is_json_schema_2020_12_and_every_reference_resolves() -> None:
    document = contract()
    assert document["openapi"].startswith("3.1")
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert validator(name) is not None
    for ref in refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]


def test_every_operation_is_documented_with_schemas_for_its_bodies() -> None:
    document = contract()
    operations = [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(operations) >= 13
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("operationId") and op.get("summary"), where
        for status, response in op["responses"].items():
            if "$ref" in response:
                response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            for media, content in response.get("content", {}).items():
                assert "schema" in content, f"{where} {status} {media}"
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        assert method == "get" or body is not None and "$ref" in str(body["schema"]), where
    assert {"boleto", "nota-fiscal", "digitable-line"} <= {p.split("/")[-1].split(".")[0] for p in document["paths"]}


async def test_the_adapters_writes_are_valid_requests(registry: OperationRegistry, carrier: CarrierFake) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    await caller.op("open_ticket", kind="technical_failure", circuit="1", description="sem sinal " * 300)
    await caller.op("open_ticket", kind="complaint")
    await caller.op("register_lead", name="Ana")
    carrier.tickets.clear()  # no open ticket on the outage's circuit: one is opened, then attached
    await caller.op("attach_to_incident")
    schemas = {"/tickets": "NewTicket", "/leads": "NewLead", "/incidents/5/tickets": "AttachTicket"}
    assert len(carrier.posts) == 5
    for path, _, body in carrier.posts:
        validator(schemas[path]).validate(body)
