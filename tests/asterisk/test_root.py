"""Finding the mirror and refusing an Asterisk that is not 22."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.asterisk import root

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
