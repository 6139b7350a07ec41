"""The IVR's AMI user gets the manager classes the code needs, and no other.

The actions are read from the code itself (every ``{"Action": "<Name>", ...}`` under ivr/ and integrations/),
the events from every ``on_event("<Name>", ...)`` and the live model's `EVENTS`; what each needs is Asterisk
22's: an action's ``ast_manager_register_xml[_core](name, authority, ...)`` in main/manager.c and
apps/app_queue.c (any one of its classes suffices; 0 needs none), an event's class where it is raised
(main/manager_channels.c, main/manager.c, apps/app_queue.c). A new action or event fails here until its
class is written below and granted in asterisk_conf/manager.conf.j2 (an event, also let through by its eventfilter).
"""

from __future__ import annotations

import ast
import re

from ivr.ami.live import EVENTS
from ivr.asterisk import conf
from ivr.config import REPO_ROOT, load_settings

#: Action -> the classes of which one grants it (empty: no privilege needed).
ACTION_CLASSES: dict[str, frozenset[str]] = {
    "Ping": frozenset(),
    "QueueStatus": frozenset(),
    "QueueAdd": frozenset({"agent"}),
    "QueueRemove": frozenset({"agent"}),
    "QueuePause": frozenset({"agent"}),
    "Originate": frozenset({"originate"}),  # of a context: an application such as System would need "system"
    "CoreShowChannels": frozenset({"system", "reporting"}),
    "CoreStatus": frozenset({"system", "reporting"}),
}
#: Event -> its class.
EVENT_CLASSES: dict[str, str] = {
    "Newchannel": "call",
    "Hangup": "call",
    "DialEnd": "call",
    "OriginateResponse": "call",
    **{name: "agent" for name in EVENTS if name.startswith(("Queue", "Agent"))},
}
#: What the IVR's user is never given: a shell or the CLI, the dialplan's secrets, other users' configuration.
NEVER = {"system", "command", "config", "all"}


def _sources() -> list[ast.AST]:
    files = [*(REPO_ROOT / "ivr").rglob("*.py"), *(REPO_ROOT / "integrations").rglob("*.py")]
    return [ast.parse(path.read_text(encoding="utf-8")) for path in files]


def actions_sent() -> set[str]:
    found = set()
    for tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "Action" and isinstance(value, ast.Constant):
                        found.add(str(value.value))
    return found


def events_consumed() -> set[str]:
    found = set(EVENTS)
    for tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "on_event" and node.args:
                if isinstance(node.args[0], ast.Constant):
                    found.add(str(node.args[0].value))
    return found


def manager_conf() -> str:
    rendered = conf.render(load_settings(), conf.Layout.shipped(), "s3cret", "agi-key-0123", "/moh", "/modules")
    return rendered["manager.conf"]


def granted(kind: str) -> set[str]:
    (line,) = re.findall(rf"^{kind} = (.+)$", manager_conf(), re.MULTILINE)
    return {part.strip() for part in line.split(",")}


def test_the_code_sends_the_actions_this_test_knows() -> None:
    sent = actions_sent()
    assert {"Originate", "QueueAdd", "CoreShowChannels"} <= sent  # the scan finds them
    assert sent <= set(ACTION_CLASSES), f"write down the manager class of {sorted(sent - set(ACTION_CLASSES))}"


def test_every_action_sent_is_granted_and_nothing_more() -> None:
    write = granted("write")
    needed = [classes for action, classes in ACTION_CLASSES.items() if action in actions_sent() and classes]
    missing = [sorted(classes) for classes in needed if not classes & write]
    assert not missing, f"manager.conf write lacks one of {missing}"
    assert not write & NEVER
    unused = {c for c in write if not any(c in classes for classes in needed)}
    assert not unused, f"write grants {sorted(unused)}, which no action needs"


def test_every_event_consumed_is_granted_and_nothing_more() -> None:
    consumed = events_consumed()
    assert consumed <= set(EVENT_CLASSES), f"write down the class of {sorted(consumed - set(EVENT_CLASSES))}"
    read = granted("read")
    needed = {EVENT_CLASSES[name] for name in consumed}
    assert needed <= read and read <= needed, f"manager.conf read is {sorted(read)}, the events need {sorted(needed)}"


def test_the_event_filter_lets_through_exactly_the_events_consumed() -> None:
    """An event the code waits for but the filter holds back would never come (tests/e2e/test_ami_events.py
    shows Asterisk applying the filter on a call)."""
    filters = re.findall(r"^eventfilter.*$", manager_conf(), re.MULTILINE)
    included = [re.fullmatch(r"eventfilter\(action\(include\),name\((\w+)\)\) =", line) for line in filters]
    assert all(included), f"only include-by-name filters: {filters}"
    assert {match[1] for match in included if match} == events_consumed()
