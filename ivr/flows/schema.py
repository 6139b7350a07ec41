"""The flow language as a JSON Schema, built from the verbs' own pydantic models.

Editors that speak the YAML language server complete and underline flow files with it; a flow file names
it in its first line::

    # yaml-language-server: $schema=flow.schema.json

The committed copy, ``flows/flow.schema.json``, is regenerated with ``ivr flow schema -o
flows/flow.schema.json`` whenever a verb changes (a test fails while it is out of date).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

from ivr.engine.verbs.base import Verb
from ivr.engine.verbs.factory import VERBS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "flow.schema.json"


def flow_schema() -> dict[str, Any]:
    """The JSON Schema of a flow file."""
    defs: dict[str, Any] = {}
    variants = [_node_schema(kind, VERBS[kind], defs) for kind in sorted(VERBS)]
    defs["Node"] = {
        "description": "A step of the call: exactly one verb, plus 'next' for verbs that go on to one node.",
        "oneOf": variants,
    }
    return {
        "$schema": DIALECT,
        "title": "sac-ivr call flow",
        "description": "A call flow of the 3003-3336 IVR (see flows/README.md).",
        "type": "object",
        "properties": {
            "flow": {"type": "string", "minLength": 1, "description": "the flow's name (subflow: <name>)"},
            "start": {"type": "string", "minLength": 1, "description": "the node a call begins with"},
            "description": {"type": "string"},
            "nodes": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"$ref": "#/$defs/Node"},
                "description": "the flow's nodes by name",
            },
        },
        "required": ["flow", "start", "nodes"],
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
    }


def render_schema() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(flow_schema(), indent=2, ensure_ascii=False) + "\n"


def _node_schema(kind: str, cls: type[Verb], defs: dict[str, Any]) -> dict[str, Any]:
    verb = _model_schema(cls, defs)
    # `next` is written beside the verb, at node level (the loader hands it to the verb).
    continues = "next" in verb["properties"]
    verb["properties"].pop("next", None)
    verb["required"] = [name for name in verb.get("required", []) if name != "next"]
    if not verb["required"]:
        del verb["required"]
    defs[cls.__name__] = verb

    forms: list[dict[str, Any]] = [{"$ref": f"#/$defs/{cls.__name__}"}]
    if cls.shorthand is not None:  # `goto: main_menu` stands for `goto: {target: main_menu}`
        forms.append(verb["properties"][cls.shorthand])
    if "required" not in verb:  # `return:` with nothing after it
        forms.append({"type": "null"})
    if kind == "set":  # `set: {journey: billing}`: the mapping itself holds the values (Set._values_are_the_mapping)
        forms.append({"type": "object", "additionalProperties": verb["properties"]["values"]["additionalProperties"]})

    properties: dict[str, Any] = {kind: forms[0] if len(forms) == 1 else {"anyOf": forms}}
    if continues:
        properties["next"] = {"type": "string", "description": "the node that follows"}
    return {
        "title": kind,
        "description": _summary(cls),
        "type": "object",
        "properties": properties,
        "required": [kind, "next"] if continues and cls.model_fields["next"].is_required() else [kind],
        "additionalProperties": False,
    }


def _model_schema(cls: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    """The model's schema with its nested models moved into the shared `defs` (names must not clash)."""
    schema = cls.model_json_schema(ref_template="#/$defs/{model}")
    for name, nested in schema.pop("$defs", {}).items():
        if defs.setdefault(name, nested) != nested:
            raise ValueError(f"two different verb models are both called {name!r}; rename one")
    return schema


def _summary(cls: type[Verb]) -> str:
    """The first line of the verb's module docstring (one module per verb), without reST quotes."""
    doc = (sys.modules[cls.__module__].__doc__ or "").strip()
    return doc.splitlines()[0].replace("``", "'") if doc else ""
