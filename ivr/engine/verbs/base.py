"""What every verb shares: a strict pydantic model of its YAML settings plus the code that runs it.

A node in a flow holds exactly one verb (``menu:``, ``collect:``, ``queue:``...). The verb's settings come
from the value under that key; the node-level ``next:`` is handed to verbs that continue in a straight
line. `targets()`, `prompt_ids()` and `operations()` let `ivr flow check` inspect a flow without running it;
`run()` does the work on a live call and returns what happens next (`ivr.engine.steps`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from ivr.engine.context import CallContext
    from ivr.engine.steps import Next

#: Default bound on one node's run, so a stuck back-end or channel cannot hold a call forever.
DEFAULT_NODE_TIMEOUT_S = 120.0
#: Allowance for playing one question's prompts, when a verb sizes its own time limit.
PROMPT_ALLOWANCE_S = 60.0

#: One prompt id or a list of them; a single id may be written without brackets.
Prompts = Annotated[
    list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v, json_schema_input_type=str | list[str])
]


def _variable_name(name: str) -> str:
    if not name.isidentifier() or name == "call":
        raise ValueError(f"'{name}' cannot be a variable name (letters, digits and _; not 'call')")
    return name


#: The name of a call variable a verb stores into.
VarName = Annotated[str, AfterValidator(_variable_name)]


class Verb(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str]
    #: True for nodes that ask the caller something (menu, collect, record...).
    waits_for_caller: ClassVar[bool] = False
    #: Field filled when the YAML gives a plain value instead of a mapping (``goto: main_menu``).
    shorthand: ClassVar[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        return cls.expanded(data)

    @classmethod
    def expanded(cls, data: Any) -> Any:
        """The YAML value with its shorthand spelled out (a mapping, unless it is wrong)."""
        if data is None:
            return {}
        if cls.shorthand is not None and not isinstance(data, dict):
            return {cls.shorthand: data}
        return data

    def targets(self) -> list[tuple[str, str]]:
        """Every edge out of this node as (label, target node)."""
        return []

    def prompt_ids(self) -> list[str]:
        """Catalogue ids this node may play (fixed ids only; spoken numbers are rendered at run time)."""
        return []

    def operations(self) -> list[tuple[str, dict[str, object]]]:
        """Registry operations this node calls, with their (templated) arguments."""
        return []

    def time_limit_s(self) -> float | None:
        """How long this node may run before the engine gives up on it (None: the node is bounded by the
        channel's own commands, e.g. a conversation with an agent, which lasts as long as it lasts)."""
        return DEFAULT_NODE_TIMEOUT_S

    async def run(self, call: CallContext) -> Next:
        raise NotImplementedError


class Continues(Verb):
    """A verb that goes on to one node when it is done (``next:`` at node level)."""

    next: str = Field(description="the node that follows")

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class Retry(BaseModel):
    """What to do when the caller says nothing, or something that does not fit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retries: int = Field(default=2, ge=0, le=5)
    prompt: str | None = None  # played before asking again
    go: str | None = None  # where to go when the retries run out (default: the verb's `then`)


def retry_edges(**retries: Retry) -> list[tuple[str, str]]:
    """The edges out of a question that the retries' own ``go`` add, labelled by the retry's name."""
    return [(f"{name} retries", retry.go) for name, retry in retries.items() if retry.go]
