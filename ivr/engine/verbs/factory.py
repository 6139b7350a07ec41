"""The one place verbs are built: look the kind up, validate its settings, hand back the verb.

Like jambonz's ``make_task``, nothing constructs a verb any other way, so a verb that runs has always
passed its schema. Validation errors are pydantic's; the loader turns them into positioned sentences.
"""

from __future__ import annotations

from typing import Any

from ivr.engine.verbs.action import Action, Lookup
from ivr.engine.verbs.announce import Announce
from ivr.engine.verbs.base import Verb
from ivr.engine.verbs.branch import Branch
from ivr.engine.verbs.collect import Collect
from ivr.engine.verbs.goto import Goto
from ivr.engine.verbs.hangup import Hangup
from ivr.engine.verbs.hours import Hours
from ivr.engine.verbs.menu import Menu
from ivr.engine.verbs.notify import Notify
from ivr.engine.verbs.play import Play
from ivr.engine.verbs.queue import Queue
from ivr.engine.verbs.record import Record
from ivr.engine.verbs.say import Say
from ivr.engine.verbs.set import Set
from ivr.engine.verbs.subflow import Return, Subflow
from ivr.engine.verbs.transfer import Transfer

VERBS: dict[str, type[Verb]] = {
    cls.kind: cls
    for cls in (
        Play, Say, Menu, Collect, Lookup, Action, Branch, Set, Hours, Queue, Transfer, Record, Notify,
        Announce, Goto, Subflow, Return, Hangup,
    )
}  # fmt: skip


class UnknownVerb(KeyError):
    pass


def make_verb(kind: str, settings: Any, next_node: str | None = None) -> Verb:
    """Build a verb from its YAML value; ``next_node`` is the node-level ``next:`` if one was given.

    Raises `UnknownVerb` or pydantic's `ValidationError` (``next`` errors carry the loc ``("next",)``).
    """
    cls = VERBS.get(kind)
    if cls is None:
        raise UnknownVerb(kind)
    if next_node is None:
        return cls.model_validate(settings)
    expanded = cls.expanded(settings)
    data = dict(expanded) if isinstance(expanded, dict) else expanded
    if isinstance(data, dict):
        data["next"] = next_node
    return cls.model_validate(data)
