"""./dev installs requirements.lock (hashes checked): it must pin every dependency pyproject.toml declares,
at a version the declaration allows, or a fresh machine runs something nobody tested."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ivr.config import REPO_ROOT

PINNED = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", re.MULTILINE)


def test_the_lock_pins_every_declared_dependency_within_its_range_with_hashes() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(text) for text in [*project["dependencies"], *project["optional-dependencies"]["test"]]]
    lock = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {canonicalize_name(name): version for name, version in PINNED.findall(lock)}
    problems = []
    for requirement in declared:
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement}: not in the lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement}: locked at {version}")
    assert not problems, "requirements.lock is behind pyproject.toml (run .ci/lock): " + "; ".join(problems)
    assert lock.count("--hash=sha256:") >= len(pinned), "every pinned package carries its files' hashes"
