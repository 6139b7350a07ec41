"""Asterisk's side of one FastAGI call: res_agi's answer to each command, for a scripted caller.

The load generator uses it to answer ``ivr serve`` the way Asterisk 22 answers a real call on the
published sac flow, without knowing the flow: it reads each command line and answers what res_agi
would for a caller who keys what the `Script` says when the named prompt plays.

What res_agi does that is copied here (res_agi.c, Asterisk 22):

* ``STREAM FILE <file> <escape digits>``: ``200 result=0 endpos=<samples>`` when played to the end,
  ``result=<ASCII code>`` when a key in the escape digits stopped it; a missing file is
  ``200 result=-1 endpos=0`` with no HANGUP after it.
* ``EXEC Background <a&b&c[,p]>``: the files in turn; ``result=<ASCII code>`` when a key stopped one
  (with ``p`` keys are ignored), else ``result=0``; a missing file stops it with ``BACKGROUNDSTATUS``
  set to ``FAILED`` (res_agi's EXEC keeps Background from jumping to the key's extension).
* ``EXEC MSet <name=value,...>``: ``result=0``, each variable set as Asterisk's argument parser reads it
  (`mset_values`).
* ``WAIT FOR DIGIT``: ``result=<ASCII code>``, or ``result=0`` at the time-out. Keys typed ahead (during
  an earlier prompt) are read first, like Asterisk's DTMF queue on the channel.
* ``GOSUB sac-keys s 1 <max>,<first s>,<next s>,<ending keys>``: ``100 result=0 Trying...``, then
  ``200 result=0 Gosub complete``; the shipped dialplan's routine (asterisk_conf/extensions.conf) read keys
  until one of the ending keys, the max or the time-out, and left ``<READSTATUS>:<keys>`` in GOSUB_RETVAL.
* ``RECORD FILE``: ``result=<ASCII code> (dtmf)`` when a key ends it; this caller never speaks, so
  otherwise ``result=0 (timeout) endpos=0`` (nothing recorded). Calls reach it only off the script,
  e.g. when a slow store left the caller unidentified and the flow asks who is calling.
* ``EXEC Queue``: while an agent talks the command does not answer; when the caller hangs up on the
  agent, ``200 result=-1`` then ``HANGUP`` on its own line. app_queue set ``MEMBERINTERFACE`` (an agent
  answered) and left ``QUEUESTATUS`` unset (it is only set when the caller leaves unanswered).
* After the hang-up, only commands allowed on a dead channel answer (``GET VARIABLE``); others get
  ``511 Command Not Permitted on a dead channel or intercept routine``.

The bench answers at once where a caller would take seconds (a prompt's length, a time-out): the
figures are the IVR's cost per command, not a call's length.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from ivr.agi.channel import KEYS_CONTEXT
from ivr.engine.flow import Flow
from ivr.engine.verbs.base import Verb
from ivr.engine.verbs.collect import Collect
from ivr.engine.verbs.menu import Menu
from ivr.engine.verbs.queue import Queue
from ivr.flows.loader import load_flow
from ivr.store.seed import KNOWN_CALLER as CALLER

VerbT = TypeVar("VerbT", bound=Verb)

FLOWS = Path(__file__).resolve().parent.parent / "flows"
#: The demo account's ticket that is in progress (flows/tests/sac.yaml uses it too).
TICKET = "800001028"
AGENT = "PJSIP/agent-7001"
DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercept routine"
#: res_agi reports how far a file played, in 8 kHz samples (one second here).
PLAYED = 8000
#: The keys that stop an interruptible Background (AST_DIGIT_ANY).
ANY_KEY = "0123456789*#ABCD"

_ARGUMENT = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_ESCAPED = re.compile(r"\\(.)")


def mset_values(data: str) -> dict[str, str]:
    """What Asterisk 22 sets from MSet's argument: main/app.c's __ast_app_separate_args (commas outside
    quotes, parentheses and brackets; quotes and backslashes removed), then each pair split at its
    first "=" (main/pbx_variables.c)."""
    pairs: list[str] = []
    current, depth, bracket, quoted, chars = "", 0, 0, False, iter(data)
    for char in chars:
        if char == "\\":
            current += next(chars, "")
            continue
        if char == '"':
            quoted = not quoted
            continue
        depth += (char == "(") - (char == ")" and depth > 0)
        bracket += (char == "[") - (char == "]" and bracket > 0)
        if char == "," and not (depth or bracket or quoted):
            pairs.append(current)
            current = ""
            continue
        current += char
    pairs.append(current)
    return dict(pair.split("=", 1) for pair in pairs)


class UnexpectedCommand(AssertionError):
    """The IVR sent something the scripted caller has no answer for (the flow changed under the bench)."""


@dataclass(frozen=True)
class Script:
    """The caller's keys: ``(prompt id, keys)`` pairs, each keyed when that prompt plays."""

    keys: tuple[tuple[str, str], ...]
    #: A prompt missing on the Asterisk host (``result=-1``, no HANGUP): the IVR must give up on the call.
    missing_prompt: str = ""


#: The ticket-status journey by the nodes it goes through (the menus' keys change, the nodes stay): the
#: menus from the flow's start to the collect that asks for the ticket number, then the menu after the
#: status is said, where the caller asks for a person of the technical queue.
TICKET_STATUS_NODE = "ticket_status"
AFTER_STATUS_MENU = "anything_else"
AGENT_QUEUE = "technical"
#: The same caller, on an Asterisk host where the main menu's sound file is missing.
MAIN_MENU_MISSING = Script((), missing_prompt="main_menu")


class FlowChanged(AssertionError):
    """The flow no longer has the nodes the bench's journey goes through."""


@lru_cache
def ticket_status_then_agent(flow_file: Path = FLOWS / "sac.yaml") -> Script:
    """A known caller asks for a ticket's status, keys the ticket number, hears it is in progress, then asks
    for a person and talks to an agent of the technical queue until hanging up: the keys read off `flow_file`."""
    flow = load_flow(flow_file)
    collect = _verb(flow, TICKET_STATUS_NODE, Collect)
    _verb(flow, AFTER_STATUS_MENU, Menu)
    return Script(
        (
            *_menu_keys(flow, flow.start, lambda name: name == TICKET_STATUS_NODE),
            (collect.prompt[0], f"{TICKET}#"),
            *_menu_keys(flow, AFTER_STATUS_MENU, lambda name: _queue_name(flow, name) == AGENT_QUEUE),
        )
    )


def _verb(flow: Flow, name: str, kind: type[VerbT]) -> VerbT:
    node = flow.nodes.get(name)
    if node is None or not isinstance(node.verb, kind):
        raise FlowChanged(
            f"{flow.source}: the bench's ticket-status journey needs a `{kind.kind}` node {name!r} "
            "(bench/asterisk_side.py names the nodes it goes through: update them to the flow)"
        )
    return node.verb


def _queue_name(flow: Flow, name: str) -> str | None:
    verb = flow.nodes[name].verb
    return verb.name if isinstance(verb, Queue) else None


def _menu_keys(flow: Flow, start: str, reached: Callable[[str], bool]) -> tuple[tuple[str, str], ...]:
    """``(menu prompt, key)`` from node `start` to the nearest node `reached` accepts, menu after menu,
    through nodes that ask the caller nothing (their branches taken as the data allows)."""
    ahead: deque[tuple[str, tuple[tuple[str, str], ...]]] = deque([(start, ())])
    seen: set[str] = set()
    while ahead:  # the fewest keys first: a step without a key goes to the front (a 0-1 breadth-first search)
        name, keys = ahead.popleft()
        if name in seen or name not in flow.nodes:
            continue
        seen.add(name)
        if reached(name):
            return keys
        verb = flow.nodes[name].verb
        if isinstance(verb, Menu):
            ahead.extend((option.go, (*keys, (verb.prompt[0], key))) for key, option in verb.options.items())
        elif not verb.waits_for_caller:
            ahead.extendleft((target, keys) for _, target in verb.targets())
    raise FlowChanged(f"{flow.source}: no way by menu keys from {start!r} to the bench's next step")


#: The key the bench's dialplan would carry in its AGI URL; an `ivr serve` under the bench is given it
#: (IVR_AGI__SECRET), as the shipped dialplan and `ivr serve` share an install's key (ivr/agi/admission.py).
AGI_KEY = "bench-agi-key-0123456789"


def header(n: int, flow: str = "sac") -> str:
    """The ``agi_*`` block res_agi sends when call `n` reaches ``AGI(agi://127.0.0.1:4574/<flow>?lang=pt_BR&key=...
    &linkedid=...)`` (the shipped dialplan's request, asterisk_conf/extensions.conf.j2)."""
    script = f"{flow}?lang=pt_BR&key={AGI_KEY}&linkedid={unique_id(n)}"
    return (
        f"agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1/{script}\n"
        f"agi_channel: PJSIP/carrier-{n:08x}\nagi_language: pt_BR\nagi_type: PJSIP\nagi_uniqueid: {unique_id(n)}\n"
        f"agi_version: 22.6.0\nagi_callerid: {CALLER}\nagi_calleridname: unknown\nagi_callingpres: 0\n"
        "agi_dnid: 30033336\nagi_context: sac-inbound\nagi_extension: 30033336\nagi_priority: 3\n"
        "agi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 140000000000\n\n"
    )


def unique_id(n: int) -> str:
    return f"1764070000.{n}"


def plays(line: str, prompt: str) -> bool:
    """Whether the command line plays `prompt` (alone with STREAM FILE, or among Background's files)."""
    command, args = split_command(line)
    if command == "STREAM FILE" and args:
        return args[0].endswith(f"/{prompt}")
    if command == "EXEC" and args[:1] == ["Background"] and len(args) > 1:
        return any(path.endswith(f"/{prompt}") for path in args[1].partition(",")[0].split("&"))
    return False


def split_command(line: str) -> tuple[str, list[str]]:
    """``STREAM FILE "a" ""`` -> ``("STREAM FILE", ["a", ""])``: the words before the first quoted argument,
    then the arguments unquoted as res_agi's ``parse_args`` does (``\\`` makes the next character literal).
    A regular expression, not `shlex`: the generator parses ~50,000 lines a run and shlex's lexer was a
    third of its time."""
    command, quote, rest = line.partition('"')
    args = [bare or _unescape(quoted) for quoted, bare in _ARGUMENT.findall(quote + rest)]
    return command.strip(), args


def _unescape(quoted: str) -> str:
    return _ESCAPED.sub(r"\1", quoted) if "\\" in quoted else quoted


@dataclass
class Caller:
    """One call's Asterisk side. `answer` returns the lines res_agi writes for one command."""

    n: int
    script: Script
    variables: dict[str, str] = field(default_factory=dict)
    hung_up: bool = False
    queued: str = ""  # the queue an agent answered in
    _steps: deque[tuple[str, str]] = field(init=False)
    _typed: deque[str] = field(default_factory=deque)  # keys pressed and not read yet

    def __post_init__(self) -> None:
        self._steps = deque(self.script.keys)
        self.variables["CHANNEL(linkedid)"] = unique_id(self.n)

    @property
    def done_by_ivr(self) -> bool:
        """The IVR finished the call itself (``IVR_DONE``): the dialplan skips the fallback queue."""
        return self.variables.get("IVR_DONE") == "1"

    @property
    def keys_left(self) -> str:
        return "".join(self._typed) + "".join(keys for _, keys in self._steps)

    def answer(self, line: str) -> list[str]:
        command, args = split_command(line)
        if self.hung_up and command != "GET VARIABLE":
            return [DEAD_CHANNEL]
        match command, args:
            case "ANSWER", []:
                return ["200 result=0"]
            case "GET VARIABLE", [name]:
                value = self.variables.get(name)
                return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]
            case "SET VARIABLE", [name, value]:
                self.variables[name] = value
                return ["200 result=1"]
            case "STREAM FILE", [path, escape]:
                played = self._stream(path, escape)
                return [f"200 result={played} endpos={0 if played < 0 else PLAYED // 4 if played else PLAYED}"]
            case "EXEC", ["Background", data]:
                return [self._background(data)]
            case "EXEC", ["MSet", data]:
                self.variables |= mset_values(data)
                return ["200 result=0"]
            case "RECORD FILE", [_, _, escape, *_]:  # the caller keys, or says nothing at all
                if escape and self._typed and self._typed[0] in escape:
                    return [f"200 result={ord(self._typed.popleft())} (dtmf) endpos={PLAYED // 4}"]
                return ["200 result=0 (timeout) endpos=0"]
            case "GOSUB", [context, "s", "1", arguments] if context == KEYS_CONTEXT:
                self.variables["GOSUB_RETVAL"] = self._entry(arguments)
                return ["100 result=0 Trying...", "200 result=0 Gosub complete"]
            case "WAIT FOR DIGIT", [_]:
                return [f"200 result={ord(self._typed.popleft()) if self._typed else 0}"]
            case "EXEC", ["Queue", data]:
                self.queued = data.partition(",")[0]
                self.variables["MEMBERINTERFACE"] = AGENT
                self.hung_up = True
                return ["200 result=-1", "HANGUP"]
            case "HANGUP", []:
                self.hung_up = True
                return ["200 result=1", "HANGUP"]
        raise UnexpectedCommand(f"call {self.n}: the scripted caller has no answer for {line!r}")

    def _entry(self, arguments: str) -> str:
        """What the keys routine returns for the keys typed: ``OK:<keys>`` up to an ending key or the max,
        ``TIMEOUT:<keys>`` when the caller typed no more."""
        most, _, _, ends = arguments.split(",", 3)
        keys = ""
        while len(keys) < int(most):
            if not self._typed:
                return f"TIMEOUT:{keys}"
            keys += self._typed.popleft()
            if keys[-1] in ends:
                break
        return f"OK:{keys}"

    def _stream(self, path: str, escape: str) -> int:
        """One file: the code of the key that stopped it, 0 played to its end, -1 missing."""
        if self.script.missing_prompt and path.endswith(f"/{self.script.missing_prompt}"):
            return -1
        if escape and self._steps and path.endswith(f"/{self._steps[0][0]}"):
            self._typed.extend(self._steps.popleft()[1])
        if escape and self._typed and self._typed[0] in escape:
            return ord(self._typed.popleft())
        return 0

    def _background(self, data: str) -> str:
        """``Background(a&b&c[,p])``: the files in turn up to a key (with "p", none), or up to one missing."""
        files, _, options = data.partition(",")
        self.variables["BACKGROUNDSTATUS"] = "SUCCESS"
        for path in files.split("&"):
            played = self._stream(path, "" if "p" in options else ANY_KEY)
            if played < 0:
                self.variables["BACKGROUNDSTATUS"] = "FAILED"
                return "200 result=0"
            if played:
                return f"200 result={played}"
        return "200 result=0"
