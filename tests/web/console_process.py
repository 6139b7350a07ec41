"""What the browser tests share: `ivr web` in its own process on a free loopback port, and the flags and
environment Debian's chromium runs with under Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ivr.config import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
STARTED = re.compile(r"the console is at (http://\S+)/")
STOP_TIMEOUT_S = 10.0


@contextmanager
def console_process(env: Mapping[str, str]) -> Iterator[str]:
    """`ivr web` with the environment `env` (its IVR_ settings) on a free loopback port; yields its base
    URL once it listens, and stops it at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "web", "--host", "127.0.0.1", "--port", "0"],
        env=dict(env),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the one line it prints once it listens, or nothing if it died
        started = STARTED.search(line)
        assert started, f"ivr web did not start: {line!r} (exit status {process.poll()})"
        yield started[1]
    finally:
        process.terminate()
        process.wait(timeout=STOP_TIMEOUT_S)


def chromium_env() -> dict[str, str]:
    """The dated runs preload libfaketime for the processes they start; the browser needs no fake time."""
    if not CHROMIUM.exists():
        raise AssertionError(f"{CHROMIUM} is missing: ./dev installs Debian's chromium package")
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
