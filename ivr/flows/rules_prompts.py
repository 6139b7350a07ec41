"""Rules about what menus say, read from the prompt catalogue:

- the keys a menu announces are its keys: every option is announced, and nothing else is (``*`` repeats
  in every menu, so announcing it is always true; ``#`` needs ``back:``). A key is announced as a numeral
  ("digite 1", "Financeiro, 2.") or, for ``*`` and ``#``, as "asterisco" and "sustenido". The prompts a
  caller hears on the way into a menu without being asked anything count too (a circuit said with
  "digite 1" just before the menu that takes it);
- the first menu says ``0`` (a person) before any other key;
- a menu's prompt lasts at most 15 s (a warning), as built (prompts/pt_BR/audio/manifest.json) or, for
  prompts whose audio is not built, estimated from their words at the voice's rate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ivr.engine.flow import Node, Problem, Severity
from ivr.engine.verbs.subflow import Subflow
from ivr.flows.rules_paths import CallGraph, Vertex, is_menu, menu_of
from ivr.flows.rules_reach import PERSON_KEY
from ivr.voice.build import ManifestEntry
from ivr.voice.catalogue import Catalogue

#: A key as a prompt announces it: a lone numeral (not part of a number, a date or an amount) or a word.
KEY_PATTERN = re.compile(r"(?<![\w.,-])(\d)(?!\w|[.,]\d)|\b(asterisco|sustenido)\b", re.IGNORECASE)
SPOKEN_KEYS = {"asterisco": "*", "sustenido": "#"}
REPEAT_KEY, BACK_KEY = "*", "#"
LONG_PROMPT_S = 15.0


def announced_keys(text: str) -> list[str]:
    """The keys a prompt text announces, in the order it says them."""
    return [match[1] or SPOKEN_KEYS[match[2].lower()] for match in KEY_PATTERN.finditer(text)]


@dataclass(frozen=True, slots=True)
class Announcement:
    key: str
    prompt: str  # the prompt id that says it
    node: str | None  # the node playing it before the menu; None for the menu's own prompts

    def where(self) -> str:
        played = f", played by '{self.node}' just before it" if self.node else ""
        return f"in prompt '{self.prompt}'{played}"


def announced_keys_are_real_keys(graph: CallGraph, catalogue: Catalogue) -> Iterator[Problem]:
    for vertex in graph.vertices():
        node = graph.node(vertex)
        if not is_menu(node):
            continue
        menu = menu_of(node)
        heard = [*_announcements(catalogue, menu.prompt, None), *_lead_in_announcements(graph, catalogue, vertex)]
        retries = [r.prompt for r in (menu.no_input, menu.no_match) if r.prompt]
        said = {a.key for a in heard}
        for key in menu.options:
            if key not in said:
                yield Problem(
                    node.position_of(f"menu.options.{key}"),
                    f"option '{key}' of menu '{node.name}' is never announced: neither its prompt nor what "
                    f"callers hear just before it says '{_spoken(key)}', and callers do not choose a key they do "
                    f"not hear (say keys as numerals: 'digite 1')",
                )
        reported: set[str] = set()
        for announcement in [*heard, *_announcements(catalogue, retries, None)]:
            key = announcement.key
            if key in menu.options or key == REPEAT_KEY or (key == BACK_KEY and menu.back) or key in reported:
                continue
            reported.add(key)
            if key == BACK_KEY:
                what = f"'#' (sustenido) {announcement.where()}, but has no 'back:' to go back to"
            else:
                what = (
                    f"key '{key}' {announcement.where()}, but has no option '{key}' (a lone numeral in what a "
                    f"menu says reads as a key: say other numbers in words)"
                )
            yield Problem(node.position_of("menu.prompt"), f"menu '{node.name}' announces {what}")


def first_menu_says_person_first(graph: CallGraph, catalogue: Catalogue) -> Iterator[Problem]:
    for vertex, first in _first_announced(graph, catalogue).items():
        node = graph.node(vertex)
        own = next(iter(_announcements(catalogue, menu_of(node).prompt, None)), None)
        heard_first = {a if a is not None else own for a in first}
        wrong = sorted((a for a in heard_first if a is not None and a.key != PERSON_KEY), key=lambda a: a.key)
        if wrong:
            yield Problem(
                node.position_of("menu.prompt"),
                f"menu '{node.name}' is the first menu callers hear, so it says '0' (a person) before its other "
                f"options, but callers hear '{_spoken(wrong[0].key)}' first ({wrong[0].where()}): start with "
                f"'0', e.g. \"Para falar com um atendente a qualquer momento, digite 0.\"",
            )


@dataclass(frozen=True, slots=True)
class PromptLength:
    seconds: float
    estimated: bool  # some prompt's audio is not built (or out of date): its length comes from its words
    words: int


class PromptLengths:
    """How long prompts last: as built when their audio is up to date, else estimated from their words."""

    def __init__(self, catalogue: Catalogue, built: Mapping[str, ManifestEntry], words_per_minute: int) -> None:
        self._catalogue = catalogue
        self._built = built
        self.words_per_minute = words_per_minute

    def of(self, prompt_ids: list[str]) -> PromptLength:
        seconds, estimated, words = 0.0, False, 0
        for prompt_id in prompt_ids:
            text = self._catalogue.text(prompt_id)
            words += len(text.split())
            entry = self._built.get(prompt_id)
            if entry is not None and entry.text == text:
                seconds += entry.duration_s
            else:
                seconds += len(text.split()) * 60 / self.words_per_minute
                estimated = True
        return PromptLength(seconds, estimated, words)


def long_menu_prompts(graph: CallGraph, catalogue: Catalogue, lengths: PromptLengths) -> Iterator[Problem]:
    for vertex in graph.vertices():
        node = graph.node(vertex)
        if not is_menu(node):
            continue
        prompts = [p for p in menu_of(node).prompt if catalogue.has(p)]
        length = lengths.of(prompts)
        if length.seconds <= LONG_PROMPT_S:
            continue
        if length.estimated:
            lasts = (
                f"lasts about {length.seconds:.0f} s (estimated from its {length.words} words at "
                f"{lengths.words_per_minute} a minute: its audio is not built)"
            )
        else:
            lasts = f"lasts {length.seconds:.1f} s as built"
        yield Problem(
            node.position_of("menu.prompt"),
            f"the prompt of menu '{node.name}' {lasts}, over {LONG_PROMPT_S:.0f} s: callers lose the thread; "
            f"say less, or move options to where callers look for them",
            Severity.WARNING,
        )


def _announcements(catalogue: Catalogue, prompt_ids: list[str], node: str | None) -> Iterator[Announcement]:
    for prompt_id in prompt_ids:
        if catalogue.has(prompt_id):  # a missing prompt is reported as such
            for key in announced_keys(catalogue.text(prompt_id)):
                yield Announcement(key, prompt_id, node)


def _lead_in_announcements(graph: CallGraph, catalogue: Catalogue, menu: Vertex) -> Iterator[Announcement]:
    """What the nodes a caller passes on the way into `menu`, without being asked anything, announce."""
    seen = {menu}
    todo = [menu]
    while todo:  # bounded: each node is looked at once
        for before in graph.predecessors(todo.pop()):
            node = graph.node(before)
            if before in seen or _asks_or_hands_over(node):
                continue
            seen.add(before)
            todo.append(before)
            yield from _announcements(catalogue, node.verb.prompt_ids(), node.name)


def _asks_or_hands_over(node: Node) -> bool:
    """Where hearing stops counting as the way into a menu: the caller was asked something, or was in a
    subflow (which a supervisor reads as a journey of its own)."""
    return node.verb.waits_for_caller or isinstance(node.verb, Subflow)


def _first_announced(graph: CallGraph, catalogue: Catalogue) -> dict[Vertex, set[Announcement | None]]:
    """For each first menu, the first key callers can have heard before it, per path from a call's start
    (None: no key yet, so the menu's own prompt says the first)."""
    heard: dict[Vertex, set[Announcement | None]] = {}
    arriving: dict[Vertex, set[Announcement | None]] = {}
    for entry in graph.entry_flows():
        start = graph.start_of(entry)
        todo: list[tuple[Vertex, Announcement | None]] = [(start, None)]
        while todo:  # bounded: a node's set of first keys only grows, and is finite
            vertex, first = todo.pop()
            node = graph.node(vertex)
            if is_menu(node):
                arriving.setdefault(vertex, set()).add(first)
                continue
            if first in heard.setdefault(vertex, set()):
                continue
            heard[vertex].add(first)
            if first is None:
                first = next(iter(_announcements(catalogue, node.verb.prompt_ids(), node.name)), None)
            todo.extend((successor, first) for successor in graph.successors(vertex, is_menu))
    return arriving


def _spoken(key: str) -> str:
    return {REPEAT_KEY: "asterisco", BACK_KEY: "sustenido"}.get(key, key)
