"""The prompt catalogue: every prompt id and the words it says, read from ``prompts/pt_BR/*.yaml``.

Each file is a flat YAML mapping ``id: text``. Ids are ``snake_case`` for whole prompts a flow plays
(``welcome``) or ``namespace/item`` for speaking fragments (``digit/7``, ``money/reais``). All files
are loaded together, so an id defined in two files is an error, reported with both places.

A text made only of punctuation (``","``) is a *pause*: the audio build makes it silence and
`Catalogue.render_text` attaches it to the previous word, so grouped numbers read naturally.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*(/[a-z0-9_]+)?")
_PAUSE_TEXT = re.compile(r"[\s.,;:…!?-]+")


class CatalogueError(ValueError):
    """The catalogue files are unusable; `problems` lists each one as ``file:line: what is wrong``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid prompt catalogue:\n  " + "\n  ".join(problems))
        self.problems = problems


class UnknownPrompt(KeyError):
    """A prompt id the catalogue does not define."""

    def __str__(self) -> str:
        return f"unknown prompt id {self.args[0]!r} (not in any prompts/pt_BR/*.yaml file)"


@dataclass(frozen=True, slots=True)
class PromptSource:
    path: Path
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class _Entry:
    text: str
    source: PromptSource


def is_pause(text: str) -> bool:
    """True for a text made only of punctuation: it stands for a short silence."""
    return _PAUSE_TEXT.fullmatch(text) is not None


class Catalogue:
    def __init__(self, entries: dict[str, _Entry]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, directory: Path) -> Catalogue:
        """Load every ``*.yaml`` file directly under `directory`; raise `CatalogueError` listing all problems."""
        if not directory.is_dir():
            raise CatalogueError([f"{directory}: prompt directory not found"])
        entries: dict[str, _Entry] = {}
        problems: list[str] = []
        for path in sorted(directory.glob("*.yaml")):
            _load_file(path, entries, problems)
        if problems:
            raise CatalogueError(problems)
        return cls(entries)

    def has(self, prompt_id: str) -> bool:
        return prompt_id in self._entries

    def text(self, prompt_id: str) -> str:
        return self._entry(prompt_id).text

    def source(self, prompt_id: str) -> PromptSource:
        return self._entry(prompt_id).source

    def ids(self) -> list[str]:
        """All ids, sorted."""
        return sorted(self._entries)

    def render_text(self, prompt_ids: Iterable[str], others: Mapping[str, str] = {}) -> str:
        """The words a caller hears for these prompts, as one readable line (for the simulator); `others`
        gives the words of ids outside the catalogue (announcements)."""
        out = ""
        for prompt_id in prompt_ids:
            text = others[prompt_id] if prompt_id in others else self.text(prompt_id)
            if is_pause(text):
                out = out.rstrip() + text.strip()
            elif out:
                # A sentence that starts after spoken fragments ("... quatro" + "Anote...") needs its stop.
                ends_open = out.rstrip()[-1:].isalnum()
                out += (". " if ends_open and text[:1].isupper() else " ") + text
            else:
                out = text
        return " ".join(out.split())

    def _entry(self, prompt_id: str) -> _Entry:
        try:
            return self._entries[prompt_id]
        except KeyError:
            raise UnknownPrompt(prompt_id) from None


def _load_file(path: Path, entries: dict[str, _Entry], problems: list[str]) -> None:
    try:
        data = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        problems.append(f"{path}:{line}: prompt id defined twice in this file ({exc.problem})")
        return
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        problems.append(f"{path}:{line}: not valid YAML: {exc.problem}")
        return
    except (YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1: not readable as UTF-8 YAML: {exc}")
        return
    if data is None:
        return  # an empty file defines nothing
    if not isinstance(data, CommentedMap):  # what the round-trip loader makes of a mapping
        problems.append(f"{path}:1: expected a mapping of prompt ids to texts (id: text)")
        return
    for key, value in data.items():
        line = data.lc.key(key)[0] + 1
        where = f"{path}:{line}"
        if not isinstance(key, str) or not ID_PATTERN.fullmatch(key):
            problems.append(
                f"{where}: bad prompt id {key!r}: expected snake_case (welcome) or namespace/item (digit/7)"
            )
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: prompt {key!r} needs a text (a non-empty string), got {value!r}")
            continue
        if key in entries:
            problems.append(f"{where}: prompt {key!r} is already defined at {entries[key].source}")
            continue
        entries[key] = _Entry(" ".join(value.split()), PromptSource(path, line))
