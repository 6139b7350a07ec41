"""The published flows: the checked set a running IVR serves, with every version kept.

``ivr flow publish`` checks a flow directory and, only if it has no errors, copies it into the library
(``<var_dir>/published``) as a new *release*, then tells a running ``ivr serve`` to reload (SIGHUP).
A broken set is refused and the running release keeps serving. On disk::

    published/
      releases/<version>/*.yaml   one directory per release, never changed once written
      history.jsonl               one line per publish: version, time, who, files
      CURRENT                     the version being served (replaced atomically)

A release's version is a hash of its files' names and contents, so publishing the same files twice gives
the same version. Calls take a `FlowSet` when they start and walk it to the end: a reload swaps the
library's set for a new immutable one and never changes a set a call holds.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from ivr.clock import Clock
from ivr.engine.flow import Flow, Position, Problem
from ivr.engine.operations import OperationRegistry
from ivr.flows.checks import Report, check_paths, flow_files
from ivr.voice.catalogue import Catalogue

log = logging.getLogger(__name__)

RELEASES = "releases"
HISTORY = "history.jsonl"
CURRENT = "CURRENT"


class NothingPublished(LookupError):
    """No release has been published (or loaded) yet: run ``ivr flow publish``."""


class UnknownFlow(KeyError):
    def __str__(self) -> str:
        return f"no published flow is named {self.args[0]!r}"


@dataclass(frozen=True, slots=True)
class FlowSet:
    """One release's flows, by name; never changes once made."""

    version: str
    flows: Mapping[str, Flow]  # read-only

    def __getitem__(self, name: str) -> Flow:
        try:
            return self.flows[name]
        except KeyError:
            raise UnknownFlow(name) from None


@dataclass(frozen=True, slots=True)
class Release:
    """One line of the history."""

    version: str
    published_at: datetime
    who: str
    files: tuple[str, ...]


def version_of(files: list[Path]) -> str:
    """The content hash of a set of flow files (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


class FlowLibrary:
    def __init__(
        self,
        root: Path,
        *,
        catalogue: Catalogue | Path,
        registry: OperationRegistry,
        clock: Clock,
        words_per_minute: int = 150,
    ) -> None:
        """Releases live in `root` (settings: ``var_dir / "published"``); they are checked against the
        catalogue (or its directory), the registry and the voice's pace as `check_paths` takes them.
        `clock` dates the history's entries (an operator's wall time, not a call's business time)."""
        self.root = root
        self._catalogue = catalogue
        self._registry = registry
        self._clock = clock
        self._words_per_minute = words_per_minute
        self._set: FlowSet | None = None

    # --- serving ------------------------------------------------------------------------------------

    def snapshot(self) -> FlowSet:
        """The flows being served now; a call keeps the set it started with until it ends."""
        if self._set is None:
            raise NothingPublished(f"no flows are published in {self.root}: run 'ivr flow publish'")
        return self._set

    def current(self, name: str) -> Flow:
        """The served version of flow `name`."""
        return self.snapshot()[name]

    @property
    def version(self) -> str | None:
        return self._set.version if self._set is not None else None

    def reload(self) -> Report:
        """Serve the release named in CURRENT (on start and on SIGHUP). The release is checked again (the
        prompts or operations may have changed since); if it fails, the set being served stays."""
        version = self.published_version()
        if version is None:
            raise NothingPublished(f"no flows are published in {self.root}: run 'ivr flow publish'")
        if self._set is not None and self._set.version == version:
            return Report((), self._set.flows)
        report = self._check(self.root / RELEASES / version)
        if report.ok:
            self._set = FlowSet(version, report.flows)
            log.info("serving flows version %s (%s)", version, ", ".join(sorted(report.flows)))
        else:
            log.error(
                "flows version %s not loaded, still serving %s:\n%s", version, self.version, report.render()
            )
        return report

    # --- publishing ---------------------------------------------------------------------------------

    def publish(self, flows_dir: Path, *, who: str | None = None) -> Report:
        """Check every flow in `flows_dir`; with no errors, make it the current release and serve it.

        Returns the check's report; when it has errors nothing changes (the running release keeps serving).
        """
        files = flow_files([flows_dir])
        if not files:
            problem = Problem(Position(flows_dir, 1, 1), f"no flow files (*.yaml) in {flows_dir}: nothing to publish")
            return Report((problem,), MappingProxyType({}))
        version = version_of(files)  # taken before the check: what is stored must be what was checked
        report = self._check(flows_dir)
        if not report.ok:
            return report
        with self._locked():
            if not self._store_release(version, files):
                problem = Problem(
                    Position(flows_dir, 1, 1), "the flow files changed while they were being published: publish again"
                )
                return Report((problem,), report.flows)
            entry = Release(version, self._clock(), who or _who(), tuple(sorted(f.name for f in files)))
            with (self.root / HISTORY).open("a", encoding="utf-8") as history:
                history.write(_history_line(entry) + "\n")
            _write_atomically(self.root / CURRENT, version + "\n")
        self.reload()
        return report

    def history(self) -> list[Release]:
        """Every publish, oldest first."""
        path = self.root / HISTORY
        if not path.exists():
            return []
        releases = []
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            when = datetime.fromisoformat(item["published_at"])
            releases.append(Release(item["version"], when, item["who"], tuple(item["files"])))
        return releases

    # --- inside -------------------------------------------------------------------------------------

    def _check(self, directory: Path) -> Report:
        return check_paths(
            [directory], catalogue=self._catalogue, registry=self._registry, words_per_minute=self._words_per_minute
        )

    def published_version(self) -> str | None:
        """The version named in CURRENT on disk (what a reload would serve), if any."""
        try:
            return (self.root / CURRENT).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def _store_release(self, version: str, files: list[Path]) -> bool:
        """Copy the files into releases/<version>, whole or not at all (a temporary directory renamed).

        False when the copies are not the version that was checked (a file was saved meanwhile).
        """
        target = self.root / RELEASES / version
        if target.is_dir():
            return True  # the same files were published before; releases never change
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            for path in files:
                shutil.copy2(path, staging / path.name)
            if version_of(flow_files([staging])) != version:
                shutil.rmtree(staging)
                return False
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One publisher at a time (two `ivr flow publish` runs must not interleave their writes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _who() -> str:
    """The person publishing: the login behind sudo if any, else the current user."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except OSError:  # no user name in the environment nor in the password database
        return f"uid {os.getuid()}"


def _history_line(entry: Release) -> str:
    return json.dumps(
        {
            "version": entry.version,
            "published_at": entry.published_at.isoformat(),
            "who": entry.who,
            "files": list(entry.files),
        },
        ensure_ascii=False,
    )


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def signal_server(pid_file: Path) -> str:
    """Ask a running ``ivr serve`` (named by its pid file) to reload the published flows; say what happened.

    Raises `PermissionError` when the server belongs to another user.
    """
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return "no ivr serve is running here; it loads this version when it starts"
    except ValueError:
        return f"{pid_file} does not hold a process id; no server was told to reload"
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:  # a pid left behind by a crash may now belong to another program
        if cmdline.exists() and b"serve" not in cmdline.read_bytes():
            return f"process {pid} in {pid_file} is not ivr serve (stale pid file); no server was told to reload"
        os.kill(pid, signal.SIGHUP)
    except (ProcessLookupError, FileNotFoundError):  # gone, possibly between the two steps above
        return f"ivr serve (pid {pid}) is not running (stale pid file); it loads this version when it starts"
    return f"asked ivr serve (pid {pid}) to reload"
