"""Finding the mirror and refusing an Asterisk that is not 22."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.asterisk import root
from ivr.config import load_settings

DEB822 = """\
Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm

Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Enabled: no

Types: deb
# a comment
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
"""


def test_the_mirror_is_the_first_enabled_non_security_deb_source() -> None:
    assert root._mirror_from_deb822(DEB822) == "http://mirror.invalid/debian"


def test_one_line_sources_skip_security_and_options() -> None:
    text = (
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb http://mirror.invalid/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/debian bookworm main\n"
    )
    assert root._mirror_from_list(text) == "http://mirror.invalid/debian"


def test_no_source_at_all_is_none() -> None:
    assert root._mirror_from_deb822("Types: deb-src\nURIs: http://x.invalid\n") is None
    assert root._mirror_from_list("") is None


@pytest.mark.parametrize("reported", ["Asterisk 20.5.0", "Asterisk 23.0.0", "not asterisk"])
def test_an_asterisk_other_than_22_is_refused(monkeypatch: pytest.MonkeyPatch, reported: str) -> None:
    monkeypatch.setattr(root, "_run", lambda command: reported + "\n")
    with pytest.raises(root.RootError, match="needs Asterisk 22.x"):
        root.asterisk_version(Path("/nonexistent-root"))


def test_asterisk_22_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(root, "_run", lambda command: "Asterisk 22.10.1+dfsg\n")
    assert root.asterisk_version(Path("/nonexistent-root")) == "Asterisk 22.10.1+dfsg"


def test_asterisk_says_numbers_in_portuguese_with_our_fragments(tmp_path: Path) -> None:
    """The files Asterisk's pt number saying asks for (a queue says a caller's place with them) are our
    built fragments, under the calls' language, where Asterisk looks before its English sounds."""
    audio = tmp_path / "prompts/audio"
    for fragment in ("num/2", "num/cento", "word/e", "num/200_f"):
        (audio / fragment).parent.mkdir(parents=True, exist_ok=True)
        for ext in ("alaw", "ulaw"):
            (audio / f"{fragment}.{ext}").write_bytes(f"{fragment} {ext}".encode())
    base = load_settings()
    settings = base.model_copy(
        update={
            "prompts_dir": tmp_path / "prompts",
            "asterisk": base.asterisk.model_copy(update={"root": tmp_path / "root"}),
        }
    )

    assert root.install_say_files(settings) == 8
    digits = tmp_path / "root" / root.SOUNDS_DIR / "pt_BR/digits"
    assert (digits / "2.alaw").read_bytes() == b"num/2 alaw"  # "dois"
    assert (digits / "100E.ulaw").read_bytes() == b"num/cento ulaw"  # 101 to 199: "cento e ..."
    assert (digits / "pt-e.alaw").read_bytes() == b"word/e alaw"  # the "e" between hundreds, tens and units
    assert (digits / "200F.alaw").read_bytes() == b"num/200_f alaw"  # "duzentas"
    # Every number a queue can say (up to 999) finds its words: units, teens, tens, hundreds and "e".
    files = root.asterisk_say_files()
    needed = {f"digits/{n}" for n in [*range(20), *range(20, 100, 10), 100, *range(200, 1000, 100)]}
    assert needed | {"digits/100E", "digits/pt-e"} <= files.keys()
