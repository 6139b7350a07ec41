"""What a verb says happens after its node, as a value the interpreter acts on.

A verb never walks the flow itself: it returns where the call goes (`GoTo`), that the subflow it is in is
over (`ReturnToCaller`), that another flow runs first (`RunSubflow`), or that the call is over
(`EndCall`). The interpreter owns the walk: the step limit, node time limits and subflow nesting.

Each step also carries what the node-visit event records of the node: what the caller gave (`input`,
masked where it is personal data) and how the node ended (`result`, e.g. "found", "1", "no_input";
left empty, the event records where the call went).
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.engine.context import Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class _Step:
    input: str = ""
    result: str = ""


@dataclass(frozen=True, slots=True)
class GoTo(_Step):
    """Go on to another node of the same flow."""

    node: str


@dataclass(frozen=True, slots=True)
class ReturnToCaller(_Step):
    """The subflow is over: the flow that ran it goes on (a top-level flow ends the call politely)."""


@dataclass(frozen=True, slots=True)
class RunSubflow(_Step):
    """Walk another flow from its start; when it returns, go on at `then`."""

    flow: str
    then: str


@dataclass(frozen=True, slots=True)
class EndCall(_Step):
    """The call is over for the IVR: an agent, an outside number or a goodbye took it."""

    outcome: Outcome
    target: str = ""  # the queue's name or the number the call went to


Next = GoTo | ReturnToCaller | RunSubflow | EndCall
