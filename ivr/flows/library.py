"""The published flows: the checked set a running IVR serves, with every version kept.

``ivr flow publish`` checks a flow directory and, only if it has no errors, copies it into the library
(``<var_dir>/published``) as a new *release*, then tells a running ``ivr serve`` to reload (SIGHUP).
A broken set is refused and the running release keeps serving. ``ivr flow rollback N`` makes an earlier
release current again the same way, after checking it again. On disk::

    published/
      releases/<version>/*.yaml   one directory per release, never changed once written
      history.jsonl               one line per publish or rollback: version, time, who, files, note...
      CURRENT                     the version being served (replaced atomically)

Each history line is numbered by its place in the file (1 = the first publish): the history is only ever
appended to, so a number names the same entry for good.

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
import re
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
from ivr.config import Settings
from ivr.engine.flow import Flow, Position, Problem
from ivr.engine.operations import OperationRegistry
from ivr.flows.checks import Report, check_paths, flow_files
from ivr.flows.diff import FlowsDiff, Side, diff_flows
from ivr.flows.loader import load_flow, text_version
from ivr.voice.catalogue import Catalogue

log = logging.getLogger(__name__)

RELEASES = "releases"
HISTORY = "history.jsonl"
CURRENT = "CURRENT"
#: A note is read in a table of the history, beside its number and version.
MAX_NOTE = 200
#: A version as a supervisor may type it: the whole hash or its first seven characters or more.
VERSION_PREFIX = re.compile(r"[0-9a-f]{7,16}")


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


class UnknownRelease(ValueError):
    """A release number or version the history does not have; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Release:
    """One line of the history: a publish, or a rollback to an earlier entry (`rollback_to`)."""

    number: int  # 1 = the first line of the history
    version: str
    published_at: datetime
    who: str
    files: tuple[str, ...]
    note: str | None = None
    rollback_to: int | None = None

    def describe(self) -> str:
        """The note as a supervisor reads it: "rollback to 2: billing menu broken"."""
        parts = [f"rollback to {self.rollback_to}" if self.rollback_to is not None else None, self.note]
        return ": ".join(part for part in parts if part)


@dataclass(frozen=True, slots=True)
class Rollback:
    """What ``rollback`` did: `entry` is the new history line, None when nothing changed (refused by the
    checks in `report`, or the release was already current)."""

    target: Release
    report: Report
    entry: Release | None


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
        self._flow_versions: dict[str, set[str]] = {}  # a release's version -> the versions of its flows

    # --- serving ------------------------------------------------------------------------------------


    @classmethod
    def of(cls, settings: Settings, *, registry: OperationRegistry, clock: Clock) -> FlowLibrary:
        """The releases the settings name (``var_dir / "published"``), checked against their prompts and pace."""
        return cls(
            settings.var_dir / "published",
            catalogue=settings.prompts_dir,
            registry=registry,
            clock=clock,
            words_per_minute=settings.voice.words_per_minute,
        )
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
        report = self.check(self.root / RELEASES / version)
        if report.ok:
            self._set = FlowSet(version, report.flows)
            log.info("serving flows version %s (%s)", version, ", ".join(sorted(report.flows)))
        else:
            log.error(
                "flows version %s not loaded, still serving %s:\n%s", version, self.version, report.render()
            )
        return report

    # --- publishing ---------------------------------------------------------------------------------

    def publish(self, flows_dir: Path, *, who: str | None = None, note: str | None = None) -> Report:
        """Check every flow in `flows_dir`; with no errors, make it the current release and serve it.
        `note` says why, for the history.

        Returns the check's report; when it has errors nothing changes (the running release keeps serving).
        Raises ValueError for a note that is not one short line.
        """
        note = _one_line(note)
        files = flow_files([flows_dir])
        if not files:
            problem = Problem(Position(flows_dir, 1, 1), f"no flow files (*.yaml) in {flows_dir}: nothing to publish")
            return Report((problem,), MappingProxyType({}))
        version = version_of(files)  # taken before the check: what is stored must be what was checked
        report = self.check(flows_dir)
        if not report.ok:
            return report
        with self._locked():
            if not self._store_release(version, files):
                problem = Problem(
                    Position(flows_dir, 1, 1), "the flow files changed while they were being published: publish again"
                )
                return Report((problem,), report.flows)
            self._make_current(version, who=who, files=tuple(sorted(f.name for f in files)), note=note)
        self.reload()
        return report

    def rollback(self, number: int, *, who: str | None = None, note: str | None = None) -> Rollback:
        """Make history entry `number`'s release current again, as a new entry ("rollback to N").

        The release is checked again first (today's prompts and operations): with errors nothing changes
        and the running release keeps serving. Raises `UnknownRelease` for a number the history lacks, and
        ValueError for a note that is not one short line.
        """
        note = _one_line(note)
        target = self.entry(number)
        if target.version == self.published_version():
            return Rollback(target, Report((), MappingProxyType({})), None)
        release = self.root / RELEASES / target.version
        if not release.is_dir():
            problem = Problem(Position(release, 1, 1), f"the files of release {number} are missing")
            return Rollback(target, Report((problem,), MappingProxyType({})), None)
        report = self.check(release)
        files = flow_files([release])
        if report.ok and version_of(files) != target.version:  # a release is never changed once written
            problem = Problem(
                Position(release, 1, 1), f"the files of release {number} were changed after it was published"
            )
            report = Report((problem,), report.flows)
        if not report.ok:
            return Rollback(target, report, None)
        with self._locked():
            if target.version == self.published_version():  # another rollback got there first
                return Rollback(target, report, None)
            entry = self._make_current(
                target.version, who=who, files=tuple(sorted(f.name for f in files)), note=note, rollback_to=number
            )
        self.reload()
        return Rollback(target, report, entry)

    def history(self) -> list[Release]:
        """Every publish and rollback, oldest first (so entry N is at N - 1)."""
        path = self.root / HISTORY
        if not path.exists():
            return []
        releases = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            item = json.loads(line)
            when = datetime.fromisoformat(item["published_at"])
            files = tuple(item["files"])
            note, rollback_to = item.get("note"), item.get("rollback_to")
            releases.append(Release(number, item["version"], when, item["who"], files, note, rollback_to))
        return releases

    def entry(self, number: int) -> Release:
        """History entry `number`; raises `UnknownRelease` saying which numbers there are."""
        history = self.history()
        if not history:
            raise UnknownRelease("nothing is published yet: run 'ivr flow publish'")
        if not 1 <= number <= len(history):
            raise UnknownRelease(f"there is no release {number}: expected a number from 1 to {len(history)}")
        return history[number - 1]

    def current_entry(self) -> Release | None:
        """The newest history entry of the version in CURRENT (what a reload serves), if any."""
        version = self.published_version()
        return next((e for e in reversed(self.history()) if e.version == version), None)

    def releases_holding(self, flow_version: str) -> list[Release]:
        """The history entries whose release holds a flow at `flow_version` (what a call stores of the flow
        it ran): the releases that call may have run on, oldest first. Releases never change, so each one's
        flow versions are read once."""
        holding = []
        for entry in self.history():
            versions = self._flow_versions.get(entry.version)
            if versions is None:
                files = sorted((self.root / RELEASES / entry.version).glob("*.yaml"))
                versions = self._flow_versions[entry.version] = {text_version(f.read_text("utf-8")) for f in files}
            if flow_version in versions:
                holding.append(entry)
        return holding

    def releases_named(self, flow_version: str) -> str:
        """The releases holding `flow_version` as a supervisor reads them: "release 2", "releases 1, 4"."""
        numbers = [str(entry.number) for entry in self.releases_holding(flow_version)]
        if not numbers:
            return "no published release holds this flow version"
        return f"release{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"

    def diff(self, a: str, b: str) -> FlowsDiff:
        """What changed from `a` to `b`, each as `side` reads it."""
        return diff_flows(self.side(a), self.side(b))

    def side(self, ref: str) -> Side:
        """The flows `ref` names: ``current``, a history number, a version (or its first 7+ characters),
        or a flows directory (the draft). Raises `UnknownRelease` saying what was expected."""
        if ref == "current":
            entry = self.current_entry()
            if entry is None:
                raise UnknownRelease("nothing is published yet, so there is no current release")
            return self._release_side(f"current (release {entry.number})", entry.version)
        if ref.isdigit() and len(ref) < 7:  # shorter than any version a supervisor may type
            return self._release_side(f"release {ref}", self.entry(int(ref)).version)
        if VERSION_PREFIX.fullmatch(ref):
            versions = sorted({e.version for e in self.history() if e.version.startswith(ref)})
            if len(versions) > 1:
                raise UnknownRelease(f"{ref!r} starts several versions ({', '.join(versions)}): give more of it")
            if versions:
                return self._release_side(f"version {versions[0]}", versions[0])
        if Path(ref).is_dir():
            return Side(ref.rstrip("/") or ref, Path(ref))
        raise UnknownRelease(
            f"{ref!r} is not a release number, a version, 'current' or a flows directory (see 'ivr flow history')"
        )

    def published_flow(self, name: str, version: str) -> Flow | None:
        """Flow `name` at `version` (its text's hash, as a call records it) from a release holding it; None
        when none does. Loaded, not checked: for drawing what a call walked, never for serving it."""
        for entry in self.releases_holding(version)[:1]:  # every release holding it holds the same text
            for path in flow_files([self.root / RELEASES / entry.version]):
                if text_version(path.read_text(encoding="utf-8")) == version and (flow := load_flow(path)).name == name:
                    return flow
        return None

    # --- inside -------------------------------------------------------------------------------------

    def _release_side(self, label: str, version: str) -> Side:
        directory = self.root / RELEASES / version
        if not directory.is_dir():
            raise UnknownRelease(f"the files of {label} are missing from {directory}")
        return Side(label, directory)

    def _make_current(
        self,
        version: str,
        *,
        who: str | None,
        files: tuple[str, ...],
        note: str | None,
        rollback_to: int | None = None,
    ) -> Release:
        """Record `version` in the history and name it in CURRENT; the caller holds the lock."""
        number = len(self.history()) + 1
        entry = Release(number, version, self._clock(), who or _who(), files, note, rollback_to)
        with (self.root / HISTORY).open("a", encoding="utf-8") as history:
            history.write(_history_line(entry) + "\n")
        _write_atomically(self.root / CURRENT, version + "\n")
        return entry

    def check(self, directory: Path) -> Report:
        """The check a publish runs on `directory` (the console's editor checks a draft with it too)."""
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


def _one_line(note: str | None) -> str | None:
    """A note as kept: stripped, None when empty; it must fit the history's one line per entry."""
    note = (note or "").strip()
    if "\n" in note or "\r" in note or len(note) > MAX_NOTE:
        raise ValueError(f"a note is one line of at most {MAX_NOTE} characters")
    return note or None


def _history_line(entry: Release) -> str:
    """The stored line: the number is the line's place, so it is not stored; note and rollback_to only when
    given (older lines have neither)."""
    item: dict[str, object] = {
        "version": entry.version,
        "published_at": entry.published_at.isoformat(),
        "who": entry.who,
        "files": list(entry.files),
    }
    if entry.note:
        item["note"] = entry.note
    if entry.rollback_to is not None:
        item["rollback_to"] = entry.rollback_to
    return json.dumps(item, ensure_ascii=False)


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
