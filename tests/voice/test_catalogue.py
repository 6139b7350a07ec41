from pathlib import Path

import pytest

from ivr.config import REPO_ROOT
from ivr.voice.catalogue import Catalogue, CatalogueError, UnknownPrompt


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_all_files_with_sources(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "# flows\nwelcome: Bem-vindo ao atendimento.\nmain_menu: Para suporte, digite 1.\n")
    write(tmp_path, "b.yaml", "digit/7: sete\nnum/1_f: uma\n")
    write(tmp_path, "notes.txt", "not: loaded\n")
    cat = Catalogue.load(tmp_path)
    assert cat.ids() == ["digit/7", "main_menu", "num/1_f", "welcome"]
    assert cat.has("digit/7") and not cat.has("not")
    assert cat.text("welcome") == "Bem-vindo ao atendimento."
    assert cat.source("main_menu").path == a and cat.source("main_menu").line == 3
    assert str(cat.source("welcome")) == f"{a}:2"


def test_duplicate_across_files_names_both_places(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "welcome: Olá\n")
    write(tmp_path, "b.yaml", "other: x\nwelcome: Oi\n")
    with pytest.raises(CatalogueError) as err:
        Catalogue.load(tmp_path)
    assert err.value.problems == [
        f"{tmp_path / 'b.yaml'}:2: prompt 'welcome' is already defined at {tmp_path / 'a.yaml'}:1"
    ]


def test_duplicate_within_a_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "welcome: Olá\ngoodbye: Tchau\nwelcome: Oi\n")
    with pytest.raises(CatalogueError) as err:
        Catalogue.load(tmp_path)
    [problem] = err.value.problems
    assert problem.startswith(f"{tmp_path / 'a.yaml'}:3: prompt id defined twice")


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("ok: fine\nWelcome: Olá\n", 2, "bad prompt id 'Welcome'"),
        ("ok: fine\ndigit/7/x: sete\n", 2, "bad prompt id 'digit/7/x'"),
        ("ok: fine\n7: sete\n", 2, "bad prompt id 7"),
        ("ok: fine\nempty: ''\n", 2, "needs a text"),
        ("ok: fine\nnested: {a: b}\n", 2, "needs a text"),
        ("ok: fine\nnumber: 12\n", 2, "needs a text"),
        ("- a\n- b\n", 1, "expected a mapping"),
        ("ok: fine\nbad: [unclosed\n", 3, "not valid YAML"),
    ],
)
def test_bad_entries_report_file_and_line(tmp_path: Path, text: str, line: int, expected: str) -> None:
    write(tmp_path, "a.yaml", text)
    with pytest.raises(CatalogueError) as err:
        Catalogue.load(tmp_path)
    [problem] = err.value.problems
    assert problem.startswith(f"{tmp_path / 'a.yaml'}:{line}: ")
    assert expected in problem


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "Bad: x\nempty: ''\n")
    write(tmp_path, "b.yaml", "also bad: y\n")
    with pytest.raises(CatalogueError) as err:
        Catalogue.load(tmp_path)
    assert len(err.value.problems) == 3
    assert "b.yaml:1" in str(err.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="prompt directory not found"):
        Catalogue.load(tmp_path / "nope")


def test_empty_file_defines_nothing(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "# nothing yet\n")
    assert Catalogue.load(tmp_path).ids() == []


def test_render_text_joins_words_and_attaches_pauses(tmp_path: Path) -> None:
    write(
        tmp_path, "a.yaml", "your_protocol_is: 'Anote o seu protocolo:'\npause/short: ','\ndigit/1: um\ndigit/2: dois\n"
    )
    cat = Catalogue.load(tmp_path)
    text = cat.render_text(["your_protocol_is", "digit/1", "pause/short", "digit/2", "digit/1"])
    assert text == "Anote o seu protocolo: um, dois um"


def test_text_is_single_spaced(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "long: >\n  Para suporte técnico,\n  digite 1.\n")
    assert Catalogue.load(tmp_path).text("long") == "Para suporte técnico, digite 1."


def test_unknown_id_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "a: x\n")
    cat = Catalogue.load(tmp_path)
    with pytest.raises(UnknownPrompt, match="unknown prompt id 'nope'"):
        cat.render_text(["a", "nope"])


def test_repository_catalogue_loads() -> None:
    cat = Catalogue.load(REPO_ROOT / "prompts" / "pt_BR")
    assert cat.has("digit/0") and cat.has("money/reais") and cat.has("fallback_apology")
